"""Run folders as :mod:`analysis.experiment` writes them, for the Experiments screen's tests (no Qt)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from analysis.experiment import RESULT_FIELDS, ExperimentConfig, VariantResult, trainee_dir, write_confusion
from analysis.trainee import CURVE_FIELDS, CurvePoint
from rbdm_gui.workflows.assets import DEFAULT_TRAINER

__all__ = ["points", "write_run"]


def points(seed: int, *, switch: bool) -> list[CurvePoint]:
    return [
        CurvePoint(
            step=step,
            epoch=(step + 1) // 2,
            phase="unmasked" if (not switch or step > 2) else "masked",
            images_seen=32 * step,
            train_loss=2.0 - 0.1 * step,
            val_loss=2.1 - 0.1 * step + 0.01 * seed,
            val_accuracy=0.1 * step,
            val_macro_f1=0.05 * step + 0.01 * seed,
        )
        for step in (1, 2, 3, 4)
    ]


def write_run(
    folder: Path,
    *,
    started_utc: str,
    variants: tuple[str, ...],
    seeds: tuple[int, ...],
    sizes: tuple[int, ...] = (),
) -> Path:
    """A finished run: run.json, results.csv, curves.csv and each Trainee's confusion.csv.

    With several ``sizes``, every (variant, seed) is trained once per size, as ``--train-sizes`` does, and
    the confusion matrices differ between sizes (the diagonal grows with the size's position)."""
    config = ExperimentConfig(
        dataset="synthetic:n=50",
        trainer=str(DEFAULT_TRAINER),
        variants=variants,
        seeds=seeds,
        train_sizes=sizes,
    )
    folder.mkdir(parents=True)
    record = {
        "config": config.to_dict(),
        "status": "finished",
        "started_utc": started_utc,
        "finished_utc": started_utc,
        "error": "",
    }
    (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
    results, curves = [], []
    for j, size in enumerate(sizes or (0,)):
        for k, variant in enumerate(variants):
            for seed in seeds:
                trainee_points = points(seed, switch=variant.endswith("+switch"))
                best = trainee_points[-1].val_macro_f1 - 0.01 * k
                results.append(
                    VariantResult(
                        variant, seed, "finished", best, 4, 2, best, 0.4, 1.7, best / 2, 4, 1.5,
                        train_size=size,
                    )
                )
                row = {"variant": variant, "seed": seed, **({"train_size": size} if sizes else {})}
                curves += [{**row, **p.as_row()} for p in trainee_points]
                trainee = trainee_dir(folder, config, variant, seed, size)
                trainee.mkdir(parents=True)
                matrix = np.full((8, 8), 1) + np.eye(8, dtype=int) * (k + 3 + 10 * j)
                write_confusion(trainee / "confusion.csv", matrix.astype(np.int64))
    with (folder / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in results)
    with (folder / "curves.csv").open("w", newline="", encoding="utf-8") as handle:
        names = ("variant", "seed", *(("train_size",) if sizes else ()), *CURVE_FIELDS)
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(curves)
    return folder
