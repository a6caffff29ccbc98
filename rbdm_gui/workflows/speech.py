"""The GUI's one door to :mod:`tracking.speech`: recognisers, microphones and the level meter.

Everything speech-related the views need goes through here, so that the keyboard path works alone:
when a model or a microphone is missing, these functions say so in a sentence
(:class:`SpeechUnavailable`, or a notice string, the speech package's own text) and the session
runs with keys 1–8.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tracking.speech import (
    RECOGNISERS,
    Microphone,
    SpeechError,
    SpeechRecogniser,
    level_dbfs,
    list_input_devices,
)
from tracking.speech import build_recogniser as speech_recogniser

__all__ = [
    "BLOCK_MS",
    "SAMPLE_RATE_HZ",
    "AudioSource",
    "BlockCallback",
    "OpenAudio",
    "SpeechUnavailable",
    "build_recogniser",
    "keys_text",
    "microphone_names",
    "open_level_meter",
    "open_microphone",
    "recogniser_names",
]

#: Audio format handed to the recognisers: 16 kHz mono int16, 30 ms blocks (the microphone's default).
SAMPLE_RATE_HZ = 16_000
BLOCK_MS = 30.0

BlockCallback = Callable[[NDArray[np.int16]], None]

_KEYS = re.compile(r"\b(keys?) 1[–-]\d\b")


def keys_text(text: str, n_labels: int) -> str:
    """``text`` with "keys 1–8" (the lower layers' wording for the full label set) as "keys 1–n"."""
    last = max(1, n_labels)
    return _KEYS.sub(lambda m: f"{m.group(1)} 1–{last}" if last > 1 else f"{m.group(1)} 1", text)


class SpeechUnavailable(Exception):
    """Speech cannot be used; the message says why and that the keyboard still works."""


class AudioSource(Protocol):
    """A running audio input that hands blocks to a callback (a :class:`Microphone`); ``close`` ends it."""

    def close(self) -> None: ...


OpenAudio = Callable[[str, BlockCallback], AudioSource]
"""``open_audio(device, on_block)``: start an audio source (the microphone, or a file in tests)."""


def recogniser_names() -> list[str]:
    """The recognisers that can be chosen, pocketsphinx first."""
    return sorted(RECOGNISERS, key=lambda name: (name != "pocketsphinx", name))


def microphone_names() -> tuple[list[str], str]:
    """Names of the audio input devices, and a notice (the speech package's text) when there are none."""
    try:
        devices = list_input_devices()
    except SpeechError as err:
        return [], str(err)
    return [device.name for device in devices], ""


def build_recogniser(name: str, *, labels: Sequence[str], model_dir: str = "") -> SpeechRecogniser:
    """Create the recogniser ``name`` listening for the session's labels (and their synonyms) only.

    :func:`tracking.speech.build_recogniser` with its documented defaults; its errors become
    :class:`SpeechUnavailable`.

    Parameters
    ----------
    name : str
        A key of :data:`tracking.speech.RECOGNISERS`.
    labels : sequence of str
        The session's label set; words of other labels are not in the grammar.
    model_dir : str
        The Vosk model folder (``"vosk"`` only).

    Raises
    ------
    SpeechUnavailable
        When the recogniser or its model cannot be loaded (the message says why and what to do).
    """
    try:
        return speech_recogniser(name, labels=labels, model_dir=model_dir)
    except (SpeechError, ValueError, OSError) as err:
        raise SpeechUnavailable(str(err)) from err


def open_microphone(device: str, on_block: BlockCallback) -> AudioSource:
    """Start recording from ``device`` (a name; empty: the default input); blocks go to ``on_block``.

    ``on_block`` runs on PortAudio's thread: it must only queue the block or update a meter.

    Raises
    ------
    SpeechUnavailable
        When there is no input device or it cannot be opened (the speech package's text).
    """
    microphone = Microphone(
        device or None, sample_rate_hz=SAMPLE_RATE_HZ, block_ms=BLOCK_MS, on_block=on_block
    )
    try:
        microphone.start()
    except SpeechError as err:
        microphone.close()
        raise SpeechUnavailable(str(err)) from err
    return microphone


def open_level_meter(
    device: str, on_level: Callable[[float], None], *, open_audio: OpenAudio = open_microphone
) -> AudioSource:
    """Open ``device`` and pass the level of each block in dBFS to ``on_level`` (on the audio thread)."""
    return open_audio(device, lambda block: on_level(level_dbfs(block)))
