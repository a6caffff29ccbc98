"""Tests for tracking/drivers/mouse.py: the mouse simulator (the embedded default driver)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState, SampleBuffer, streaming
from tracking.drivers.mouse import MouseSimulator, simulated_sample
from tracking.errors import DriverError


@given(
    x=st.floats(-1e4, 1e4),
    y=st.floats(-1e4, 1e4),
    held=st.booleans(),
    t_ms=st.floats(0, 1e9),
)
def test_simulated_sample_without_noise_is_the_cursor(x: float, y: float, held: bool, t_ms: float) -> None:
    sample = simulated_sample(
        (x, y), t_ms=t_ms, button_held=held, noise_std_px=0.0, rng=np.random.default_rng(0)
    )
    assert sample.t_ms == t_ms
    if held:
        assert not sample.valid and math.isnan(sample.x_screen_px) and math.isnan(sample.y_screen_px)
    else:
        assert sample.valid and (sample.x_screen_px, sample.y_screen_px) == (x, y)


def test_simulated_sample_is_invalid_without_a_position() -> None:
    rng = np.random.default_rng(0)
    assert not simulated_sample(None, t_ms=1.0, button_held=False, noise_std_px=0.0, rng=rng).valid
    assert not simulated_sample((math.nan, 2.0), t_ms=1.0, button_held=False, noise_std_px=0.0, rng=rng).valid


def test_simulated_noise_is_gaussian_with_the_given_std(rng: np.random.Generator) -> None:
    samples = [
        simulated_sample((500.0, 300.0), t_ms=0.0, button_held=False, noise_std_px=8.0, rng=rng)
        for _ in range(4000)
    ]
    xy = np.array([(s.x_screen_px, s.y_screen_px) for s in samples])
    np.testing.assert_allclose(xy.mean(axis=0), (500.0, 300.0), atol=0.6)
    np.testing.assert_allclose(xy.std(axis=0), 8.0, rtol=0.05)


def test_simulated_noise_is_reproducible_with_a_seeded_rng() -> None:
    def draw(seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        return [
            simulated_sample((0.0, 0.0), t_ms=0.0, button_held=False, noise_std_px=2.0, rng=rng).x_screen_px
            for _ in range(5)
        ]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_simulator_streams_the_cursor_with_increasing_times(thread_failures: list[object]) -> None:
    driver = MouseSimulator(lambda: (640.0, 360.0), rate_hz=200.0)
    assert driver.nominal_rate_hz == 200.0
    driver.connect()
    buffer = SampleBuffer()
    with streaming(driver, buffer):
        assert driver.state is DriverState.STREAMING
        assert buffer.wait_for(10, timeout_s=5.0)
    assert driver.state is DriverState.CONNECTED
    samples = buffer.snapshot()
    assert all(s.valid and (s.x_screen_px, s.y_screen_px) == (640.0, 360.0) for s in samples)
    times = np.array([s.t_ms for s in samples])
    assert np.all(np.diff(times) > 0)
    n_after_stop = len(buffer)
    threading.Event().wait(0.05)
    assert len(buffer) == n_after_stop
    driver.close()
    assert driver.state is DriverState.CLOSED


def test_held_button_simulates_a_blink() -> None:
    held = threading.Event()
    driver = MouseSimulator(lambda: (10.0, 20.0), rate_hz=250.0, button_source=held.is_set)
    driver.connect()
    buffer = SampleBuffer()
    with streaming(driver, buffer):
        assert buffer.wait_for(3, timeout_s=5.0)
        held.set()
        buffer.drain()
        assert buffer.wait_for(3, timeout_s=5.0)
        blink = buffer.drain()[1:]  # the first may have been read before the button went down
        held.clear()
        buffer.drain()
        assert buffer.wait_for(3, timeout_s=5.0)
        after = buffer.drain()[1:]
    assert blink and not any(s.valid for s in blink)
    assert after and all(s.valid for s in after)
    driver.close()


def test_failing_position_source_becomes_an_event_and_invalid_samples(thread_failures: list[object]) -> None:
    def broken() -> tuple[float, float]:
        raise OSError("no display")

    driver = MouseSimulator(broken, rate_hz=250.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    with streaming(driver, buffer):
        assert buffer.wait_for(3, timeout_s=5.0)
    assert not any(s.valid for s in buffer.snapshot())
    assert DriverEventKind.SOURCE_FAILED in {e.kind for e in events}
    driver.close()


def test_failing_sample_callback_does_not_stop_the_simulator(thread_failures: list[object]) -> None:
    driver = MouseSimulator(lambda: (1.0, 2.0), rate_hz=250.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    calls: list[int] = []
    done = threading.Event()

    def picky(sample: object) -> None:
        calls.append(1)
        if len(calls) >= 5:
            done.set()
        raise ValueError("consumer bug")

    with streaming(driver, picky):
        assert done.wait(5.0)
    assert DriverEventKind.CALLBACK_FAILED in {e.kind for e in events}
    driver.close()


def test_state_errors_are_actionable() -> None:
    driver = MouseSimulator(lambda: (0.0, 0.0))
    with pytest.raises(DriverError, match="connect"):
        driver.start(SampleBuffer())
    driver.connect()
    driver.start(SampleBuffer())
    with pytest.raises(DriverError, match="stop"):
        driver.start(SampleBuffer())
    driver.stop()
    driver.stop()
    driver.close()
    driver.close()
    with pytest.raises(DriverError, match="closed"):
        driver.connect()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate_hz": 0.0}, ValueError),
        ({"rate_hz": math.inf}, ValueError),
        ({"noise_std_px": -1.0}, ValueError),
        ({"noise_std_px": math.nan}, ValueError),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, float], error: type[Exception]) -> None:
    with pytest.raises(error):
        MouseSimulator(lambda: (0.0, 0.0), **kwargs)  # type: ignore[arg-type]


def test_position_source_must_be_callable() -> None:
    with pytest.raises(TypeError, match="position_source"):
        MouseSimulator((0.0, 0.0))  # type: ignore[arg-type]


def test_module_does_not_import_qt() -> None:
    code = "import sys, tracking.drivers.mouse; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
