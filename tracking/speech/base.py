"""Spoken labels: the recognition record, the recogniser Protocol, and the word → label matcher.

In RBDM's labelling protocol the annotator looks at a face, *speaks* its label into a microphone, then
presses a key for the next image, so that the gaze can stay on the stimulus. A recogniser listens only
while the stimulus is shown: the GUI calls :meth:`SpeechRecogniser.start_utterance` at stimulus onset,
passes microphone blocks to :meth:`~SpeechRecogniser.accept`, and calls
:meth:`~SpeechRecogniser.finish` when the stimulus goes. Each spoken utterance ends as one
:class:`Recognition`; one that is not clearly a label keeps ``label=None`` and is shown as
unrecognised, never turned into a label. Keys 1–8 label (or correct) without speech
(:func:`label_for_key`, :func:`key_recognition`).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a
   microphone during the eye-tracked labelling; the eight categories of the labelling scheme).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS

__all__ = [
    "KEYBOARD_ONLY",
    "SOURCES",
    "SYNONYMS",
    "Recognition",
    "SpeechRecogniser",
    "key_recognition",
    "label_for_key",
    "match_label",
    "recognise_blocks",
]

SOURCES: tuple[str, ...] = ("speech", "keyboard")
"""Where a :class:`Recognition` came from."""

KEYBOARD_ONLY = "keyboard"
"""The choice offered next to the recognisers: label with keys 1–8 only; no microphone, no recogniser.

Keyboard labelling needs no object: keys always work, with or without a recogniser (:func:`key_recognition`).
"""

SYNONYMS: Mapping[str, str] = MappingProxyType(
    {
        **{label: label for label in LABELS},
        "angry": "anger",
        "happiness": "happy",
        "sadness": "sad",
        "surprised": "surprise",
        "afraid": "fear",
        "scared": "fear",
        "disgusted": "disgust",
        "contemptuous": "contempt",
    }
)
"""Spoken word → label: each label itself plus the adjective/noun an annotator may say instead."""


@dataclass(frozen=True, slots=True)
class Recognition:
    """One utterance heard while a stimulus was shown, or one key press.

    Parameters
    ----------
    label : str or None
        One of :data:`analysis.labels.LABELS`; ``None`` when the utterance was not clearly a label
        (another word, several words, noise, or too little confidence) — show it as unrecognised.
    text : str
        What the recogniser heard (lower case words, ``""`` for nothing but noise); for a key press the key.
    confidence : float
        In [0, 1]; how sure the recogniser is of ``text`` (1 for a key press).
    start_ms, end_ms : float
        When the word (or, without word times, the detected speech) began and ended, in ms on the clock
        whose time the recogniser was given in ``start_utterance(t0_ms=...)`` (relative to the first
        sample when ``t0_ms`` is 0; :func:`tracking.clock.now_ms` when the GUI passes ``now_ms()``).
    source : {"speech", "keyboard"}
        Whether the label was spoken or typed.
    """

    label: str | None
    text: str
    confidence: float
    start_ms: float
    end_ms: float
    source: str = "speech"

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)} or None; got {self.label!r}.")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must lie in [0, 1]; got {self.confidence!r}.")
        if not (math.isfinite(self.start_ms) and math.isfinite(self.end_ms) and self.start_ms <= self.end_ms):
            raise ValueError(f"need finite start_ms <= end_ms; got {self.start_ms!r} and {self.end_ms!r}.")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES!r}; got {self.source!r}.")

    @property
    def recognised(self) -> bool:
        """True when the utterance was a label."""
        return self.label is not None

    @property
    def duration_ms(self) -> float:
        """``end_ms - start_ms``."""
        return self.end_ms - self.start_ms


@runtime_checkable
class SpeechRecogniser(Protocol):
    """What every spoken-label recogniser provides (structurally; no base class needed).

    ``accept`` takes mono int16 blocks at ``sample_rate_hz`` of at most
    ``max_block_ms`` (a microphone delivers 30 ms) and returns a :class:`Recognition` when an
    utterance has ended (endpointing by voice activity), else ``None``. Blocks passed while not
    listening (before ``start_utterance`` or after ``finish``) are ignored, so a microphone
    callback may keep running for the level meter. ``accept`` decodes on the calling thread
    (tens of ms per utterance): call it from a worker thread, not from PortAudio's callback.
    """

    @property
    def name(self) -> str: ...

    @property
    def sample_rate_hz(self) -> int: ...

    @property
    def max_block_ms(self) -> float: ...

    def start_utterance(self, *, t0_ms: float = 0.0) -> None: ...

    def accept(self, pcm: NDArray[np.int16]) -> Recognition | None: ...

    def finish(self) -> Recognition | None: ...


def match_label(text: str, *, synonyms: Mapping[str, str] = SYNONYMS) -> str | None:
    """The label that ``text`` names, or ``None`` unless it names exactly one and nothing else.

    Parameters
    ----------
    text : str
        Words as heard, separated by white space (case is ignored).
    synonyms : mapping of str to str
        Spoken word → label (default :data:`SYNONYMS`).

    Returns
    -------
    str or None
        The label when every word maps to that same label ("sad", "Sadness", "sad sad");
        ``None`` for an empty text, any word outside ``synonyms`` ("happy banana", "[unk]") or words of
        two different labels ("happy sad") — such an utterance is shown as unrecognised.
    """
    words = text.lower().split()
    labels = {synonyms.get(word) for word in words}
    if len(labels) != 1 or None in labels:
        return None
    return labels.pop()


def label_for_key(key: str) -> str:
    """The label that key ``"1"``…``"8"`` gives, in the order of :data:`analysis.labels.LABELS`.

    Raises
    ------
    ValueError
        For any other key; the message lists the keys.
    """
    keys = [str(i + 1) for i in range(len(LABELS))]
    if key not in keys:
        listed = ", ".join(f"{k}={label}" for k, label in zip(keys, LABELS, strict=True))
        raise ValueError(f"key must be one of 1–{len(LABELS)} ({listed}); got {key!r}.")
    return LABELS[int(key) - 1]


def key_recognition(key: str, *, t_ms: float) -> Recognition:
    """A :class:`Recognition` for a label typed with key ``"1"``…``"8"`` at ``t_ms``, with confidence 1."""
    return Recognition(label_for_key(key), key, 1.0, float(t_ms), float(t_ms), source="keyboard")


def recognise_blocks(
    recogniser: SpeechRecogniser, blocks: Iterable[NDArray[np.int16]], *, t0_ms: float = 0.0
) -> list[Recognition]:
    """Run ``recogniser`` over a whole stream of blocks (one listening period) and collect every utterance.

    Calls ``start_utterance(t0_ms=t0_ms)``, ``accept`` for each block, then ``finish``.
    """
    recogniser.start_utterance(t0_ms=t0_ms)
    results = [r for r in (recogniser.accept(block) for block in blocks) if r is not None]
    last = recogniser.finish()
    return results if last is None else [*results, last]
