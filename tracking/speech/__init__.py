"""Spoken labels: microphone capture, utterance endpointing and label recognition. No Qt here.

``RECOGNISERS`` maps the names the CLI and the GUI offer to recogniser classes (each satisfies
:class:`~tracking.speech.base.SpeechRecogniser`): ``"pocketsphinx"`` (default; its English model ships
with the package) and ``"vosk"`` (needs ``model_path``, the folder of an unpacked Vosk model);
:func:`~tracking.speech.recognisers.build_recogniser` builds the one the app uses, and
:func:`~tracking.speech.recognisers.recognise_file` recognises the labels in a WAV file. The GUI
offers :data:`~tracking.speech.base.KEYBOARD_ONLY` besides them: keys 1–8 label with or without a
recogniser. A missing microphone or model raises :class:`~tracking.speech.errors.MicrophoneError` /
:class:`~tracking.speech.errors.RecogniserError` with text to show; the keyboard still works.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
"""

from __future__ import annotations

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
from tracking.speech.endpointing import (
    VOICE_ACTIVITY_DETECTORS,
    Endpointer,
    Endpointing,
    Utterance,
    UtteranceListener,
    find_utterances,
)
from tracking.speech.errors import MicrophoneError, RecogniserError, SpeechError
from tracking.speech.microphone import InputDevice, Microphone, list_input_devices
from tracking.speech.recognisers import DEFAULT_RECOGNISER, RECOGNISERS, build_recogniser, recognise_file
from tracking.speech.sphinx import PocketsphinxRecogniser
from tracking.speech.vosk_recogniser import VoskRecogniser

__all__ = [
    "DEFAULT_RECOGNISER",
    "KEYBOARD_ONLY",
    "RECOGNISERS",
    "SYNONYMS",
    "VOICE_ACTIVITY_DETECTORS",
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
    "build_recogniser",
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
    "recognise_file",
    "resample_pcm16",
    "voiced_duration_ms",
    "wav_blocks",
]
