"""I-DT: known fixations on synthetic scan paths, a literal Salvucci & Goldberg oracle, online == offline."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from tests.tracking.fixations._scanpath import GEOMETRY, ScanPath, px_per_deg, scan_path
from tracking.fixations import DETECTORS, FixationDetector, IDTDetector, idt
from tracking.fixations._common import _DegreeMap
from tracking.records import Fixation, GazeSample


def reference_idt(
    t: NDArray[np.float64],
    xy: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    geometry: ScreenGeometry,
    dispersion_deg: float,
    min_duration_ms: float,
) -> list[tuple[float, float, float, float, int]]:
    """Salvucci & Goldberg (2000) I-DT, literally, on each run of valid samples.

    While points remain: take the window of the first points covering the duration threshold; if its
    dispersion is within the threshold, add points while it stays within, note a fixation at the
    window's centroid and remove the window; otherwise remove the first point.
    """
    deg = geometry.screen_px_to_deg(np.where(valid[:, None], xy, 0.0))

    def dispersion(i: int, j: int) -> float:
        window = deg[i : j + 1]
        return float(np.ptp(window[:, 0]) + np.ptp(window[:, 1]))

    fixations = []
    for start, stop in _valid_runs(valid):
        i = start
        while i < stop:
            j = i
            while j < stop and t[j] - t[i] < min_duration_ms:
                j += 1
            if j == stop:
                break
            if dispersion(i, j) <= dispersion_deg:
                while j + 1 < stop and dispersion(i, j + 1) <= dispersion_deg:
                    j += 1
                centre = xy[i : j + 1].mean(axis=0)
                fixations.append((t[i], t[j] - t[i], centre[0], centre[1], j - i + 1))
                i = j + 1
            else:
                i += 1
    return fixations


def _valid_runs(valid: NDArray[np.bool_]) -> list[tuple[int, int]]:
    runs, start = [], None
    for k, ok in enumerate([*valid.tolist(), False]):
        if ok and start is None:
            start = k
        elif not ok and start is not None:
            runs.append((start, k))
            start = None
    return runs


def _as_tuples(fixations: list[Fixation]) -> list[tuple[float, float, float, float, int]]:
    return [(f.onset_ms, f.duration_ms, f.x_screen_px, f.y_screen_px, f.n_samples) for f in fixations]


def _assert_matches_reference(
    got: list[Fixation], expected: list[tuple[float, float, float, float, int]]
) -> None:
    assert len(got) == len(expected)
    for fixation, (onset, duration, x, y, n) in zip(got, expected, strict=True):
        assert (fixation.onset_ms, fixation.n_samples) == (onset, n)
        assert fixation.duration_ms == pytest.approx(duration, abs=1e-9)
        assert (fixation.x_screen_px, fixation.y_screen_px) == pytest.approx((x, y), abs=1e-6)


def _online(path: ScanPath, detector: FixationDetector) -> list[Fixation]:
    fixations: list[Fixation] = []
    for sample in path.samples():
        fixations += detector.feed(sample)
    return fixations + detector.flush()


# --- known fixations -------------------------------------------------------------------------


def test_finds_the_known_fixations_of_a_noisy_scan_path(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=10, noise_deg=0.03)
    found = idt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY, dispersion_deg=1.0, min_duration_ms=100)
    assert len(found) == len(path.truth)
    for fixation, (onset, offset, x, y) in zip(found, path.truth, strict=True):
        assert fixation.onset_ms == pytest.approx(onset, abs=10.0)
        assert fixation.offset_ms == pytest.approx(offset, abs=10.0)
        assert math.dist((fixation.x_screen_px, fixation.y_screen_px), (x, y)) < 0.25 * px_per_deg()


def test_a_blink_splits_a_fixation_in_two(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=6, blink_every=2)
    found = idt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    assert len(found) == len(path.truth) == 9
    for fixation, (onset, offset, _, _) in zip(found, path.truth, strict=True):
        assert fixation.onset_ms == pytest.approx(onset, abs=10.0)
        assert fixation.offset_ms == pytest.approx(offset, abs=10.0)
        blinked = ~path.valid & (path.t_ms > fixation.onset_ms) & (path.t_ms < fixation.offset_ms)
        assert not blinked.any()


def test_too_short_and_too_dispersed_windows_are_no_fixation() -> None:
    t = np.arange(0.0, 90.0, 1.0)  # 89 ms < 100 ms
    still = np.full((t.size, 2), 1280.0)
    assert idt(t, still, geometry=GEOMETRY, min_duration_ms=100) == []
    assert len(idt(t, still, geometry=GEOMETRY, min_duration_ms=89)) == 1
    sweep = np.column_stack([1280.0 + 2.0 * px_per_deg() * t / 10.0, np.full(t.size, 720.0)])  # 0.2°/ms
    assert idt(t, sweep, geometry=GEOMETRY, dispersion_deg=1.0, min_duration_ms=10) == []


def test_a_still_gaze_is_one_fixation_with_every_sample() -> None:
    t = np.arange(0.0, 500.0, 1000.0 / 1200.0)
    xy = np.tile([[1000.0, 600.0]], (t.size, 1))
    (fixation,) = idt(t, xy, geometry=GEOMETRY)
    assert (fixation.onset_ms, fixation.offset_ms, fixation.n_samples) == (t[0], t[-1], t.size)
    assert (fixation.x_screen_px, fixation.y_screen_px) == pytest.approx((1000.0, 600.0))


def test_no_samples_give_no_fixations() -> None:
    assert idt([], np.zeros((0, 2)), geometry=GEOMETRY) == []
    assert IDTDetector(GEOMETRY).flush() == []


# --- the oracle and online == offline ---------------------------------------------------------


def test_matches_the_literal_algorithm_on_scan_paths(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=6, noise_deg=0.2, blink_every=3)
    for dispersion_deg, min_duration_ms in [(0.5, 50.0), (1.0, 100.0), (2.0, 150.0)]:
        got = idt(
            path.t_ms, path.xy_screen_px, path.valid, smoothing_ms=None,
            geometry=GEOMETRY, dispersion_deg=dispersion_deg, min_duration_ms=min_duration_ms,
        )  # fmt: skip
        expected = reference_idt(
            path.t_ms, path.xy_screen_px, path.valid,
            geometry=GEOMETRY, dispersion_deg=dispersion_deg, min_duration_ms=min_duration_ms,
        )  # fmt: skip
        _assert_matches_reference(got, expected)


@st.composite
def random_walks(draw: st.DrawFn) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Irregular time steps, a random walk with jumps, random invalid stretches."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(2, 400))
    step_px = draw(st.floats(0.05, 8.0))
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.5, 5.0, n))
    jumps = rng.normal(0.0, 200.0, (n, 2)) * (rng.random((n, 1)) < 0.02)
    xy = 1280.0 + np.cumsum(rng.normal(0.0, step_px, (n, 2)) + jumps, axis=0)
    valid = rng.random(n) > draw(st.sampled_from([0.0, 0.01, 0.05]))
    xy[~valid] = np.nan
    return t, xy, valid


@given(walk=random_walks(), dispersion_deg=st.floats(0.1, 3.0), min_duration_ms=st.floats(1.0, 200.0))
def test_property_matches_the_literal_algorithm(
    walk: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    dispersion_deg: float,
    min_duration_ms: float,
) -> None:
    t, xy, valid = walk
    options = {"dispersion_deg": dispersion_deg, "min_duration_ms": min_duration_ms}
    got = idt(t, xy, valid, geometry=GEOMETRY, smoothing_ms=None, **options)
    _assert_matches_reference(got, reference_idt(t, xy, valid, geometry=GEOMETRY, **options))


@given(
    walk=random_walks(),
    dispersion_deg=st.floats(0.1, 3.0),
    min_duration_ms=st.floats(1.0, 200.0),
    smoothing_ms=st.none() | st.floats(2.0, 40.0),
)
def test_property_online_equals_offline(
    walk: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    dispersion_deg: float,
    min_duration_ms: float,
    smoothing_ms: float | None,
) -> None:
    t, xy, valid = walk
    path = ScanPath(t, xy, valid, [])
    options = {
        "dispersion_deg": dispersion_deg,
        "min_duration_ms": min_duration_ms,
        "smoothing_ms": smoothing_ms,
    }
    offline = idt(t, xy, valid, geometry=GEOMETRY, **options)
    assert _online(path, IDTDetector(GEOMETRY, **options)) == offline
    for fixation in offline:
        assert fixation.duration_ms >= min_duration_ms
    assert all(a.offset_ms < b.onset_ms for a, b in itertools.pairwise(offline))


@given(seed=st.integers(0, 2**32 - 1), blink_every=st.integers(0, 3), noise_deg=st.floats(0.0, 0.3))
def test_property_online_equals_offline_on_scan_paths(seed: int, blink_every: int, noise_deg: float) -> None:
    path = scan_path(np.random.default_rng(seed), n_fixations=3, noise_deg=noise_deg, blink_every=blink_every)
    offline = idt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    assert _online(path, IDTDetector(GEOMETRY)) == offline


def test_fixations_are_emitted_by_the_sample_after_their_last() -> None:
    detector = IDTDetector(GEOMETRY, dispersion_deg=1.0, min_duration_ms=10.0, smoothing_ms=None)
    for k in range(20):
        assert detector.feed(GazeSample(float(k), 1280.0, 720.0)) == []
    (fixation,) = detector.feed(GazeSample(20.0, 1280.0 + 5 * px_per_deg(), 720.0))
    assert (fixation.onset_ms, fixation.offset_ms, fixation.n_samples) == (0.0, 19.0, 20)
    assert detector.feed(GazeSample(21.0, 0.0, 0.0, valid=False)) == []


def test_an_invalid_sample_ends_the_open_fixation_at_once() -> None:
    detector = IDTDetector(GEOMETRY, min_duration_ms=10.0, smoothing_ms=None)
    for k in range(20):
        detector.feed(GazeSample(float(k), 1280.0, 720.0))
    (fixation,) = detector.feed(GazeSample(20.0, math.nan, math.nan, valid=False))
    assert fixation.offset_ms == 19.0


# --- smoothing (the default): rate-independent dispersion ---------------------------------------


@pytest.mark.parametrize("rate_hz", [600.0, 1200.0])
def test_smoothing_finds_the_fixations_of_a_fast_noisy_tracker(
    rng: np.random.Generator, rate_hz: float
) -> None:
    """Issue 16: 1,200 Hz with 0.2° of noise gave no fixation; the raw dispersion still gives none."""
    path = scan_path(rng, n_fixations=10, rate_hz=rate_hz, noise_deg=0.2)
    found = idt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY)  # the defaults
    assert len(found) >= 10
    assert idt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY, smoothing_ms=None) == []
    for onset, offset, x, y in path.truth:
        mine = [f for f in found if f.onset_ms < offset and f.offset_ms > onset]
        assert mine and all(
            math.dist((f.x_screen_px, f.y_screen_px), (x, y)) < 0.2 * px_per_deg() for f in mine
        )


def test_smoothing_changes_nothing_at_60_hz_but_the_delay(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=8, rate_hz=60.0, noise_deg=0.05)
    raw = idt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY, smoothing_ms=None)
    assert idt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY) == raw


def test_smoothing_emits_half_a_window_late_and_ends_at_a_blink() -> None:
    detector = IDTDetector(GEOMETRY, min_duration_ms=10.0)  # 20 ms filter: 10 samples at 1 kHz
    for k in range(20):
        assert detector.feed(GazeSample(float(k), 1280.0, 720.0)) == []
    far = 1280.0 + 5 * px_per_deg()
    emitted = [detector.feed(GazeSample(float(k), far, 720.0)) for k in range(20, 40)]
    (first,) = next(e for e in emitted if e)
    assert [len(e) for e in emitted].index(1) <= 10  # judged within half a window of the jump at 20 ms
    assert first.onset_ms == 0.0 and 10.0 <= first.offset_ms < 20.0  # the filter blurs the step
    for k in range(40, 120):  # an 80 ms blink (> 75 ms): the open fixation ends with it
        ended = detector.feed(GazeSample(float(k), math.nan, math.nan, valid=False))
        if ended:
            assert 20.0 < ended[0].onset_ms <= 30.0 and ended[0].offset_ms == 39.0
            assert k - 39 == 76  # the first invalid sample more than 75 ms after the last valid one
            break
    else:
        raise AssertionError("the blink did not end the fixation")


def test_smoothing_bridges_short_data_loss(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=1, rate_hz=500.0, noise_deg=0.05)
    valid = path.valid & ~((path.t_ms > 80.0) & (path.t_ms < 120.0))  # 40 ms lost
    xy = np.where(valid[:, None], path.xy_screen_px, np.nan)
    assert len(idt(path.t_ms, xy, valid, geometry=GEOMETRY, min_duration_ms=50.0)) == 1
    assert len(idt(path.t_ms, xy, valid, geometry=GEOMETRY, min_duration_ms=50.0, smoothing_ms=None)) == 2


def test_degrees_agree_with_the_screen_geometry(rng: np.random.Generator) -> None:
    geometry = ScreenGeometry(1920, 1080, 24.0, 60.0)
    xy = rng.uniform(-500.0, 2500.0, (200, 2))
    to_deg = _DegreeMap(geometry)
    scalar = np.array([to_deg(x, y) for x, y in xy.tolist()])
    np.testing.assert_allclose(scalar, geometry.screen_px_to_deg(xy), rtol=0, atol=1e-12)


def test_detectors_registry_builds_online_detectors() -> None:
    assert DETECTORS["idt"] is IDTDetector
    assert isinstance(DETECTORS["idt"](GEOMETRY, dispersion_deg=0.5), FixationDetector)


# --- validation -------------------------------------------------------------------------------


def test_rejects_time_stamps_that_do_not_increase() -> None:
    xy = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"strictly increasing; t_ms\[2\] = 1.0 follows t_ms\[1\] = 2.0"):
        idt([0.0, 2.0, 1.0], xy, geometry=GEOMETRY)
    with pytest.raises(ValueError, match="strictly increasing"):
        idt([0.0, 1.0, 1.0], xy, geometry=GEOMETRY)
    with pytest.raises(ValueError, match="finite"):
        idt([0.0, math.nan, 1.0], xy, geometry=GEOMETRY)


def test_a_rejected_sample_leaves_the_detector_untouched() -> None:
    samples = [GazeSample(float(k), 1280.0, 720.0) for k in range(200)]
    detector = IDTDetector(GEOMETRY)
    for sample in samples[:100]:
        detector.feed(sample)
    with pytest.raises(ValueError, match="strictly increasing"):
        detector.feed(GazeSample(50.0, 0.0, 0.0))
    for sample in samples[100:]:
        detector.feed(sample)
    assert detector.flush() == [Fixation(0.0, 199.0, 1280.0, 720.0, 200)]
    assert detector.feed(GazeSample(0.0, 1.0, 1.0)) == []  # after flush, a new stream may start anew


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, 1.0], np.zeros((3, 2))), "shape"),
        (([0.0, 1.0], np.zeros((2, 3))), "shape"),
        (([[0.0, 1.0]], np.zeros((2, 2))), "1-D"),
        (([0.0, 1.0], [[1.0, 2.0], [math.nan, 1.0]], np.array([True, True])), "marked valid"),
        (([0.0, 1.0], np.zeros((2, 2)), np.array([1, 1])), "bool"),
    ],
)
def test_rejects_malformed_arrays(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        idt(*args, geometry=GEOMETRY)  # type: ignore[arg-type]


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="dispersion_deg"):
        IDTDetector(GEOMETRY, dispersion_deg=0.0)
    with pytest.raises(ValueError, match="min_duration_ms"):
        idt([0.0], [[0.0, 0.0]], geometry=GEOMETRY, min_duration_ms=-1.0)
    with pytest.raises(TypeError, match="ScreenGeometry"):
        IDTDetector((2560, 1440))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="GazeSample"):
        IDTDetector(GEOMETRY).feed((0.0, 1.0, 2.0))  # type: ignore[arg-type]
