"""Tests for analysis.experiment: variants, configs, the seven-variant grid, run folders, curves and plots."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.experiment import (
    RESULT_FIELDS,
    VARIANTS,
    ExperimentConfig,
    Progress,
    VariantResult,
    list_runs,
    load_run,
    mean_curves,
    new_run_dir,
    plot_learning_curves,
    run_experiment,
    summary_by_variant,
    variant_parts,
)
from analysis.trainee import CurvePoint

#: A tiny grid: small CNN Trainees, 48 faces, 2 epochs with the switch after the first, a point every 2
#: steps. The "gradient" analyzer never gives an all-zero map, even for the barely trained Trainer here.
TINY = {
    "dataset": "synthetic:n=6,size=32",
    "size_px": 32,
    "n_train": 48,
    "n_val": 24,
    "analyzer": "gradient",
    "architecture": "small_cnn",
    "options": {},
    "epochs": 2,
    "switch_epoch": 1,
    "batch_size": 16,
    "eval_every_steps": 2,
    "n_points": 6,
    "tensorboard": True,
}


@functools.lru_cache(maxsize=1)
def _trainer_file(folder: str) -> str:
    from analysis.synthetic import make_faces
    from analysis.training import NO_AUGMENTATION, save_trained, train_trainer

    rng = np.random.default_rng(0)
    x, y, _ = make_faces(64, size=32, rng=rng)
    result = train_trainer(x, y, x[:16], y[:16], epochs=2, augmentation=NO_AUGMENTATION)
    path = Path(folder) / "trainer.keras"
    save_trained(path, result)
    return str(path)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small CNN Trainer for 32 px grey faces, trained briefly."""
    return _trainer_file(str(tmp_path_factory.mktemp("trainer")))


def _point(step: int, *, phase: str = "masked", f1: float = 0.5, loss: float = 1.0) -> CurvePoint:
    return CurvePoint(step, 1 + step // 10, phase, step * 32, loss, loss + 0.1, f1, f1)


# --------------------------------------------------------------------------------------------------------
# Variants and configs
# --------------------------------------------------------------------------------------------------------


def test_the_seven_variants_of_the_paper() -> None:
    assert VARIANTS == (
        "none",
        "negative",
        "mean",
        "perceptive",
        "negative+switch",
        "mean+switch",
        "perceptive+switch",
    )
    assert [variant_parts(v) for v in VARIANTS] == [
        (None, False),
        ("negative", False),
        ("mean", False),
        ("perceptive", False),
        ("negative", True),
        ("mean", True),
        ("perceptive", True),
    ]
    with pytest.raises(ValueError, match="unknown variant 'gaze'"):
        variant_parts("gaze")


def test_configs_round_trip_through_json_and_refuse_nonsense() -> None:
    config = ExperimentConfig(dataset="d", trainer="t.keras", seeds=(0, 3), variants=("mean", "none"))
    raw = json.loads(json.dumps(config.to_dict()))
    assert ExperimentConfig.from_dict(raw) == config
    assert config.options == {"alpha": 0.35} and config.architecture == "MobileNetV2"
    with pytest.raises(ValueError, match="unknown experiment settings"):
        ExperimentConfig.from_dict({**raw, "colour": "red"})
    with pytest.raises(ValueError, match="unknown variant"):
        ExperimentConfig(dataset="d", trainer="t", variants=("median",))
    with pytest.raises(ValueError, match="at least one"):
        ExperimentConfig(dataset="d", trainer="t", variants=())
    with pytest.raises(ValueError, match="must not repeat"):
        ExperimentConfig(dataset="d", trainer="t", seeds=(1, 1))
    with pytest.raises(ValueError, match=r"1 ≤ switch_epoch < epochs \(3\)"):
        ExperimentConfig(dataset="d", trainer="t", epochs=3, switch_epoch=3)
    ExperimentConfig(dataset="d", trainer="t", epochs=3, switch_epoch=3, variants=("none", "mean"))


def test_new_run_dirs_never_collide(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path, name="x")
    first.mkdir()
    second = new_run_dir(tmp_path, name="x")
    assert second != first and second.name.startswith(first.name) and second.name.endswith("-2")


# --------------------------------------------------------------------------------------------------------
# Curves, summaries, the figure (no TensorFlow)
# --------------------------------------------------------------------------------------------------------


def test_mean_curves_average_the_seeds_where_all_have_points_and_find_the_switch() -> None:
    curves = {
        ("mean+switch", 0): [_point(2, f1=0.2), _point(4, f1=0.4, phase="unmasked"), _point(5, f1=0.5)],
        ("mean+switch", 1): [_point(2, f1=0.4), _point(4, f1=0.6, phase="unmasked")],
        ("none", 0): [_point(2, phase="unmasked", loss=2.0)],
    }
    means = mean_curves(curves)
    np.testing.assert_array_equal(means["mean+switch"]["step"], [2, 4])
    np.testing.assert_allclose(means["mean+switch"]["val_macro_f1"], [0.3, 0.5])
    np.testing.assert_array_equal(means["mean+switch"]["switch_step"], [4])
    np.testing.assert_array_equal(means["none"]["switch_step"], [])
    np.testing.assert_allclose(means["none"]["val_loss"], [2.1])


def test_the_summary_gives_mean_and_spread_over_seeds() -> None:
    def result(variant: str, seed: int, best: float) -> VariantResult:
        return VariantResult(variant, seed, "finished", best, 4, 1, best - 0.1, 0.5, 1.0, best / 2, 8, 1.0)

    rows = summary_by_variant([result("mean", 0, 0.4), result("none", 0, 0.3), result("mean", 1, 0.6)])
    assert [r["variant"] for r in rows] == ["mean", "none"]
    assert rows[0]["seeds"] == 2 and rows[0]["best_val_macro_f1"] == pytest.approx(0.5)
    assert rows[0]["best_val_macro_f1_sd"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert rows[1]["best_val_macro_f1_sd"] == 0.0


def test_the_plot_is_a_png_with_three_panels(tmp_path: Path) -> None:
    curves = {
        (variant, seed): [
            _point(s, f1=0.1 * s + 0.01 * seed, phase="unmasked" if s > 4 else "masked") for s in (2, 4, 6)
        ]
        for variant in VARIANTS
        for seed in (0, 1)
    }
    path = plot_learning_curves(curves, tmp_path / "figure" / "curves.png", title="tiny")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1650, 506)


# --------------------------------------------------------------------------------------------------------
# Running the grid
# --------------------------------------------------------------------------------------------------------


def test_a_folder_with_files_is_not_reused(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(FileExistsError, match="is not empty"):
        run_experiment(ExperimentConfig(dataset="d", trainer="t"), tmp_path)


def test_a_failed_run_says_so_in_its_run_file(tmp_path: Path) -> None:
    config = ExperimentConfig(dataset=str(tmp_path / "no-such-dataset"), trainer="t.keras")
    with pytest.raises(FileNotFoundError):
        run_experiment(config, tmp_path / "run")
    stored = load_run(tmp_path / "run")
    assert stored.status == "failed" and "no-such-dataset" in stored.error and stored.finished_utc


@pytest.mark.tf
def test_the_grid_trains_all_seven_variants_and_writes_table_curves_and_plot(
    tmp_path: Path, trainer: str
) -> None:
    config = ExperimentConfig(trainer=trainer, **TINY)  # type: ignore[arg-type]
    reports: list[Progress] = []
    run = run_experiment(config, tmp_path / "runs" / "one", on_progress=reports.append)

    assert run.status == "finished" and [r.variant for r in run.results] == list(VARIANTS)
    assert all(r.steps == 6 and r.status == "finished" for r in run.results)  # 2 epochs of 3 steps
    for result in run.results:
        assert 0 <= result.final_val_macro_f1 <= result.best_val_macro_f1 <= 1
    phases = {variant: [p.phase for p in run.curves[(variant, 0)]] for variant in VARIANTS}
    assert phases["none"] == ["unmasked"] * 3
    assert phases["mean"] == ["masked"] * 3
    assert phases["mean+switch"] == ["masked", "unmasked", "unmasked"]  # points at steps 2, 4, 6
    losses = {variant: run.curves[(variant, 0)][0].train_loss for variant in VARIANTS}
    assert len({losses["none"], losses["negative"], losses["mean"], losses["perceptive"]}) == 4

    stages = [r.stage for r in reports]
    assert stages[0] == "loading" and stages[-1] == "finished"
    assert stages.index("relevance") < stages.index("masking") < stages.index("training")
    assert sum(r.point is not None for r in reports) == 7 * 3

    folder = run.run_dir
    with (folder / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == RESULT_FIELDS and [r["variant"] for r in rows] == list(VARIANTS)
    with (folder / "curves.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 7 * 3
    with Image.open(folder / "learning_curves.png") as image:
        assert image.format == "PNG"
    for variant in VARIANTS:
        trainee = folder / "trainees" / f"{variant}-seed0"
        assert (trainee / "curves.csv").is_file() and (trainee / "confusion.csv").is_file()
        assert list((trainee / "tensorboard").glob("events.out.tfevents.*"))

    stored = load_run(folder)
    assert stored.status == "finished" and stored.config == config
    assert stored.results == run.results and stored.curves == run.curves
    assert [r.run_dir for r in list_runs(tmp_path / "runs")] == [folder]
    assert len(list((tmp_path / "runs" / "relevance_cache").glob("*.npz"))) == 1  # maps computed once


@pytest.mark.tf
def test_a_cancelled_run_keeps_its_partial_curves(tmp_path: Path, trainer: str) -> None:
    config = ExperimentConfig(trainer=trainer, **{**TINY, "variants": ("none", "mean"), "seeds": (0, 1)})  # type: ignore[arg-type]
    points: list[CurvePoint] = []

    def on_progress(progress: Progress) -> None:
        if progress.point is not None:
            points.append(progress.point)

    run = run_experiment(config, tmp_path / "run", on_progress=on_progress, cancel=lambda: len(points) >= 4)
    assert run.status == "cancelled"
    assert [(r.variant, r.seed, r.status) for r in run.results] == [
        ("none", 0, "finished"),
        ("none", 1, "cancelled"),
    ]
    assert [p.step for p in run.curves[("none", 1)]] == [2]
    stored = load_run(tmp_path / "run")
    assert stored.status == "cancelled" and stored.curves == run.curves
    assert (tmp_path / "run" / "learning_curves.png").is_file()
