"""Microphone capture with sounddevice (PortAudio): the list of input devices and a block-wise input stream.

The GUI lists :func:`list_input_devices` for the annotator to choose from, shows
:func:`~tracking.speech.audio.level_dbfs` of each block as a live level meter, and passes blocks to the
speech recogniser while a stimulus is shown. When there is no input device, or it cannot be opened,
:class:`~tracking.speech.errors.MicrophoneError` says so and labelling by keys 1–8 still works.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (annotators spoke each label
   into a microphone).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tracking._validation import check_positive
from tracking.speech.errors import MicrophoneError

__all__ = [
    "NO_INPUT_DEVICE_MESSAGE",
    "BlockCallback",
    "InputDevice",
    "Microphone",
    "input_devices_from_query",
    "list_input_devices",
]

_log = logging.getLogger(__name__)

NO_INPUT_DEVICE_MESSAGE = (
    "No audio input device found: sounddevice.query_devices() lists none. "
    "Connect a microphone, or label with keys 1–8."
)

BlockCallback = Callable[[NDArray[np.int16]], None]
"""Receives each block (mono int16) on PortAudio's thread: keep it short (queue the block, update a meter)."""


@dataclass(frozen=True, slots=True)
class InputDevice:
    """An audio input the annotator can choose.

    Parameters
    ----------
    index : int
        PortAudio device index (pass it as ``Microphone(device=index)``).
    name : str
        Device name as PortAudio reports it.
    host_api : str
        Audio system (ALSA, PulseAudio, WASAPI, Core Audio...).
    max_input_channels : int
        Input channels (≥ 1); the microphone records the first.
    default_sample_rate_hz : float
        The device's native rate.
    is_default : bool
        PortAudio's default input.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_sample_rate_hz: float
    is_default: bool


def input_devices_from_query(
    devices: Sequence[Mapping[str, Any]], *, host_api_names: Sequence[str], default_index: int | None
) -> tuple[InputDevice, ...]:
    """The input devices among the entries of ``sounddevice.query_devices()``; pure.

    Parameters
    ----------
    devices : sequence of mapping
        Entries with ``index``, ``name``, ``hostapi``, ``max_input_channels`` and ``default_samplerate``.
    host_api_names : sequence of str
        Names of ``sounddevice.query_hostapis()``, indexed by an entry's ``hostapi``.
    default_index : int or None
        Index of the default input device (``sounddevice.default.device[0]``; negative or None: none).

    Returns
    -------
    tuple of InputDevice
        Entries with at least one input channel, in PortAudio's order; empty when there are none.
    """
    found = []
    for entry in devices:
        if int(entry.get("max_input_channels", 0)) < 1:
            continue
        api = int(entry.get("hostapi", -1))
        index = int(entry["index"])
        found.append(
            InputDevice(
                index=index,
                name=str(entry["name"]),
                host_api=host_api_names[api] if 0 <= api < len(host_api_names) else "unknown",
                max_input_channels=int(entry["max_input_channels"]),
                default_sample_rate_hz=float(entry.get("default_samplerate", math.nan)),
                is_default=default_index is not None and index == default_index,
            )
        )
    return tuple(found)


def list_input_devices() -> tuple[InputDevice, ...]:
    """The audio input devices of this computer.

    Raises
    ------
    MicrophoneError
        When PortAudio is missing or lists no input device (:data:`NO_INPUT_DEVICE_MESSAGE`).
    """
    sd = _import_sounddevice()
    try:
        devices = list(sd.query_devices())
        host_apis = [str(api["name"]) for api in sd.query_hostapis()]
        default_input = int(sd.default.device[0])
    except sd.PortAudioError as err:
        raise MicrophoneError(
            f"PortAudio could not list audio devices ({err}). Label with keys 1–8."
        ) from err
    inputs = input_devices_from_query(devices, host_api_names=host_apis, default_index=default_input)
    if not inputs:
        raise MicrophoneError(NO_INPUT_DEVICE_MESSAGE)
    return inputs


class Microphone:
    """A mono 16-bit input stream that hands each block of ``block_ms`` to ``on_block``.

    Parameters
    ----------
    device : int, str or None
        PortAudio index or (part of) a name from :func:`list_input_devices`; None for the default input.
    sample_rate_hz : int
        Recording rate (default 16,000 Hz, the recognisers' rate; PortAudio/ALSA convert if needed).
    block_ms : float
        Block duration (default 30 ms).
    on_block : callable
        Receives each block, a new 1-D int16 array, on PortAudio's thread.
    on_error : callable, optional
        Receives a message when ``on_block`` raises; the stream keeps running (errors never escape
        PortAudio's thread). Without it the error is logged.

    Use as a context manager (``with Microphone(on_block=meter) as mic:``) to close it in any case.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate_hz: int = 16000,
        block_ms: float = 30.0,
        on_block: BlockCallback,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if not callable(on_block):
            raise TypeError(f"on_block must be callable; got {on_block!r}.")
        if isinstance(device, bool) or not (device is None or isinstance(device, (int, str))):
            raise TypeError(f"device must be an index, a name or None; got {device!r}.")
        self._device = device
        self._sample_rate_hz = int(check_positive(sample_rate_hz=sample_rate_hz))
        self._block_len = max(round(check_positive(block_ms=block_ms) * self._sample_rate_hz / 1000.0), 1)
        self._on_block = on_block
        self._on_error = on_error
        self._stream: Any = None
        self._lock = threading.Lock()
        self._n_overflows = 0
        self._device_name = "the default input" if device is None else repr(device)

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the delivered blocks."""
        return self._sample_rate_hz

    @property
    def block_len(self) -> int:
        """Samples per block."""
        return self._block_len

    @property
    def device_name(self) -> str:
        """Name of the opened device (known after :meth:`start`)."""
        return self._device_name

    @property
    def running(self) -> bool:
        """True while blocks are delivered."""
        return self._stream is not None and bool(self._stream.active)

    @property
    def n_overflows(self) -> int:
        """Blocks PortAudio reported as overflowed (audio lost because a callback was too slow)."""
        return self._n_overflows

    def start(self) -> None:
        """Open the device (first time) and start delivering blocks.

        Raises
        ------
        MicrophoneError
            When there is no input device or it cannot be opened; the message names the device and
            PortAudio's reason.
        """
        with self._lock:
            if self._stream is None:
                self._stream = self._open()
            if self._stream.active:
                return
            try:
                self._stream.start()
            except Exception as err:  # sounddevice.PortAudioError; its module may be unimportable here
                raise MicrophoneError(
                    f"Could not start recording from {self._device_name} ({err}). "
                    "Choose another input device, or label with keys 1–8."
                ) from err

    def stop(self) -> None:
        """Stop delivering blocks; :meth:`start` resumes. Does nothing when not started."""
        with self._lock:
            if self._stream is not None and self._stream.active:
                self._stream.stop()

    def close(self) -> None:
        """Stop and release the device; a closed microphone may be started again (it reopens)."""
        with self._lock:
            if self._stream is not None:
                stream, self._stream = self._stream, None
                stream.close()

    def __enter__(self) -> Microphone:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> Any:
        sd = _import_sounddevice()
        self._device_name = _device_name(sd, self._device)
        try:
            return sd.InputStream(
                device=self._device,
                samplerate=self._sample_rate_hz,
                channels=1,
                dtype="int16",
                blocksize=self._block_len,
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as err:
            raise MicrophoneError(
                f"Could not open {self._device_name} at {self._sample_rate_hz} Hz ({err}). "
                "Choose another input device, or label with keys 1–8."
            ) from err

    def _callback(self, indata: NDArray[np.int16], frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self._n_overflows += 1
        block = np.array(indata[:, 0], dtype=np.int16)
        try:
            self._on_block(block)
        except Exception as err:  # never let an exception escape PortAudio's thread
            message = f"the microphone's on_block callback failed: {type(err).__name__}: {err}"
            if self._on_error is not None:
                self._on_error(message)
            else:
                _log.error(message)


def _import_sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        raise MicrophoneError(
            f"Audio input is unavailable: {err}. Install PortAudio (e.g. `apt install libportaudio2`) and "
            "`pip install sounddevice`, or label with keys 1–8."
        ) from err
    return sounddevice


def _device_name(sd: Any, device: int | str | None) -> str:
    try:
        info = sd.query_devices(device, kind="input") if device is None else sd.query_devices(device)
    except (sd.PortAudioError, ValueError) as err:
        if device is None:
            raise MicrophoneError(NO_INPUT_DEVICE_MESSAGE) from err
        raise MicrophoneError(
            f"No audio input device {device!r} ({err}). Choose one of list_input_devices(), "
            "or label with keys 1–8."
        ) from err
    if int(info.get("max_input_channels", 0)) < 1:
        raise MicrophoneError(
            f"{info['name']!r} has no input channels (it is an output). Choose a microphone, "
            "or label with keys 1–8."
        )
    return repr(str(info["name"]))
