"""``rbdm compare``: a recorded study's annotators and the Trainer's saliency, compared (RBDM §5.3.2).

Reads a study file written by labeling sessions, decodes its stimuli from the sessions' stimulus-set
spec, adds the Trainer's deep-Taylor relevance (``--model``, or the default model in ``assets/`` when
it exists; cached next to the study file) and writes RBDM Table 1 (``table1.csv``: the mean over the
stimuli), every stimulus's rows (``stimuli.csv``) and a Figure 7 style PNG (``comparison.png``: the
image with each heatmap's contour, then each heatmap). All numbers come from
:class:`tracking.study.StudyComparison`.

Trials the experimenter marked bad in the live monitor are left out, as if never recorded, and the
report says how many and which (``--include-flagged`` counts them).

The study file is opened read-only: it is never created, initialised or migrated. A pair with a heatmap
that is zero everywhere (no fixation on the image) is "not comparable": ``nan`` with a note, never
perfect agreement; the notes are printed, and the exit status is 1 when no pair could be compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracking.study import Study, StudyComparison, StudyTables

__all__ = ["add_compare", "cmd_compare"]


def add_compare(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm compare``."""
    from analysis.geometry import VISUAL_SPAN_DEG
    from rbdm_gui.workflows.assets import DEFAULT_TRAINER

    parser.add_argument("study", type=Path, help="study file (.sqlite) written by labeling sessions")
    parser.add_argument(
        "--out", type=Path, default=Path("out/compare"), help="output folder (default: out/compare)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"trained .keras model (default: {DEFAULT_TRAINER.name} if present)",
    )
    parser.add_argument("--no-model", action="store_true", help="compare the annotators only")
    parser.add_argument("--analyzer", default="deep_taylor", help="relevance analyzer (default: deep_taylor)")
    parser.add_argument(
        "--stimulus-set", default=None, help="stimulus set key (default: the one with the most annotators)"
    )
    parser.add_argument(
        "--annotators", default=None, help="comma-separated pseudonyms to compare (default: all)"
    )
    parser.add_argument(
        "--include-flagged",
        action="store_true",
        help="also compare the trials marked bad in the live monitor (default: left out)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="relevance cache (default: next to the study file)"
    )
    parser.add_argument(
        "--figure-stimuli", type=int, default=8, help="stimuli (rows) in comparison.png (default: 8)"
    )
    parser.add_argument(
        "--angle-deg",
        type=float,
        default=VISUAL_SPAN_DEG,
        help=f"visual angle of the span (default: {VISUAL_SPAN_DEG:g})",
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare; write ``table1.csv``, ``stimuli.csv`` and ``comparison.png``; print Table 1."""
    from analysis.files import atomic_write_text
    from analysis.study import stimulus_rows_csv
    from rbdm_gui.workflows.figures import save_comparison_figure
    from tracking.study import (
        StudyComparison,
        default_cache_dir,
        load_stimulus_images,
        model_relevance,
        read_study,
        trainer_info,
    )

    if args.figure_stimuli < 0:
        raise ValueError(f"--figure-stimuli must be >= 0; got {args.figure_stimuli!r}.")
    study = read_study(args.study, stimulus_set=args.stimulus_set, include_flagged=args.include_flagged)
    model_path = _model_path(args)
    trainer = trainer_info(model_path) if model_path is not None else None
    comparison = StudyComparison(
        study, load_stimulus_images(study), trainer=trainer, angle_deg=args.angle_deg
    )
    if args.annotators:
        comparison.set_annotators([a.strip() for a in args.annotators.split(",") if a.strip()])
    notes = list(study.notes)
    if trainer is not None:
        cache = args.cache_dir if args.cache_dir is not None else default_cache_dir(study.path)
        relevance = model_relevance(comparison.images, trainer, analyzer=args.analyzer, cache_dir=cache)
        comparison.set_relevance(relevance)
        notes.extend(relevance.notes)
    tables = comparison.tables()

    out = Path(args.out)
    atomic_write_text(out / "table1.csv", tables.study.to_csv())
    atomic_write_text(out / "stimuli.csv", stimulus_rows_csv(tables.stimuli))
    written = [out / "table1.csv", out / "stimuli.csv"]
    shown = [comparison.stimulus(s) for s in list(tables.stimuli)[: args.figure_stimuli]]
    if shown:
        written.append(
            save_comparison_figure(
                out / "comparison.png",
                [s.image for s in shown],
                [s.heatmaps for s in shown],
                [{} for _ in shown],
                titles=[s.stimulus_id for s in shown],
            )
        )
    _report(comparison, tables, notes, written)
    return 1 if _nothing_comparable(tables) else 0


def _nothing_comparable(tables: StudyTables) -> bool:
    """Table 1 has pairs but not one number: say so, and end with a failing status."""
    import math

    rows = tables.study.rows
    if not rows or any(not math.isnan(v) for row in rows for v in row.values):
        return False
    print(
        "\nno pair could be compared: every heatmap of a pair was zero everywhere (no fixation on the "
        "image). Check where the sessions drew the images ('stimulus_rect') and the tracker's calibration.",
        file=sys.stderr,
    )
    return True


def _model_path(args: argparse.Namespace) -> Path | None:
    from rbdm_gui.workflows.assets import DEFAULT_TRAINER

    if args.no_model:
        return None
    if args.model is not None:
        if not Path(args.model).is_file():
            raise ValueError(
                f"no model at {args.model}: train one with 'rbdm train-trainer', or pass --no-model."
            )
        return Path(args.model)
    return DEFAULT_TRAINER if DEFAULT_TRAINER.is_file() else None


def _flagged_text(study: Study, *, shown: int = 5) -> str:
    """How many trials marked bad the study left out, and the first ``shown`` of them."""
    flagged = study.flagged_left_out
    which = "; ".join(f"{f.annotator} on {f.stimulus_id} ({f.reason})" for f in flagged[:shown])
    more = f"; and {len(flagged) - shown} more" if len(flagged) > shown else ""
    trials, them = ("trial", "it") if len(flagged) == 1 else ("trials", "them")
    return (
        f"{len(flagged)} {trials} marked bad left out: {which}{more}. --include-flagged compares {them} too."
    )


def _report(comparison: StudyComparison, tables: StudyTables, notes: list[str], written: list[Path]) -> None:
    study = comparison.study
    first = study.stimuli[0]
    height, width = comparison.shape(first)
    span = comparison.span(first)
    model = f", model {comparison.model_id}" if comparison.model_id else " (no model: annotators only)"
    print(
        f"RBDM Table 1 of {study.path.name}: {len(tables.stimuli)} stimuli of {study.stimuli_spec}, "
        f"annotators {', '.join(comparison.annotators)}{model}"
    )
    print(f"compared at {width}×{height} px; visual span {span.radius:.2f} px, c {span.c:.2f} px; "
          f"n = {tables.n_points} points")  # fmt: skip
    if study.flagged_left_out:
        print(_flagged_text(study))
    print()
    print(
        tables.study.format()
        if tables.study.rows
        else "(no pairs to compare: choose two annotators or a model)"
    )
    for note in (*tables.study.notes, *notes):
        print(f"note: {note}")
    print(f"\nwrote {', '.join(str(path) for path in written)}")
