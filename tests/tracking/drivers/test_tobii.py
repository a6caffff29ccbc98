"""Tests for tracking/drivers/tobii.py: TittaPy itself, the pure data mappings, and the driver.

TittaPy (the Tobii Pro SDK) is installed, but no tracker is: discovery, opening an address, the
system clock and the enums run on the real SDK. Where a tracker is needed (streams, calibration) a
test double stands in for ``TittaPy_v2.EyeTracker`` alone; it has the real class's method names and
parameters (checked below) and returns data shaped like TittaPy's ``consume_N`` and
``calibration_retrieve_result`` (field names, dtypes and the real enum values).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import itertools
import math
import queue
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.clock import now_ms
from tracking.drivers import tobii
from tracking.drivers.base import (
    CalibratingDriver,
    DriverEvent,
    DriverEventKind,
    DriverState,
    SampleBuffer,
)
from tracking.drivers.tobii import (
    TobiiProDriver,
    calibration_result_from_titta,
    gaze_samples_from_titta,
    import_tittapy,
    notifications_from_titta,
)
from tracking.errors import DriverError

SCREEN = (1920.0, 1080.0)
ROOT = Path(__file__).resolve().parents[3]
SDK_ERROR = "Tobii SDK code: 200: TOBII_RESEARCH_STATUS_SE_INTERNAL (Internal stream engine error)"


@pytest.fixture
def titta() -> ModuleType:
    """The real TittaPy build for current trackers (its enums, clock and API)."""
    return pytest.importorskip("TittaPy_v2")


# -- data shaped like TittaPy's -------------------------------------------------------------------

_EYE_FIELDS: dict[str, type] = {
    "gaze_point_on_display_area_x": np.float32,
    "gaze_point_on_display_area_y": np.float32,
    "gaze_point_in_user_coordinates_x": np.float32,
    "gaze_point_in_user_coordinates_y": np.float32,
    "gaze_point_in_user_coordinates_z": np.float32,
    "gaze_point_valid": np.bool_,
    "gaze_point_available": np.bool_,
    "pupil_diameter": np.float32,
    "pupil_valid": np.bool_,
    "pupil_available": np.bool_,
    "gaze_origin_in_user_coordinates_x": np.float32,
    "gaze_origin_in_user_coordinates_y": np.float32,
    "gaze_origin_in_user_coordinates_z": np.float32,
    "gaze_origin_in_track_box_coordinates_x": np.float32,
    "gaze_origin_in_track_box_coordinates_y": np.float32,
    "gaze_origin_in_track_box_coordinates_z": np.float32,
    "gaze_origin_valid": np.bool_,
    "gaze_origin_available": np.bool_,
    "eye_openness_diameter": np.float32,
    "eye_openness_valid": np.bool_,
    "eye_openness_available": np.bool_,
}
"""TittaPy's gaze fields per eye (prefixed ``left_``/``right_``) and their numpy dtypes."""


def titta_gaze(system_time_stamp: Sequence[int], **columns: Sequence[Any]) -> dict[str, Any]:
    """A ``consume_N("gaze")`` result: every TittaPy field, one entry per sample.

    Fields not given are what TittaPy reports for an eye it does not see: NaN values, flags False.
    """
    n = len(system_time_stamp)
    data: dict[str, Any] = {
        "device_time_stamp": np.arange(n, dtype=np.int64) * 1667,
        "system_time_stamp": np.asarray(system_time_stamp, dtype=np.int64),
    }
    for eye in ("left", "right"):
        for field, dtype in _EYE_FIELDS.items():
            key = f"{eye}_{field}"
            default = np.zeros(n, dtype) if dtype is np.bool_ else np.full(n, np.nan, dtype)
            data[key] = np.asarray(columns.pop(key), dtype=dtype) if key in columns else default
    assert not columns, f"not TittaPy gaze fields: {sorted(columns)}"
    return data


def both_eyes(stamps: Sequence[int], left: tuple[float, float], right: tuple[float, float]) -> dict[str, Any]:
    n = len(stamps)
    return titta_gaze(
        stamps,
        left_gaze_point_on_display_area_x=[left[0]] * n,
        left_gaze_point_on_display_area_y=[left[1]] * n,
        left_gaze_point_valid=[True] * n,
        right_gaze_point_on_display_area_x=[right[0]] * n,
        right_gaze_point_on_display_area_y=[right[1]] * n,
        right_gaze_point_valid=[True] * n,
        left_pupil_diameter=[3.0] * n,
        left_pupil_valid=[True] * n,
        right_pupil_diameter=[4.0] * n,
        right_pupil_valid=[True] * n,
    )


def titta_notifications(titta: ModuleType, *items: tuple[str, Any, Any]) -> dict[str, Any]:
    """A ``consume_N("notification")`` result from (type name, output_frequency, errors_or_warnings)."""
    return {
        "system_time_stamp": np.full(len(items), titta.get_system_timestamp(), dtype=np.int64),
        "notification_type": [getattr(titta.notification_type, name) for name, _, _ in items],
        "output_frequency": [rate for _, rate, _ in items],
        "display_area": [None] * len(items),
        "errors_or_warnings": [text for _, _, text in items],
    }


def calibration_point(
    titta: ModuleType, target: tuple[float, float], left: list[tuple[float, float, str]], right: list[Any]
) -> dict[str, Any]:
    """One point of TittaPy's calibration result; samples are (x, y, calibration_eye_validity name)."""
    point: dict[str, Any] = {"position_on_display_area_x": target[0], "position_on_display_area_y": target[1]}
    for eye, samples in (("left", left), ("right", right)):
        point[f"samples_{eye}_position_on_display_area_x"] = np.array([s[0] for s in samples], np.float32)
        point[f"samples_{eye}_position_on_display_area_y"] = np.array([s[1] for s in samples], np.float32)
        point[f"samples_{eye}_validity"] = [getattr(titta.calibration_eye_validity, s[2]) for s in samples]
    return point


# -- the real SDK -------------------------------------------------------------------------------


def test_tittapy_ships_both_sdk_builds() -> None:
    modules = import_tittapy()
    assert [m.__name__ for m in modules] == ["TittaPy_v2", "TittaPy_v1"]
    for module in modules:
        assert callable(module.find_all_eye_trackers) and callable(module.EyeTracker)


def test_connect_without_a_tracker_says_none_was_found(thread_failures: list[object]) -> None:
    driver = TobiiProDriver(screen_size_px=(1920, 1080))  # real discovery, both SDK builds
    with pytest.raises(DriverError, match=r"no Tobii Pro eye tracker found.*'mouse' driver"):
        driver.connect()
    assert driver.state is DriverState.DISCONNECTED
    driver.close()
    assert driver.state is DriverState.CLOSED


def test_connect_to_an_address_without_a_tracker_names_it() -> None:
    driver = TobiiProDriver(screen_size_px=(1920, 1080), address="tet-tcp://127.0.0.1")
    with pytest.raises(DriverError, match=r"could not open the Tobii Pro eye tracker") as caught:
        driver.connect()
    assert "tet-tcp://127.0.0.1" in str(caught.value) and "TittaPy_v1" in str(caught.value)
    assert driver.state is DriverState.DISCONNECTED


def test_connect_without_tittapy_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TittaPy_v2", "TittaPy_v1"):
        monkeypatch.setitem(sys.modules, name, None)  # import now fails as if not installed
    driver = TobiiProDriver(screen_size_px=(1920, 1080))
    with pytest.raises(ImportError, match=r"TittaPy.*pip install \.\[tobii\]"):
        driver.connect()
    assert driver.state is DriverState.DISCONNECTED


def test_module_imports_without_loading_tittapy() -> None:
    code = (
        "import sys, tracking.drivers.tobii; "
        "print([m for m in ('TittaPy_v1', 'TittaPy_v2', 'tobii_research') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_tobii_extra_and_the_lock_install_this_tittapy() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("TittaPy") for req in extras["tobii"])
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert f"TittaPy=={importlib.metadata.version('TittaPy')}" in lock


# -- gaze data -----------------------------------------------------------------------------------


def test_both_eyes_valid_gives_their_mean_in_screen_pixels() -> None:
    data = both_eyes([5_000_000, 5_001_667], (0.25, 0.5), (0.75, 0.5))
    samples = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=-1000.0)
    assert [s.t_ms for s in samples] == pytest.approx([4000.0, 4001.667])  # µs → ms, plus the offset
    assert all((s.x_screen_px, s.y_screen_px, s.valid) == (960.0, 540.0, True) for s in samples)
    assert [s.pupil_size for s in samples] == [3.5, 3.5]


def test_one_valid_eye_is_used_alone() -> None:
    data = both_eyes([1_000], (0.25, 0.5), (0.75, 0.5))
    data["right_gaze_point_valid"][:] = False
    data["right_pupil_valid"][:] = False
    (sample,) = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert (sample.x_screen_px, sample.y_screen_px, sample.valid) == (480.0, 540.0, True)
    assert sample.pupil_size == 3.0


def test_no_valid_eye_gives_an_invalid_sample_that_keeps_the_pupil() -> None:
    data = both_eyes([1_000], (0.25, 0.5), (0.75, 0.5))
    data["left_gaze_point_valid"][:] = False
    data["right_gaze_point_valid"][:] = False
    (sample,) = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert not sample.valid and math.isnan(sample.x_screen_px) and math.isnan(sample.y_screen_px)
    assert sample.pupil_size == 3.5  # pupils can be valid without a gaze point


def test_a_nan_point_flagged_valid_is_not_used() -> None:
    data = both_eyes([1_000], (0.25, 0.5), (0.75, 0.5))
    data["right_gaze_point_on_display_area_x"][:] = np.nan
    data["left_pupil_diameter"][:] = np.nan
    data["right_pupil_diameter"][:] = -1.0
    (sample,) = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert (sample.x_screen_px, sample.y_screen_px) == (480.0, 540.0)
    assert sample.pupil_size is None


def test_the_eye_tracker_that_sees_nothing_gives_invalid_samples() -> None:
    samples = gaze_samples_from_titta(titta_gaze([1, 2, 3]), screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert [(s.valid, s.pupil_size) for s in samples] == [(False, None)] * 3


def test_time_stamps_keep_their_microseconds_and_non_finite_ones_are_dropped() -> None:
    big = 8_718_344_749_123  # µs since boot: about 100 days
    samples = gaze_samples_from_titta(
        both_eyes([big, big + 833], (0.5, 0.5), (0.5, 0.5)), screen_size_px=SCREEN, system_to_local_ms=2.5
    )
    assert [s.t_ms for s in samples] == [big / 1000 + 2.5, (big + 833) / 1000 + 2.5]
    data = both_eyes([0, 0], (0.5, 0.5), (0.5, 0.5))
    data["system_time_stamp"] = np.array([1000.0, np.nan])  # not TittaPy's int64, but must not crash
    assert len(gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)) == 1


def test_no_samples_give_an_empty_list() -> None:
    assert gaze_samples_from_titta(titta_gaze([]), screen_size_px=SCREEN, system_to_local_ms=0.0) == []


def test_a_missing_field_is_named() -> None:
    data = both_eyes([1], (0.5, 0.5), (0.5, 0.5))
    del data["left_pupil_valid"]
    with pytest.raises(ValueError, match="left_pupil_valid"):
        gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)


def test_fields_of_unequal_length_are_rejected() -> None:
    data = both_eyes([1, 2], (0.5, 0.5), (0.5, 0.5))
    data["right_gaze_point_on_display_area_y"] = data["right_gaze_point_on_display_area_y"][:1]
    with pytest.raises(ValueError, match=r"right_gaze_point_on_display_area_y.*one value per sample"):
        gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)


def _reference_sample(data: dict[str, Any], i: int, offset_ms: float) -> tuple[float, float, float, Any]:
    """Row i the slow, obvious way: (t_ms, x_px, y_px, pupil) from plain Python floats."""
    points, pupils = [], []
    for eye in ("left", "right"):
        x = float(data[f"{eye}_gaze_point_on_display_area_x"][i])
        y = float(data[f"{eye}_gaze_point_on_display_area_y"][i])
        if data[f"{eye}_gaze_point_valid"][i] and math.isfinite(x) and math.isfinite(y):
            points.append((x * SCREEN[0], y * SCREEN[1]))
        size = float(data[f"{eye}_pupil_diameter"][i])
        if data[f"{eye}_pupil_valid"][i] and math.isfinite(size) and size > 0:
            pupils.append(size)
    t_ms = int(data["system_time_stamp"][i]) / 1000 + offset_ms
    if not points:
        return t_ms, math.nan, math.nan, sum(pupils) / len(pupils) if pupils else None
    x_px = sum(p[0] for p in points) / len(points)
    y_px = sum(p[1] for p in points) / len(points)
    return t_ms, x_px, y_px, sum(pupils) / len(pupils) if pupils else None


def test_matches_a_per_sample_reference(rng: np.random.Generator) -> None:
    n = 200
    columns: dict[str, Any] = {}
    for eye in ("left", "right"):
        for axis in ("x", "y"):
            values = rng.uniform(-0.1, 1.1, n)
            values[rng.random(n) < 0.1] = np.nan
            columns[f"{eye}_gaze_point_on_display_area_{axis}"] = values
        columns[f"{eye}_gaze_point_valid"] = rng.random(n) < 0.7
        pupils = rng.uniform(-1.0, 8.0, n)
        pupils[rng.random(n) < 0.1] = np.nan
        columns[f"{eye}_pupil_diameter"] = pupils
        columns[f"{eye}_pupil_valid"] = rng.random(n) < 0.8
    stamps = 10**9 + np.cumsum(rng.integers(800, 900, n))
    data = titta_gaze(stamps.tolist(), **columns)
    samples = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=-123.25)
    assert len(samples) == n
    for i, sample in enumerate(samples):
        t_ms, x_px, y_px, pupil = _reference_sample(data, i, -123.25)
        assert sample.t_ms == pytest.approx(t_ms, abs=1e-9)
        assert sample.valid is not math.isnan(x_px)
        assert (sample.x_screen_px, sample.y_screen_px) == pytest.approx((x_px, y_px), nan_ok=True)
        assert sample.pupil_size == pytest.approx(pupil)


_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(st.lists(st.tuples(_floats, _floats, st.booleans(), _floats, st.booleans()), max_size=8))
def test_arbitrary_values_give_one_well_formed_sample_each(rows: list[tuple[Any, ...]]) -> None:
    columns: dict[str, Any] = {}
    for eye in ("left", "right"):
        columns[f"{eye}_gaze_point_on_display_area_x"] = [r[0] for r in rows]
        columns[f"{eye}_gaze_point_on_display_area_y"] = [r[1] for r in rows]
        columns[f"{eye}_gaze_point_valid"] = [r[2] for r in rows]
        columns[f"{eye}_pupil_diameter"] = [r[3] for r in rows]
        columns[f"{eye}_pupil_valid"] = [r[4] for r in rows]
    data = titta_gaze(list(range(len(rows))), **columns)
    samples = gaze_samples_from_titta(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert len(samples) == len(rows)
    for sample in samples:
        finite = math.isfinite(sample.x_screen_px) and math.isfinite(sample.y_screen_px)
        assert sample.valid == finite
        assert sample.pupil_size is None or (math.isfinite(sample.pupil_size) and sample.pupil_size > 0)


# -- notifications and calibration results ------------------------------------------------------


def test_notifications_are_named_with_their_detail(titta: ModuleType) -> None:
    data = titta_notifications(
        titta,
        ("connection_lost", None, None),
        ("gaze_output_frequency_changed", 1200.0, None),
        ("device_warnings", None, "camera too warm"),
        ("connection_restored", None, None),
        ("calibration_changed", None, None),
    )
    assert notifications_from_titta(data) == [
        ("connection_lost", None),
        ("gaze_output_frequency_changed", 1200.0),
        ("device_warnings", "camera too warm"),
        ("connection_restored", None),
        ("calibration_changed", None),
    ]
    assert notifications_from_titta(titta_notifications(titta)) == []
    with pytest.raises(ValueError, match="notification_type"):
        notifications_from_titta({"system_time_stamp": np.zeros(0, np.int64)})


def test_calibration_result_is_mapped_to_screen_pixels(titta: ModuleType) -> None:
    good = calibration_point(
        titta,
        (0.5, 0.5),
        left=[(0.5 + 3 / 1920, 0.5, "valid_and_used"), (0.9, 0.9, "invalid_and_not_used")],
        right=[(0.5, 0.5 + 4 / 1080, "valid_and_used"), (0.5, 0.5, "valid_and_used")],
    )
    bad = calibration_point(
        titta, (0.1, 0.1), left=[(0.1, 0.1, "valid_but_not_used")], right=[(0.0, 0.0, "invalid_and_not_used")]
    )
    result = calibration_result_from_titta(
        {"points": [good, bad], "status": titta.calibration_status.success}, screen_size_px=SCREEN
    )
    assert result.succeeded and result.accuracy_deg is None
    first, second = result.points
    assert (first.x_screen_px, first.y_screen_px) == (960.0, 540.0)
    assert first.valid and first.mean_error_px == pytest.approx((3.0 + 4.0 + 0.0) / 3, abs=1e-3)
    assert (second.x_screen_px, second.y_screen_px) == pytest.approx((192.0, 108.0))
    assert not second.valid and second.mean_error_px is None
    assert result.n_invalid == 1
    failed = calibration_result_from_titta(
        {"points": [], "status": titta.calibration_status.failure}, screen_size_px=SCREEN
    )
    assert not failed.succeeded and failed.points == ()


# -- the driver on a stand-in tracker -------------------------------------------------------------


class FakeTracker:
    """Stands in for ``TittaPy_v2.EyeTracker``, which needs a tracker on the network.

    Streams are buffers the test fills (``push``); ``consume_N`` hands over and empties them like
    TittaPy does. Calibration steps are answered through a result queue, as Titta's calibration
    thread answers them, with TittaPy's work-result dictionaries and real enum values.
    """

    def __init__(self, sdk: ModuleType, address: str) -> None:
        self.sdk = sdk
        self.address = address
        self.frequency = 600.0
        self.recording: set[str] = set()
        self.cleared: list[str] = []
        self.pending: dict[str, list[dict[str, Any]]] = {"gaze": [], "notification": []}
        self.lock = threading.Lock()
        self.failure: RuntimeError | None = None
        self.results: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.calibrating = False
        self.left_calibration = 0
        self.enter_status = 0
        self.collect_statuses: list[int] = []
        self.collected: list[list[float]] = []
        self.compute_result: dict[str, Any] | None = None
        self.compute_error: RuntimeError | None = None

    def start(self, stream: str, initial_buffer_size: int | None = None, as_gif: bool | None = None) -> bool:
        self.recording.add(stream)
        return True

    def stop(self, stream: str, clear_buffer: bool | None = None) -> bool:
        self.recording.discard(stream)
        if clear_buffer:
            with self.lock:
                self.pending[stream].clear()
            self.cleared.append(stream)
        return True

    def consume_N(self, stream: str, N_samples: int | None = None, side: str | None = None) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        with self.lock:
            chunks, self.pending[stream] = self.pending[stream], []
        if not chunks:
            return titta_gaze([]) if stream == "gaze" else titta_notifications(self.sdk)
        joined: dict[str, Any] = {}
        for key, value in chunks[0].items():
            parts = [chunk[key] for chunk in chunks]
            joined[key] = (
                np.concatenate(parts) if isinstance(value, np.ndarray) else list(itertools.chain(*parts))
            )
        return joined

    def enter_calibration_mode(self, do_monocular: bool) -> bool:
        if self.calibrating:
            return False
        self.calibrating = True
        self._answer("enter", self.enter_status)
        return True

    def calibration_collect_data(self, coordinates: Sequence[float], eye: str | None = None) -> None:
        self._check_calibrating()
        self.collected.append(list(coordinates))
        status = self.collect_statuses.pop(0) if self.collect_statuses else 0
        self._answer("collect_data", status, coordinates=list(coordinates))

    def calibration_compute_and_apply(self) -> None:
        self._check_calibrating()
        if self.compute_error is not None:
            raise self.compute_error
        self._answer("compute", 0, calibration_result=self.compute_result)

    def calibration_retrieve_result(self) -> dict[str, Any] | None:
        try:
            return self.results.get_nowait()
        except queue.Empty:
            return None

    def leave_calibration_mode(self, force: bool | None = None) -> bool:
        was, self.calibrating = self.calibrating, False
        self.left_calibration += 1
        if was:
            self._answer("exit", 0)
        return was

    def _check_calibrating(self) -> None:
        if not self.calibrating:
            raise RuntimeError("Titta::cpp::isInCalibrationMode: you have not entered calibration mode")

    def _answer(self, action: str, status: int, **extra: Any) -> None:
        item: dict[str, Any] = {"action": getattr(self.sdk.calibration_action, action)}
        if "coordinates" in extra:
            item["coordinates"] = extra.pop("coordinates")
        text = SDK_ERROR if status else "Tobii SDK code: 0: TOBII_RESEARCH_STATUS_OK (No error.)"
        self.results.put({"work_item": item, "status": status, "status_string": text, **extra})


def push(tracker: FakeTracker, stream: str, data: dict[str, Any]) -> None:
    with tracker.lock:
        tracker.pending[stream].append(data)


def test_the_stand_in_has_the_real_trackers_api(titta: ModuleType) -> None:
    for name, member in vars(FakeTracker).items():
        if name.startswith("_") or not callable(member):
            continue
        real = getattr(titta.EyeTracker, name)  # AttributeError: the real tracker has no such method
        for parameter in list(inspect.signature(member).parameters)[1:]:
            assert f"{parameter}:" in real.__doc__, (name, parameter)
    assert isinstance(titta.EyeTracker.frequency, property)


class EventLog:
    """An event listener that tests can wait on."""

    def __init__(self) -> None:
        self.events: list[DriverEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: DriverEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, kind: DriverEventKind, *, count: int = 1, timeout_s: float = 5.0) -> DriverEvent:
        with self._cond:
            assert self._cond.wait_for(
                lambda: sum(e.kind is kind for e in self.events) >= count, timeout=timeout_s
            ), f"no {kind} event within {timeout_s} s; got {[e.kind for e in self.events]}"
            return [e for e in self.events if e.kind is kind][count - 1]


@dataclass
class Rig:
    driver: TobiiProDriver
    tracker: FakeTracker
    sdk: SimpleNamespace
    events: EventLog


@pytest.fixture
def rig(titta: ModuleType, monkeypatch: pytest.MonkeyPatch, thread_failures: list[object]) -> Iterator[Rig]:
    """A driver whose TittaPy finds one (stand-in) tracker; the rest of TittaPy is the real one."""
    tracker = FakeTracker(titta, "tet-tcp://169.254.10.20")
    log: list[dict[str, Any]] = []
    opened: list[str] = []

    def open_tracker(address: str) -> FakeTracker:
        opened.append(address)
        return tracker

    info = {
        "address": tracker.address,
        "model": "Tobii Pro Spectrum",
        "serial_number": "TPSP1-010109",
        "frequency": 600.0,
    }
    sdk = SimpleNamespace(
        __name__="TittaPy_v2",
        EyeTracker=open_tracker,
        find_all_eye_trackers=lambda: [info],
        get_system_timestamp=titta.get_system_timestamp,
        start_logging=lambda initial_buffer_size=None: True,
        get_log=lambda clear_log=None: [log.pop(0) for _ in range(len(log))],
        stop_logging=lambda: True,
        log=log,
        opened=opened,
    )
    monkeypatch.setattr(tobii, "import_tittapy", lambda caller="": (sdk,))
    driver = TobiiProDriver(screen_size_px=(1920, 1080))
    events = EventLog()
    driver.add_event_listener(events)
    yield Rig(driver, tracker, sdk, events)
    driver.close()


def test_the_stand_in_fakes_only_the_tracker(titta: ModuleType, rig: Rig) -> None:
    for name in ("find_all_eye_trackers", "get_system_timestamp", "start_logging", "get_log", "stop_logging"):
        assert callable(getattr(titta, name))
    assert rig.sdk.get_system_timestamp is titta.get_system_timestamp


def test_connect_opens_the_first_tracker_found_and_reads_its_rate(rig: Rig) -> None:
    rig.driver.connect()
    assert rig.sdk.opened == ["tet-tcp://169.254.10.20"]
    assert rig.driver.state is DriverState.CONNECTED and rig.driver.nominal_rate_hz == 600.0
    assert rig.tracker.recording == {"notification"}
    assert isinstance(rig.driver, CalibratingDriver)


def test_streams_gaze_samples_on_the_shared_clock(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    buffer = SampleBuffer()
    rig.driver.start(buffer)
    assert rig.driver.state is DriverState.STREAMING and "gaze" in rig.tracker.recording
    stamp, pushed_ms = titta.get_system_timestamp(), now_ms()
    push(rig.tracker, "gaze", both_eyes([stamp, stamp + 1667], (0.25, 0.5), (0.75, 0.5)))
    push(rig.tracker, "gaze", both_eyes([stamp + 3333], (0.5, 0.25), (0.5, 0.25)))
    assert buffer.wait_for(3, timeout_s=5.0)
    samples = buffer.snapshot()
    assert [(s.x_screen_px, s.y_screen_px) for s in samples] == [(960.0, 540.0)] * 2 + [(960.0, 270.0)]
    assert np.diff([s.t_ms for s in samples]) == pytest.approx([1.667, 1.666])  # the tracker's spacing
    assert abs(samples[0].t_ms - pushed_ms) < 50.0  # same computer clock, read a moment apart
    rig.driver.stop()
    assert rig.driver.state is DriverState.CONNECTED
    assert "gaze" not in rig.tracker.recording and "gaze" in rig.tracker.cleared


def test_nothing_is_delivered_after_stop(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    buffer = SampleBuffer()
    rig.driver.start(buffer)
    rig.driver.stop()
    push(rig.tracker, "gaze", both_eyes([titta.get_system_timestamp()], (0.5, 0.5), (0.5, 0.5)))
    # A notice proves a whole poll happened afterwards (gaze is drained before notifications).
    push(rig.tracker, "notification", titta_notifications(titta, ("device_faults", None, "x")))
    rig.events.wait_for(DriverEventKind.DEVICE_NOTICE)
    assert len(buffer) == 0 and len(rig.tracker.pending["gaze"]) == 1


def test_connection_lost_and_restored_become_state_and_events(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    rig.driver.start(SampleBuffer())
    push(rig.tracker, "notification", titta_notifications(titta, ("connection_lost", None, None)))
    lost = rig.events.wait_for(DriverEventKind.CONNECTION_LOST)
    assert lost.state is DriverState.LOST and rig.driver.state is DriverState.LOST
    push(rig.tracker, "notification", titta_notifications(titta, ("connection_restored", None, None)))
    back = rig.events.wait_for(DriverEventKind.RECONNECTED)
    assert back.state is DriverState.STREAMING and rig.driver.state is DriverState.STREAMING


def test_restored_without_streaming_returns_to_connected(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    push(rig.tracker, "notification", titta_notifications(titta, ("connection_lost", None, None)))
    rig.events.wait_for(DriverEventKind.CONNECTION_LOST)
    with pytest.raises(DriverError, match="cannot start while lost"):
        rig.driver.start(SampleBuffer())
    push(rig.tracker, "notification", titta_notifications(titta, ("connection_restored", None, None)))
    rig.events.wait_for(DriverEventKind.RECONNECTED)
    assert rig.driver.state is DriverState.CONNECTED


def test_rate_changes_and_device_faults_are_reported(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    push(
        rig.tracker,
        "notification",
        titta_notifications(
            titta,
            ("gaze_output_frequency_changed", 1200.0, None),
            ("device_faults", None, "illuminator failed"),
        ),
    )
    rig.events.wait_for(DriverEventKind.DEVICE_NOTICE, count=2)
    assert rig.driver.nominal_rate_hz == 1200.0
    assert "illuminator failed" in rig.events.wait_for(DriverEventKind.DEVICE_NOTICE, count=2).message


def test_stream_errors_are_reported_and_plain_log_lines_are_not(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    stamp = titta.get_system_timestamp()
    rig.sdk.log.append(
        {
            "system_time_stamp": stamp,
            "source": titta.log_source.SDK,
            "level": titta.log_level.information,
            "message": "hello",
        }
    )
    rig.sdk.log.append(
        {
            "machine_serial": "TPSP1-010109",
            "system_time_stamp": stamp,
            "error": titta.stream_error.insufficient_license,
            "source": titta.stream_error_source.subscription_gaze_data,
            "message": "no license for gaze data",
        }
    )
    notice = rig.events.wait_for(DriverEventKind.DEVICE_NOTICE)
    assert "insufficient_license" in notice.message and "no license for gaze data" in notice.message
    assert not any("hello" in e.message for e in rig.events.events)


def test_unreadable_gaze_data_is_reported_and_streaming_goes_on(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    buffer = SampleBuffer()
    rig.driver.start(buffer)
    broken = both_eyes([titta.get_system_timestamp()], (0.5, 0.5), (0.5, 0.5))
    del broken["right_gaze_point_valid"]
    push(rig.tracker, "gaze", broken)
    event = rig.events.wait_for(DriverEventKind.MALFORMED_MESSAGE)
    assert "right_gaze_point_valid" in event.message
    push(rig.tracker, "gaze", both_eyes([titta.get_system_timestamp()], (0.5, 0.5), (0.5, 0.5)))
    assert buffer.wait_for(1, timeout_s=5.0)
    assert rig.driver.state is DriverState.STREAMING


def test_an_sdk_failure_in_the_poll_thread_is_an_event_not_a_crash(rig: Rig) -> None:
    rig.driver.connect()
    rig.tracker.failure = RuntimeError("Titta::cpp Error: stream engine gone")
    event = rig.events.wait_for(DriverEventKind.DRIVER_FAILED)
    assert "stream engine gone" in event.message
    assert rig.driver.state is DriverState.DISCONNECTED
    rig.tracker.failure = None
    rig.driver.connect()  # connecting again works
    assert rig.driver.state is DriverState.CONNECTED


def test_close_lets_go_of_the_tracker(rig: Rig) -> None:
    rig.driver.connect()
    rig.driver.start(SampleBuffer())
    rig.driver.close()
    assert rig.driver.state is DriverState.CLOSED and rig.tracker.recording == set()
    assert {"gaze", "notification"} <= set(rig.tracker.cleared)
    with pytest.raises(DriverError, match="closed"):
        rig.driver.connect()


def test_calibration_collects_each_target_and_maps_the_result(titta: ModuleType, rig: Rig) -> None:
    rig.driver.connect()
    rig.tracker.collect_statuses = [200]  # the first collection fails once and is repeated
    rig.tracker.compute_result = {
        "points": [
            calibration_point(
                titta, (0.5, 0.5), [(0.5, 0.5, "valid_and_used")], [(0.5, 0.5, "valid_and_used")]
            ),
            calibration_point(titta, (0.1, 0.1), [(0.1, 0.1, "invalid_and_not_used")], []),
        ],
        "status": titta.calibration_status.success,
    }
    shown: list[tuple[float, float]] = []
    result = rig.driver.calibrate(
        [(960, 540), (192, 108)], present_target=lambda x, y: shown.append((x, y)), settle_ms=0.0
    )
    assert shown == [(960.0, 540.0), (192.0, 108.0)]
    np.testing.assert_allclose(rig.tracker.collected, [[0.5, 0.5], [0.5, 0.5], [0.1, 0.1]])
    assert result.succeeded and [p.valid for p in result.points] == [True, False]
    assert result.points[0].mean_error_px == 0.0
    assert not rig.tracker.calibrating and rig.tracker.left_calibration == 1


def test_calibration_mode_is_left_when_the_sdk_fails(rig: Rig) -> None:
    rig.driver.connect()
    rig.tracker.compute_error = RuntimeError("Titta::cpp Error: compute failed")
    with pytest.raises(DriverError, match=r"compute failed.*calibrate again"):
        rig.driver.calibrate([(960, 540)], settle_ms=0.0)
    assert not rig.tracker.calibrating and rig.tracker.left_calibration == 1


def test_a_refused_calibration_mode_is_a_driver_error(rig: Rig) -> None:
    rig.driver.connect()
    rig.tracker.enter_status = 200
    with pytest.raises(DriverError, match=r"refused to enter calibration mode.*SE_INTERNAL"):
        rig.driver.calibrate([(960, 540)], settle_ms=0.0)
    assert rig.tracker.collected == [] and rig.tracker.left_calibration == 1


def test_calibration_needs_a_connection(rig: Rig) -> None:
    with pytest.raises(DriverError, match="cannot calibrate while disconnected"):
        rig.driver.calibrate([(960, 540)], settle_ms=0.0)


def test_bad_screen_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="screen_width_px"):
        TobiiProDriver(screen_size_px=(0, 1080))
