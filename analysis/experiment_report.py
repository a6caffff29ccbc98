"""What an experiment run answers: learning-speed measures per Trainee, statistics over seeds, report.md.

From a run's results and curves (:mod:`analysis.experiment`), per training-set size:

- :func:`seed_measures`: per variant and seed the normalised area under the validation macro-F1 curve
  over the first K steps (AULC), the steps to reach ``threshold_share`` of the ``none`` Trainee's best
  validation macro-F1 of the same seed ("never" kept as None), best and final validation macro-F1 and the
  test macro-F1 at the best step (:mod:`analysis.learning_speed`);
- :func:`compare_variants`: per variant the mean and 95 % t interval over seeds of every measure, the
  paired difference to ``none`` with its interval and paired t-test, Holm-corrected across the variants
  of the size, and a plain-words verdict on AULC (:mod:`analysis.paired_statistics`);
- :func:`write_report`: ``report.md`` (readable on GitHub), ``by_variant.csv`` and one figure per size
  with the mean curves and their confidence bands.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §1 and §6 (masking accelerates learning).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from analysis.files import atomic_write, atomic_write_text
from analysis.learning_speed import DEFAULT_THRESHOLD_SHARE, normalised_aulc, steps_to_reach
from analysis.paired_statistics import (
    ALPHA,
    CONFIDENCE,
    PAIRED_TEST,
    MeanCI,
    PairedDifference,
    holm,
    mean_ci,
    paired_difference,
    verdict,
)

if TYPE_CHECKING:
    from analysis.experiment import Curves, ExperimentRun, SeedCurves, VariantResult
    from analysis.trainee import CurvePoint

__all__ = [
    "BASELINE",
    "MEASURES",
    "SeedMeasures",
    "VariantComparison",
    "band_curves",
    "compare_variants",
    "plot_curves_with_bands",
    "report_markdown",
    "seed_measures",
    "write_report",
]

#: The variant every other one is compared with.
BASELINE: Final = "none"
#: Measure name → (label in reports, higher is better). AULC decides the verdict.
MEASURES: Final = {
    "aulc": ("AULC", True),
    "steps_to_threshold": ("steps to threshold", False),
    "best_val_macro_f1": ("best val. macro-F1", True),
    "final_val_macro_f1": ("final val. macro-F1", True),
    "test_macro_f1": ("test macro-F1", True),
}


@dataclass(frozen=True, slots=True)
class SeedMeasures:
    """The learning-speed measures of one Trainee.

    Parameters
    ----------
    variant, seed, train_size
        The cell.
    k_steps : int
        The AULC window of its size.
    aulc : float
        Normalised area under the validation macro-F1 curve over ``[first point, k_steps]``.
    threshold : float
        ``threshold_share`` × the ``none`` Trainee's best validation macro-F1 of the seed (NaN without one).
    steps_to_threshold : int or None
        First step at or above it; None: never within the budget.
    budget_steps : int
        The Trainee's last step (what "never" counts as when averaging: a lower bound).
    best_val_macro_f1, final_val_macro_f1, test_macro_f1 : float
    """

    variant: str
    seed: int
    train_size: int
    k_steps: int
    aulc: float
    threshold: float
    steps_to_threshold: int | None
    budget_steps: int
    best_val_macro_f1: float
    final_val_macro_f1: float
    test_macro_f1: float

    def value(self, measure: str) -> float:
        """The measure as a number (steps: "never" counts as the budget, a censored value)."""
        if measure == "steps_to_threshold":
            if not math.isfinite(self.threshold):
                return math.nan
            steps = self.steps_to_threshold
            return float(self.budget_steps if steps is None else steps)
        return float(getattr(self, measure))


def _f1_curve(points: Sequence[CurvePoint]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return (
        np.asarray([p.step for p in points], dtype=np.float64),
        np.asarray([p.val_macro_f1 for p in points], dtype=np.float64),
    )


def seed_measures(
    results: Sequence[VariantResult],
    curves: Curves,
    *,
    auc_steps: int | None = None,
    threshold_share: float = DEFAULT_THRESHOLD_SHARE,
) -> list[SeedMeasures]:
    """The measures of every finished Trainee with a curve, in ``results`` order.

    K is ``auc_steps`` or, per size, the shortest curve's last step (so every Trainee of a size is measured
    over the same steps); a ``auc_steps`` beyond a curve is cut to that size's shortest curve too.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6.
    """
    done = [r for r in results if r.status == "finished" and curves.get((r.variant, r.seed, r.train_size))]
    k_of: dict[int, int] = {}
    for r in done:
        last = int(curves[(r.variant, r.seed, r.train_size)][-1].step)
        k_of[r.train_size] = min(k_of.get(r.train_size, last), last)
    if auc_steps is not None:
        k_of = {size: min(k, auc_steps) for size, k in k_of.items()}
    best_none = {(r.seed, r.train_size): r.best_val_macro_f1 for r in done if r.variant == BASELINE}
    out = []
    for r in done:
        steps, f1 = _f1_curve(curves[(r.variant, r.seed, r.train_size)])
        k = max(k_of[r.train_size], int(steps[0]))
        threshold = threshold_share * best_none.get((r.seed, r.train_size), math.nan)
        reached = steps_to_reach(steps, f1, threshold) if math.isfinite(threshold) else None
        out.append(
            SeedMeasures(
                variant=r.variant,
                seed=r.seed,
                train_size=r.train_size,
                k_steps=k,
                aulc=normalised_aulc(steps, f1, k_steps=min(k, float(steps[-1]))),
                threshold=threshold,
                steps_to_threshold=reached,
                budget_steps=int(steps[-1]),
                best_val_macro_f1=r.best_val_macro_f1,
                final_val_macro_f1=r.final_val_macro_f1,
                test_macro_f1=r.test_macro_f1,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class VariantComparison:
    """One variant at one training-set size: measures over seeds and the comparison with ``none``.

    Parameters
    ----------
    train_size : int
    variant : str
    seeds : tuple of int
    k_steps : int
        The AULC window.
    means : dict of str to MeanCI
        Per measure of :data:`MEASURES` (those with a value for every seed).
    differences : dict of str to PairedDifference
        Variant − ``none`` over the seeds both have (empty for ``none`` itself).
    adjusted_p : dict of str to float
        Holm-adjusted p-values across the variants of the size, per measure.
    reached : int
        Seeds whose curve reached the threshold.
    verdict : str
        Plain words on AULC (:func:`analysis.paired_statistics.verdict`); "baseline" for ``none``.
    """

    train_size: int
    variant: str
    seeds: tuple[int, ...]
    k_steps: int
    means: dict[str, MeanCI] = field(default_factory=dict)
    differences: dict[str, PairedDifference] = field(default_factory=dict)
    adjusted_p: dict[str, float] = field(default_factory=dict)
    reached: int = 0
    verdict: str = ""


def compare_variants(measures: Sequence[SeedMeasures], *, alpha: float = ALPHA) -> list[VariantComparison]:
    """Per training-set size (ascending) and variant (first-seen order): means, paired differences, verdicts.

    Pairs are the seeds both the variant and ``none`` finished. Holm's correction runs per size and measure
    across the variants compared with ``none``. The verdict reads the AULC difference.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6.
    """
    out: list[VariantComparison] = []
    for size in sorted({m.train_size for m in measures}):
        groups: dict[str, dict[int, SeedMeasures]] = {}
        for m in measures:
            if m.train_size == size:
                groups.setdefault(m.variant, {})[m.seed] = m
        out.extend(_compare_size(size, groups, alpha))
    return out


def _compare_size(
    size: int, groups: dict[str, dict[int, SeedMeasures]], alpha: float
) -> list[VariantComparison]:
    baseline = groups.get(BASELINE, {})
    differences: dict[str, dict[str, PairedDifference]] = {}
    for variant, by_seed in groups.items():
        seeds = sorted(set(by_seed) & set(baseline))
        if variant == BASELINE or not seeds:
            continue
        differences[variant] = {}
        for measure in MEASURES:
            a = [by_seed[s].value(measure) for s in seeds]
            b = [baseline[s].value(measure) for s in seeds]
            if all(math.isfinite(v) for v in a + b):
                differences[variant][measure] = paired_difference(a, b)
    adjusted: dict[str, dict[str, float]] = {v: {} for v in differences}
    for measure in MEASURES:
        tested = [v for v in differences if measure in differences[v]]
        p = [float(x) for x in holm([differences[v][measure].p for v in tested])] if tested else []
        for variant, value in zip(tested, p, strict=True):
            adjusted[variant][measure] = float(value)
    return [
        _comparison(size, variant, by_seed, differences.get(variant, {}), adjusted.get(variant, {}), alpha)
        for variant, by_seed in groups.items()
    ]


def _comparison(
    size: int,
    variant: str,
    by_seed: dict[int, SeedMeasures],
    differences: dict[str, PairedDifference],
    adjusted: dict[str, float],
    alpha: float,
) -> VariantComparison:
    rows = [by_seed[s] for s in sorted(by_seed)]
    means = {}
    for measure in MEASURES:
        values = [r.value(measure) for r in rows]
        if all(math.isfinite(v) for v in values):
            means[measure] = mean_ci(values)
    if variant == BASELINE:
        text = "baseline"
    elif "aulc" in differences:
        text = verdict(differences["aulc"], adjusted["aulc"], measure=MEASURES["aulc"][0], alpha=alpha)
    else:
        text = "no paired seeds with the baseline"
    return VariantComparison(
        train_size=size,
        variant=variant,
        seeds=tuple(sorted(by_seed)),
        k_steps=rows[0].k_steps,
        means=means,
        differences=differences,
        adjusted_p=adjusted,
        reached=sum(r.steps_to_threshold is not None for r in rows),
        verdict=text,
    )


# --------------------------------------------------------------------------------------------------------
# Curves with confidence bands
# --------------------------------------------------------------------------------------------------------


def band_curves(curves: SeedCurves) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Per variant the validation macro-F1 over its seeds at the steps all reached: ``step``, ``mean``,
    ``low``, ``high`` (t interval; ``low == high == mean`` for one seed)."""
    by_variant: dict[str, list[dict[int, float]]] = {}
    for (variant, _), points in curves.items():
        if points:
            by_variant.setdefault(variant, []).append({p.step: p.val_macro_f1 for p in points})
    out = {}
    for variant, runs in by_variant.items():
        steps = sorted(set.intersection(*(set(run) for run in runs)))
        table = {name: np.zeros(len(steps)) for name in ("mean", "low", "high")}
        for i, step in enumerate(steps):
            ci = mean_ci([run[step] for run in runs])
            table["mean"][i] = ci.mean
            table["low"][i] = ci.low if len(runs) > 1 else ci.mean
            table["high"][i] = ci.high if len(runs) > 1 else ci.mean
        out[variant] = {"step": np.asarray(steps, dtype=np.float64), **table}
    return out




def plot_curves_with_bands(curves: SeedCurves, path: str | Path, *, title: str = "") -> Path:
    """Mean validation macro-F1 per variant with its 95 % confidence band over seeds, into a PNG.

    Colour tells the mask source, dashed lines the ``+switch`` variants. Matplotlib's Agg canvas directly.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6, Figure 10.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from analysis.experiment import MASK_SOURCE_COLOURS

    figure = Figure(figsize=(8, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for variant, table in band_curves(curves).items():
        colour = MASK_SOURCE_COLOURS.get(variant.removesuffix("+switch"), "#7f7f7f")
        dashed = variant.endswith("+switch")
        ax.plot(table["step"], table["mean"], color=colour, linestyle="--" if dashed else "-", label=variant)
        ax.fill_between(table["step"], table["low"], table["high"], color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation macro-F1")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"mean, {CONFIDENCE:.0%} CI over seeds")
    if title:
        ax.set_title(title, fontsize=10)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=100)
    return target


# --------------------------------------------------------------------------------------------------------
# report.md and by_variant.csv
# --------------------------------------------------------------------------------------------------------


def _ci(ci: MeanCI | None, digits: int = 3) -> str:
    if ci is None:
        return "–"
    if ci.n < 2:
        return f"{ci.mean:.{digits}f}"
    return f"{ci.mean:.{digits}f} [{ci.low:.{digits}f}, {ci.high:.{digits}f}]"


def _diff(d: PairedDifference | None, p: float | None, digits: int = 3) -> str:
    if d is None:
        return "–"
    p_text = "n/a" if p is None or not math.isfinite(p) else f"{p:.3g}"
    return f"{d.mean:+.{digits}f} [{d.low:.{digits}f}, {d.high:.{digits}f}], p = {p_text}"


def report_markdown(run: ExperimentRun, comparisons: Sequence[VariantComparison]) -> str:
    """The text of ``report.md``: setting, method, and per training-set size the figure and two tables."""
    config = run.config
    share = f"{config.threshold_share:.0%}"
    lines = [
        f"# Experiment report: {run.run_dir.name}",
        "",
        f"- Dataset `{config.dataset}`; Trainer `{Path(config.trainer).name}` ({config.analyzer}); "
        f"Trainee {config.architecture}, {config.epochs} epochs (switch after {config.switch_epoch}), "
        f"batch {config.batch_size}, a curve point every {config.eval_every_steps} steps.",
        f"- Training-set sizes {', '.join(str(n) for n in run.train_sizes)} (class-balanced, nested; subset "
        f"seed {config.subset_seed}); seeds {', '.join(str(s) for s in config.seeds)}; status {run.status}.",
        f"- Test images: {run.test_source or 'not recorded'}. They play no part in choosing the best step.",
        f"- {_pairing(run)}",
        f"- Statistics: mean and {CONFIDENCE:.0%} Student-t interval over seeds; differences are paired "
        f"by seed (variant − none), tested with a {PAIRED_TEST}, Holm-corrected across the variants of a "
        f"size (α = {ALPHA}). The verdict reads AULC, the normalised area under the validation macro-F1 "
        f"curve over the first K steps. Steps to threshold: first step at ≥ {share} of the none Trainee's "
        'best validation macro-F1 of the same seed; "never" counts as the step budget (a lower bound).',
    ]
    for size in run.train_sizes:
        rows = [c for c in comparisons if c.train_size == size]
        if not rows:
            continue
        lines += ["", f"## {size} training images (K = {rows[0].k_steps} steps)", ""]
        lines += [f"![validation macro-F1, {size} images](curves_n{size}.png)", ""]
        lines += [
            f"| variant | seeds | AULC | steps to {share} (reached) | best val. F1 | final val. F1 | "
            "test F1 | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in rows:
            steps = f"{_ci(c.means.get('steps_to_threshold'), 0)} ({c.reached}/{len(c.seeds)})"
            lines.append(
                f"| {c.variant} | {len(c.seeds)} | {_ci(c.means.get('aulc'))} | {steps} | "
                f"{_ci(c.means.get('best_val_macro_f1'))} | {_ci(c.means.get('final_val_macro_f1'))} | "
                f"{_ci(c.means.get('test_macro_f1'))} | {c.verdict} |"
            )
        compared = [c for c in rows if c.differences]
        if compared:
            lines += ["", "Paired differences to none (mean [95 % CI], Holm-adjusted p):", ""]
            lines += [
                "| variant | Δ AULC | Δ steps to threshold | Δ best val. F1 | Δ test F1 |",
                "|---|---|---|---|---|",
            ]
            for c in compared:
                cells = [
                    _diff(c.differences.get(m), c.adjusted_p.get(m), 0 if m == "steps_to_threshold" else 3)
                    for m in ("aulc", "steps_to_threshold", "best_val_macro_f1", "test_macro_f1")
                ]
                lines.append(f"| {c.variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pairing(run: ExperimentRun) -> str:
    digests: dict[tuple[int, int], set[str]] = {}
    for r in run.results:
        if r.initial_weights_sha256:
            digests.setdefault((r.seed, r.train_size), set()).add(r.initial_weights_sha256)
    if not digests:
        return "Pairing: initial weights not recorded."
    paired = sum(len(d) == 1 for d in digests.values())
    return (
        f"Pairing: within {paired} of {len(digests)} (seed, size) groups every variant started from the "
        "same initial weights (SHA-256 of the weights); variants that train on as many images as none "
        "(all but gaze and fusion, which mask only the fixated images) also drew its batch order."
    )


def _write_table(path: Path, comparisons: Sequence[VariantComparison]) -> None:
    fields: tuple[str, ...] = ("train_size", "variant", "measure", "n_seeds", "mean", "low", "high")
    fields = (*fields, "diff_mean", "diff_low", "diff_high", "p", "p_holm", "verdict")
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for c in comparisons:
            for measure, ci in c.means.items():
                d = c.differences.get(measure)
                diff = ("", "", "", "") if d is None else (d.mean, d.low, d.high, d.p)
                row = (c.train_size, c.variant, measure, ci.n, ci.mean, ci.low, ci.high, *diff)
                writer.writerow((*row, c.adjusted_p.get(measure, ""), c.verdict if measure == "aulc" else ""))


def write_report(run: ExperimentRun) -> Path:
    """Write ``report.md``, ``by_variant.csv`` and ``curves_n<size>.png`` into the run folder.

    Returns
    -------
    Path
        ``report.md``.
    """
    from analysis.experiment import curves_at

    measures = seed_measures(
        run.results,
        run.curves_by_size,
        auc_steps=run.config.auc_steps,
        threshold_share=run.config.threshold_share,
    )
    comparisons = compare_variants(measures)
    for size in run.train_sizes:
        title = f"{size} training images, {len(run.config.seeds)} seed(s)"
        target = run.run_dir / f"curves_n{size}.png"
        plot_curves_with_bands(curves_at(run.curves_by_size, size), target, title=title)
    _write_table(run.run_dir / "by_variant.csv", comparisons)
    path = run.run_dir / "report.md"
    atomic_write_text(path, report_markdown(run, comparisons))
    return path
