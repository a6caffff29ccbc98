"""Synthetic scan paths with known fixations, noise and blinks, for the detector tests."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from tracking.records import GazeSample

GEOMETRY = ScreenGeometry()  # RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm


@dataclass(frozen=True)
class ScanPath:
    """Samples plus the fixations that generated them, as (onset_ms, offset_ms, x_px, y_px)."""

    t_ms: NDArray[np.float64]
    xy_screen_px: NDArray[np.float64]
    valid: NDArray[np.bool_]
    truth: list[tuple[float, float, float, float]]

    def samples(self) -> list[GazeSample]:
        return [
            GazeSample(float(t), float(x), float(y), valid=bool(ok))
            for t, (x, y), ok in zip(self.t_ms, self.xy_screen_px, self.valid, strict=True)
        ]


def px_per_deg(geometry: ScreenGeometry = GEOMETRY) -> float:
    """Pixels per degree near the screen centre."""
    return geometry.distance_cm * math.tan(math.radians(1.0)) * geometry.px_per_cm


def scan_path(
    rng: np.random.Generator,
    *,
    n_fixations: int = 8,
    rate_hz: float = 1200.0,
    noise_deg: float = 0.03,
    saccade_ms: float = 30.0,
    blink_every: int = 0,
    blink_ms: float = 100.0,
) -> ScanPath:
    """Fixations of 200–400 ms on targets ≥ 4° apart, linear saccades, Gaussian noise.

    With ``blink_every = k > 0`` every k-th fixation is lengthened by 400 ms and has a blink of
    ``blink_ms`` in its middle; its truth is then the two halves either side of the blink.
    """
    dt_ms = 1000.0 / rate_hz
    targets = _targets(rng, n_fixations)
    times: list[float] = []
    points: list[tuple[float, float]] = []
    truth: list[tuple[float, float, float, float]] = []
    t = 0.0
    for k, target in enumerate(targets):
        if k:
            t = _saccade(times, points, t, dt_ms, targets[k - 1], target, saccade_ms)
        duration_ms = float(rng.uniform(200.0, 400.0))
        blink = blink_every > 0 and k % blink_every == blink_every - 1
        if blink:
            duration_ms += 400.0
        start, onset_ms = len(times), t
        while t <= onset_ms + duration_ms:
            times.append(t)
            points.append(target)
            t += dt_ms
        truth += _fixation_truth(times, start, target, blink, onset_ms, duration_ms, blink_ms)
    t_ms = np.array(times)
    xy = np.array(points) + rng.normal(0.0, noise_deg * px_per_deg(), size=(len(times), 2))
    valid = np.ones(len(times), dtype=bool)
    for onset, offset in _blinks(truth):
        valid[(t_ms > onset) & (t_ms < offset)] = False
    xy[~valid] = np.nan
    return ScanPath(t_ms, xy, valid, truth)


def _targets(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    rect = GEOMETRY.stimulus_rect()
    targets: list[tuple[float, float]] = []
    while len(targets) < n:
        x = float(rng.uniform(rect.x_px, rect.x_px + rect.width_px))
        y = float(rng.uniform(rect.y_px, rect.y_px + rect.height_px))
        if not targets or math.dist(targets[-1], (x, y)) >= 4.0 * px_per_deg():
            targets.append((x, y))
    return targets


def _saccade(
    times: list[float],
    points: list[tuple[float, float]],
    t: float,
    dt_ms: float,
    source: tuple[float, float],
    target: tuple[float, float],
    saccade_ms: float,
) -> float:
    start = t
    while t < start + saccade_ms:
        a = (t - start) / saccade_ms
        times.append(t)
        points.append((source[0] + a * (target[0] - source[0]), source[1] + a * (target[1] - source[1])))
        t += dt_ms
    return t


def _fixation_truth(
    times: list[float],
    start: int,
    target: tuple[float, float],
    blink: bool,
    onset_ms: float,
    duration_ms: float,
    blink_ms: float,
) -> list[tuple[float, float, float, float]]:
    first, last = times[start], times[-1]
    if not blink:
        return [(first, last, target[0], target[1])]
    middle = onset_ms + duration_ms / 2.0
    return [
        (first, middle - blink_ms / 2.0, target[0], target[1]),
        (middle + blink_ms / 2.0, last, target[0], target[1]),
    ]


def _blinks(truth: list[tuple[float, float, float, float]]) -> list[tuple[float, float]]:
    """Gaps between consecutive truth pieces at the same target are blinks."""
    return [(a[1], b[0]) for a, b in itertools.pairwise(truth) if (a[2], a[3]) == (b[2], b[3])]
