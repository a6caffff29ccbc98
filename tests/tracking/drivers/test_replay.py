"""Tests for tracking/drivers/replay.py: the sample file format and playback."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState, SampleBuffer, streaming
from tracking.drivers.replay import SAMPLE_COLUMNS, ReplayDriver, read_samples, write_samples
from tracking.errors import DriverError
from tracking.records import GazeSample

_finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def _sample_lists(draw: st.DrawFn) -> list[GazeSample]:
    steps = draw(st.lists(st.floats(0.0, 100.0), max_size=40))
    t0 = draw(st.floats(-1e6, 1e9))
    samples = []
    for t in np.cumsum([t0, *steps]):
        if draw(st.booleans()):
            pupil = draw(st.none() | st.floats(0.0, 100.0))
            samples.append(GazeSample(float(t), draw(_finite), draw(_finite), True, pupil))
        else:
            samples.append(GazeSample(float(t), math.nan, math.nan, False, None))
    return samples


def _same(a: GazeSample, b: GazeSample) -> bool:
    def eq(u: float | None, v: float | None) -> bool:
        return u == v or (u is not None and v is not None and math.isnan(u) and math.isnan(v))

    return (
        a.t_ms == b.t_ms
        and a.valid == b.valid
        and eq(a.x_screen_px, b.x_screen_px)
        and eq(a.y_screen_px, b.y_screen_px)
        and eq(a.pupil_size, b.pupil_size)
    )


@given(_sample_lists())
def test_write_then_read_gives_the_same_samples(samples: list[GazeSample]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gaze.tsv"
        write_samples(path, samples)
        back = read_samples(path)
    assert len(back) == len(samples)
    assert all(_same(a, b) for a, b in zip(samples, back, strict=True))


def test_file_format_is_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "gaze.tsv"
    write_samples(path, [GazeSample(1.5, 10.0, 20.0, True, 3.0), GazeSample(2.0, math.nan, math.nan, False)])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# rbdm gaze samples v1")
    assert lines[1].split("\t") == list(SAMPLE_COLUMNS)
    assert lines[2].split("\t") == ["1.5", "10.0", "20.0", "1", "3.0"]
    assert lines[3].split("\t") == ["2.0", "nan", "nan", "0", ""]


def test_hand_written_file_without_comment_or_pupil_column_value(tmp_path: Path) -> None:
    path = tmp_path / "gaze.tsv"
    path.write_text(
        "t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n0\t1\t2\t1\n\n# note\n5\t3\t4\t1\t2.5\n"
    )
    samples = read_samples(path)
    assert [(s.t_ms, s.x_screen_px, s.pupil_size) for s in samples] == [(0.0, 1.0, None), (5.0, 3.0, 2.5)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no header"),
        ("t\tx\ty\n", "expected the header"),
        ("t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n1\t2\n", ":2: expected 5"),
        ("t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n1\t2\t3\tyes\t\n", "valid must be 0 or 1"),
        ("t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n1\tx\t3\t1\t\n", ":2:"),
        ("t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n1\tnan\t3\t1\t\n", "finite position"),
        ("t_ms\tx_screen_px\ty_screen_px\tvalid\tpupil_size\n5\t1\t1\t1\t\n4\t1\t1\t1\t\n", ":3: t_ms=4.0"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_samples(path)


def test_writer_refuses_unsorted_samples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="time order"):
        write_samples(tmp_path / "x.tsv", [GazeSample(2.0, 0.0, 0.0), GazeSample(1.0, 0.0, 0.0)])


def _recording(n: int = 30, period_ms: float = 5.0) -> list[GazeSample]:
    """Every 7th sample (from the 4th) is a blink."""
    return [
        GazeSample(1000.0 + i * period_ms, math.nan, math.nan, valid=False)
        if i % 7 == 3
        else GazeSample(1000.0 + i * period_ms, 10.0 * i, 5.0)
        for i in range(n)
    ]


@pytest.mark.parametrize("speed", [1.0, 20.0, math.inf])
def test_playback_keeps_spacing_on_the_shared_clock(tmp_path: Path, speed: float) -> None:
    recording = _recording()
    path = tmp_path / "gaze.tsv"
    write_samples(path, recording)
    driver = ReplayDriver(path, speed=speed)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    assert driver.nominal_rate_hz == pytest.approx(200.0)
    buffer = SampleBuffer()
    driver.start(buffer)
    assert driver.wait_finished(timeout_s=10.0)
    played = buffer.snapshot()
    assert len(played) == len(recording)
    shift = played[0].t_ms - recording[0].t_ms
    for original, moved in zip(recording, played, strict=True):
        assert moved.t_ms == pytest.approx(original.t_ms + shift)
        assert moved.valid == original.valid
        assert _same(GazeSample(original.t_ms + shift, *_rest(original)), moved)
    assert driver.state is DriverState.CONNECTED
    assert events[-1].kind is DriverEventKind.END_OF_DATA
    driver.close()


def _rest(s: GazeSample) -> tuple[float, float, bool, float | None]:
    return (s.x_screen_px, s.y_screen_px, s.valid, s.pupil_size)


def test_replay_from_memory_loops_until_stopped() -> None:
    recording = _recording(n=5, period_ms=1.0)
    driver = ReplayDriver(recording, speed=math.inf, loop=True)
    driver.connect()
    buffer = SampleBuffer()
    with streaming(driver, buffer):
        assert buffer.wait_for(3 * len(recording), timeout_s=5.0)
    played = buffer.snapshot()
    times = np.array([s.t_ms for s in played])
    assert np.all(np.diff(times) > 0)  # each loop continues after the previous one
    assert [s.x_screen_px for s in played[5:10] if s.valid] == [s.x_screen_px for s in recording if s.valid]
    assert not driver.wait_finished(timeout_s=0.0)
    driver.close()


def test_replay_can_be_started_again_after_the_end() -> None:
    driver = ReplayDriver(_recording(n=4), speed=math.inf)
    driver.connect()
    for _ in range(2):
        buffer = SampleBuffer()
        driver.start(buffer)
        assert driver.wait_finished(timeout_s=5.0)
        assert len(buffer) == 4
    driver.stop()
    driver.close()


def test_stopping_mid_way_stops_delivery() -> None:
    driver = ReplayDriver(_recording(n=2000, period_ms=10.0), speed=1.0)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(2, timeout_s=5.0)
    driver.stop()
    n = len(buffer)
    assert n < 2000
    assert driver.state is DriverState.CONNECTED
    assert not driver.wait_finished(timeout_s=0.05)
    assert len(buffer) == n
    driver.close()


def test_connect_errors_are_actionable(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="not found"):
        ReplayDriver(tmp_path / "missing.tsv").connect()
    bad = tmp_path / "bad.tsv"
    bad.write_text("hello\n")
    with pytest.raises(DriverError, match="cannot replay"):
        ReplayDriver(bad).connect()
    empty = tmp_path / "empty.tsv"
    write_samples(empty, [])
    with pytest.raises(DriverError, match="no samples"):
        ReplayDriver(empty).connect()
    with pytest.raises(DriverError, match="time order"):
        ReplayDriver([GazeSample(2.0, 0.0, 0.0), GazeSample(1.0, 0.0, 0.0)]).connect()


def test_start_before_connect_is_refused() -> None:
    with pytest.raises(DriverError, match="connect"):
        ReplayDriver(_recording()).start(SampleBuffer())


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan, True])
def test_bad_speed_is_rejected(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplayDriver(_recording(), speed=speed)


def test_single_sample_recording_reports_the_fallback_rate() -> None:
    driver = ReplayDriver([GazeSample(0.0, 1.0, 1.0)], rate_hz=30.0)
    driver.connect()
    assert driver.nominal_rate_hz == 30.0
    driver.close()
