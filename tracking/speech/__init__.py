"""Spoken labels: microphone capture, utterance endpointing and label recognition. No Qt here.

``RECOGNISERS`` maps the names the CLI and the GUI offer to recogniser classes (each satisfies
:class:`~tracking.speech.base.SpeechRecogniser`): ``"pocketsphinx"`` (default; its English model ships
with the package) and ``"vosk"`` (needs ``model_path``, the folder of an unpacked Vosk model). The GUI
offers :data:`~tracking.speech.base.KEYBOARD_ONLY` besides them: keys 1–8 label with or without a
recogniser. A missing microphone or model raises :class:`~tracking.speech.errors.MicrophoneError` /
:class:`~tracking.speech.errors.RecogniserError` with text to show; the keyboard still works.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
"""

from __future__ import annotations

from collections.abc import Callable

from tracking.speech.audio import (
    check_pcm16,
    frame_levels_dbfs,
    level_dbfs,
    read_wav,
    resample_pcm16,
    voiced_duration_ms,
    wav_blocks,
)
from tracking.speech.base import (
    KEYBOARD_ONLY,
    SYNONYMS,
    Recognition,
    SpeechRecogniser,
    key_recognition,
    label_for_key,
    match_label,
    recognise_blocks,
)
from tracking.speech.endpointing import Endpointer, Endpointing, Utterance, UtteranceListener, find_utterances
from tracking.speech.errors import MicrophoneError, RecogniserError, SpeechError
from tracking.speech.microphone import InputDevice, Microphone, list_input_devices
from tracking.speech.sphinx import PocketsphinxRecogniser
from tracking.speech.vosk_recogniser import VoskRecogniser

__all__ = [
    "KEYBOARD_ONLY",
    "RECOGNISERS",
    "SYNONYMS",
    "Endpointer",
    "Endpointing",
    "InputDevice",
    "Microphone",
    "MicrophoneError",
    "PocketsphinxRecogniser",
    "RecogniserError",
    "Recognition",
    "SpeechError",
    "SpeechRecogniser",
    "Utterance",
    "UtteranceListener",
    "VoskRecogniser",
    "check_pcm16",
    "find_utterances",
    "frame_levels_dbfs",
    "key_recognition",
    "label_for_key",
    "level_dbfs",
    "list_input_devices",
    "match_label",
    "read_wav",
    "recognise_blocks",
    "resample_pcm16",
    "voiced_duration_ms",
    "wav_blocks",
]

RECOGNISERS: dict[str, Callable[..., SpeechRecogniser]] = {
    "pocketsphinx": PocketsphinxRecogniser,
    "vosk": VoskRecogniser,
}
"""Recogniser name → class; ``"pocketsphinx"`` is the default, ``"vosk"`` takes ``model_path``."""
