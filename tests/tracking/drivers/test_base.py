"""Tests for tracking/drivers/base.py: the Protocol, events, backoff, clock mapping, validation."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.geometry import ScreenGeometry
from tracking.clock import now_ms
from tracking.drivers import DRIVERS
from tracking.drivers.base import (
    CalibratingDriver,
    DeviceClockMapper,
    DriverEvent,
    DriverEventKind,
    DriverState,
    DriverStatus,
    GazeDriver,
    ReconnectPolicy,
    SampleBuffer,
    WorkerThread,
    streaming,
    validate,
    validation_point,
)
from tracking.drivers.eyetribe import EyeTribeDriver
from tracking.drivers.lsl import LslDriver
from tracking.drivers.mouse import MouseSimulator
from tracking.drivers.replay import ReplayDriver
from tracking.drivers.tobii import TobiiProDriver
from tracking.errors import DriverError
from tracking.records import GazeSample


def _instances() -> list[object]:
    return [
        MouseSimulator(lambda: (0.0, 0.0)),
        EyeTribeDriver(port=1),
        LslDriver(),
        TobiiProDriver(screen_size_px=(1920, 1080)),
        ReplayDriver([GazeSample(0.0, 1.0, 2.0)]),
    ]


def test_every_driver_satisfies_the_protocol() -> None:
    for driver in _instances():
        assert isinstance(driver, GazeDriver), type(driver).__name__
        assert driver.state is DriverState.DISCONNECTED


def test_devices_with_their_own_calibration_satisfy_calibrating_driver() -> None:
    calibrating = {type(d).__name__ for d in _instances() if isinstance(d, CalibratingDriver)}
    assert calibrating == {"EyeTribeDriver", "TobiiProDriver"}


def test_drivers_dict_names_each_driver_once() -> None:
    assert set(DRIVERS) == {"mouse", "eyetribe", "lsl", "tobii", "replay"}
    assert DRIVERS["mouse"] is MouseSimulator
    assert len(set(DRIVERS.values())) == len(DRIVERS)


# -- DriverStatus ------------------------------------------------------------------------------


def test_status_reports_state_changes_once() -> None:
    status = DriverStatus("test")
    events: list[DriverEvent] = []
    status.add_listener(events.append)
    status.set_state(DriverState.CONNECTED)
    status.set_state(DriverState.CONNECTED)
    status.set_state(DriverState.STREAMING, "now streaming")
    assert [e.kind for e in events] == [DriverEventKind.STATE_CHANGED] * 2
    assert [e.state for e in events] == [DriverState.CONNECTED, DriverState.STREAMING]
    assert events[1].message == "now streaming"
    assert all(e.driver == "test" for e in events)


def test_status_listener_removal() -> None:
    status = DriverStatus("test")
    events: list[DriverEvent] = []
    remove = status.add_listener(events.append)
    remove()
    remove()  # idempotent
    status.emit(DriverEventKind.DEVICE_NOTICE, "hello")
    assert events == []


def test_status_contains_a_failing_listener() -> None:
    status = DriverStatus("test")
    seen: list[DriverEvent] = []

    def broken(event: DriverEvent) -> None:
        raise RuntimeError("listener bug")

    status.add_listener(broken)
    status.add_listener(seen.append)
    status.emit(DriverEventKind.DEVICE_NOTICE, "still delivered")
    assert [e.message for e in seen] == ["still delivered"]


def test_status_throttles_and_counts_suppressed_events() -> None:
    status = DriverStatus("test")
    events: list[DriverEvent] = []
    status.add_listener(events.append)
    for _ in range(5):
        status.emit(DriverEventKind.MALFORMED_MESSAGE, "bad", throttle_ms=60_000.0)
    assert len(events) == 1
    status._last_emit_ms.clear()  # as if the interval had passed
    status.emit(DriverEventKind.MALFORMED_MESSAGE, "bad", throttle_ms=60_000.0)
    assert events[-1].message == "bad (4 similar events suppressed)"


def test_status_deliver_turns_callback_errors_into_events() -> None:
    status = DriverStatus("test")
    events: list[DriverEvent] = []
    status.add_listener(events.append)

    def broken(sample: GazeSample) -> None:
        raise ValueError("consumer bug")

    status.deliver(broken, GazeSample(1.0, 2.0, 3.0))
    status.deliver(None, GazeSample(1.0, 2.0, 3.0))
    assert [e.kind for e in events] == [DriverEventKind.CALLBACK_FAILED]
    assert "consumer bug" in events[0].message


def test_worker_thread_reports_a_crashing_body(thread_failures: list[object]) -> None:
    status = DriverStatus("test")
    status.set_state(DriverState.STREAMING)
    events: list[DriverEvent] = []
    status.add_listener(events.append)

    def body(stop: threading.Event) -> None:
        raise KeyError("bug")

    worker = WorkerThread("crashing", body, status)
    worker.start()
    worker.stop()
    assert not worker.alive
    assert status.state is DriverState.DISCONNECTED
    assert events[-1].kind is DriverEventKind.DRIVER_FAILED
    assert "Connect again" in events[-1].message


def test_worker_thread_stops_its_body() -> None:
    status = DriverStatus("test")
    started = threading.Event()

    def body(stop: threading.Event) -> None:
        started.set()
        stop.wait(30.0)

    worker = WorkerThread("waiting", body, status)
    worker.start()
    assert started.wait(5.0)
    worker.stop()
    assert not worker.alive


def test_driver_event_rejects_non_finite_time() -> None:
    with pytest.raises(ValueError, match="t_ms"):
        DriverEvent(DriverEventKind.TIMEOUT, "x", math.nan, DriverState.LOST, "test")


# -- ReconnectPolicy ---------------------------------------------------------------------------


def test_reconnect_delays_grow_and_are_capped() -> None:
    policy = ReconnectPolicy(first_delay_ms=100.0, factor=2.0, max_delay_ms=500.0, max_attempts=6)
    assert policy.delays_ms() == (100.0, 200.0, 400.0, 500.0, 500.0, 500.0)
    assert ReconnectPolicy(max_attempts=0).delays_ms() == ()


@given(
    first=st.floats(1.0, 1e4),
    factor=st.floats(1.0, 10.0),
    cap=st.floats(1.0, 1e5),
    n=st.integers(0, 30),
)
def test_reconnect_delays_are_bounded_and_non_decreasing(
    first: float, factor: float, cap: float, n: int
) -> None:
    delays = ReconnectPolicy(
        first_delay_ms=first, factor=factor, max_delay_ms=cap, max_attempts=n
    ).delays_ms()
    assert len(delays) == n
    assert all(0 < d <= cap for d in delays)
    assert all(b >= a for a, b in itertools.pairwise(delays))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_delay_ms": 0.0},
        {"factor": 0.5},
        {"max_delay_ms": -1.0},
        {"max_attempts": -1},
        {"factor": math.nan},
    ],
)
def test_reconnect_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]


def test_reconnect_policy_rejects_float_attempts() -> None:
    with pytest.raises(TypeError):
        ReconnectPolicy(max_attempts=2.0)  # type: ignore[arg-type]


# -- DeviceClockMapper -------------------------------------------------------------------------


@given(
    st.lists(st.floats(0.0, 50.0), min_size=1, max_size=50),
    st.floats(-1e12, 1e12),
    st.floats(0.0, 1e6),
)
def test_clock_mapper_keeps_device_spacing_after_the_fastest_sample(
    delays_ms: list[float], device_start_ms: float, local_start_ms: float
) -> None:
    """Reference: offset = min(arrival - device) so far; times held at the previous one if earlier."""
    mapper = DeviceClockMapper()
    device = [device_start_ms + 16.0 * i for i in range(len(delays_ms))]
    arrival = [local_start_ms + 16.0 * i + d for i, d in enumerate(delays_ms)]
    mapped = [mapper.to_local_ms(d, a) for d, a in zip(device, arrival, strict=True)]
    previous = -math.inf
    for i in range(len(device)):
        offset = min(a - d for d, a in zip(device[: i + 1], arrival[: i + 1], strict=True))
        expected = max(device[i] + offset, previous)
        assert mapped[i] == pytest.approx(expected, abs=1e-3)
        assert mapped[i] <= max(arrival[: i + 1]) + 1e-3
        previous = mapped[i]
    assert all(b >= a for a, b in itertools.pairwise(mapped))
    # Once a sample maps to device time + the final offset, the device's spacing is kept exactly.
    offset = min(a - d for d, a in zip(device, arrival, strict=True))
    exact = [i for i in range(len(device)) if mapped[i] == pytest.approx(device[i] + offset, abs=1e-3)]
    if exact:
        np.testing.assert_allclose(np.diff(mapped[exact[0] :]), 16.0, atol=1e-3)


def test_clock_mapper_reset_forgets_the_offset() -> None:
    mapper = DeviceClockMapper()
    assert mapper.to_local_ms(1000.0, 50.0) == 50.0
    assert mapper.to_local_ms(1016.0, 80.0) == 66.0  # arrived late: spacing kept
    assert mapper.to_local_ms(1032.0, 60.0) == 66.0  # faster than all before: held, not earlier
    assert mapper.to_local_ms(1048.0, 77.0) == 76.0  # the new offset (-972) applies from now on
    mapper.reset()
    assert mapper.to_local_ms(5000.0, 200.0) == 200.0


# -- SampleBuffer and streaming() ---------------------------------------------------------------


def test_sample_buffer_collects_drains_and_waits() -> None:
    buffer = SampleBuffer()
    assert not buffer.wait_for(1, timeout_s=0.01)

    def feed() -> None:
        for i in range(3):
            buffer(GazeSample(float(i), 0.0, 0.0))

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert buffer.wait_for(3, timeout_s=5.0)
    feeder.join()
    assert len(buffer) == 3
    assert [s.t_ms for s in buffer.snapshot()] == [0.0, 1.0, 2.0]
    assert len(buffer.drain()) == 3
    assert buffer.drain() == []


def test_streaming_stops_the_driver_on_error() -> None:
    driver = MouseSimulator(lambda: (10.0, 20.0), rate_hz=200.0)
    driver.connect()
    with pytest.raises(RuntimeError, match="inside"), streaming(driver, SampleBuffer()):
        assert driver.state is DriverState.STREAMING
        raise RuntimeError("inside")
    assert driver.state is DriverState.CONNECTED
    driver.close()


def test_streaming_needs_a_connected_driver() -> None:
    driver = MouseSimulator(lambda: (10.0, 20.0))
    with pytest.raises(DriverError, match="connect"), streaming(driver, SampleBuffer()):
        pass


# -- validation --------------------------------------------------------------------------------


GEOMETRY = ScreenGeometry()  # RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm


def _slow_angle_deg(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Visual angle between two screen points, from an eye in front of the screen centre."""
    cm = 1.0 / GEOMETRY.px_per_cm
    u = ((p[0] - 1280.0) * cm, (p[1] - 720.0) * cm, GEOMETRY.distance_cm)
    v = ((q[0] - 1280.0) * cm, (q[1] - 720.0) * cm, GEOMETRY.distance_cm)
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    norms = math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / norms))))


def _slow_validation(target: tuple[float, float], samples: list[GazeSample]) -> tuple[float, float]:
    valid = [(s.x_screen_px, s.y_screen_px) for s in samples if s.valid]
    accuracy = sum(_slow_angle_deg(target, p) for p in valid) / len(valid)
    steps = [_slow_angle_deg(a, b) ** 2 for a, b in itertools.pairwise(valid)]
    return accuracy, math.sqrt(sum(steps) / len(steps))


@given(
    st.lists(st.tuples(st.floats(0, 2560), st.floats(0, 1440), st.booleans()), max_size=30),
    st.tuples(st.floats(0, 2560), st.floats(0, 1440)),
)
def test_validation_point_matches_the_definition(
    points: list[tuple[float, float, bool]], target: tuple[float, float]
) -> None:
    samples = [
        GazeSample(float(i), x, y) if ok else GazeSample(float(i), math.nan, math.nan, valid=False)
        for i, (x, y, ok) in enumerate(points)
    ]
    if sum(ok for *_, ok in points) < 2:
        with pytest.raises(ValueError, match="at least 2 valid"):
            validation_point(target, samples, geometry=GEOMETRY)
        return
    result = validation_point(target, samples, geometry=GEOMETRY)
    accuracy, precision = _slow_validation(target, samples)
    assert (result.target_x_screen_px, result.target_y_screen_px) == target
    # acos loses precision for tiny angles; the implementation uses atan2, the reference acos.
    np.testing.assert_allclose(result.accuracy_deg, accuracy, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(result.precision_deg, precision, rtol=1e-6, atol=1e-5)


def test_one_visual_degree_at_the_centre() -> None:
    one_deg_px = GEOMETRY.distance_cm * math.tan(math.radians(1.0)) * GEOMETRY.px_per_cm
    centre = (1280.0, 720.0)
    samples = [GazeSample(float(i), 1280.0 + one_deg_px, 720.0) for i in range(3)]
    point = validation_point(centre, samples, geometry=GEOMETRY)
    assert point.accuracy_deg == pytest.approx(1.0)
    assert point.precision_deg == 0.0


def test_validate_measures_a_constant_offset_with_the_mouse_simulator() -> None:
    target = [(0.0, 0.0)]
    driver = MouseSimulator(lambda: (target[0][0] + 3.0, target[0][1] + 4.0), rate_hz=250.0)
    driver.connect()
    shown: list[tuple[float, float]] = []

    def present(x: float, y: float) -> None:
        shown.append((x, y))
        target[0] = (x, y)

    targets = [(100.0, 100.0), (1800.0, 900.0)]
    before = now_ms()
    result = validate(
        driver, targets, geometry=GEOMETRY, present_target=present, settle_ms=20.0, dwell_ms=60.0
    )
    assert shown == targets
    assert driver.state is DriverState.CONNECTED
    assert result.t_ms >= before
    assert [(p.target_x_screen_px, p.target_y_screen_px) for p in result.points] == targets
    for point, (x, y) in zip(result.points, targets, strict=True):
        assert point.accuracy_deg == pytest.approx(_slow_angle_deg((x, y), (x + 3.0, y + 4.0)), rel=1e-6)
        assert point.precision_deg == pytest.approx(0.0, abs=1e-9)
    driver.close()


def test_validate_without_gaze_is_a_driver_error() -> None:
    driver = MouseSimulator(lambda: None, rate_hz=250.0)
    driver.connect()
    with pytest.raises(DriverError, match=r"validation failed: .* at least 2 valid"):
        validate(driver, [(10.0, 10.0)], geometry=GEOMETRY, settle_ms=0.0, dwell_ms=30.0)
    assert driver.state is DriverState.CONNECTED
    driver.close()


def test_validate_rejects_bad_arguments() -> None:
    driver = MouseSimulator(lambda: (0.0, 0.0))
    with pytest.raises(ValueError, match="dwell_ms"):
        validate(driver, [(0.0, 0.0)], geometry=GEOMETRY, dwell_ms=0.0)
    with pytest.raises(ValueError, match="settle_ms"):
        validate(driver, [(0.0, 0.0)], geometry=GEOMETRY, settle_ms=-1.0)
    with pytest.raises(ValueError, match="at least one target"):
        validate(driver, [], geometry=GEOMETRY)
