"""Building the recogniser the app uses, and recognising the spoken labels in a WAV file.

:func:`build_recogniser` is the one place where the CLI, the GUI, scripts and the benchmarks create a
recogniser: it restricts the vocabulary to the session's labels (and their synonyms) and passes the
documented options on. :func:`recognise_file` runs a recogniser over a whole recording through the same
streaming path the microphone takes (30-ms blocks), so a file and the app hear the same words; with the
default WebRTC voice-activity detector it needs no lead-in of room noise before the first word.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS
from tracking._validation import check_positive
from tracking.speech.audio import read_wav, resample_pcm16
from tracking.speech.base import SYNONYMS, Recognition, SpeechRecogniser, recognise_blocks
from tracking.speech.endpointing import Endpointing
from tracking.speech.errors import RecogniserError
from tracking.speech.sphinx import PocketsphinxRecogniser
from tracking.speech.vosk_recogniser import VoskRecogniser

__all__ = ["DEFAULT_RECOGNISER", "FILE_BLOCK_MS", "RECOGNISERS", "build_recogniser", "recognise_file"]

RECOGNISERS: dict[str, Callable[..., SpeechRecogniser]] = {
    "pocketsphinx": PocketsphinxRecogniser,
    "vosk": VoskRecogniser,
}
"""Recogniser name → class; ``"pocketsphinx"`` is the default, ``"vosk"`` takes ``model_path``."""

DEFAULT_RECOGNISER = "pocketsphinx"
"""The recogniser used when none is named: its English model ships with the pocketsphinx package."""

FILE_BLOCK_MS = 30.0
"""Block length :func:`recognise_file` streams a file in: the microphone's (the app's path)."""


def build_recogniser(
    name: str = DEFAULT_RECOGNISER,
    *,
    labels: Sequence[str] = LABELS,
    model_dir: str | Path = "",
    endpointing: Endpointing | None = None,
    options: Mapping[str, object] | None = None,
) -> SpeechRecogniser:
    """Create the recogniser ``name`` listening for ``labels`` (and their synonyms) only.

    Parameters
    ----------
    name : str
        A key of :data:`RECOGNISERS` (default ``"pocketsphinx"``).
    labels : sequence of str
        The session's label set (default all of :data:`analysis.labels.LABELS`); the words of other
        labels, and their synonyms, are left out of the vocabulary.
    model_dir : str or Path
        The folder of an unpacked Vosk model (``"vosk"`` only; e.g. vosk-model-small-en-us-0.15).
    endpointing : Endpointing, optional
        Voice-activity detector and utterance timing (default :class:`Endpointing`: WebRTC's detector,
        400 ms of silence ends an utterance).
    options : mapping, optional
        Further keyword arguments of the recogniser class, documented there: for pocketsphinx
        ``background_words``, ``background_weight``, ``word_weights``, ``min_confidence``,
        ``min_voiced_ms``, ``pronunciation_variants``; for vosk ``min_confidence``, ``min_voiced_ms``.

    Returns
    -------
    SpeechRecogniser

    Raises
    ------
    ValueError
        For an unknown label, or a label set that leaves no word.
    RecogniserError
        For an unknown recogniser, a vosk recogniser without a model folder, or a model that cannot be
        loaded (the message says what to do; keys 1–8 still label).
    """
    unknown = [label for label in labels if label not in LABELS]
    if unknown or not labels:
        raise ValueError(f"labels must be a non-empty subset of {', '.join(LABELS)}; got {list(labels)!r}.")
    if name not in RECOGNISERS:
        raise RecogniserError(
            f"Unknown speech recogniser {name!r}; choose one of {', '.join(RECOGNISERS)}, "
            "or label with keys 1–8."
        )
    chosen = set(labels)
    kwargs: dict[str, object] = {
        "synonyms": {word: label for word, label in SYNONYMS.items() if label in chosen},
        "endpointing": endpointing,
        **(options or {}),
    }
    if name == "vosk":
        if not str(model_dir):
            raise RecogniserError(
                "The vosk recogniser needs a model folder (e.g. vosk-model-small-en-us-0.15); "
                "choose one, pick pocketsphinx, or label with keys 1–8."
            )
        return RECOGNISERS[name](model_dir, **kwargs)
    return RECOGNISERS[name](**kwargs)


def recognise_file(
    path: str | Path, *, recogniser: SpeechRecogniser | None = None, t0_ms: float = 0.0
) -> list[Recognition]:
    """Every utterance in a WAV recording, recognised the way the app hears a microphone.

    The file (16-bit PCM, any rate, channels averaged) is resampled to the recogniser's rate and streamed
    in :data:`FILE_BLOCK_MS` blocks through ``start_utterance`` / ``accept`` / ``finish``: one listening
    period from the first sample to the last. With the default WebRTC voice-activity detector, a word may
    start at the very first sample; the energy detector (``Endpointing(detector="energy")``) needs about
    150 ms of room noise first.

    Parameters
    ----------
    path : str or Path
        The WAV file.
    recogniser : SpeechRecogniser, optional
        Default: a new :func:`build_recogniser` ``()`` (pocketsphinx, all labels). Pass one to recognise
        many files without reloading the model.
    t0_ms : float
        Time of the file's first sample; the recognitions' ``start_ms`` / ``end_ms`` count from it.

    Returns
    -------
    list of Recognition
        In order; an utterance that was not a label has ``label=None``. Empty when no speech was found.

    Raises
    ------
    FileNotFoundError, ValueError
        When ``path`` is not a readable 16-bit PCM WAV file.
    """
    pcm, rate_hz = read_wav(path)
    listener = build_recogniser() if recogniser is None else recogniser
    samples = resample_pcm16(pcm, from_rate_hz=rate_hz, to_rate_hz=listener.sample_rate_hz)
    return recognise_blocks(listener, _blocks(samples, listener.sample_rate_hz), t0_ms=t0_ms)


def _blocks(pcm: NDArray[np.int16], rate_hz: int) -> Iterator[NDArray[np.int16]]:
    n = max(round(check_positive(block_ms=FILE_BLOCK_MS) * rate_hz / 1000.0), 1)
    return (pcm[i : i + n] for i in range(0, pcm.size, n))
