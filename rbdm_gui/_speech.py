"""The GUI's one door to :mod:`tracking.speech`: recognisers, microphones and the level meter.

Everything speech-related the views need goes through here, so that the keyboard path works alone:
when the speech package, a model or a microphone is missing, these functions say so in a sentence
(:class:`SpeechUnavailable`, or a notice string) and the session runs with keys 1–8.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "BLOCK_MS",
    "SAMPLE_RATE_HZ",
    "MicrophoneHandle",
    "SpeechUnavailable",
    "build_recogniser",
    "microphone_names",
    "open_level_meter",
    "open_microphone",
    "recogniser_names",
]

#: Audio format handed to the recognisers: 16 kHz mono, 50 ms blocks.
SAMPLE_RATE_HZ = 16_000
BLOCK_MS = 50


class SpeechUnavailable(Exception):
    """Speech cannot be used; the message says why and that the keyboard still works."""


class MicrophoneHandle(Protocol):
    """An open microphone: call :meth:`stop` to close it."""

    def stop(self) -> None: ...


def _speech_module() -> Any:
    try:
        import tracking.speech as speech
    except ImportError as err:
        raise SpeechUnavailable(f"Speech recognition is not available ({err}); label with keys 1–8.") from err
    return speech


def _microphone_module() -> Any:
    try:
        import tracking.speech.microphone as microphone
    except ImportError as err:
        raise SpeechUnavailable(f"No microphone support ({err}); label with keys 1–8.") from err
    return microphone


def recogniser_names() -> tuple[list[str], str]:
    """The recognisers that can be chosen, pocketsphinx first, and a notice when there are none."""
    try:
        names = list(_speech_module().RECOGNISERS)
    except SpeechUnavailable as err:
        return [], str(err)
    names.sort(key=lambda name: (name != "pocketsphinx", name))
    return names, ""


def microphone_names() -> tuple[list[str], str]:
    """Names of the input devices, and a notice when they cannot be listed."""
    try:
        module = _microphone_module()
        devices = module.list_input_devices()
    except SpeechUnavailable as err:
        return [], str(err)
    except Exception as err:  # PortAudio missing or failing: report, keep the keyboard path
        return [], f"No microphone found ({err}); label with keys 1–8."
    names = [str(getattr(device, "name", device)) for device in devices]
    return names, "" if names else "No microphone found; label with keys 1–8."


def build_recogniser(name: str, *, labels: Sequence[str], model_dir: str = "") -> Any:
    """Create the recogniser ``name`` with a grammar of the label words.

    Raises
    ------
    SpeechUnavailable
        When the speech package, the recogniser or its model cannot be loaded (the message says why).
    """
    speech = _speech_module()
    if name not in speech.RECOGNISERS:
        raise SpeechUnavailable(f"Unknown speech recogniser {name!r}; label with keys 1–8.")
    factory = speech.RECOGNISERS[name]
    offered: dict[str, Any] = {
        "labels": tuple(labels),
        "words": tuple(labels),
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "model_dir": Path(model_dir) if model_dir else None,
        "model_path": Path(model_dir) if model_dir else None,
    }
    parameters = inspect.signature(factory).parameters
    kwargs = {key: value for key, value in offered.items() if key in parameters and value is not None}
    try:
        return factory(**kwargs)
    except Exception as err:  # a missing model, a broken install: the session goes on by keyboard
        raise SpeechUnavailable(
            f"The {name} recogniser could not start ({err}); label with keys 1–8."
        ) from err


class _Microphone:
    def __init__(self, microphone: Any) -> None:
        self._microphone = microphone

    def stop(self) -> None:
        for method in ("stop", "close"):
            if hasattr(self._microphone, method):
                getattr(self._microphone, method)()


def open_microphone(device: str, on_block: Callable[[Any], None]) -> MicrophoneHandle:
    """Open ``device`` (empty: the default) and pass each audio block to ``on_block`` (audio thread).

    Raises
    ------
    SpeechUnavailable
        When no microphone can be opened.
    """
    module = _microphone_module()
    try:
        microphone = module.Microphone(device or None, SAMPLE_RATE_HZ, BLOCK_MS, on_block)
        if hasattr(microphone, "start"):
            microphone.start()
    except Exception as err:  # MicrophoneError and PortAudio failures
        raise SpeechUnavailable(f"The microphone could not be opened ({err}); label with keys 1–8.") from err
    return _Microphone(microphone)


def open_level_meter(device: str, on_level: Callable[[float], None]) -> MicrophoneHandle:
    """Open ``device`` and pass the level of each block in dBFS to ``on_level`` (audio thread)."""
    level_dbfs = _microphone_module().level_dbfs
    return open_microphone(device, lambda block: on_level(float(level_dbfs(block))))
