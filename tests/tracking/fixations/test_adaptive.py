"""Adaptive velocity threshold: known fixations at 60-1,200 Hz, the literal threshold, online == offline."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from tests.tracking.fixations._scanpath import GEOMETRY, ScanPath, px_per_deg, scan_path
from tests.tracking.fixations.test_idt import random_walks
from tracking.fixations import (
    DEFAULT_DETECTOR,
    DETECTORS,
    AdaptiveVelocityDetector,
    FixationDetector,
    adaptive_velocity,
)
from tracking.fixations.adaptive import _AdaptiveThreshold
from tracking.records import Fixation, GazeSample


def _online(path: ScanPath, detector: FixationDetector) -> list[Fixation]:
    fixations: list[Fixation] = []
    for sample in path.samples():
        fixations += detector.feed(sample)
    return fixations + detector.flush()


def _found(found: list[Fixation], path: ScanPath, *, centroid_deg: float) -> int:
    """Truth fixations with a detected one that overlaps at least half of it, within ``centroid_deg``."""
    hits = 0
    for onset, offset, x, y in path.truth:
        for f in found:
            overlap = min(f.offset_ms, offset) - max(f.onset_ms, onset)
            near = math.dist((f.x_screen_px, f.y_screen_px), (x, y)) < centroid_deg * px_per_deg()
            if overlap >= 0.5 * (offset - onset) and near:
                hits += 1
                break
    return hits


# --- the cases: fast, noisy trackers -----------------------------------------------------


@pytest.mark.parametrize("rate_hz", [60.0, 1200.0])
def test_the_default_detector_finds_fixations_at_1200_hz_with_0_2_deg_noise(
    rng: np.random.Generator, rate_hz: float
) -> None:
    """Issue 16: I-DT (1°, 100 ms) and I-VT (30 °/s) found no fixation of such a stream."""
    path = scan_path(rng, n_fixations=20, rate_hz=rate_hz, noise_deg=0.2)
    found = _online(path, DETECTORS[DEFAULT_DETECTOR](GEOMETRY))
    assert _found(found, path, centroid_deg=0.2) >= 19
    assert len(found) <= 21


@pytest.mark.parametrize(
    ("rate_hz", "noise_deg"), [(60.0, 0.3), (120.0, 0.02), (300.0, 0.1), (600.0, 0.3), (1200.0, 0.3)]
)
def test_finds_the_known_fixations_at_any_rate_and_noise(
    rng: np.random.Generator, rate_hz: float, noise_deg: float
) -> None:
    path = scan_path(rng, n_fixations=15, rate_hz=rate_hz, noise_deg=noise_deg, blink_every=4)
    found = adaptive_velocity(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    assert _found(found, path, centroid_deg=0.2) == len(path.truth) == len(found)
    for fixation, (onset, offset, _, _) in zip(found, path.truth, strict=True):
        assert abs(fixation.onset_ms - onset) <= 2000.0 / rate_hz + 15.0
        assert abs(fixation.offset_ms - offset) <= 2000.0 / rate_hz + 15.0


def test_thresholds_follow_the_noise(rng: np.random.Generator) -> None:
    peaks = []
    for noise_deg in (0.02, 0.3, 0.6):
        path = scan_path(rng, n_fixations=12, rate_hz=500.0, noise_deg=noise_deg)
        detector = AdaptiveVelocityDetector(GEOMETRY)
        for sample in path.samples():
            detector.feed(sample)
        assert detector.onset_threshold_deg_s < detector.peak_threshold_deg_s
        peaks.append(detector.peak_threshold_deg_s)
    assert peaks[0] == 40.0 < peaks[1] < peaks[2]  # a clean tracker's PT stays at the floor


def test_short_data_loss_is_bridged_and_a_blink_splits(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=2, rate_hz=500.0, noise_deg=0.05)
    onset, offset, _, _ = path.truth[0]
    middle = (onset + offset) / 2.0

    def detect(gap_ms: float) -> list[Fixation]:
        valid = path.valid & ~((path.t_ms > middle - gap_ms / 2) & (path.t_ms < middle + gap_ms / 2))
        xy = np.where(valid[:, None], path.xy_screen_px, np.nan)
        return adaptive_velocity(path.t_ms, xy, valid, geometry=GEOMETRY, min_duration_ms=30.0)

    assert len(detect(40.0)) == 2  # data loss inside the first fixation: bridged
    assert len(detect(100.0)) == 3  # a blink: the first fixation in two


def test_no_samples_give_no_fixations() -> None:
    assert adaptive_velocity([], np.zeros((0, 2)), geometry=GEOMETRY) == []
    assert AdaptiveVelocityDetector(GEOMETRY).flush() == []


# --- the literal threshold and online == offline ---------------------------------------------------


def reference_threshold(
    velocity_deg_s: NDArray[np.float64], initial_deg_s: float, floor_deg_s: float
) -> tuple[float, float]:
    """Nyström & Holmqvist (2010) with Engbert & Kliegl's (2003) robust μ and σ, literally:
    PT ← median + 6 · 1.4826 · MAD of the velocities below PT, until it moves by < 1 °/s."""
    peak = initial_deg_s
    while True:
        below = sorted(v for v in velocity_deg_s.tolist() if v < peak)
        median = statistics.median(below)
        sigma = 1.4826 * statistics.median([abs(v - median) for v in below])
        new_peak = median + 6.0 * sigma
        if abs(new_peak - peak) < 1.0:
            return max(new_peak, floor_deg_s), max(median + 3.0 * sigma, floor_deg_s / 2.0)
        peak = new_peak


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1.0, 40.0), floor_deg_s=st.sampled_from([1.0, 40.0]))
def test_property_threshold_is_the_literal_iteration(seed: int, scale: float, floor_deg_s: float) -> None:
    rng = np.random.default_rng(seed)
    velocity = np.abs(rng.normal(0.0, scale, 2000)) + (rng.random(2000) < 0.05) * rng.uniform(100, 500, 2000)
    threshold = _AdaptiveThreshold(
        initial_deg_s=100.0, floor_deg_s=floor_deg_s, adaptation_ms=1e9, update_ms=1e9
    )
    for i, v in enumerate(velocity[:-1].tolist()):
        threshold.add(float(i), v)
    threshold._next_update_ms = -math.inf  # force the update at the last sample
    threshold.add(float(velocity.size - 1), float(velocity[-1]))
    peak, onset = reference_threshold(velocity, 100.0, floor_deg_s)
    assert threshold.peak_deg_s == pytest.approx(peak, rel=1e-9)
    assert threshold.onset_deg_s == pytest.approx(onset, rel=1e-9)


def test_threshold_forgets_velocities_older_than_the_adaptation_window() -> None:
    rng = np.random.default_rng(7)
    velocity = np.abs(np.concatenate([rng.normal(0.0, 20.0, 2000), rng.normal(0.0, 2.0, 1000)]))
    threshold = _AdaptiveThreshold(initial_deg_s=100.0, floor_deg_s=1.0, adaptation_ms=999.5, update_ms=10.0)
    for t, v in enumerate(velocity.tolist()):  # 1 kHz: 2 s of fast noise, then 1 s of slow noise
        threshold.add(float(t), v)
    # The last update (t = 2990 ms) saw the 1,000 velocities from 1990.5 ms on: 9 fast, 991 slow.
    peak, onset = reference_threshold(velocity[1991:2991], 100.0, 1.0)
    assert (threshold.peak_deg_s, threshold.onset_deg_s) == (pytest.approx(peak), pytest.approx(onset))
    assert threshold.peak_deg_s < 20.0


def test_thresholds_never_fall_below_the_floor() -> None:
    threshold = _AdaptiveThreshold(
        initial_deg_s=100.0, floor_deg_s=40.0, adaptation_ms=1000.0, update_ms=10.0
    )
    for t in range(500):
        threshold.add(float(t), 1.0 + 0.1 * (t % 3))
    assert (threshold.peak_deg_s, threshold.onset_deg_s) == (40.0, 20.0)


@given(walk=random_walks(), min_duration_ms=st.floats(1.0, 200.0), window_ms=st.floats(2.0, 40.0))
def test_property_online_equals_offline(
    walk: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    min_duration_ms: float,
    window_ms: float,
) -> None:
    t, xy, valid = walk
    options = {"min_duration_ms": min_duration_ms, "window_ms": window_ms, "update_ms": 50.0}
    offline = adaptive_velocity(t, xy, valid, geometry=GEOMETRY, **options)
    online = _online(ScanPath(t, xy, valid, []), AdaptiveVelocityDetector(GEOMETRY, **options))
    assert online == offline
    assert all(a.offset_ms < b.onset_ms for a, b in itertools.pairwise(offline))


def test_online_equals_offline_on_a_scan_path_and_flush_starts_afresh(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=8, rate_hz=1200.0, noise_deg=0.3, blink_every=3)
    offline = adaptive_velocity(path.t_ms, path.xy_screen_px, path.valid, geometry=GEOMETRY)
    detector = AdaptiveVelocityDetector(GEOMETRY)
    assert _online(path, detector) == offline
    assert _online(path, detector) == offline  # after flush(), the same stream gives the same fixations


def test_flush_at_a_phase_boundary_keeps_the_noise_estimate(rng: np.random.Generator) -> None:
    path = scan_path(rng, n_fixations=8, rate_hz=500.0, noise_deg=0.4)
    detector = AdaptiveVelocityDetector(GEOMETRY)
    samples = path.samples()
    for sample in samples[: len(samples) // 2]:
        detector.feed(sample)
    learned = detector.peak_threshold_deg_s
    assert learned > 60.0  # well above the floor: this tracker is noisy
    detector.flush()  # the recorder flushes at every protocol phase
    assert detector.peak_threshold_deg_s == learned
    detector.feed(samples[len(samples) // 2])
    assert detector.peak_threshold_deg_s == pytest.approx(learned, rel=0.2)
    fresh = AdaptiveVelocityDetector(GEOMETRY)
    fresh.feed(samples[0])
    assert fresh.peak_threshold_deg_s == 100.0  # the initial PT, before any velocity


def test_fixations_come_back_half_a_window_after_the_saccade() -> None:
    detector = AdaptiveVelocityDetector(GEOMETRY, min_duration_ms=50.0)
    step_ms = 1.0
    ended_at = None
    for k in range(400):
        x = 1000.0 if k < 200 else 1400.0  # a 400 px (~9°) jump at 200 ms
        if detector.feed(GazeSample(k * step_ms, x, 700.0)):
            ended_at = k * step_ms
            break
    assert ended_at is not None and 200.0 <= ended_at <= 200.0 + 2.0  # when the velocity reaches PT


def test_registry_and_default() -> None:
    assert DETECTORS["adaptive"] is AdaptiveVelocityDetector
    assert DEFAULT_DETECTOR in DETECTORS
    assert isinstance(DETECTORS["adaptive"](GEOMETRY, min_duration_ms=80.0), FixationDetector)


@pytest.mark.parametrize(
    "option",
    [
        "min_duration_ms",
        "window_ms",
        "initial_peak_deg_s",
        "min_peak_deg_s",
        "adaptation_ms",
        "update_ms",
        "max_gap_ms",
    ],
)
def test_rejects_non_positive_options(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        AdaptiveVelocityDetector(GEOMETRY, **{option: -1.0})


def test_rejects_bad_samples() -> None:
    detector = AdaptiveVelocityDetector(GEOMETRY)
    detector.feed(GazeSample(5.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"strictly increasing t_ms; got 5.0 after 5.0"):
        detector.feed(GazeSample(5.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="marked valid"):
        adaptive_velocity(
            [0.0, 1.0], [[0.0, 0.0], [math.inf, 0.0]], np.array([True, True]), geometry=GEOMETRY
        )


def test_a_long_window_is_estimated_from_evenly_strided_velocities() -> None:
    rng = np.random.default_rng(3)
    velocity = np.abs(rng.normal(0.0, 10.0, 12_000))  # 10 s at 1,200 Hz
    threshold = _AdaptiveThreshold(initial_deg_s=100.0, floor_deg_s=1.0, adaptation_ms=1e9, update_ms=1e9)
    for i, v in enumerate(velocity[:-1].tolist()):
        threshold.add(float(i), v)
    threshold._next_update_ms = -math.inf
    threshold.add(float(velocity.size - 1), float(velocity[-1]))
    peak, onset = reference_threshold(velocity[::4], 100.0, 1.0)  # 12,000 → every 4th: 3,000
    assert (threshold.peak_deg_s, threshold.onset_deg_s) == (pytest.approx(peak), pytest.approx(onset))
    assert threshold.peak_deg_s == pytest.approx(reference_threshold(velocity, 100.0, 1.0)[0], rel=0.05)
