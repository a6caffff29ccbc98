"""Tests for tracking/drivers/lsl.py: chunk mapping (pure) and a real pylsl outlet in this process.

LSL discovery is kept on this machine by the LSL configuration set in conftest.py.
"""

from __future__ import annotations

import gc
import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tracking.clock import now_ms
from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState, ReconnectPolicy, SampleBuffer
from tracking.drivers.lsl import ChannelMap, LslDriver, chunk_to_samples, stream_predicate
from tracking.errors import DriverError

pylsl = pytest.importorskip("pylsl")


def test_stream_predicate() -> None:
    assert stream_predicate(stream_type="Gaze", stream_name=None, source_id=None) == "type='Gaze'"
    assert (
        stream_predicate(stream_type="Gaze", stream_name="Tobii", source_id="id1")
        == "type='Gaze' and name='Tobii' and source_id='id1'"
    )
    with pytest.raises(ValueError, match="quotes"):
        stream_predicate(stream_type="Gaze", stream_name="x' or '1'='1", source_id=None)
    with pytest.raises(ValueError, match="give"):
        stream_predicate(stream_type=None, stream_name=None, source_id=None)


def test_chunk_to_samples_applies_time_correction_and_channel_map() -> None:
    channels = ChannelMap(x_channel=2, y_channel=0, valid_channel=1, pupil_channel=3)
    chunk = [[20.0, 1.0, 10.0, 3.5], [21.0, 0.0, 11.0, math.nan], [math.nan, 1.0, 12.0, 4.0]]
    samples = chunk_to_samples(
        chunk, [1.0, 1.5, math.inf], channels=channels, time_correction_s=0.25, lsl_to_local_ms=100.0
    )
    assert len(samples) == 2  # the row with an infinite time stamp is dropped
    first, second = samples
    assert first.t_ms == pytest.approx(1350.0) and (first.x_screen_px, first.y_screen_px) == (10.0, 20.0)
    assert first.valid and first.pupil_size == 3.5
    assert second.t_ms == pytest.approx(1850.0) and not second.valid and second.pupil_size is None
    assert math.isnan(second.x_screen_px)


def test_chunk_to_samples_scales_normalised_coordinates() -> None:
    channels = ChannelMap(screen_size_px=(2560.0, 1440.0))
    (sample,) = chunk_to_samples(
        [[0.5, 0.25]], [0.0], channels=channels, time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert (sample.x_screen_px, sample.y_screen_px) == (1280.0, 360.0)
    (nan,) = chunk_to_samples(
        [[math.nan, 0.2]], [0.0], channels=channels, time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert not nan.valid


@pytest.mark.parametrize(
    "kwargs",
    [{"x_channel": -1}, {"y_channel": 1.0}, {"valid_channel": True}, {"screen_size_px": (0.0, 10.0)}],
)
def test_channel_map_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ChannelMap(**kwargs)


# -- a real outlet in this process ---------------------------------------------------------------


def _outlet(source_id: str, *, n_channels: int = 3, rate_hz: float = 100.0) -> Any:
    info = pylsl.StreamInfo("RbdmTestGaze", "Gaze", n_channels, rate_hz, pylsl.cf_float32, source_id)
    return pylsl.StreamOutlet(info)


@pytest.fixture
def source_id() -> str:
    return f"rbdm-test-{uuid.uuid4().hex}"


@pytest.fixture
def outlet(source_id: str) -> Iterator[Any]:
    out = _outlet(source_id)
    yield out
    del out
    gc.collect()


def _push(outlet: Any, rows: list[list[float]]) -> float:
    stamp = float(pylsl.local_clock())
    for i, row in enumerate(rows):
        outlet.push_sample(row, stamp + i * 0.01)
    return stamp


def test_streams_samples_from_a_real_outlet(
    outlet: Any, source_id: str, thread_failures: list[object]
) -> None:
    driver = LslDriver(source_id=source_id, channels=ChannelMap(valid_channel=2), resolve_timeout_s=5.0)
    driver.connect()
    assert driver.state is DriverState.CONNECTED
    assert driver.nominal_rate_hz == 100.0
    buffer = SampleBuffer()
    driver.start(buffer)
    before = now_ms()
    sent_at = _push(outlet, [[100.0 + i, 200.0, 1.0 if i != 2 else 0.0] for i in range(6)])
    assert buffer.wait_for(6, timeout_s=5.0)
    driver.stop()
    samples = buffer.snapshot()
    assert [s.valid for s in samples] == [True, True, False, True, True, True]
    assert [s.x_screen_px for s in samples if s.valid] == [100.0, 101.0, 103.0, 104.0, 105.0]
    times = np.array([s.t_ms for s in samples])
    np.testing.assert_allclose(np.diff(times), 10.0, atol=1e-3)  # the outlet's own spacing
    # Same machine: the corrected stamp of the first sample is its push time on the shared clock.
    assert abs(times[0] - before) < 1000.0
    assert abs(times[0] - (sent_at * 1000.0 + driver._lsl_to_local_ms)) < 5.0
    assert driver.state is DriverState.CONNECTED
    driver.close()
    assert driver.state is DriverState.CLOSED


def test_channel_map_must_fit_the_stream(outlet: Any, source_id: str) -> None:
    driver = LslDriver(source_id=source_id, channels=ChannelMap(pupil_channel=5), resolve_timeout_s=5.0)
    with pytest.raises(DriverError, match="has 3 channels"):
        driver.connect()


def test_missing_stream_gives_actionable_error() -> None:
    driver = LslDriver(stream_name=f"absent-{uuid.uuid4().hex}", resolve_timeout_s=0.2)
    with pytest.raises(
        DriverError, match=r"no LSL stream matching .* found within 0\.2 s\. Start the program"
    ):
        driver.connect()
    assert driver.state is DriverState.DISCONNECTED


@pytest.mark.slow
def test_lost_outlet_is_found_again_and_streaming_resumes(
    source_id: str, thread_failures: list[object]
) -> None:
    outlet = _outlet(source_id)
    fast = ReconnectPolicy(first_delay_ms=50.0, factor=1.0, max_delay_ms=50.0, max_attempts=40)
    driver = LslDriver(source_id=source_id, reconnect=fast, resolve_timeout_s=5.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    _push(outlet, [[1.0, 2.0, 0.0]] * 3)
    assert buffer.wait_for(3, timeout_s=5.0)
    del outlet
    gc.collect()
    deadline = now_ms() + 5000.0
    while driver.state is not DriverState.LOST and now_ms() < deadline:
        buffer.wait_for(10**9, timeout_s=0.01)
    assert driver.state is DriverState.LOST
    outlet = _outlet(source_id)
    while driver.state is not DriverState.STREAMING and now_ms() < deadline + 5000.0:
        buffer.wait_for(10**9, timeout_s=0.01)
    assert driver.state is DriverState.STREAMING
    n = len(buffer)
    for _ in range(50):  # the new inlet may still be opening: push until samples arrive
        _push(outlet, [[7.0, 8.0, 0.0]])
        if buffer.wait_for(n + 1, timeout_s=0.1):
            break
    assert buffer.snapshot()[-1].x_screen_px == 7.0
    kinds = [e.kind for e in events]
    assert DriverEventKind.CONNECTION_LOST in kinds and DriverEventKind.RECONNECTED in kinds
    driver.close()
    del outlet


def test_silent_stream_times_out_and_recovers_when_data_resumes(
    outlet: Any, source_id: str, thread_failures: list[object]
) -> None:
    driver = LslDriver(source_id=source_id, data_timeout_ms=150.0, resolve_timeout_s=5.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    _push(outlet, [[1.0, 2.0, 0.0]])
    assert buffer.wait_for(1, timeout_s=5.0)
    deadline = now_ms() + 5000.0
    while driver.state is not DriverState.LOST and now_ms() < deadline:
        buffer.wait_for(10**9, timeout_s=0.01)
    assert events[-1].kind is DriverEventKind.TIMEOUT
    _push(outlet, [[3.0, 4.0, 0.0]])
    assert buffer.wait_for(2, timeout_s=5.0)
    assert driver.state is DriverState.STREAMING
    assert events[-1].kind is DriverEventKind.RECONNECTED
    driver.close()


# -- zeros for lost samples, samples before start() (issue 16) -------------------------------------


def test_zero_samples_are_invalid_without_a_validity_channel() -> None:
    rows = [[0.0, 0.0], [640.0, 360.0], [0.0, 0.0], [0.0, 360.0]]
    samples = chunk_to_samples(
        rows, [0.0, 0.001, 0.002, 0.003], channels=ChannelMap(), time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert [s.valid for s in samples] == [False, True, False, True]  # (0, 360) is a real gaze point
    assert all(math.isnan(s.x_screen_px) for s in samples if not s.valid)


def test_zero_samples_follow_the_validity_channel_or_the_option() -> None:
    rows = [[0.0, 0.0, 1.0]]
    kept = chunk_to_samples(
        rows, [0.0], channels=ChannelMap(valid_channel=2), time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert kept[0].valid  # the stream says it is valid, and it has a say
    forced = ChannelMap(valid_channel=2, zero_is_invalid=True)
    assert not chunk_to_samples(rows, [0.0], channels=forced, time_correction_s=0.0, lsl_to_local_ms=0.0)[
        0
    ].valid
    off = ChannelMap(zero_is_invalid=False)
    assert chunk_to_samples(rows, [0.0], channels=off, time_correction_s=0.0, lsl_to_local_ms=0.0)[0].valid


def test_out_of_range_samples_are_invalid() -> None:
    channels = ChannelMap(screen_size_px=(2560.0, 1440.0))  # normalised: [0, 1] is the screen
    rows = [[0.5, 0.5], [1.5, 0.5], [0.5, -0.2], [-1.0, -1.0]]
    samples = chunk_to_samples(
        rows, [0.0, 1.0, 2.0, 3.0], channels=channels, time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert [s.valid for s in samples] == [True, False, False, False]
    bounded = ChannelMap(bounds_px=(1920.0, 1080.0))
    rows_px = [[1919.0, 1079.0], [1921.0, 10.0]]
    samples = chunk_to_samples(
        rows_px, [0.0, 1.0], channels=bounded, time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert [s.valid for s in samples] == [True, False]


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bounds"):
        ChannelMap(bounds_px=(0.0, 1080.0))


def test_samples_between_connect_and_start_are_kept(
    outlet: Any, source_id: str, thread_failures: list[object]
) -> None:
    driver = LslDriver(source_id=source_id, channels=ChannelMap(valid_channel=2), resolve_timeout_s=5.0)
    driver.connect()
    _push(outlet, [[100.0 + i, 200.0, 1.0] for i in range(4)])
    buffer = SampleBuffer()
    driver.start(buffer)
    _push(outlet, [[200.0, 200.0, 1.0]])
    assert buffer.wait_for(5, timeout_s=5.0)
    driver.close()
    assert [s.x_screen_px for s in buffer.snapshot()][:5] == [100.0, 101.0, 102.0, 103.0, 200.0]


def test_samples_before_start_are_flushed_only_when_asked(
    outlet: Any, source_id: str, thread_failures: list[object]
) -> None:
    driver = LslDriver(
        source_id=source_id,
        channels=ChannelMap(valid_channel=2),
        resolve_timeout_s=5.0,
        keep_before_start=False,
    )
    driver.connect()
    _push(outlet, [[100.0 + i, 200.0, 1.0] for i in range(4)])
    deadline = now_ms() + 1000.0
    while driver._inlet.samples_available() < 4 and now_ms() < deadline:
        SampleBuffer().wait_for(1, timeout_s=0.01)
    buffer = SampleBuffer()
    driver.start(buffer)
    _push(outlet, [[200.0, 200.0, 1.0]])
    assert buffer.wait_for(1, timeout_s=5.0)
    driver.close()
    assert [s.x_screen_px for s in buffer.snapshot()] == [200.0]


def test_samples_keep_the_sender_stamp_and_validity_value() -> None:
    channels = ChannelMap(valid_channel=2)
    first, second = chunk_to_samples(
        [[10.0, 20.0, 1.0], [11.0, 21.0, 0.0]],
        [2.5, 2.51],
        channels=channels,
        time_correction_s=0.1,
        lsl_to_local_ms=1000.0,
    )
    assert (first.device_t_ms, first.device_state) == (2500.0, 1)
    assert second.device_t_ms == pytest.approx(2510.0) and second.device_state == 0 and not second.valid
    assert first.t_ms == pytest.approx(3600.0)  # the shared clock, unlike the device stamp
    (plain,) = chunk_to_samples(
        [[10.0, 20.0]], [1.0], channels=ChannelMap(), time_correction_s=0.0, lsl_to_local_ms=0.0
    )
    assert plain.device_state is None and plain.device_t_ms == 1000.0


def test_zeros_from_a_real_outlet_without_a_validity_channel_are_invalid(
    outlet: Any, source_id: str, thread_failures: list[object]
) -> None:
    driver = LslDriver(source_id=source_id, resolve_timeout_s=5.0)  # channel 2 is not a validity channel
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    _push(outlet, [[100.0, 200.0, 0.0], [0.0, 0.0, 0.0], [101.0, 200.0, 0.0]])
    assert buffer.wait_for(3, timeout_s=5.0)
    driver.close()
    samples = buffer.snapshot()
    assert [s.valid for s in samples] == [True, False, True]
    assert all(s.device_t_ms is not None for s in samples)
