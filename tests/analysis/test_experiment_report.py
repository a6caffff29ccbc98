"""Tests for analysis.experiment_report: measures from curves, comparisons with none, report.md (no TF)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.experiment import ExperimentConfig, ExperimentRun, VariantResult
from analysis.experiment_report import (
    band_curves,
    compare_variants,
    seed_measures,
    write_report,
)
from analysis.paired_statistics import holm, paired_difference
from analysis.trainee import CurvePoint


def _curve(f1: list[float], *, every: int = 10) -> tuple[CurvePoint, ...]:
    return tuple(
        CurvePoint(every * (k + 1), 1, "unmasked", 32 * every * (k + 1), 1.0, 1.0, v, v)
        for k, v in enumerate(f1)
    )


def _result(variant: str, seed: int, curve: tuple[CurvePoint, ...], *, size: int = 100) -> VariantResult:
    best = max(p.val_macro_f1 for p in curve)
    return VariantResult(
        variant, seed, "finished", best, 10, 1, curve[-1].val_macro_f1, 0.5, 1.0, 0.3, curve[-1].step, 1.0,
        train_size=size, test_macro_f1=best - 0.05, initial_weights_sha256=f"w{seed}",
    )  # fmt: skip


def _grid() -> tuple[list[VariantResult], dict[tuple[str, int, int], tuple[CurvePoint, ...]]]:
    """none learns slowly; 'mean' reaches the same plateau sooner in each seed; 'negative' is none ± noise."""
    results, curves = [], {}
    for seed in range(5):
        wobble = 0.01 * seed
        shapes = {
            "none": [0.1, 0.2, 0.3, 0.4, 0.5 + wobble],
            "mean": [0.3 + wobble, 0.45, 0.5, 0.5, 0.5 + wobble],
            "negative": [0.1, 0.2 + (-1) ** seed * 0.01, 0.3, 0.4, 0.5 + wobble],
        }
        for variant, f1 in shapes.items():
            curves[(variant, seed, 100)] = _curve(f1)
            results.append(_result(variant, seed, curves[(variant, seed, 100)]))
    return results, curves


def test_measures_of_one_trainee_by_hand() -> None:
    results, curves = _grid()
    measures = {(m.variant, m.seed): m for m in seed_measures(results, curves)}
    none0, mean0 = measures[("none", 0)], measures[("mean", 0)]
    assert none0.k_steps == 50
    # none, seed 0: trapezoids over [10, 50] of 0.1, 0.2, 0.3, 0.4, 0.5 → mean height 0.3
    assert none0.aulc == pytest.approx(0.3)
    assert none0.threshold == pytest.approx(0.45) and none0.steps_to_threshold == 50
    # mean, seed 0: (0.375 + 0.475 + 0.5 + 0.5) · 10 / 40
    assert mean0.aulc == pytest.approx(0.4625)
    assert mean0.steps_to_threshold == 20 and mean0.value("steps_to_threshold") == 20
    short = seed_measures(results, curves, auc_steps=30, threshold_share=0.99)
    none_short = next(m for m in short if m.variant == "none" and m.seed == 0)
    assert none_short.k_steps == 30 and none_short.aulc == pytest.approx(0.2)
    assert none_short.steps_to_threshold == 50 and none_short.budget_steps == 50
    stuck = _curve([0.1] * 5)
    flat = seed_measures(
        [*results, _result("perceptive", 0, stuck)], {**curves, ("perceptive", 0, 100): stuck}
    )
    never = next(m for m in flat if m.variant == "perceptive")
    assert never.steps_to_threshold is None and never.value("steps_to_threshold") == 50  # "never": the budget


def test_comparisons_find_the_faster_variant_and_not_the_noise() -> None:
    results, curves = _grid()
    measures = seed_measures(results, curves)
    rows = {c.variant: c for c in compare_variants(measures)}
    assert rows["none"].verdict == "baseline" and not rows["none"].differences
    assert rows["mean"].verdict.startswith("accelerates learning: AULC +0.16")
    assert rows["negative"].verdict.startswith("no detectable difference")
    # the numbers are the paired t-test's, Holm-corrected over the two variants
    aulc = {v: [m.aulc for m in measures if m.variant == v] for v in ("none", "mean", "negative")}
    raw = [paired_difference(aulc[v], aulc["none"]).p for v in ("mean", "negative")]
    expected = holm(raw)
    assert rows["mean"].adjusted_p["aulc"] == pytest.approx(expected[0])
    assert rows["negative"].adjusted_p["aulc"] == pytest.approx(expected[1])
    assert rows["mean"].differences["steps_to_threshold"].mean < 0 and rows["mean"].reached == 5
    assert (
        rows["mean"].means["aulc"].n == 5 and rows["mean"].means["aulc"].low < rows["mean"].means["aulc"].mean
    )


def test_a_slower_variant_is_called_slower() -> None:
    _, curves = _grid()
    swapped = {
        (("mean" if v == "none" else "none" if v == "mean" else v), s, n): c
        for (v, s, n), c in curves.items()
    }
    swapped_results = [_result(v, s, c) for (v, s, _), c in swapped.items()]
    rows = {c.variant: c for c in compare_variants(seed_measures(swapped_results, swapped))}
    assert rows["mean"].verdict.startswith("slower: AULC -0.16")


def test_bands_are_t_intervals_over_seeds() -> None:
    curves = {("none", s): _curve([0.1 * (s + 1), 0.2]) for s in range(3)}
    band = band_curves(curves)["none"]
    np.testing.assert_array_equal(band["step"], [10, 20])
    np.testing.assert_allclose(band["mean"], [0.2, 0.2])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_{0.975, 2} · s / √3 with s = 0.1
    np.testing.assert_allclose(band["low"], [0.2 - half, 0.2])
    np.testing.assert_allclose(band["high"], [0.2 + half, 0.2])


def test_the_report_has_tables_verdicts_and_figures(tmp_path: Path) -> None:
    results, curves = _grid()
    config = ExperimentConfig(
        dataset="synthetic:n=2", trainer="t.keras", variants=("none", "mean", "negative")
    )
    run = ExperimentRun(tmp_path, config, "finished", "t0", results=tuple(results), curves_by_size=curves,
                        test_source="20 % of 'validation'")  # fmt: skip
    text = write_report(run).read_text(encoding="utf-8")
    assert "## 100 training images (K = 50 steps)" in text and "![validation macro-F1" in text
    assert "| mean | 5 | 0.4" in text and "accelerates learning: AULC +0.16" in text
    assert "two-sided paired t-test" in text and "Holm" in text and "20 % of 'validation'" in text
    assert "within 5 of 5 (seed, size) groups every variant started from the same initial weights" in text
    with Image.open(tmp_path / "curves_n100.png") as image:
        assert image.format == "PNG"
    with (tmp_path / "by_variant.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["measure"] == "aulc"]
    assert [r["variant"] for r in rows] == ["none", "mean", "negative"]
    assert rows[1]["verdict"].startswith("accelerates") and float(rows[1]["p_holm"]) < 0.05
