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
   The stacked column is the median of several runs, with their min–max beside it (run-to-run spread).
   The mean mask is also compared with the bare ``R >= R.mean(axis=(1, 2))`` over the same stack, the
   two timed alternately in paired runs (median ratio and its min–max), with whether the masks agree.
3. Masking a FER-sized dataset (2,000 float32 maps, 48 × 48) with ``relevance_masks`` (the stacked
   API) against one mask call per image, paired runs, with whether the masks agree.

``--masks-only`` skips table 1.

Multithreaded BLAS suffers when other processes hold the cores: on a busy machine compare with
``OPENBLAS_NUM_THREADS=1``. The first line printed gives the load average for that reason.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from analysis.heatmap import gaze_heatmap
from analysis.masked_dataset import perceptive_options, relevance_masks
from analysis.masking import MASKS
from benchmarks._report import best_of, print_table

Floats = NDArray[np.float64]

N_FIXATIONS = 50
N_POINTS = 15
DATASET_MAPS = 2000
#: Repeats of each stacked measurement; the table gives their median and their min–max.
REPEATS = 9


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


def _stack_rates(mask: Callable[[Floats], object], batch: Floats) -> NDArray[np.float64]:
    """Images per second of ``mask(batch)`` in each of ``REPEATS`` runs (of 3 calls each)."""
    return np.array([len(batch) / best_of(partial(mask, batch), repeat=1, number=3) for _ in range(REPEATS)])


def _spread(rates: NDArray[np.float64]) -> str:
    return f"{np.min(rates):,.0f}–{np.max(rates):,.0f}"


def _bare_mean(batch: Floats) -> NDArray[np.bool_]:
    mask: NDArray[np.bool_] = batch >= batch.mean(axis=(1, 2), keepdims=True)
    return mask


def _paired_times(first: Callable[[], object], second: Callable[[], object]) -> NDArray[np.float64]:
    """(REPEATS, 2) best-of-3 times of two calls, alternated so that the load falls on both alike."""
    return np.array([[best_of(fn, repeat=3) for fn in (first, second)] for _ in range(REPEATS)])


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
        for name in MASKS:
            mask = partial(MASKS[name], **options[name])
            per_map = _images_per_s(mask, batch)
            rates = _stack_rates(mask, batch)
            theirs = _images_per_s(baselines[name], batch[: count // 4])
            median = float(np.median(rates))
            rows.append([f"{size}×{size}", name, per_map, median, _spread(rates), theirs, median / theirs])
        times = _paired_times(partial(MASKS["mean"], batch), partial(_bare_mean, batch))
        same = "same masks" if np.array_equal(MASKS["mean"](batch), _bare_mean(batch)) else "masks differ"
        bare = count / times[:, 1]
        rows.append(
            [
                f"{size}×{size}",
                f"bare R >= R.mean() ({same})",
                "-",
                float(np.median(bare)),
                _spread(bare),
                "-",
                "-",
            ]
        )
        ratios = times[:, 0] / times[:, 1]
        rows.append(
            [
                f"{size}×{size}",
                "mean time / bare time (paired runs)",
                "-",
                float(np.median(ratios)),
                f"{np.min(ratios):.2f}–{np.max(ratios):.2f}",
                "-",
                "-",
            ]
        )
    print_table(
        f"Masking throughput in images/s (perceptive: n_points = {N_POINTS}, kernel scaled from 1200 px); "
        f"stack: median and min–max of {REPEATS} runs",
        ["map", "mask", "per map", "stack (B, H, W)", "stack min–max", "baseline", "stack / baseline ×"],
        rows,
    )


def dataset_table(rng: np.random.Generator) -> None:
    """relevance_masks over a FER-sized dataset (float32 maps) against one mask call per image."""
    maps = rng.normal(size=(DATASET_MAPS, 48, 48)).astype(np.float32)
    rows: list[list[object]] = []
    for name, options in (("negative", {}), ("mean", {}), ("perceptive", perceptive_options((48, 48)))):
        mask: Callable[[Floats], NDArray[np.bool_]] = partial(MASKS[name], **options)

        def per_image(mask: Callable[[Floats], NDArray[np.bool_]] = mask) -> NDArray[np.bool_]:
            return np.stack([mask(relevance) for relevance in maps])

        times = _paired_times(per_image, partial(relevance_masks, maps, name, options=options))
        ratios = times[:, 0] / times[:, 1]
        same = np.array_equal(relevance_masks(maps, name, options=options).masks, per_image())
        rows.append(
            [
                name,
                float(np.median(DATASET_MAPS / times[:, 0])),
                float(np.median(DATASET_MAPS / times[:, 1])),
                float(np.median(ratios)),
                f"{np.min(ratios):.2f}–{np.max(ratios):.2f}",
                "same masks" if same else "masks differ",
            ]
        )
    print_table(
        f"Masking a dataset of {DATASET_MAPS:,} float32 maps 48×48 in images/s: relevance_masks (stacked) "
        f"against one call per image; medians of {REPEATS} paired runs",
        ["mask", "per image", "relevance_masks", "speed-up ×", "speed-up min–max", "masks"],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core", description=__doc__.splitlines()[0])
    parser.add_argument("--masks-only", action="store_true", help="skip the heatmap table")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20200101)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"{os.cpu_count()} CPUs, load average {load}, OPENBLAS_NUM_THREADS={threads}")
    if not args.masks_only:
        heatmap_table(rng)
    masking_table(rng)
    dataset_table(rng)


if __name__ == "__main__":
    main()
