"""Exceptions raised by :mod:`tracking.speech`; each message says what to do next, the GUI shows it as is."""

from __future__ import annotations

from tracking.errors import TrackingError

__all__ = ["MicrophoneError", "RecogniserError", "SpeechError"]


class SpeechError(TrackingError):
    """Base class for failures of spoken labelling (microphone, recogniser)."""


class RecogniserError(SpeechError):
    """A speech recogniser could not be created or run (missing package or model folder)."""


class MicrophoneError(SpeechError):
    """No audio input device, or the chosen one could not be opened; labelling by keys 1–8 still works."""
