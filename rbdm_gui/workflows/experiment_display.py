"""What the Experiments screen says, without Qt: kept runs, result tables, captions (RBDM §5.5, §6).

The text of a kept run in the list and its tooltip, the title above the learning curves (RBDM Figure
10), the three result tables as :class:`TextTable` (one row per Trainee; by variant, mean ± sd over the
seeds; by variant against ``none`` with 95 % intervals and verdicts from
:mod:`analysis.experiment_report`), the caption of a Trainee's confusion matrix (RBDM Figures 11 and 12)
and what the form says about a Trainer. :class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`
hands these to the panels, which only draw them.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5, §6 and Figures 10–12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from analysis.experiment import ExperimentRun, VariantResult, summary_by_variant
from analysis.experiment_report import VariantComparison
from analysis.labels import LABELS
from rbdm_gui.workflows.experiment_form import run_used, trainer_card

__all__ = [
    "COMPARISON_COLUMNS",
    "SUMMARY_COLUMNS",
    "TRAINEE_COLUMNS",
    "CurveKey",
    "TextTable",
    "TraineeKey",
    "comparison_cells",
    "comparison_table",
    "confusion_caption",
    "confusion_labels",
    "plot_title",
    "run_list_text",
    "run_tooltip",
    "short_run_name",
    "summary_table",
    "trainee_cells",
    "trainee_table",
    "trainer_text",
]

class TraineeKey(NamedTuple):
    """A Trainee of a run: its folder, variant, seed and training-set size (a run may train several sizes
    with the same variants and seeds, each Trainee with its own confusion matrix)."""

    run_dir: Path
    variant: str
    seed: int
    train_size: int = 0

    @classmethod
    def of(cls, run_dir: Path, result: VariantResult) -> TraineeKey:
        """The key of ``result``, a Trainee of the run in ``run_dir``."""
        return cls(run_dir, result.variant, result.seed, result.train_size)


#: A curve of the followed run: (variant, seed).
CurveKey = tuple[str, int]

TRAINEE_COLUMNS: Final = (
    "variant",
    "seed",
    "status",
    "best F1",
    "best step",
    "final F1",
    "final acc.",
    "final loss",
    "mean F1",
    "steps",
    "time (s)",
    "images",
)
SUMMARY_COLUMNS: Final = ("variant", "seeds", "best F1", "final F1", "mean F1")
#: Columns of the comparison with ``none`` (analysis.experiment_report), per training-set size.
COMPARISON_COLUMNS: Final = (
    "images",
    "variant",
    "seeds",
    "AULC [95 % CI]",
    "steps to threshold (reached)",
    "best val. F1 [95 % CI]",
    "test F1 [95 % CI]",
    "Δ AULC vs none, Holm p",
    "verdict",
)


@dataclass(frozen=True, slots=True)
class TextTable:
    """A table as text: column titles, rows of cells, and whether a first column names the run."""

    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    several: bool


def trainee_table(runs: Sequence[ExperimentRun]) -> TextTable:
    """The results table: one row per Trainee (a run column when several runs are compared)."""
    several = len(runs) > 1
    rows = tuple(
        tuple(([run.run_dir.name] if several else []) + trainee_cells(result))
        for run in runs
        for result in run.results
    )
    return TextTable(tuple((["run"] if several else []) + list(TRAINEE_COLUMNS)), rows, several)


def summary_table(runs: Sequence[ExperimentRun]) -> TextTable:
    """By variant, mean ± sd over the seeds (per training-set size when a run has several)."""
    several = len(runs) > 1
    rows = []
    for run in runs:
        sized = len(run.train_sizes) > 1
        for row in summary_by_variant(run.results):
            cells = [run.run_dir.name] if several else []
            cells += [
                f"{row['variant']} · {row['train_size']}" if sized else row["variant"],
                str(row["seeds"]),
            ]
            for name in ("best_val_macro_f1", "final_val_macro_f1", "mean_val_macro_f1"):
                cells.append(f"{row[name]:.3f} ± {row[name + '_sd']:.3f}")
            rows.append(tuple(cells))
    return TextTable(tuple((["run"] if several else []) + list(SUMMARY_COLUMNS)), tuple(rows), several)


def comparison_table(
    runs: Sequence[ExperimentRun], comparisons: Mapping[Path, Sequence[VariantComparison]]
) -> TextTable:
    """By variant against ``none``: means with 95 % intervals, paired differences, verdicts."""
    several = len(runs) > 1
    rows = tuple(
        tuple(([run.run_dir.name] if several else []) + comparison_cells(row))
        for run in runs
        for row in comparisons.get(run.run_dir, ())
    )
    return TextTable(tuple((["run"] if several else []) + list(COMPARISON_COLUMNS)), rows, several)


def run_list_text(run: ExperimentRun) -> str:
    """A kept run in the list: its folder, then status, variants × seeds, architecture and epochs."""
    config = run.config
    variants = {r.variant for r in run.results} | set(config.variants)
    return (
        f"{run.run_dir.name}\n   {run.status} · {len(variants)} variants × {len(config.seeds)} seeds · "
        f"{config.architecture}, {config.epochs} epochs"
    )


def run_tooltip(run: ExperimentRun) -> str:
    """A kept run in detail: folder, data, Trainer, times, images really used, warnings and error."""
    config = run.config
    lines = [
        str(run.run_dir),
        f"dataset {config.dataset} ({config.train_split}: {config.n_train or 'all'}, "
        f"{config.val_split}: {config.n_val or 'all'}), Trainer {Path(config.trainer).name}",
        f"started {run.started_utc}" + (f", ended {run.finished_utc}" if run.finished_utc else ""),
    ]
    used = run_used(run)
    if used:
        lines.append(f"used {used.get('n_train')} training and {used.get('n_val')} validation images")
        lines += [f"warning: {w}" for w in used.get("warnings") or []]
    if run.error:
        lines.append(f"error: {run.error}")
    return "\n".join(lines)


def short_run_name(run: ExperimentRun) -> str:
    """``20250101-120000-synthetic`` → ``120000``: enough to tell compared runs apart in a legend."""
    parts = run.run_dir.name.split("-")
    return parts[1] if len(parts) > 2 and parts[1].isdigit() else run.run_dir.name


def plot_title(run: ExperimentRun) -> str:
    """The title above a reopened run's curves (RBDM Figure 10)."""
    config = run.config
    return (
        f"{run.run_dir.name} ({run.status}): {config.architecture} Trainees on {config.dataset}, "
        f"{config.epochs} epochs, switch after {config.switch_epoch}, seeds {list(config.seeds)}"
    )


def trainee_cells(result: VariantResult) -> list[str]:
    """One row of the results table (:data:`TRAINEE_COLUMNS`)."""
    return [
        result.variant,
        str(result.seed),
        result.status,
        f"{result.best_val_macro_f1:.3f}",
        str(result.best_step),
        f"{result.final_val_macro_f1:.3f}",
        f"{result.final_val_accuracy:.3f}",
        f"{result.final_val_loss:.3f}",
        f"{result.mean_val_macro_f1:.3f}",
        str(result.steps),
        f"{result.duration_s:.1f}",
        str(result.train_size) if result.train_size else "",
    ]


def comparison_cells(row: VariantComparison) -> list[str]:
    """One row of the comparison table (:data:`COMPARISON_COLUMNS`)."""

    def ci(measure: str, digits: int = 3) -> str:
        value = row.means.get(measure)
        if value is None:
            return "–"
        if value.n < 2:
            return f"{value.mean:.{digits}f}"
        return f"{value.mean:.{digits}f} [{value.low:.{digits}f}, {value.high:.{digits}f}]"

    difference, p = row.differences.get("aulc"), row.adjusted_p.get("aulc")
    delta = (
        "–" if difference is None else f"{difference.mean:+.3f} [{difference.low:.3f}, {difference.high:.3f}]"
    )
    if difference is not None and p is not None:
        delta += f", p = {p:.3g}"
    return [
        str(row.train_size) if row.train_size else "?",  # runs written before sizes were recorded
        row.variant,
        str(len(row.seeds)),
        ci("aulc"),
        f"{ci('steps_to_threshold', 0)} ({row.reached}/{len(row.seeds)})",
        ci("best_val_macro_f1"),
        ci("test_macro_f1"),
        delta,
        row.verdict,
    ]


def confusion_caption(key: TraineeKey | None, matrix: NDArray[np.int64] | None) -> str:
    """The caption of a Trainee's confusion matrix (RBDM Figures 11 and 12), or what to do for one."""
    if key is None or matrix is None:
        return "Confusion matrix: pick a finished Trainee in the table."
    run_dir, variant, seed, train_size = key
    accuracy = float(np.trace(matrix)) / max(int(matrix.sum()), 1)
    size = f", {train_size} training images" if train_size else ""
    return (
        f"{variant}, seed {seed}{size} ({run_dir.name}): rows true class, columns predicted, on the "
        f"validation images after the last step; accuracy {accuracy:.3f}. Colour: share of the row."
    )


def confusion_labels(matrix: NDArray[np.int64]) -> list[str]:
    """The class names of a confusion matrix's rows and columns, in :data:`analysis.labels.LABELS` order."""
    return list(LABELS[: len(matrix)])


def trainer_text(path: Path) -> str:
    """What the form says about a Trainer: its architecture, input size and score from its model card."""
    card = trainer_card(Path(path).expanduser())
    if card is None:
        return "No model card beside this file: images are loaded at 48 × 48 px."
    height, width, channels = card.input_shape
    f1 = card.scores.get("val_macro_f1")
    scored = f", val. macro-F1 {f1:.3f}" if isinstance(f1, float) else ""
    return (
        f"{card.architecture}, input {width} × {height} × {channels}{scored}; "
        f"trained on {card.data.get('dataset', '?')}."
    )
