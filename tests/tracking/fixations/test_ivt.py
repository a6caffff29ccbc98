"""I-VT: known fixations on synthetic scan paths, a literal velocity-threshold oracle, online == offline."""

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
from tests.tracking.fixations.test_idt import random_walks
from tracking.fixations import DETECTORS, FixationDetector, IVTDetector, ivt
from tracking.records import Fixation, GazeSample


def reference_ivt(
    t: NDArray[np.float64],
    xy: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    geometry: ScreenGeometry,
    velocity_deg_s: float,
    min_duration_ms: float,
) -> list[tuple[float, float, float, float, int]]:
    """Velocity of every consecutive pair; a fixation is a maximal chain of slow pairs of valid samples."""
    deg = geometry.screen_px_to_deg(np.where(valid[:, None], xy, 0.0))
    velocity = np.hypot(*np.diff(deg, axis=0).T) / (np.diff(t) / 1000.0)
    slow = (velocity < velocity_deg_s) & valid[1:] & valid[:-1]
    fixations = []
    k = 0
    while k < slow.size:
        if not slow[k]:
            k += 1
            continue
        first = k
        while k < slow.size and slow[k]:
            k += 1
        i, j = first, k  # samples i..j, joined by the slow pairs first..k-1
        if t[j] - t[i] >= min_duration_ms:
            centre = xy[i : j + 1].mean(axis=0)
            fixations.append((t[i], t[j] - t[i], centre[0], centre[1], j - i + 1))
    return fixations


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
# Sample-to-sample noise inflates velocities as the rate rises (0.01° at 1,200 Hz is ~17 °/s),
# so these scan paths use a 250 Hz tracker like the EyeTribe's faster mode.


def test_finds_the_known_fixations_of_a_noisy_scan_path(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=10, rate_hz=250.0, noise_deg=0.01)
    found = ivt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY, velocity_deg_s=30.0, min_duration_ms=100)
    assert len(found) == len(path.truth)
    for fixation, (onset, offset, x, y) in zip(found, path.truth, strict=True):
        assert fixation.onset_ms == pytest.approx(onset, abs=8.0)
        assert fixation.offset_ms == pytest.approx(offset, abs=8.0)
        assert math.dist((fixation.x_screen_px, fixation.y_screen_px), (x, y)) < 0.1 * px_per_deg()


def test_a_blink_splits_a_fixation_in_two(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=6, rate_hz=250.0, noise_deg=0.01, blink_every=2)
    found = ivt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    assert len(found) == len(path.truth) == 9
    for fixation, (onset, offset, _, _) in zip(found, path.truth, strict=True):
        assert fixation.onset_ms == pytest.approx(onset, abs=8.0)
        assert fixation.offset_ms == pytest.approx(offset, abs=8.0)
        blinked = ~path.valid & (path.t_ms > fixation.onset_ms) & (path.t_ms < fixation.offset_ms)
        assert not blinked.any()


def test_velocity_threshold_and_minimum_duration() -> None:
    t = np.arange(0.0, 200.0, 4.0)  # 250 Hz
    drift_deg_s = 20.0
    x = 1280.0 + px_per_deg() * drift_deg_s * t / 1000.0  # a slow drift around the centre
    xy = np.column_stack([x, np.full(t.size, 720.0)])
    assert len(ivt(t, xy, geometry=GEOMETRY, velocity_deg_s=25.0)) == 1
    assert ivt(t, xy, geometry=GEOMETRY, velocity_deg_s=15.0) == []
    assert ivt(t, xy, geometry=GEOMETRY, velocity_deg_s=25.0, min_duration_ms=200.0) == []


def test_the_landing_sample_belongs_to_the_fixation() -> None:
    t = np.arange(0.0, 400.0, 4.0)
    xy = np.where((t < 200.0)[:, None], [[1000.0, 700.0]], [[1500.0, 700.0]])
    first, second = ivt(t, xy, geometry=GEOMETRY, smoothing_ms=None)
    assert (first.onset_ms, first.offset_ms) == (0.0, 196.0)
    assert (second.onset_ms, second.offset_ms) == (200.0, 396.0)


def test_no_samples_give_no_fixations() -> None:
    assert ivt([], np.zeros((0, 2)), geometry=GEOMETRY) == []
    assert IVTDetector(GEOMETRY).flush() == []


# --- the oracle and online == offline ---------------------------------------------------------


def test_matches_the_literal_algorithm_on_scan_paths(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=6, rate_hz=500.0, noise_deg=0.02, blink_every=3)
    for velocity_deg_s, min_duration_ms in [(10.0, 50.0), (30.0, 100.0), (100.0, 150.0)]:
        options = {"velocity_deg_s": velocity_deg_s, "min_duration_ms": min_duration_ms}
        got = ivt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY, smoothing_ms=None, **options)
        expected = reference_ivt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY, **options)
        _assert_matches_reference(got, expected)


@given(walk=random_walks(), velocity_deg_s=st.floats(1.0, 300.0), min_duration_ms=st.floats(1.0, 200.0))
def test_property_matches_the_literal_algorithm(
    walk: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    velocity_deg_s: float,
    min_duration_ms: float,
) -> None:
    t, xy, valid = walk
    options = {"velocity_deg_s": velocity_deg_s, "min_duration_ms": min_duration_ms}
    got = ivt(t, xy, valid, geometry=GEOMETRY, smoothing_ms=None, **options)
    _assert_matches_reference(got, reference_ivt(t, xy, valid, geometry=GEOMETRY, **options))


@given(
    walk=random_walks(),
    velocity_deg_s=st.floats(1.0, 300.0),
    min_duration_ms=st.floats(1.0, 200.0),
    smoothing_ms=st.none() | st.floats(2.0, 40.0),
)
def test_property_online_equals_offline(
    walk: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    velocity_deg_s: float,
    min_duration_ms: float,
    smoothing_ms: float | None,
) -> None:
    t, xy, valid = walk
    options = {
        "velocity_deg_s": velocity_deg_s,
        "min_duration_ms": min_duration_ms,
        "smoothing_ms": smoothing_ms,
    }
    offline = ivt(t, xy, valid, geometry=GEOMETRY, **options)
    assert _online(ScanPath(t, xy, valid, []), IVTDetector(GEOMETRY, **options)) == offline
    for fixation in offline:
        assert fixation.duration_ms >= min_duration_ms
        assert fixation.n_samples >= 2 or smoothing_ms is not None
    assert all(a.offset_ms < b.onset_ms for a, b in itertools.pairwise(offline))


@given(seed=st.integers(0, 2**32 - 1), blink_every=st.integers(0, 3), noise_deg=st.floats(0.0, 0.05))
def test_property_online_equals_offline_on_scan_paths(seed: int, blink_every: int, noise_deg: float) -> None:
    path = scan_path(np.random.default_rng(seed), n_fixations=3, rate_hz=250.0, noise_deg=noise_deg,
                     blink_every=blink_every)  # fmt: skip
    offline = ivt(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    assert _online(path, IVTDetector(GEOMETRY)) == offline


def test_fixations_are_emitted_by_the_sample_after_their_last() -> None:
    detector = IVTDetector(GEOMETRY, min_duration_ms=10.0, smoothing_ms=None)
    for k in range(20):
        assert detector.feed(GazeSample(float(k), 1280.0, 720.0)) == []
    (fixation,) = detector.feed(GazeSample(20.0, 1280.0 + 5 * px_per_deg(), 720.0))
    assert (fixation.onset_ms, fixation.offset_ms, fixation.n_samples) == (0.0, 19.0, 20)


def test_an_invalid_sample_ends_the_open_fixation_and_the_velocity_chain() -> None:
    detector = IVTDetector(GEOMETRY, min_duration_ms=10.0, smoothing_ms=None)
    for k in range(20):
        detector.feed(GazeSample(float(k), 1280.0, 720.0))
    (fixation,) = detector.feed(GazeSample(20.0, math.nan, math.nan, valid=False))
    assert fixation.offset_ms == 19.0
    for k in range(21, 40):  # no velocity across the blink: the new fixation starts after it
        detector.feed(GazeSample(float(k), 1280.0, 720.0))
    assert [f.onset_ms for f in detector.flush()] == [21.0]


def test_smoothing_finds_the_fixations_of_a_fast_noisy_tracker(rng: np.random.Generator) -> None:
    """Issue 16: 1,200 Hz with 0.2° of noise gave no fixation; point-to-point velocities still give none.

    (At 600 Hz the filtered velocity noise, about 9 °/s per axis, already breaks some fixations at
    the fixed 30 °/s: ``python -m benchmarks.fixations``.)
    """
    path = scan_path(rng, n_fixations=10, rate_hz=1200.0, noise_deg=0.2)
    found = ivt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY)  # the defaults
    assert len(found) >= 10
    assert ivt(path.t_ms, path.xy_screen_px, geometry=GEOMETRY, smoothing_ms=None) == []
    for onset, offset, x, y in path.truth:
        mine = [f for f in found if f.onset_ms < offset and f.offset_ms > onset]
        assert mine and all(
            math.dist((f.x_screen_px, f.y_screen_px), (x, y)) < 0.2 * px_per_deg() for f in mine
        )


def test_smoothed_velocity_is_the_central_difference_at_60_hz() -> None:
    t = np.arange(0.0, 300.0, 1000.0 / 60.0)
    x = 1280.0 + px_per_deg() * 20.0 * t / 1000.0  # a 20 °/s drift, sampled at 60 Hz
    xy = np.column_stack([x, np.full(t.size, 720.0)])
    assert len(ivt(t, xy, geometry=GEOMETRY, velocity_deg_s=25.0)) == 1
    assert ivt(t, xy, geometry=GEOMETRY, velocity_deg_s=15.0) == []


def test_detectors_registry_builds_online_detectors() -> None:
    assert DETECTORS["ivt"] is IVTDetector
    assert isinstance(DETECTORS["ivt"](GEOMETRY, velocity_deg_s=50.0), FixationDetector)


# --- validation -------------------------------------------------------------------------------


def test_rejects_time_stamps_that_do_not_increase() -> None:
    with pytest.raises(ValueError, match=r"strictly increasing; t_ms\[1\] = 0.0"):
        ivt([0.0, 0.0], np.zeros((2, 2)), geometry=GEOMETRY)
    detector = IVTDetector(GEOMETRY)
    detector.feed(GazeSample(5.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"strictly increasing t_ms; got 5.0 after 5.0"):
        detector.feed(GazeSample(5.0, 1.0, 1.0))


def test_rejects_bad_options_and_arrays() -> None:
    with pytest.raises(ValueError, match="velocity_deg_s"):
        IVTDetector(GEOMETRY, velocity_deg_s=-30.0)
    with pytest.raises(TypeError, match="velocity_deg_s must be a number"):
        ivt([0.0], [[0.0, 0.0]], geometry=GEOMETRY, velocity_deg_s="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="marked valid"):
        ivt([0.0, 1.0], [[0.0, 0.0], [math.inf, 0.0]], np.array([True, True]), geometry=GEOMETRY)
