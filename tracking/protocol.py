"""The labeling protocol of RBDM §5.3.1 as a Qt-free state machine, and its timing statistics.

For each stimulus, in seeded random order: a blank screen (500 ms) → a central fixation cross
(200 ms) → a blank screen (500 ms) → the image, shown until the annotator has given a label (spoken,
or typed with the keys 1–8) and presses a key for the next one. A view drives
:class:`LabelingProtocol` frame by frame:

1. :meth:`LabelingProtocol.begin_frame` at each refresh tick, before painting: the timed phases end
   here once they have lasted their number of display frames; it returns the phase to paint;
2. :meth:`LabelingProtocol.frame_presented` right after the frame is on screen: the first frame
   of a phase stamps its onset on the shared clock (:func:`tracking.clock.now_ms`).

Durations are counted in display frames at the screen's refresh rate: a timed phase of ``N``
frames ends with the first frame presented ``N`` refresh periods (rounded) after its onset. When
every frame comes on time this is exactly counting ``N`` frames; a late frame (a *dropped frame*:
an interval longer than 1.5 refresh periods) still counts for the periods that passed, and a
timer that runs a little fast or slow does not add up errors, so a phase keeps its intended length
unless its very last frame is the late one. Where the platform reports no refresh rate, phases
are paced by time: they end at the frame nearest to their intended end.

The model tells its listeners about what happens through plain callbacks (:class:`Listeners`):
phase onsets, finished trials (with their display-frame statistics), label changes and notices
for the annotator. Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (images in random order,
   1200 × 1200 px in the centre; spoken labels; key press for the next image; blank 500 ms,
   cross 200 ms, blank 500 ms before each image, after Utz and Carbon, 2016).
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_count
from analysis.labels import LABELS, label_index
from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.records import LABEL_SOURCES, PhaseOnsets, Trial, TrialFrames

__all__ = [
    "DEFAULT_ORDER_DESIGN",
    "DROPPED_FRAME_FACTOR",
    "ORDER_DESIGNS",
    "TIMED_PHASES",
    "FinishedTrial",
    "FrameStatistics",
    "LabelChoice",
    "LabelingProtocol",
    "Listeners",
    "Phase",
    "PhaseOnset",
    "PhaseTiming",
    "ProtocolTiming",
    "TimingReport",
    "counterbalanced_order",
    "frame_statistics",
    "frames_for",
    "phase_durations",
    "stimulus_order",
    "timing_report",
]

#: A frame interval longer than this many refresh periods counts as a dropped frame.
DROPPED_FRAME_FACTOR = 1.5

_T = TypeVar("_T")


class Phase(enum.Enum):
    """What the labeling screen shows: the four phases of a trial, or a state between trials."""

    IDLE = "idle"
    BLANK = "blank"
    CROSS = "cross"
    SECOND_BLANK = "second_blank"
    STIMULUS = "stimulus"
    PAUSED = "paused"
    FINISHED = "finished"


#: The phases of fixed length, in protocol order (RBDM §5.3.1).
TIMED_PHASES: tuple[Phase, ...] = (Phase.BLANK, Phase.CROSS, Phase.SECOND_BLANK)
_TRIAL_PHASES = (*TIMED_PHASES, Phase.STIMULUS)


@dataclass(frozen=True, slots=True)
class ProtocolTiming:
    """Intended lengths of the timed phases before each image.

    Parameters
    ----------
    blank_ms : float
        First blank screen (500 ms in RBDM §5.3.1).
    cross_ms : float
        Central fixation cross (200 ms).
    second_blank_ms : float
        Second blank screen (500 ms).

    Raises
    ------
    ValueError, TypeError
        For a duration that is not a finite number > 0.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    blank_ms: float = 500.0
    cross_ms: float = 200.0
    second_blank_ms: float = 500.0

    def __post_init__(self) -> None:
        check_positive(blank_ms=self.blank_ms)
        check_positive(cross_ms=self.cross_ms)
        check_positive(second_blank_ms=self.second_blank_ms)

    def duration_ms(self, phase: Phase) -> float:
        """Intended length of a timed phase (``BLANK``, ``CROSS`` or ``SECOND_BLANK``)."""
        durations = {Phase.BLANK: self.blank_ms, Phase.CROSS: self.cross_ms}
        durations[Phase.SECOND_BLANK] = self.second_blank_ms
        if phase not in durations:
            raise ValueError(f"only {[p.value for p in TIMED_PHASES]} have a fixed length; got {phase!r}.")
        return float(durations[phase])

    def as_dict(self) -> dict[str, float]:
        """The three durations by field name (for a session's settings)."""
        return {"blank_ms": self.blank_ms, "cross_ms": self.cross_ms, "second_blank_ms": self.second_blank_ms}


def stimulus_order(stimulus_ids: Sequence[str], *, seed: int) -> tuple[str, ...]:
    """The stimuli in seeded random order (RBDM §5.3.1: images displayed in random order).

    Parameters
    ----------
    stimulus_ids : sequence of str
        Distinct, non-empty ids.
    seed : int
        Seed (≥ 0) of the shuffle; the same ids and seed always give the same order.

    Returns
    -------
    tuple of str
        A permutation of ``stimulus_ids``.

    Raises
    ------
    ValueError, TypeError
        For no ids, an empty or repeated id, or a bad seed.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """
    if isinstance(stimulus_ids, str):
        raise TypeError("stimulus_ids must be a sequence of ids, not one string.")
    ids = list(stimulus_ids)
    if not ids or not all(isinstance(s, str) and s for s in ids):
        raise ValueError(f"stimulus_ids must be a non-empty list of non-empty strings; got {ids[:5]!r}.")
    if len(set(ids)) != len(ids):
        repeated = sorted({s for s in ids if ids.count(s) > 1})[:5]
        raise ValueError(f"stimulus ids must be distinct; {repeated!r} appear more than once.")
    rng = np.random.default_rng(check_count(seed=seed))
    return tuple(ids[int(k)] for k in rng.permutation(len(ids)))


def _participant_seed(seed: int, participant: str) -> int:
    """A seed of its own for each participant, stable across runs and machines (not Python's ``hash``)."""
    digest = hashlib.sha256(f"{seed}\x00{participant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _per_participant(ids: Sequence[str], *, seed: int, participant: str, index: int) -> tuple[str, ...]:
    return stimulus_order(ids, seed=_participant_seed(seed, participant))


def _same_for_all(ids: Sequence[str], *, seed: int, participant: str, index: int) -> tuple[str, ...]:
    return stimulus_order(ids, seed=seed)


def _latin_square(ids: Sequence[str], *, seed: int, participant: str, index: int) -> tuple[str, ...]:
    """Row ``index`` of a balanced Latin square (Williams design) over the seeded base order."""
    base = stimulus_order(ids, seed=seed)
    n = len(base)
    first = [0] + [(k + 1) // 2 if k % 2 == 0 else n - (k + 1) // 2 for k in range(1, n)]
    rows = n if n % 2 == 0 else 2 * n  # an odd square needs its mirror rows to balance carry-over
    row = index % rows
    sequence = [(j + row) % n for j in first]
    if row >= n:
        sequence.reverse()
    return tuple(base[j] for j in sequence)


#: Counterbalancing designs: how each participant's stimulus order is made (RBDM §5.3.1: random order).
#: ``per-participant``: a random order seeded by the study seed and the pseudonym; ``latin-square``: the
#: rows of a balanced Latin square, one per participant in the order they joined; ``same-for-all``: one
#: random order for everybody (order effects then confound comparisons between annotators).
ORDER_DESIGNS: dict[str, Callable[..., tuple[str, ...]]] = {
    "per-participant": _per_participant,
    "latin-square": _latin_square,
    "same-for-all": _same_for_all,
}
#: The design of a new study.
DEFAULT_ORDER_DESIGN = "per-participant"


def counterbalanced_order(
    stimulus_ids: Sequence[str],
    *,
    design: str = DEFAULT_ORDER_DESIGN,
    seed: int,
    participant: str,
    index: int = 0,
) -> tuple[str, ...]:
    """The stimulus order of one participant under a counterbalancing design (RBDM §5.3.1).

    The ids are sorted first, so the order depends only on which stimuli there are, the design,
    the seed and the participant, never on the order a dataset lists its files in.

    Parameters
    ----------
    stimulus_ids : sequence of str
        Distinct, non-empty ids.
    design : str
        A key of :data:`ORDER_DESIGNS`.
    seed : int
        The study's seed (≥ 0).
    participant : str
        The participant's pseudonym (``per-participant``).
    index : int
        The participant's number in the study, from 0 (``latin-square``: the row).

    Returns
    -------
    tuple of str
        A permutation of ``stimulus_ids``.

    Raises
    ------
    ValueError, TypeError
        For an unknown design, bad ids, a bad seed or index.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (images in random order).
    .. [2] Williams, E. J. (1949), Experimental designs balanced for the estimation of residual effects
       of treatments, Australian Journal of Scientific Research A 2(2), 149–168.
    """
    if design not in ORDER_DESIGNS:
        raise ValueError(f"design must be one of {list(ORDER_DESIGNS)!r}; got {design!r}.")
    if not isinstance(participant, str) or not participant:
        raise ValueError(f"participant must be a non-empty pseudonym; got {participant!r}.")
    if isinstance(stimulus_ids, str):
        raise TypeError("stimulus_ids must be a sequence of ids, not one string.")
    ids = sorted(stimulus_ids)
    return ORDER_DESIGNS[design](ids, seed=seed, participant=participant, index=check_count(index=index))


def frames_for(duration_ms: float, refresh_hz: float) -> int:
    """Whole display frames closest to ``duration_ms`` at ``refresh_hz`` (at least one).

    500 ms at 60 Hz is 30 frames, 200 ms is 12; at 144 Hz 500 ms is 72 frames (500.0 ms) and
    200 ms is 29 (201.4 ms). Halves round up.
    """
    check_positive(duration_ms=duration_ms)
    check_positive(refresh_hz=refresh_hz)
    return max(1, math.floor(duration_ms * refresh_hz / 1000.0 + 0.5))


class Listeners(Generic[_T]):
    """Plain callbacks for one kind of news; the model's answer to a Qt signal.

    ``subscribe(fn)`` returns a function that unsubscribes ``fn``; ``emit(value)`` calls every
    subscriber in subscription order, on the caller's thread.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[_T], None]] = []

    def subscribe(self, callback: Callable[[_T], None]) -> Callable[[], None]:
        """Call ``callback(value)`` on every :meth:`emit`; returns the unsubscriber."""
        if not callable(callback):
            raise TypeError(f"callback must be callable; got {callback!r}.")
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def emit(self, value: _T) -> None:
        """Pass ``value`` to each subscriber."""
        for callback in list(self._callbacks):
            callback(value)


@dataclass(frozen=True, slots=True)
class PhaseOnset:
    """A phase appeared on screen: the first frame showing it was presented at ``t_ms``."""

    phase: Phase
    position: int
    stimulus_id: str | None
    t_ms: float


@dataclass(frozen=True, slots=True)
class LabelChoice:
    """The label of the trial on screen, and what the speech recogniser last heard.

    Parameters
    ----------
    label : str or None
        The chosen label, None until one was given.
    source : str or None
        ``"speech"`` or ``"keyboard"``; None without a label.
    heard_text : str or None
        Text of the last utterance the recogniser reported (also when it was not a label).
    confidence : float or None
        The recogniser's confidence in a spoken label.
    unrecognised : bool
        The last utterance was not one of the label words; the label (if any) is unchanged.
    t_ms : float or None
        When the label was given.
    """

    label: str | None = None
    source: str | None = None
    heard_text: str | None = None
    confidence: float | None = None
    unrecognised: bool = False
    t_ms: float | None = None

    def describe(self) -> str:
        """Short text for the bottom edge of the screen (``""`` when there is nothing to show)."""
        parts = []
        if self.label is not None:
            how = "spoken" if self.source == "speech" else "key"
            parts.append(f"{self.label} ({how})")
        if self.unrecognised:
            parts.append(f"unrecognised: {self.heard_text or '…'}")
        return "   ·   ".join(parts)


@dataclass(frozen=True, slots=True)
class FinishedTrial:
    """A trial that ended with a key press: the record to store and its display-frame statistics."""

    trial: Trial
    frames: TrialFrames


@dataclass(frozen=True, slots=True)
class FrameStatistics:
    """Presented frames and their intervals.

    Parameters
    ----------
    n_intervals : int
        Intervals between consecutive presented frames.
    dropped_frames : int
        Intervals longer than :data:`DROPPED_FRAME_FACTOR` refresh periods.
    mean_interval_ms, max_interval_ms : float
        Mean and longest interval; NaN without intervals.
    """

    n_intervals: int
    dropped_frames: int
    mean_interval_ms: float
    max_interval_ms: float


def frame_statistics(frame_times_ms: ArrayLike, *, refresh_hz: float) -> FrameStatistics:
    """Count dropped frames: intervals between presented frames longer than 1.5 refresh periods.

    Parameters
    ----------
    frame_times_ms : array_like, shape (N,)
        When each frame was presented, non-decreasing, on one clock.
    refresh_hz : float
        The display's refresh rate.

    Returns
    -------
    FrameStatistics
        Zero intervals (and NaN means) for fewer than two frames.

    Raises
    ------
    ValueError
        For times that are not 1-D, not finite or decrease, or a non-positive rate.
    """
    period_ms = 1000.0 / check_positive(refresh_hz=refresh_hz)
    times = np.asarray(frame_times_ms, dtype=np.float64)
    if times.ndim != 1 or not np.isfinite(times).all():
        raise ValueError(f"frame_times_ms must be a 1-D array of finite times; got shape {times.shape!r}.")
    intervals = np.diff(times)
    if (intervals < 0).any():
        raise ValueError("frame_times_ms must not decrease; take them from one monotonic clock.")
    if intervals.size == 0:
        return FrameStatistics(0, 0, math.nan, math.nan)
    dropped = int((intervals > DROPPED_FRAME_FACTOR * period_ms).sum())
    return FrameStatistics(int(intervals.size), dropped, float(intervals.mean()), float(intervals.max()))


@dataclass(slots=True)
class _TrialRun:
    """Mutable bookkeeping of the trial on screen."""

    position: int
    stimulus_id: str
    onsets: dict[Phase, float]
    frame_times_ms: list[float]
    choice: LabelChoice


class LabelingProtocol:
    """The labeling protocol as a state machine that a view drives frame by frame (RBDM §5.3.1).

    Parameters
    ----------
    stimulus_ids : sequence of str
        The session's stimulus order; trial ``position`` indexes it.
    start_position : int, optional
        First position to show: the store's ``resume_point`` when a session is resumed.
    timing : ProtocolTiming, optional
        Lengths of the blank, cross and second blank phases.
    refresh_hz : float, optional
        The display's refresh rate (or the pacing rate when ``frame_counted`` is False).
    frame_counted : bool, optional
        True when ``refresh_hz`` is the screen's own rate and phases are counted in its frames;
        False to pace phases by time (they end at the frame nearest their intended end).
    labels : sequence of str, optional
        The label set, a subset of :data:`analysis.labels.LABELS` in that order; keys 1–n choose them.
    clock : callable, optional
        The time source for label times; :func:`tracking.clock.now_ms` by default.

    Notes
    -----
    Listeners (all called on the thread that drives the model):

    ``phase_started`` (:class:`PhaseOnset`)
        The first frame of a phase (also ``PAUSED`` and ``FINISHED``) was presented.
    ``trial_finished`` (:class:`FinishedTrial`)
        A labelled trial ended; its stimulus offset is the first frame after the image.
    ``label_changed`` (:class:`LabelChoice`), ``notice`` (str)
        What to show at the bottom edge of the screen.
    ``finished`` (int)
        Every stimulus has a trial; the value is the number of stimuli.

    Pausing (:meth:`pause`) abandons the trial on screen, which is shown again from its first
    blank screen after :meth:`resume`; finished trials are never lost.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    def __init__(
        self,
        stimulus_ids: Sequence[str],
        *,
        start_position: int = 0,
        timing: ProtocolTiming | None = None,
        refresh_hz: float = 60.0,
        frame_counted: bool = True,
        labels: Sequence[str] = LABELS,
        clock: Callable[[], float] = now_ms,
    ) -> None:
        if isinstance(stimulus_ids, str):
            raise TypeError("stimulus_ids must be a sequence of ids, not one string.")
        self._ids = tuple(stimulus_ids)
        if not self._ids or not all(isinstance(s, str) and s for s in self._ids):
            raise ValueError(
                f"stimulus_ids must be a non-empty list of non-empty ids; got {self._ids[:5]!r}."
            )
        self._position = check_count(start_position=start_position)
        if self._position > len(self._ids):
            raise ValueError(f"start_position must be <= {len(self._ids)}; got {start_position!r}.")
        self._timing = timing if timing is not None else ProtocolTiming()
        if not isinstance(self._timing, ProtocolTiming):
            raise TypeError(f"timing must be a ProtocolTiming; got {type(timing).__name__}.")
        self._refresh_hz = check_positive(refresh_hz=refresh_hz)
        self._frame_counted = bool(frame_counted)
        self._labels = _check_label_set(labels)
        if not callable(clock):
            raise TypeError(f"clock must be callable; got {clock!r}.")
        self._clock = clock
        self._frames = {p: frames_for(self._timing.duration_ms(p), self._refresh_hz) for p in TIMED_PHASES}
        self._phase = Phase.IDLE
        self._onset_ms: float | None = None
        self._last_frame_ms = -math.inf
        self._run: _TrialRun | None = None
        self._ending: _TrialRun | None = None
        self.phase_started: Listeners[PhaseOnset] = Listeners()
        self.trial_finished: Listeners[FinishedTrial] = Listeners()
        self.label_changed: Listeners[LabelChoice] = Listeners()
        self.notice: Listeners[str] = Listeners()
        self.finished: Listeners[int] = Listeners()

    # --- state ---------------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """The phase the next frame shows."""
        return self._phase

    @property
    def position(self) -> int:
        """Position of the trial on screen (the number of trials finished so far)."""
        return self._position

    @property
    def stimulus_id(self) -> str | None:
        """The stimulus of the trial on screen; None when none is (idle, paused, finished)."""
        return self._run.stimulus_id if self._run is not None else None

    @property
    def stimulus_ids(self) -> tuple[str, ...]:
        """The session's stimulus order."""
        return self._ids

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set; key ``k`` chooses ``labels[k - 1]``."""
        return self._labels

    @property
    def timing(self) -> ProtocolTiming:
        """The intended phase lengths."""
        return self._timing

    @property
    def refresh_hz(self) -> float:
        """The refresh rate phases are counted in."""
        return self._refresh_hz

    @property
    def frame_counted(self) -> bool:
        """Whether phases are counted in the screen's frames (else paced by time)."""
        return self._frame_counted

    def intended_frames(self, phase: Phase) -> int:
        """Length of a timed phase in frames at :attr:`refresh_hz`."""
        if phase not in self._frames:
            raise ValueError(f"only {[p.value for p in TIMED_PHASES]} have a fixed length; got {phase!r}.")
        return self._frames[phase]

    @property
    def choice(self) -> LabelChoice:
        """The label state of the trial on screen (empty between trials)."""
        return self._run.choice if self._run is not None else LabelChoice()

    # --- driving -------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin with the trial at ``start_position`` (or finish at once when none is left)."""
        if self._phase is not Phase.IDLE:
            raise RuntimeError(
                f"start() is only possible once, before the first frame; phase is {self._phase}."
            )
        self._begin_trial()

    def begin_frame(self, t_ms: float) -> Phase:
        """A frame is about to be painted at about ``t_ms``; returns the phase it shows.

        A timed phase ends here once it has lasted its frames (or its time, when not frame-counted).
        """
        if self._phase in TIMED_PHASES and self._onset_ms is not None and self._phase_over(t_ms):
            following = _TRIAL_PHASES[_TRIAL_PHASES.index(self._phase) + 1]
            self._enter(following)
        return self._phase

    def frame_presented(self, t_ms: float) -> None:
        """The frame showing :attr:`phase` was presented at ``t_ms``; stamps onsets and offsets.

        Raises
        ------
        ValueError
            For a time that is not finite or earlier than the previous frame.
        """
        if not math.isfinite(t_ms) or t_ms < self._last_frame_ms:
            raise ValueError(
                f"frame times must be finite and non-decreasing; got {t_ms!r} after {self._last_frame_ms!r}."
            )
        if self._ending is not None:
            self._finish_trial(self._ending, t_ms)
            self._ending = None
        first = self._onset_ms is None
        if first:
            self._onset_ms = t_ms
        self._last_frame_ms = t_ms
        if self._run is not None:
            self._run.frame_times_ms.append(t_ms)
        if first:
            self._announce(t_ms)

    def set_label(
        self,
        label: str | None,
        *,
        source: str,
        text: str | None = None,
        confidence: float | None = None,
    ) -> bool:
        """Give the trial on screen a label; returns whether it was taken.

        Labels are taken only while the image is shown. A spoken utterance that is not a label
        word (``label=None``) is kept as "unrecognised: <text>" and never becomes a label; a
        label given before stays.

        Parameters
        ----------
        label : str or None
            One of :attr:`labels`, or None for an utterance the recogniser could not map to one.
        source : {"speech", "keyboard"}
            Where the label came from.
        text : str, optional
            What the recogniser heard.
        confidence : float, optional
            The recogniser's confidence in [0, 1].

        Raises
        ------
        ValueError
            For an unknown source, a label outside the label set, or ``label=None`` from the keyboard.
        """
        if source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {LABEL_SOURCES!r}; got {source!r}.")
        if label is not None and label not in self._labels:
            raise ValueError(f"label {label!r} is not in this session's label set {self._labels!r}.")
        if label is None and source != "speech":
            raise ValueError("only speech can report an utterance without a label (label=None).")
        run = self._run
        if self._phase is not Phase.STIMULUS or run is None or Phase.STIMULUS not in run.onsets:
            self.notice.emit("Labels are taken while the image is shown.")
            return False
        heard = text.strip() if text and text.strip() else None
        if label is None:
            run.choice = _replace_choice(run.choice, heard_text=heard, unrecognised=True)
        elif source == "speech":
            run.choice = LabelChoice(label, source, heard, confidence, False, self._clock())
        else:
            run.choice = LabelChoice(label, source, run.choice.heard_text, None, False, self._clock())
        self.label_changed.emit(run.choice)
        return label is not None

    def key_label(self, key_number: int) -> bool:
        """Label with key ``key_number`` (1 = first label of the set); returns whether it was taken."""
        if isinstance(key_number, bool) or not isinstance(key_number, int):
            raise TypeError(f"key_number must be an int; got {key_number!r}.")
        if not 1 <= key_number <= len(self._labels):
            self.notice.emit(f"Keys 1–{len(self._labels)} choose a label.")
            return False
        return self.set_label(self._labels[key_number - 1], source="keyboard")

    def advance(self) -> bool:
        """Show the next stimulus (the key press of RBDM §5.3.1); only once the image has a label."""
        run = self._run
        if self._phase is not Phase.STIMULUS or run is None:
            return False
        if run.choice.label is None:
            self.notice.emit(f"Say a label, or press 1–{len(self._labels)}, before going on.")
            return False
        self._ending, self._run = run, None
        self._position += 1
        self._begin_trial()
        return True

    def pause(self) -> None:
        """Pause (Esc): the trial on screen is abandoned and shown again after :meth:`resume`."""
        if self._phase in (Phase.IDLE, Phase.PAUSED, Phase.FINISHED):
            return
        self._run = None
        self._enter(Phase.PAUSED)

    def resume(self) -> None:
        """Continue with the first stimulus that has no trial yet, from its first blank screen."""
        if self._phase is Phase.PAUSED:
            self._begin_trial()

    def close(self, t_ms: float | None = None) -> None:
        """End the session now (quit).

        A labelled trial still waiting for its offset frame ends at ``t_ms`` (the clock's time by
        default); the trial on screen is abandoned, as by :meth:`pause`.
        """
        t = self._clock() if t_ms is None else float(t_ms)
        if self._ending is not None:
            self._finish_trial(self._ending, max(t, self._last_frame_ms))
            self._ending = None
        self._run = None
        if self._phase is not Phase.FINISHED:
            self._enter(Phase.PAUSED)

    # --- internals -----------------------------------------------------------------------------

    def _begin_trial(self) -> None:
        if self._position >= len(self._ids):
            self._run = None
            self._enter(Phase.FINISHED)
            return
        self._run = _TrialRun(self._position, self._ids[self._position], {}, [], LabelChoice())
        self._enter(Phase.BLANK)

    def _enter(self, phase: Phase) -> None:
        self._phase, self._onset_ms = phase, None

    def _phase_over(self, t_ms: float) -> bool:
        """Whether a frame at ``t_ms`` comes after the phase's end (the nearest frame to it)."""
        assert self._onset_ms is not None
        period_ms = 1000.0 / self._refresh_hz
        if self._frame_counted:
            length_ms = self._frames[self._phase] * period_ms
        else:
            length_ms = self._timing.duration_ms(self._phase)
        return t_ms - self._onset_ms >= length_ms - period_ms / 2.0

    def _announce(self, t_ms: float) -> None:
        run = self._run
        if run is not None and self._phase in _TRIAL_PHASES:
            run.onsets[self._phase] = t_ms
        self.phase_started.emit(PhaseOnset(self._phase, self._position, self.stimulus_id, t_ms))
        if self._phase is Phase.STIMULUS:
            self.label_changed.emit(LabelChoice())
        elif self._phase is Phase.FINISHED:
            self.finished.emit(len(self._ids))

    def _finish_trial(self, run: _TrialRun, offset_ms: float) -> None:
        blank, cross, second_blank, stimulus = (run.onsets[p] for p in _TRIAL_PHASES)
        onsets = PhaseOnsets(blank, cross, second_blank, stimulus, offset_ms)
        choice = run.choice
        assert choice.label is not None and choice.source is not None and choice.t_ms is not None
        trial = Trial(
            position=run.position,
            stimulus_id=run.stimulus_id,
            phases=onsets,
            label=choice.label,
            label_source=choice.source,
            recognised_text=choice.heard_text,
            confidence=choice.confidence,
            response_time_ms=max(0.0, choice.t_ms - onsets.stimulus_onset_ms),
        )
        times = [*run.frame_times_ms, offset_ms]
        stats = frame_statistics(times, refresh_hz=self._refresh_hz)
        frames = TrialFrames(
            refresh_hz=self._refresh_hz,
            frame_counted=self._frame_counted,
            blank_frames=self._frames[Phase.BLANK],
            cross_frames=self._frames[Phase.CROSS],
            second_blank_frames=self._frames[Phase.SECOND_BLANK],
            n_frames=len(run.frame_times_ms),
            dropped_frames=stats.dropped_frames,
            max_frame_interval_ms=stats.max_interval_ms,
        )
        self.trial_finished.emit(FinishedTrial(trial, frames))


def _check_label_set(labels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of label names, not one string.")
    chosen = tuple(labels)
    for label in chosen:
        label_index(label)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"labels must be a non-empty set of distinct labels; got {chosen!r}.")
    if list(chosen) != sorted(chosen, key=label_index):
        raise ValueError(f"labels must keep the order of analysis.labels.LABELS {LABELS!r}; got {chosen!r}.")
    return chosen


def _replace_choice(choice: LabelChoice, *, heard_text: str | None, unrecognised: bool) -> LabelChoice:
    return LabelChoice(choice.label, choice.source, heard_text, choice.confidence, unrecognised, choice.t_ms)


# --- timing statistics -------------------------------------------------------------------------


def phase_durations(onsets: Sequence[PhaseOnsets]) -> NDArray[np.float64]:
    """Measured lengths of the blank, cross, second blank and stimulus phases, shape (N, 4), in ms.

    Each phase lasts from its onset to the next one; the stimulus until its offset.
    """
    table = np.array([p.as_tuple() for p in onsets], dtype=np.float64).reshape(len(onsets), 5)
    return np.diff(table, axis=1)


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    """Intended versus measured length of one phase over a session's trials.

    Parameters
    ----------
    phase : Phase
        ``BLANK``, ``CROSS``, ``SECOND_BLANK`` or ``STIMULUS``.
    intended_ms : float
        Intended length; NaN for the self-paced stimulus phase.
    intended_frames : int
        Intended length in frames; 0 for the stimulus phase.
    n_trials : int
        Trials measured.
    mean_ms, sd_ms, min_ms, max_ms : float
        Statistics of the measured lengths (sample SD; NaN where undefined).
    max_error_ms : float
        Largest ``|measured − intended|``; NaN for the stimulus phase.
    max_error_frames : float
        The same in refresh periods.
    ratio : float
        ``mean_ms / intended_ms``; NaN for the stimulus phase.
    """

    phase: Phase
    intended_ms: float
    intended_frames: int
    n_trials: int
    mean_ms: float
    sd_ms: float
    min_ms: float
    max_ms: float
    max_error_ms: float
    max_error_frames: float
    ratio: float


@dataclass(frozen=True, slots=True)
class TimingReport:
    """The session report's timing table: intended vs. measured phase lengths and dropped frames.

    Parameters
    ----------
    phases : tuple of PhaseTiming
        Blank, cross, second blank and stimulus, in protocol order.
    refresh_hz : float
        Refresh rate the phases were counted in.
    n_frames : int
        Frames presented during the trials (from the stored frame statistics).
    dropped_frames : int
        Dropped frames over all trials.
    trials_with_drops : int
        Trials with at least one dropped frame.
    """

    phases: tuple[PhaseTiming, ...]
    refresh_hz: float
    n_frames: int
    dropped_frames: int
    trials_with_drops: int

    def phase(self, phase: Phase) -> PhaseTiming:
        """The row of ``phase``."""
        for row in self.phases:
            if row.phase is phase:
                return row
        raise KeyError(phase)


def timing_report(
    trials: Sequence[Trial],
    *,
    timing: ProtocolTiming,
    refresh_hz: float,
    frames: Sequence[TrialFrames] = (),
) -> TimingReport:
    """Intended vs. measured phase lengths over stored trials, and their dropped frames (RBDM §5.3.1).

    Parameters
    ----------
    trials : sequence of Trial
        Finished trials (their stored phase onsets are measured).
    timing : ProtocolTiming
        The intended lengths.
    refresh_hz : float
        The refresh rate, for errors in frames and intended frame counts.
    frames : sequence of TrialFrames, optional
        The trials' frame statistics, for the frame and dropped-frame totals.

    Returns
    -------
    TimingReport
        With no trials, every statistic is NaN and the counts are 0.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """
    check_positive(refresh_hz=refresh_hz)
    durations = phase_durations([t.phases for t in trials])
    rows = []
    for k, phase in enumerate(_TRIAL_PHASES):
        intended = timing.duration_ms(phase) if phase in TIMED_PHASES else math.nan
        rows.append(_phase_timing(phase, durations[:, k], intended, refresh_hz))
    return TimingReport(
        phases=tuple(rows),
        refresh_hz=float(refresh_hz),
        n_frames=sum(f.n_frames for f in frames),
        dropped_frames=sum(f.dropped_frames for f in frames),
        trials_with_drops=sum(f.dropped_frames > 0 for f in frames),
    )


def _phase_timing(
    phase: Phase, measured: NDArray[np.float64], intended_ms: float, refresh_hz: float
) -> PhaseTiming:
    n = int(measured.size)
    nan = math.nan
    mean = float(measured.mean()) if n else nan
    sd = float(measured.std(ddof=1)) if n > 1 else nan
    low, high = (float(measured.min()), float(measured.max())) if n else (nan, nan)
    timed = math.isfinite(intended_ms)
    error = float(np.abs(measured - intended_ms).max()) if n and timed else nan
    return PhaseTiming(
        phase=phase,
        intended_ms=intended_ms,
        intended_frames=frames_for(intended_ms, refresh_hz) if timed else 0,
        n_trials=n,
        mean_ms=mean,
        sd_ms=sd,
        min_ms=low,
        max_ms=high,
        max_error_ms=error,
        max_error_frames=error * refresh_hz / 1000.0,
        ratio=mean / intended_ms if timed else nan,
    )
