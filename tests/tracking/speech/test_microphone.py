"""Tests for tracking/speech/microphone.py.

This machine (like CI runners) has PortAudio but no sound device, so the clear-error paths run for
real; the tests that need "no input device" skip where one exists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import sounddevice as sd
from numpy.typing import NDArray

from tracking.speech.errors import MicrophoneError
from tracking.speech.microphone import (
    NO_INPUT_DEVICE_MESSAGE,
    InputDevice,
    Microphone,
    input_devices_from_query,
    list_input_devices,
)

HAS_INPUT = any(d["max_input_channels"] > 0 for d in sd.query_devices())
no_input_here = pytest.mark.skipif(HAS_INPUT, reason="this machine has an audio input device")


@pytest.fixture
def thread_failures() -> Iterator[list[threading.ExceptHookArgs]]:
    """Exceptions that escape any thread during the test; the test fails if there are any."""
    failures: list[threading.ExceptHookArgs] = []
    previous, threading.excepthook = threading.excepthook, failures.append
    try:
        yield failures
    finally:
        threading.excepthook = previous
    assert not failures, f"exceptions escaped threads: {[f.exc_value for f in failures]!r}"


DEVICES = [
    {
        "index": 0,
        "name": "HDA Intel: ALC892 Analog",
        "hostapi": 0,
        "max_input_channels": 2,
        "default_samplerate": 44100.0,
    },
    {"index": 1, "name": "HDMI 0", "hostapi": 0, "max_input_channels": 0, "default_samplerate": 48000.0},
    {"index": 2, "name": "USB Headset", "hostapi": 1, "max_input_channels": 1, "default_samplerate": 16000.0},
]


class TestDeviceList:
    def test_keeps_inputs_only(self) -> None:
        got = input_devices_from_query(DEVICES, host_api_names=["ALSA", "PulseAudio"], default_index=2)
        assert got == (
            InputDevice(0, "HDA Intel: ALC892 Analog", "ALSA", 2, 44100.0, is_default=False),
            InputDevice(2, "USB Headset", "PulseAudio", 1, 16000.0, is_default=True),
        )

    def test_no_default_and_unknown_host_api(self) -> None:
        (got,) = input_devices_from_query(DEVICES[2:], host_api_names=["ALSA"], default_index=-1)
        assert got.host_api == "unknown" and not got.is_default

    def test_none(self) -> None:
        assert input_devices_from_query(DEVICES[1:2], host_api_names=["ALSA"], default_index=None) == ()

    @no_input_here
    def test_no_input_device_is_a_clear_error(self) -> None:
        with pytest.raises(MicrophoneError) as info:
            list_input_devices()
        assert str(info.value) == NO_INPUT_DEVICE_MESSAGE
        assert "Connect a microphone, or label with keys 1–8." in NO_INPUT_DEVICE_MESSAGE


class TestOpening:
    @no_input_here
    def test_default_device_missing(self) -> None:
        with pytest.raises(MicrophoneError, match="No audio input device found"):
            Microphone(on_block=lambda block: None).start()

    @no_input_here
    @pytest.mark.parametrize("device", [7, "USB Headset"])
    def test_named_device_missing(self, device: int | str) -> None:
        mic = Microphone(device, on_block=lambda block: None)
        with pytest.raises(MicrophoneError, match=f"No audio input device {device!r}.*keys 1–8"):
            with mic:
                pass
        assert not mic.running

    def test_stopping_and_closing_an_unopened_microphone_do_nothing(self) -> None:
        mic = Microphone(on_block=lambda block: None)
        mic.stop()
        mic.close()
        assert not mic.running and mic.n_overflows == 0

    def test_block_length(self) -> None:
        assert Microphone(on_block=print, block_ms=30).block_len == 480
        assert Microphone(on_block=print, sample_rate_hz=48000, block_ms=20).block_len == 960

    @pytest.mark.parametrize(
        ("args", "kwargs", "error"),
        [
            ((), {"on_block": None}, TypeError),
            ((1.5,), {"on_block": print}, TypeError),
            ((), {"on_block": print, "block_ms": 0}, ValueError),
            ((), {"on_block": print, "sample_rate_hz": -1}, ValueError),
        ],
    )
    def test_validates_arguments(
        self, args: tuple[object, ...], kwargs: dict[str, object], error: type
    ) -> None:
        with pytest.raises(error):
            Microphone(*args, **kwargs)  # type: ignore[arg-type]


class TestCallback:
    """The callback PortAudio calls on its thread, fed real blocks (no device needed)."""

    @staticmethod
    def call(mic: Microphone, indata: NDArray[np.int16], *, overflow: bool = False) -> None:
        flags = sd.CallbackFlags()
        flags.input_overflow = overflow
        thread = threading.Thread(target=mic._callback, args=(indata, indata.shape[0], None, flags))
        thread.start()
        thread.join()

    def test_delivers_a_copy_of_the_first_channel(self) -> None:
        got: list[NDArray[np.int16]] = []
        mic = Microphone(on_block=got.append)
        indata = np.arange(960, dtype=np.int16).reshape(480, 2)
        self.call(mic, indata)
        indata[:] = 0  # PortAudio reuses its buffer
        assert len(got) == 1 and got[0].dtype == np.int16 and got[0].shape == (480,)
        np.testing.assert_array_equal(got[0], np.arange(0, 960, 2))

    def test_counts_overflows(self) -> None:
        mic = Microphone(on_block=lambda block: None)
        self.call(mic, np.zeros((480, 1), np.int16), overflow=True)
        self.call(mic, np.zeros((480, 1), np.int16))
        assert mic.n_overflows == 1

    def test_a_failing_consumer_never_escapes_the_audio_thread(
        self, thread_failures: list[threading.ExceptHookArgs]
    ) -> None:
        def broken(block: NDArray[np.int16]) -> None:
            raise RuntimeError("meter gone")

        errors: list[str] = []
        mic = Microphone(on_block=broken, on_error=errors.append)
        self.call(mic, np.zeros((480, 1), np.int16))
        assert errors == ["the microphone's on_block callback failed: RuntimeError: meter gone"]
