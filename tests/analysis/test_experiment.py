"""Tests for analysis.experiment: variants, configs, the seven-variant grid, run folders, curves and plots."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.datasets import SplitArrays
from analysis.experiment import (
    DEFAULT_SEEDS,
    RESULT_FIELDS,
    VARIANTS,
    Cell,
    ExperimentConfig,
    ExperimentProgress,
    ExperimentRun,
    GridData,
    GridTracker,
    MaskedImages,
    VariantResult,
    curves_at,
    finish_run,
    grid_cells,
    list_runs,
    load_grid_data,
    load_run,
    mean_curves,
    nested_subset,
    new_run_dir,
    plot_learning_curves,
    read_confusion,
    run_cell,
    run_experiment,
    stratified_holdout,
    summary_by_variant,
    utc_now,
    variant_parts,
    write_confusion,
    write_run_json,
)
from analysis.experiment_report import compare_variants, seed_measures
from analysis.trainee import CurvePoint, TrainingOptions

#: A tiny grid: small CNN Trainees, 48 faces, 2 epochs with the switch after the first, a point every 2
#: steps. The "gradient" analyzer never gives an all-zero map, even for the barely trained Trainer here.
TINY = {
    "dataset": "synthetic:n=6,size=32",
    "size_px": 32,
    "n_train": 48,
    "n_val": 24,
    "analyzer": "gradient",
    "training": TrainingOptions(
        architecture="small_cnn", options={}, epochs=2, switch_epoch=1, batch_size=16, eval_every_steps=2
    ),
    "n_points": 6,
    "tensorboard": True,
    "seeds": (0,),
}


@functools.lru_cache(maxsize=1)
def _trainer_file(folder: str) -> str:
    from analysis.datasets.synthetic_faces import make_faces
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
    assert variant_parts("gaze+switch") == ("gaze", True)
    assert variant_parts("fusion") == ("fusion", False)
    with pytest.raises(ValueError, match="unknown variant 'median'"):
        variant_parts("median")


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
        ExperimentConfig(dataset="d", trainer="t", training=TrainingOptions(epochs=3, switch_epoch=3))
    ExperimentConfig(
        dataset="d",
        trainer="t",
        training=TrainingOptions(epochs=3, switch_epoch=3),
        variants=("none", "mean"),
    )


#: ``run.json`` of a run written before the training options had their own dataclass (one flat "config";
#: this one from 2026-12-05, ``rbdm experiment`` on FER2013), and of one older still, from before
#: ``batch_norm_momentum``, ``train_sizes`` and the test split existed.
_FLAT_RUN_JSON = {
    "config": {
        "analyzer": "deep_taylor", "angle_deg": 5.0, "architecture": "small_cnn", "auc_steps": None,
        "batch_norm_momentum": 0.9, "batch_size": 32, "cache_dir": "/tmp/relcache",
        "dataset": "../shared/datasets/fer2013", "deterministic": True, "epochs": 10, "eval_every_steps": 25,
        "gaze_study": None, "keep_models": False, "learning_rate": 0.001, "n_points": 10, "n_train": 800,
        "n_val": 2000, "negative_fraction": 0.1, "options": {}, "rgb": False, "seeds": [0, 1, 2, 3, 4],
        "size_px": 48, "subset_seed": 0, "switch_epoch": 3, "tensorboard": False, "test_fraction": 0.2,
        "test_split": None, "threshold_share": 0.9, "train_sizes": [500, 2000, 8000], "train_split": "train",
        "trainer": "/tmp/fer_vgg.keras", "val_split": "validation",
        "variants": ["none", "negative", "mean", "perceptive", "negative+switch", "mean+switch",
                     "perceptive+switch"],
    },
    "error": "", "finished_utc": "", "masked_images": {}, "started_utc": "2026-12-05T05:50:48+00:00",
    "status": "running", "test_source": "",
}  # fmt: skip
_OLDER_CONFIG = {
    "dataset": "synthetic:n=50", "trainer": "assets/trainer.keras", "architecture": "MobileNetV2",
    "options": {"alpha": 0.35}, "epochs": 6, "switch_epoch": 3, "batch_size": 32, "learning_rate": 0.001,
    "eval_every_steps": 25, "deterministic": True, "seeds": [0], "variants": ["none", "mean+switch"],
}  # fmt: skip


def test_run_folders_with_the_flat_config_of_earlier_versions_still_load(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps(_FLAT_RUN_JSON), encoding="utf-8")
    config = load_run(tmp_path).config
    assert config.training == TrainingOptions(
        architecture="small_cnn", options={}, epochs=10, switch_epoch=3, eval_every_steps=25
    )
    assert (config.architecture, config.epochs, config.switch_epoch, config.deterministic) == (
        "small_cnn", 10, 3, True
    )  # fmt: skip
    assert config.train_sizes == (500, 2000, 8000) and config.seeds == (0, 1, 2, 3, 4)
    assert config.to_dict() == _FLAT_RUN_JSON["config"]  # and is written back in the same format
    write_run_json(ExperimentRun(tmp_path, config, "running", "2026-12-05T05:50:48+00:00"))
    assert json.loads((tmp_path / "run.json").read_text(encoding="utf-8")) == _FLAT_RUN_JSON

    older = ExperimentConfig.from_dict(_OLDER_CONFIG)  # missing keys take today's defaults
    assert older.training == TrainingOptions(switch_epoch=3) and older.batch_norm_momentum == 0.9
    assert older.train_sizes == () and older.test_fraction == 0.2
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number > 0; got 0"):
        ExperimentConfig.from_dict({**_OLDER_CONFIG, "learning_rate": 0})


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
    larger = dataclasses.replace(result("mean", 0, 0.9), train_size=100)
    sized = summary_by_variant([result("mean", 0, 0.4), larger, result("mean", 1, 0.6)])
    assert [(r["variant"], r["train_size"], r["seeds"]) for r in sized] == [("mean", 0, 2), ("mean", 100, 1)]


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


def _result(seed: int, status: str = "finished") -> VariantResult:
    return VariantResult("none", seed, status, 0.3, 4, 1, 0.3, 0.4, 1.7, 0.2, 4, 1.5, train_size=16)


def test_the_grid_tracker_counts_cells_and_estimates_the_time_left() -> None:
    now = [100.0]
    seen: list[ExperimentProgress] = []
    tracker = GridTracker(5, 1, seen.append, clock=lambda: now[0])  # one cell kept from an earlier attempt
    a, b, c = Cell("none", 0, None), Cell("none", 1, None), Cell("none", 2, None)
    tracker.started(a)
    tracker.started(b)
    assert (seen[-1].done, seen[-1].running, seen[-1].failed, seen[-1].eta_s) == (1, 2, 0, None)
    assert seen[-1].message == "1/5 cells done, 2 running, 0 failed" and seen[-1].stage == "training"
    now[0] = 130.0
    tracker.finished(a, _result(0))  # 30 s per cell trained here; 3 cells left
    assert (seen[-1].done, seen[-1].running, seen[-1].eta_s) == (2, 1, 90.0)
    assert seen[-1].message == "2/5 cells done, 1 running, 0 failed, ETA 2 min"
    tracker.failed(b, "ValueError: boom")  # a failed cell is not waited for
    assert (seen[-1].done, seen[-1].running, seen[-1].failed, seen[-1].eta_s) == (2, 0, 1, 60.0)
    point = CurvePoint(2, 1, "unmasked", 32, 1.0, 1.1, 0.3, 0.2)
    tracker.point(c, point, 16)
    assert (seen[-1].running, seen[-1].point, seen[-1].train_size, seen[-1].variant) == (1, point, 16, "none")


def test_finish_run_stores_the_status_the_cells_earned(tmp_path: Path) -> None:
    config = ExperimentConfig(dataset="d", trainer="t", variants=("none",), seeds=(0, 1))
    run = ExperimentRun(tmp_path, config, "running", utc_now())
    write_run_json(run)
    assert finish_run(run, [_result(0), _result(1)], {}, n_cells=2).status == "finished"
    assert finish_run(run, [_result(0)], {}, n_cells=2).status == "cancelled"
    assert finish_run(run, [_result(0), _result(1, "cancelled")], {}, n_cells=2).status == "cancelled"
    failed = finish_run(run, [_result(1)], {}, n_cells=2, error="1 of 2 cells failed: none, seed 0")
    stored = load_run(tmp_path)
    assert failed.status == stored.status == "failed" and stored.error == failed.error
    assert [(r.seed, r.status) for r in stored.results] == [(1, "finished")] and stored.finished_utc


@pytest.mark.tf
def test_the_grid_trains_all_seven_variants_and_writes_table_curves_and_plot(
    tmp_path: Path, trainer: str
) -> None:
    config = ExperimentConfig(trainer=trainer, **TINY)  # type: ignore[arg-type]
    reports: list[ExperimentProgress] = []
    run = run_experiment(config, tmp_path / "runs" / "one", on_progress=reports.append)

    assert run.status == "finished" and [r.variant for r in run.results] == list(VARIANTS)
    assert all(r.steps == 6 and r.status == "finished" for r in run.results)  # 2 epochs of 3 steps
    for result in run.results:
        assert 0 <= result.final_val_macro_f1 <= result.best_val_macro_f1 <= 1
    assert all(r.train_size == 48 for r in run.results)
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

    def on_progress(progress: ExperimentProgress) -> None:
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


# --------------------------------------------------------------------------------------------------------
# Training-set sizes, held-out test images, configs of a study
# --------------------------------------------------------------------------------------------------------


def test_training_subsets_are_class_balanced_and_nested() -> None:
    from analysis.labels import LABELS

    labels = [LABELS[k % 3] for k in range(90)] + [LABELS[3]] * 4  # 30, 30, 30 and a rare class of 4
    previous: set[int] = set()
    for size in (8, 20, 60, None):
        chosen = nested_subset(labels, size, seed=7)
        assert len(chosen) == (94 if size is None else size)
        assert previous <= set(chosen.tolist())  # nested
        previous = set(chosen.tolist())
        counts = np.bincount([LABELS.index(labels[p]) for p in chosen], minlength=4)
        if size == 20:
            assert counts.tolist() == [6, 5, 5, 4]  # round-robin: the rare class gives all it has
    assert np.array_equal(nested_subset(labels, 20, seed=7), nested_subset(labels, 20, seed=7))
    assert not np.array_equal(nested_subset(labels, 20, seed=7), nested_subset(labels, 20, seed=8))


def test_the_held_out_test_images_are_a_stratified_share() -> None:
    y = np.array([0] * 10 + [1] * 5 + [2] * 1)
    kept, held = stratified_holdout(y, 0.2, seed=0)
    assert np.bincount(y[held], minlength=3).tolist() == [2, 1, 0]  # 2.0, 1.0; a lone item stays
    few = np.repeat(np.arange(8), 2)  # 0.4 per class: round(3.2) = 3 items, by the largest remainders
    assert (
        np.bincount(few[stratified_holdout(few, 0.2, seed=0)[1]], minlength=8).tolist() == [1, 1, 1] + [0] * 5
    )
    assert sorted(kept.tolist() + held.tolist()) == list(range(16))
    again_kept, again_held = stratified_holdout(y, 0.2, seed=0)
    assert np.array_equal(held, again_held) and np.array_equal(kept, again_kept)


def test_a_study_config_has_five_seeds_sizes_and_round_trips() -> None:
    config = ExperimentConfig(dataset="d", trainer="t", train_sizes=(2000, None, 500), seeds=DEFAULT_SEEDS)
    assert len(DEFAULT_SEEDS) >= 5 and ExperimentConfig(dataset="d", trainer="t").seeds == (0,)
    assert config.sizes == (500, 2000, None)
    assert ExperimentConfig(dataset="d", trainer="t").sizes == (800,)  # n_train when no sizes are given
    assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="train_sizes must be integers"):
        ExperimentConfig(dataset="d", trainer="t", train_sizes=(0,))
    with pytest.raises(ValueError, match="must not repeat"):
        ExperimentConfig(dataset="d", trainer="t", train_sizes=(5, 5))
    with pytest.raises(ValueError, match="test_fraction"):
        ExperimentConfig(dataset="d", trainer="t", test_fraction=1.0)
    cells = grid_cells(dataclasses.replace(config, variants=("none", "mean"), seeds=(0, 1)))
    assert len(cells) == 3 * 2 * 2 and cells[0] == Cell("none", 0, 500) and cells[-1] == Cell("mean", 1, None)
    assert all(Cell.from_dict(json.loads(json.dumps(c.to_dict()))) == c for c in cells)


# --------------------------------------------------------------------------------------------------------
# A planted effect: the pipeline must find it, and must not find one where none can be
# --------------------------------------------------------------------------------------------------------

#: Four expressions of the synthetic faces at 24 px: the small CNN tells them apart within a few dozen steps.
_PLANTED_LABELS = ("happy", "sad", "surprise", "anger")


def _planted_split(n: int, rng: np.random.Generator, *, clutter: bool, tag: str) -> SplitArrays:
    """Synthetic faces reduced to their ground-truth expression regions (the rest black); with ``clutter``
    every pixel outside the regions is uniform noise, independent of the label."""
    from analysis.datasets.synthetic_faces import make_faces

    x, y, regions = make_faces(n, size=24, rng=rng, labels=_PLANTED_LABELS)
    clean = (x * regions).astype(np.float32)
    noise = rng.uniform(0, 1, size=x.shape).astype(np.float32)
    images = np.where(regions, clean, noise).astype(np.float32) if clutter else clean
    return SplitArrays(images, y, tuple(f"{tag}/{k}" for k in range(n)), regions)


def _planted_run(tmp_path: Path, *, clutter: bool) -> tuple[ExperimentRun, GridData]:
    rng = np.random.default_rng(0)
    train = _planted_split(128, rng, clutter=clutter, tag="train")
    validation = _planted_split(64, rng, clutter=False, tag="validation")
    test = _planted_split(64, rng, clutter=False, tag="test")
    regions = MaskedImages(np.arange(128), (train.images * train.region_masks).astype(np.float32))
    data = GridData(train, validation, test, "64 clean faces", {"regions": regions})
    config = ExperimentConfig(
        dataset="planted",
        trainer="none needed",
        size_px=24,
        n_train=None,
        variants=("none", "regions"),
        training=TrainingOptions(
            architecture="small_cnn", options={}, epochs=6, switch_epoch=1, batch_size=16, eval_every_steps=4
        ),
        seeds=DEFAULT_SEEDS,
        tensorboard=False,
    )
    return run_experiment(config, tmp_path / "run", data=data), data


@pytest.mark.tf
def test_masking_with_the_ground_truth_regions_is_detected_as_faster(tmp_path: Path) -> None:
    """Planted effect: the training images carry label-independent noise around the expression regions,
    the validation and test images do not. Masked with the ground-truth regions, the training images are
    exactly what validation shows, so the masked Trainee must learn faster than the unmasked one."""
    run, data = _planted_run(tmp_path, clutter=True)
    measures = seed_measures(run.results, run.curves_by_size)
    row = next(c for c in compare_variants(measures) if c.variant == "regions")
    assert row.verdict.startswith("accelerates learning: AULC +"), row.verdict
    assert row.differences["aulc"].low > 0.1 and row.adjusted_p["aulc"] < 0.01
    assert row.differences["test_macro_f1"].mean > 0.2  # and on images that chose nothing
    text = (run.run_dir / "report.md").read_text(encoding="utf-8")
    assert "| regions | 5 |" in text and "accelerates learning" in text

    # a cell is a unit of work: trained alone, elsewhere, it gives the curves it gave in the grid
    alone, points = run_cell(run.config, Cell("regions", 3, None), data, tmp_path / "elsewhere")
    assert points == run.curves[("regions", 3)]
    same = next(r for r in run.results if (r.variant, r.seed) == ("regions", 3))
    assert dataclasses.replace(alone, duration_s=0) == dataclasses.replace(same, duration_s=0)


@pytest.mark.tf
def test_masks_that_remove_nothing_are_found_to_make_no_difference(tmp_path: Path) -> None:
    """No effect possible: without the noise the pixels outside the regions are already black, so the
    masks change no pixel. The paired seeds then give identical curves, and the verdict must say so."""
    run, _ = _planted_run(tmp_path, clutter=False)
    row = next(
        c for c in compare_variants(seed_measures(run.results, run.curves_by_size)) if c.variant == "regions"
    )
    assert row.verdict.startswith("no detectable difference"), row.verdict
    assert row.differences["aulc"].mean == 0 and row.adjusted_p["aulc"] == 1
    digests = {(r.seed, r.initial_weights_sha256) for r in run.results}
    assert len(digests) == 5  # one set of initial weights per seed, shared by both variants


@pytest.mark.tf
def test_sizes_test_scores_kept_models_and_the_report(tmp_path: Path, trainer: str) -> None:
    from analysis.evaluation import evaluate_model
    from analysis.models import load_model_file

    settings = {**TINY, "variants": ("none", "mean"), "train_sizes": (16, None), "keep_models": True}
    config = ExperimentConfig(trainer=trainer, **settings)  # type: ignore[arg-type]
    run = run_experiment(config, tmp_path / "run")

    assert run.train_sizes == (16, 48) and [r.train_size for r in run.results] == [16, 16, 48, 48]
    assert [r.steps for r in run.results] == [2, 2, 6, 6]  # 1 and 3 batches of 16 per epoch
    assert "held apart, stratified by class" in run.test_source and "5 images" in run.test_source
    small = run.results[0]
    folder = run.trainee_dir(small)
    assert folder == tmp_path / "run" / "trainees" / "n16" / "none-seed0"
    best = load_model_file(folder / "best.keras")
    try:
        # the test score is the best step's weights on the held-out images, reproducible from the kept file
        _, validation, test, _ = load_grid_data(config)
        assert evaluate_model(best, test.images, test.label_indices).macro_f1 == pytest.approx(
            small.test_macro_f1
        )
        assert evaluate_model(best, validation.images, validation.label_indices).macro_f1 == pytest.approx(
            small.best_val_macro_f1
        )
    finally:
        best.close()
    assert (folder / "final.keras").is_file()
    text = (run.run_dir / "report.md").read_text(encoding="utf-8")
    assert "## 16 training images" in text and "## 48 training images" in text
    assert (run.run_dir / "curves_n16.png").is_file() and (run.run_dir / "by_variant.csv").is_file()
    stored = load_run(run.run_dir)
    assert stored.results == run.results and stored.curves_by_size == run.curves_by_size
    assert stored.curves == curves_at(run.curves_by_size, 48) == run.curves
    assert stored.test_source == run.test_source


def test_a_confusion_matrix_reads_back_as_written(tmp_path: Path) -> None:
    matrix = np.arange(64, dtype=np.int64).reshape(8, 8)
    write_confusion(tmp_path / "confusion.csv", matrix)
    with (tmp_path / "confusion.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header[0] == "true \\ predicted" and len(header) == 9
    read = read_confusion(tmp_path / "confusion.csv")
    assert read is not None and read.dtype == np.int64
    np.testing.assert_array_equal(read, matrix)
    assert read_confusion(tmp_path / "missing.csv") is None
