"""Utterance endpointing: find where a spoken label begins and ends in a stream of microphone blocks.

Each frame (10 ms) is called speech or not by one of :data:`VOICE_ACTIVITY_DETECTORS`:

* ``"energy"``: an adaptive noise floor. The floor is the lowest frame level seen during the first
  ``calibration_ms`` of a listening period, then follows the level down at once and drifts up by
  ``floor_rise_db_s``. A frame is speech when its level exceeds both ``floor + snr_db`` and
  ``min_level_dbfs``. It needs room noise before the first word: on a recording whose word starts at
  once, the calibration window is speech, the floor sits at the word's level and the word is missed.
* ``"webrtc"`` (default): WebRTC's voice-activity detector (a Gaussian-mixture model of speech and noise
  on six sub-bands, at aggressiveness ``webrtc_mode``), as shipped inside pocketsphinx
  (``pocketsphinx.Vad``; the same code as the ``webrtcvad`` packages), gated by ``min_level_dbfs``.
  It needs no calibration, so a word may start at the first sample.

An utterance starts after ``min_speech_ms`` of consecutive
speech frames and ends after ``trailing_silence_ms`` without speech (or when it reaches
``max_utterance_ms``); it carries ``preroll_ms`` of audio before its first speech frame and its trailing
silence, which the decoders use as context. The same per-frame rule (:func:`endpoint_step`) drives the
streaming :class:`Endpointer` and the offline :func:`find_utterances`, so cutting the audio into blocks
of any size gives the same utterances.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (one spoken label per image while
   the image is shown).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tracking._validation import check_positive
from tracking.speech.audio import check_pcm16, frame_levels_dbfs
from tracking.speech.base import Recognition
from tracking.speech.errors import RecogniserError

__all__ = [
    "VOICE_ACTIVITY_DETECTORS",
    "EndpointEvent",
    "EndpointState",
    "Endpointer",
    "Endpointing",
    "Utterance",
    "UtteranceListener",
    "endpoint_step",
    "find_utterances",
]

VOICE_ACTIVITY_DETECTORS: tuple[str, ...] = ("webrtc", "energy")
"""Names of the frame classifiers :class:`Endpointing` offers (module docstring); the first is the default.

Measured on the tuning voices of ``python -m benchmarks.speech --compare default default-energy`` (espeak-ng,
−61 dBFS room floor, 80 labels per way, PocketSphinx): after 500 ms of room both give 67 labels right; on
files whose word starts at the first sample WebRTC's 68, the energy detector's 11 (its floor is measured
on the word; only a 250-ms preroll hid this, at the cost of more room noise in each utterance); on
espeak-ng's own files 68 and 18.
"""

_WEBRTC_FRAMES_MS = (10.0, 20.0, 30.0)


@dataclass(frozen=True, slots=True)
class Endpointing:
    """Options of the endpointer (all durations in ms, levels in dBFS, see the module docstring).

    Parameters
    ----------
    detector : {"webrtc", "energy"}
        Which voice-activity detector calls a frame speech (default ``"webrtc"``;
        :data:`VOICE_ACTIVITY_DETECTORS`).
    webrtc_mode : int
        Aggressiveness of the WebRTC detector, 0 (calls most frames speech) to 3 (fewest); default 2.
    frame_ms : float
        Analysis frame (default 10 ms; 10, 20 or 30 ms with the WebRTC detector).
    snr_db : float
        Energy detector: a frame is speech when its level is this far above the noise floor (default
        12 dB) ...
    min_level_dbfs : float
        ... and above this absolute level (default −50 dBFS; quiet rooms sit near −60); both detectors
        call quieter frames silence.
    calibration_ms : float
        Energy detector: start of each listening period used only to measure the noise floor (default
        150 ms; people need longer than that to name a face).
    floor_rise_db_s : float
        Energy detector: how fast the floor may rise, in dB per second (default 2), so it follows a
        louder room.
    min_speech_ms : float
        Consecutive speech needed to start an utterance (default 80 ms; shorter clicks are ignored).
    trailing_silence_ms : float
        Silence that ends an utterance (default 400 ms); also the longest block ``accept`` takes.
    preroll_ms : float
        Audio kept before the first speech frame, for weak onsets such as /f/, /h/, /s/ (default 50 ms;
        with 250 ms, more room noise before the word, PocketSphinx named 65 instead of 67 of the 80
        tuning labels through the app's path and took 29 instead of 19 of 120 other words for labels).
    max_utterance_ms : float
        An utterance is cut here (default 4000 ms).
    """

    detector: str = VOICE_ACTIVITY_DETECTORS[0]
    webrtc_mode: int = 2
    frame_ms: float = 10.0
    snr_db: float = 12.0
    min_level_dbfs: float = -50.0
    calibration_ms: float = 150.0
    floor_rise_db_s: float = 2.0
    min_speech_ms: float = 80.0
    trailing_silence_ms: float = 400.0
    preroll_ms: float = 50.0
    max_utterance_ms: float = 4000.0

    def __post_init__(self) -> None:
        if self.detector not in VOICE_ACTIVITY_DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(VOICE_ACTIVITY_DETECTORS)}; got {self.detector!r}."
            )
        if isinstance(self.webrtc_mode, bool) or self.webrtc_mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtc_mode must be 0, 1, 2 or 3; got {self.webrtc_mode!r}.")
        if self.detector == "webrtc" and self.frame_ms not in _WEBRTC_FRAMES_MS:
            raise ValueError(
                f"the webrtc detector takes frames of 10, 20 or 30 ms; got frame_ms={self.frame_ms!r}. "
                "Choose one of those, or detector='energy'."
            )
        for name in ("frame_ms", "min_speech_ms", "trailing_silence_ms", "max_utterance_ms"):
            check_positive(**{name: getattr(self, name)})
        for name in ("snr_db", "calibration_ms", "floor_rise_db_s", "preroll_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
        if not (math.isfinite(self.min_level_dbfs) and self.min_level_dbfs <= 0):
            raise ValueError(f"min_level_dbfs must be a finite level <= 0 dBFS; got {self.min_level_dbfs!r}.")
        if self.max_utterance_ms < self.min_speech_ms + self.trailing_silence_ms:
            raise ValueError(
                f"max_utterance_ms ({self.max_utterance_ms!r}) must be at least min_speech_ms + "
                f"trailing_silence_ms ({self.min_speech_ms + self.trailing_silence_ms!r})."
            )

    def n_frames(self, duration_ms: float) -> int:
        """Whole frames covering ``duration_ms`` (at least 1 for a positive duration)."""
        return max(math.ceil(duration_ms / self.frame_ms - 1e-9), 1 if duration_ms > 0 else 0)


class EndpointEvent(enum.Enum):
    """What one frame did to the utterance."""

    NONE = "none"
    START = "start"
    END = "end"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class EndpointState:
    """Where the endpointer stands after ``frame_index`` frames of a listening period.

    ``floor_dbfs`` is ``inf`` before the first frame; ``speech_run`` counts consecutive speech frames
    before an utterance starts, ``silence_run`` non-speech frames inside one, ``length`` its frames.
    """

    frame_index: int = 0
    floor_dbfs: float = math.inf
    in_utterance: bool = False
    speech_run: int = 0
    silence_run: int = 0
    length: int = 0


def endpoint_step(
    state: EndpointState, level_dbfs: float, *, endpointing: Endpointing, voiced: bool | None = None
) -> tuple[EndpointState, EndpointEvent]:
    """Advance the endpointer by one frame of level ``level_dbfs``; pure.

    ``voiced`` is a voice-activity detector's verdict on the frame: when given, the frame is speech when
    it is voiced and louder than ``min_level_dbfs``, with no calibration; when ``None``, the energy rule
    of the module docstring decides.

    Returns
    -------
    state : EndpointState
        The state after this frame.
    event : EndpointEvent
        ``START`` when this frame completes ``min_speech_ms`` of speech (the utterance began
        ``speech_run`` frames ago), ``END`` after ``trailing_silence_ms`` without speech,
        ``TRUNCATED`` at ``max_utterance_ms``, else ``NONE``.
    """
    e = endpointing
    calibrating = voiced is None and state.frame_index < e.n_frames(e.calibration_ms)
    rise = 0.0 if calibrating else e.floor_rise_db_s * e.frame_ms / 1000.0
    if voiced is None:
        speech = not calibrating and level_dbfs > max(state.floor_dbfs + e.snr_db, e.min_level_dbfs)
    else:
        speech = voiced and level_dbfs > e.min_level_dbfs
    floor = min(level_dbfs, state.floor_dbfs + rise)
    nxt = replace(state, frame_index=state.frame_index + 1, floor_dbfs=floor)
    if not state.in_utterance:
        run = state.speech_run + 1 if speech else 0
        if run >= e.n_frames(e.min_speech_ms):
            return replace(
                nxt, in_utterance=True, speech_run=run, silence_run=0, length=run
            ), EndpointEvent.START
        return replace(nxt, speech_run=run), EndpointEvent.NONE
    silence, length = (0 if speech else state.silence_run + 1), state.length + 1
    if silence >= e.n_frames(e.trailing_silence_ms):
        return replace(
            nxt, in_utterance=False, speech_run=0, silence_run=silence, length=length
        ), EndpointEvent.END
    if length >= e.n_frames(e.max_utterance_ms):
        ended = replace(nxt, in_utterance=False, speech_run=0, silence_run=silence, length=length)
        return ended, EndpointEvent.TRUNCATED
    return replace(nxt, silence_run=silence, length=length), EndpointEvent.NONE


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """One detected utterance.

    Parameters
    ----------
    pcm : ndarray of int16
        Its audio: preroll, speech and trailing silence.
    start_sample : int
        Index of ``pcm[0]`` in the listening period's stream.
    speech_start_sample, speech_end_sample : int
        First sample of the first speech frame and end (exclusive) of the last speech frame.
    truncated : bool
        Cut at ``max_utterance_ms`` (or by the end of listening) rather than ended by silence.
    """

    pcm: NDArray[np.int16]
    start_sample: int
    speech_start_sample: int
    speech_end_sample: int
    truncated: bool


class Endpointer:
    """Streaming endpointer over one listening period; see the module docstring.

    Parameters
    ----------
    sample_rate_hz : int
        Rate of the audio passed to :meth:`process`.
    endpointing : Endpointing
        Thresholds and durations.
    """

    def __init__(self, *, sample_rate_hz: int = 16000, endpointing: Endpointing | None = None) -> None:
        self.endpointing = endpointing if endpointing is not None else Endpointing()
        self.sample_rate_hz = int(check_positive(sample_rate_hz=sample_rate_hz))
        self.frame_len = max(round(self.endpointing.frame_ms * self.sample_rate_hz / 1000.0), 1)
        self._vad = _webrtc_vad(self.endpointing, self.sample_rate_hz, self.frame_len)
        self.reset()

    def reset(self) -> None:
        """Start a new listening period: forget audio, the noise floor and any open utterance."""
        e = self.endpointing
        self._state = EndpointState()
        self._pending = np.zeros(0, dtype=np.int16)
        self._history: deque[NDArray[np.int16]] = deque(
            maxlen=e.n_frames(e.preroll_ms) + e.n_frames(e.min_speech_ms)
        )
        self._frames: list[NDArray[np.int16]] = []
        self._start_frame = 0
        self._onset_frame = 0

    @property
    def in_utterance(self) -> bool:
        """True between an utterance's start and its end."""
        return self._state.in_utterance

    def process(self, pcm: NDArray[np.int16]) -> list[Utterance]:
        """Consume ``pcm`` (any length) and return the utterances that ended in it, in order."""
        samples = np.concatenate([self._pending, check_pcm16(pcm=pcm)])
        n_whole = samples.size // self.frame_len * self.frame_len
        self._pending = samples[n_whole:].copy()
        levels = frame_levels_dbfs(samples[:n_whole], frame_len=self.frame_len)
        ended = []
        for i, level in enumerate(levels):
            frame = samples[i * self.frame_len : (i + 1) * self.frame_len]
            voiced = None if self._vad is None else bool(self._vad.is_speech(frame.tobytes()))
            utterance = self._frame(frame, float(level), voiced)
            if utterance is not None:
                ended.append(utterance)
        return ended

    def flush(self) -> Utterance | None:
        """End the listening period: the open utterance (``truncated``), if any; drops a partial frame."""
        if not self._state.in_utterance:
            self.reset()
            return None
        utterance = self._cut(truncated=True)
        self.reset()
        return utterance

    def _frame(self, frame: NDArray[np.int16], level: float, voiced: bool | None) -> Utterance | None:
        index = self._state.frame_index
        self._history.append(frame)
        self._state, event = endpoint_step(self._state, level, endpointing=self.endpointing, voiced=voiced)
        if event is EndpointEvent.START:
            onset = index - self._state.speech_run + 1
            n_keep = min(
                len(self._history), index - onset + 1 + self.endpointing.n_frames(self.endpointing.preroll_ms)
            )
            self._frames = list(self._history)[-n_keep:]
            self._start_frame, self._onset_frame = index - n_keep + 1, onset
        elif self._state.in_utterance or event in (EndpointEvent.END, EndpointEvent.TRUNCATED):
            self._frames.append(frame)
        if event in (EndpointEvent.END, EndpointEvent.TRUNCATED):
            return self._cut(truncated=event is EndpointEvent.TRUNCATED)
        return None

    def _cut(self, *, truncated: bool) -> Utterance:
        n = self.frame_len
        end_frame = self._start_frame + len(self._frames)
        utterance = Utterance(
            pcm=np.concatenate(self._frames),
            start_sample=self._start_frame * n,
            speech_start_sample=self._onset_frame * n,
            speech_end_sample=(end_frame - self._state.silence_run) * n,
            truncated=truncated,
        )
        self._frames = []
        self._state = replace(self._state, silence_run=0, length=0)
        return utterance


def _webrtc_vad(endpointing: Endpointing, sample_rate_hz: int, frame_len: int) -> Any:
    """pocketsphinx's WebRTC detector for ``endpointing``, or ``None`` for the energy detector."""
    if endpointing.detector != "webrtc":
        return None
    try:
        from pocketsphinx import Vad
    except ImportError as err:
        raise RecogniserError(
            f"The webrtc voice-activity detector comes with pocketsphinx, which is not installed ({err}); "
            "install it with `pip install pocketsphinx`, or use Endpointing(detector='energy')."
        ) from err
    try:
        vad = Vad(endpointing.webrtc_mode, sample_rate_hz, endpointing.frame_ms / 1000.0)
    except ValueError as err:
        raise ValueError(
            f"The webrtc detector cannot take {sample_rate_hz} Hz audio ({err}); use 8000, 16000, 32000 or "
            "48000 Hz, or Endpointing(detector='energy')."
        ) from err
    if vad.frame_bytes != 2 * frame_len:
        raise ValueError(
            f"The webrtc detector wants {vad.frame_bytes // 2} samples per frame at {sample_rate_hz} Hz, not "
            f"{frame_len}; use 8000, 16000, 32000 or 48000 Hz, or Endpointing(detector='energy')."
        )
    return vad


def find_utterances(
    pcm: NDArray[np.int16], *, sample_rate_hz: int = 16000, endpointing: Endpointing | None = None
) -> list[Utterance]:
    """All utterances in a whole recording (one listening period), as :class:`Endpointer` finds them.

    An utterance still open at the end is returned ``truncated``.
    """
    endpointer = Endpointer(sample_rate_hz=sample_rate_hz, endpointing=endpointing)
    found = endpointer.process(pcm)
    last = endpointer.flush()
    return found if last is None else [*found, last]


Decode = Callable[[NDArray[np.int16]], Recognition]
"""Decodes one utterance's audio; times in the result are relative to its first sample."""


class UtteranceListener:
    """Endpointing plus decoding: the streaming half shared by the recognisers.

    Blocks go through an :class:`Endpointer`; each ended utterance is decoded with ``decode`` and its
    times shifted onto the listening period's clock (``t0_ms`` + offset of the utterance).

    Parameters
    ----------
    decode : callable
        ``decode(pcm) -> Recognition`` for one utterance, times relative to ``pcm[0]``.
    sample_rate_hz : int
        Rate of the blocks.
    endpointing : Endpointing, optional
        Endpointer options.
    """

    def __init__(
        self, decode: Decode, *, sample_rate_hz: int, endpointing: Endpointing | None = None
    ) -> None:
        self._decode = decode
        self._endpointer = Endpointer(sample_rate_hz=sample_rate_hz, endpointing=endpointing)
        self._t0_ms = 0.0
        self._listening = False

    @property
    def listening(self) -> bool:
        """True between :meth:`start` and :meth:`finish`."""
        return self._listening

    @property
    def max_block_ms(self) -> float:
        """Longest block :meth:`accept` takes: the trailing silence (one utterance ends per block at most)."""
        return self._endpointer.endpointing.trailing_silence_ms

    def start(self, *, t0_ms: float = 0.0) -> None:
        """Begin a listening period whose first sample is at ``t0_ms``; forgets any previous audio."""
        if not math.isfinite(t0_ms):
            raise ValueError(f"t0_ms must be finite; got {t0_ms!r}.")
        self._endpointer.reset()
        self._t0_ms = float(t0_ms)
        self._listening = True

    def accept(self, pcm: NDArray[np.int16]) -> Recognition | None:
        """Consume one block; the recognition of the utterance that ended in it, if one did.

        Raises
        ------
        ValueError
            For a block longer than :attr:`max_block_ms`.
        """
        samples = check_pcm16(pcm=pcm)
        if not self._listening:
            return None
        rate = self._endpointer.sample_rate_hz
        if samples.size > self.max_block_ms * rate / 1000.0:
            limit = int(self.max_block_ms * rate / 1000)
            raise ValueError(
                f"blocks may hold at most {self.max_block_ms:g} ms of audio ({limit} samples at {rate} Hz); "
                f"got {samples.size} samples. Split the audio into shorter blocks."
            )
        ended = self._endpointer.process(samples)
        return self._recognise(ended[0]) if ended else None

    def finish(self) -> Recognition | None:
        """Stop listening; the recognition of an utterance still in progress, if any."""
        if not self._listening:
            return None
        self._listening = False
        last = self._endpointer.flush()
        return None if last is None else self._recognise(last)

    def _recognise(self, utterance: Utterance) -> Recognition:
        found = self._decode(utterance.pcm)
        offset_ms = self._t0_ms + 1000.0 * utterance.start_sample / self._endpointer.sample_rate_hz
        return replace(found, start_ms=found.start_ms + offset_ms, end_ms=found.end_ms + offset_ms)
