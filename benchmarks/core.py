"""Benchmark of the numeric core: gaze heatmaps (RBDM §5.3.2) and masks (RBDM §5.4).

Run as ``python -m benchmarks.core``. Each table has a baseline measured in the same run:

1. Gaze heatmap, 1200 × 1200 px (the stimulus size of RBDM §5.3.1) from 50 fixations, with the paper's
   kernel on the paper's screen: c = 0.17 · visual span (≈ 44.5 px) and, for the truncated variant,
   the visual span (≈ 261.8 px, 5°) as radius. Baseline: the equation evaluated the obvious
   vectorised way, over all pixels, one fixation at a time. The difference column is the largest
   relative difference to that float64 baseline over the pixels where it is > 0, plus the number of
   pixels where one map is 0 and the other is not.
2. Masking throughput in images per second on 48 × 48 (FER-sized) and 224 × 224 relevance maps,
   one map per call and a whole (B, H, W) stack in one call.
   Perceptive masking uses n_points = 15 and the paper's kernel scaled to the image as if drawn at
   1200 px: c = gaussian_c · size / 1200, radius = visual span · size / 1200 (1.78 px and 10.5 px at
   48 px). Baselines: a full ``np.argsort`` for negative masking, ``R >= R.mean()`` for mean masking,
   and for perceptive masking the top pixels by ``np.argsort`` plus the baseline heatmap of table 1.
   The mean mask is also compared with the bare ``R >= R.mean()`` (the faster of map by map and the
   whole stack at once) on the same maps, with whether the masks agree.

Multithreaded BLAS suffers when other processes hold the cores: on a busy machine compare with
``OPENBLAS_NUM_THREADS=1``. The first line printed gives the load average for that reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from analysis.heatmap import gaze_heatmap
from analysis.masking import MASKS
from benchmarks._report import best_of, print_table

Floats = NDArray[np.float64]

N_FIXATIONS = 50
N_POINTS = 15


def naive_heatmap(points: Floats, shape: tuple[int, int], c: float, radius: float | None = None) -> Floats:
    """I(x, y) = Σ_n exp(-((x - f_nx)² + (y - f_ny)²) / 2c²) over the whole grid, fixation by fixation."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    heat = np.zeros(shape)
    for fx, fy in points:
        d2 = (cols - fx) ** 2 + (rows - fy) ** 2
        term = np.exp(-d2 / (2 * c * c))
        if radius is not None:
            term[d2 > radius * radius] = 0.0
        heat += term
    return heat


def _difference(fast: NDArray[np.float32], reference: Floats) -> str:
    support = reference > 0
    relative = np.abs(fast[support] - reference[support]) / reference[support]
    mismatched = int(((fast > 0) != support).sum())
    return f"{relative.max():.2e} / {mismatched} px"


def heatmap_table(rng: np.random.Generator) -> None:
    geometry = ScreenGeometry()
    c, span = geometry.gaussian_c(), geometry.visual_span_px()
    shape = (1200, 1200)
    points = rng.uniform(0, 1200, size=(N_FIXATIONS, 2))
    baseline = best_of(lambda: naive_heatmap(points, shape, c), repeat=3)
    rows: list[list[object]] = [["naive formula (baseline)", baseline * 1e3, 1.0, "-"]]
    for label, radius in (("no radius", None), (f"radius {span:.1f} px", span)):
        reference = naive_heatmap(points, shape, c, radius)
        if radius is not None:
            naive_time = best_of(partial(naive_heatmap, points, shape, c, radius), repeat=3)
            rows.append([f"naive formula, {label}", naive_time * 1e3, baseline / naive_time, "-"])
        fast_time = best_of(partial(gaze_heatmap, points, shape, c, radius=radius), repeat=15)
        fast = gaze_heatmap(points, shape, c, radius=radius)
        rows.append(
            [f"gaze_heatmap, {label}", fast_time * 1e3, baseline / fast_time, _difference(fast, reference)]
        )
    print_table(
        f"Gaze heatmap 1200×1200 px, {N_FIXATIONS} fixations, c = {c:.1f} px (ratios to the naive formula)",
        ["variant", "time ms", "speed-up ×", "max rel. diff / support mismatch"],
        rows,
    )


def _baseline_negative(relevance: Floats) -> NDArray[np.bool_]:
    order = np.argsort(-relevance.ravel(), kind="stable")
    mask = np.ones(relevance.size, dtype=bool)
    mask[order[: math.ceil(0.1 * relevance.size)]] = False
    return mask.reshape(relevance.shape)


def _baseline_mean(relevance: Floats) -> NDArray[np.bool_]:
    mask: NDArray[np.bool_] = relevance >= relevance.mean()
    return mask


def _baseline_perceptive(c: float, radius: float) -> Callable[[Floats], NDArray[np.bool_]]:
    def mask(relevance: Floats) -> NDArray[np.bool_]:
        rows, cols = np.divmod(np.argsort(-relevance.ravel(), kind="stable")[:N_POINTS], relevance.shape[1])
        points = np.column_stack([cols, rows]).astype(np.float64)
        return naive_heatmap(points, (relevance.shape[0], relevance.shape[1]), c, radius) > 0

    return mask


def _images_per_s(mask: Callable[[Floats], object], batch: Floats) -> float:
    def run() -> None:
        for relevance in batch:
            mask(relevance)

    return len(batch) / best_of(run, repeat=5)


def _stack_images_per_s(mask: Callable[[Floats], object], batch: Floats) -> float:
    return len(batch) / best_of(partial(mask, batch), repeat=7)


def _bare_mean_images_per_s(batch: Floats) -> tuple[float, NDArray[np.bool_]]:
    """The faster of ``R >= R.mean()`` map by map and over the whole stack at once, and its masks."""
    per_map = _images_per_s(_baseline_mean, batch)
    stacked = _stack_images_per_s(lambda r: r >= r.mean(axis=(1, 2), keepdims=True), batch)
    return max(per_map, stacked), batch >= batch.mean(axis=(1, 2), keepdims=True)


def masking_table(rng: np.random.Generator) -> None:
    geometry = ScreenGeometry()
    rows: list[list[object]] = []
    for size, count in ((48, 400), (224, 40)):
        batch = rng.normal(size=(count, size, size))
        scale = size / 1200
        c, radius = geometry.gaussian_c() * scale, geometry.visual_span_px() * scale
        options = {"negative": {}, "mean": {}, "perceptive": {"n_points": N_POINTS, "c": c, "radius": radius}}
        baselines = {
            "negative": _baseline_negative,
            "mean": _baseline_mean,
            "perceptive": _baseline_perceptive(c, radius),
        }
        stacked_by_name: dict[str, float] = {}
        for name in MASKS:
            mask = partial(MASKS[name], **options[name])
            per_map = _images_per_s(mask, batch)
            stacked = stacked_by_name[name] = _stack_images_per_s(mask, batch)
            theirs = _images_per_s(baselines[name], batch[: count // 4])
            rows.append([f"{size}×{size}", name, per_map, stacked, theirs, stacked / theirs])
        bare, bare_masks = _bare_mean_images_per_s(batch)
        same = "same masks" if np.array_equal(MASKS["mean"](batch), bare_masks) else "masks differ"
        rows.append([f"{size}×{size}", f"bare R >= R.mean() ({same})", "-", bare, "-", "-"])
        rows.append(
            [f"{size}×{size}", "mean time / bare time", "-", bare / stacked_by_name["mean"], "-", "-"]
        )
    print_table(
        f"Masking throughput in images/s (perceptive: n_points = {N_POINTS}, kernel scaled from 1200 px)",
        ["map", "mask", "per map", "stack (B, H, W)", "baseline", "stack / baseline ×"],
        rows,
    )


def main() -> None:
    rng = np.random.default_rng(20200101)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"{os.cpu_count()} CPUs, load average {load}, OPENBLAS_NUM_THREADS={threads}")
    heatmap_table(rng)
    masking_table(rng)


if __name__ == "__main__":
    main()
