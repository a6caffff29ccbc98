"""Tests for the model commands: train-trainer, saliency, mask, train-trainee, experiment."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from analysis.experiment import DEFAULT_TRAINING, ExperimentConfig, ExperimentProgress, read_confusion
from analysis.geometry import ScreenGeometry
from analysis.grid_engine import Engine
from analysis.masked_dataset import HEADER_FILE, read_manifest
from analysis.saliency import DEFAULT_ANALYZER
from analysis.trainee import TrainingOptions
from analysis.training import load_trained
from rbdm_gui.cli.commands_models import (
    DEFAULT_TRAINER,
    command_line,
    experiment_config,
    study_fixation_counts,
    training_options,
)
from rbdm_gui.cli.main import COMMANDS, build_parser, main
from tracking.records import Fixation, PhaseOnsets, Trial
from tracking.store import SessionStore
from tracking.study import read_image_fixations

MODEL_COMMANDS = ("train-trainer", "saliency", "mask", "train-trainee", "experiment", "evaluate")
#: Sixteen 48 px synthetic faces per split (2 per label), the shipped Trainer's input size.
TINY = "synthetic:n=2"


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def _study(path: Path, ids: list[str]) -> Path:
    """A study file: one session showing ``ids``; 3 fixations on each but the last, which has none."""
    geometry = ScreenGeometry()
    rect = geometry.stimulus_rect()
    settings = {
        "stimulus_rect": {
            "x_px": rect.x_px,
            "y_px": rect.y_px,
            "width_px": rect.width_px,
            "height_px": rect.height_px,
        }
    }
    with SessionStore(path) as store:
        participant = store.create_participant("P01")
        session = store.create_session(
            participant,
            settings=settings,
            geometry=geometry,
            tracker="mouse",
            recogniser="none",
            stimulus_order=ids,
        )
        for position, stimulus in enumerate(ids):
            start = 10_000.0 * position
            phases = PhaseOnsets(start, start + 500, start + 700, start + 1200, start + 3200)
            trial = Trial(position, stimulus, phases, "happy", "keyboard")
            centre_x, centre_y = rect.x_px + rect.width_px / 2, rect.y_px + rect.height_px / 2
            fixations = [
                Fixation(start + 1300 + 300 * k, 250.0, centre_x + 100.0 * k, centre_y - 200.0 + 150 * k, 20)
                for k in range(3)
            ]
            store.record_trial(session, trial, [] if position == len(ids) - 1 else fixations)
    return path


# --------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------


def test_the_model_commands_are_registered_with_help() -> None:
    names = [command.name for command in COMMANDS]
    assert set(MODEL_COMMANDS) <= set(names)
    parser = build_parser()
    for name in MODEL_COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


@pytest.mark.parametrize(
    "argv",
    [
        [
            "train-trainer",
            "--dataset",
            "synthetic:n=3",
            "--epochs",
            "2",
            "--augmentation",
            "none",
            "--no-deterministic",
        ],
        ["mask", "--method", "perceptive", "--rgb", "--n-points", "7", "--out", "a b"],
        ["experiment", "--variants", "none,mean", "--seeds", "0,1", "--options", '{"alpha": 0.5}'],
        [
            "experiment",
            "--train-sizes",
            "500,all",
            "--test-split",
            "test",
            "--keep-models",
            "--study",
            "s.db",
        ],
        ["evaluate", "m.keras", "--dataset", "synthetic:n=2", "--split", "validation", "--csv", "out/e.csv"],
        ["train-trainee", "--switch-epoch", "2", "--masked", "m/mean"],
    ],
)
def test_the_recorded_command_line_parses_back_to_the_same_options(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    line = command_line(args)
    assert line.startswith(f"rbdm {argv[0]} ")
    again = parser.parse_args(shlex.split(line)[1:])
    assert {k: v for k, v in vars(again).items() if k != "run"} == {
        k: v for k, v in vars(args).items() if k != "run"
    }


def test_the_training_options_default_to_the_config_dataclasses() -> None:
    parser = build_parser()
    assert training_options(parser.parse_args(["train-trainee"])) == TrainingOptions()
    experiment = parser.parse_args(["experiment"])
    assert training_options(experiment) == DEFAULT_TRAINING
    defaults = ExperimentConfig(dataset="d", trainer="t")
    assert (experiment.max_train, experiment.max_val) == (defaults.n_train, defaults.n_val)
    assert (experiment.fraction, experiment.n_points, experiment.angle_deg) == (
        defaults.negative_fraction, defaults.n_points, defaults.angle_deg
    )  # fmt: skip
    assert (experiment.analyzer, experiment.threshold_share, experiment.test_fraction) == (
        defaults.analyzer, defaults.threshold_share, defaults.test_fraction
    )  # fmt: skip
    engine = Engine()
    assert (experiment.workers, experiment.cpus_per_cell) == (engine.workers, engine.cpus_per_cell)
    mask = parser.parse_args(["mask", "--method", "negative"])
    assert mask.analyzer == parser.parse_args(["saliency"]).analyzer == DEFAULT_ANALYZER
    assert (mask.fraction, mask.n_points, mask.angle_deg) == (
        defaults.negative_fraction,
        None,
        defaults.angle_deg,
    )
    trainer = parser.parse_args(["train-trainer"])  # the preset fills these
    assert (trainer.architecture, trainer.epochs, trainer.batch_size, trainer.learning_rate) == (None,) * 4


def test_the_training_flags_keep_their_names_and_meanings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rbdm_gui.cli.commands_models._trainer_path", lambda _: Path("t.keras"))
    argv = "experiment --architecture small_cnn --options {} --epochs 10 --switch-epoch 3 --batch-size 16"
    argv += " --learning-rate 0.01 --no-deterministic --eval-every 5 --batch-norm-momentum keep"
    config = experiment_config(build_parser().parse_args(shlex.split(argv)))
    assert config.training == TrainingOptions(
        architecture="small_cnn",
        options={},
        epochs=10,
        switch_epoch=3,
        batch_size=16,
        learning_rate=0.01,
        eval_every_steps=5,
        batch_norm_momentum=None,
        deterministic=False,
    )
    mobile = experiment_config(build_parser().parse_args(["experiment", "--batch-norm-momentum", "0.5"]))
    assert mobile.options == {"alpha": 0.35} and mobile.batch_norm_momentum == 0.5
    with pytest.raises(ValueError, match="eval_every_steps must be an integer ≥ 1; got 0"):
        experiment_config(build_parser().parse_args(["experiment", "--eval-every", "0"]))


# --------------------------------------------------------------------------------------------------------
# Errors the user can act on
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["saliency", "--model", "nowhere.keras"], "Train one with 'rbdm train-trainer"),
        (["mask", "--method", "mean", "--model", "nowhere.keras"], "Train one with 'rbdm train-trainer"),
        (["mask", "--method", "gaze"], "--method gaze needs --study"),
        (["mask", "--method", "gaze", "--study", "nowhere.sqlite"], "no study file at 'nowhere.sqlite'"),
        (["train-trainer", "--dataset", "no/such/folder"], "no/such/folder"),
        (["train-trainer", "--out", "model.h5"], "--out must end in '.keras'"),
        (["train-trainee", "--masked", "no/masked"], "Write one with 'rbdm mask'"),
        (["train-trainee", "--switch-epoch", "2"], "--switch-epoch needs --masked"),
        (["experiment", "--trainer", "nowhere.keras"], "Train one with 'rbdm train-trainer"),
        (["experiment", "--train-sizes", "500,most"], "--train-sizes takes counts or 'all'"),
        (["experiment", "--variants", "none,gaze"], "need --study"),
        (["evaluate", "nowhere.keras", "--dataset", "synthetic:n=2"], "nowhere.keras"),
    ],
)
def test_missing_inputs_are_error_messages(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--dataset", TINY] if "--dataset" not in argv else argv) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------


@pytest.mark.tf
def test_train_trainer_writes_the_model_and_a_card_with_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trainer.keras"
    argv = ["train-trainer", "--dataset", "synthetic:n=2,size=32", "--size", "32", "--epochs", "1"]
    assert main([*argv, "--augmentation", "none", "--out", str(out)]) == 0
    text = _out(capsys)
    assert "epoch   1" in text and "best epoch 1" in text
    model, card = load_trained(out)
    assert model.input_shape == (32, 32, 1) and card.architecture == "small_cnn"
    assert card.data["n_train"] == 16 and card.data["dataset"] == "synthetic:n=2,size=32"
    assert card.training["augmentation"]["rotation_deg"] == 0.0
    recorded = shlex.split(card.data["command"])
    assert recorded[:2] == ["rbdm", "train-trainer"] and "--epochs" in recorded and str(out) in recorded


def test_the_shipped_trainer_is_small_and_carries_its_command() -> None:
    assert DEFAULT_TRAINER.is_file() and DEFAULT_TRAINER.stat().st_size < 2_000_000
    card = json.loads(DEFAULT_TRAINER.with_suffix(".json").read_text())
    assert card["data"]["command"].startswith("rbdm train-trainer ")
    assert card["input_shape"] == [48, 48, 1] and card["scores"]["val_macro_f1"] > 0.9


@pytest.mark.tf
def test_saliency_of_the_shipped_trainer_lies_in_the_expression_regions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["saliency", "--dataset", "synthetic:n=8", "--split", "test", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    text = _out(capsys)
    match = re.search(r"inside the ground-truth expression regions: ([\d.]+) .* ([\d.]+) × chance", text)
    assert match is not None, text
    assert float(match.group(1)) > 0.25 and float(match.group(2)) > 3.0
    assert len(list(tmp_path.glob("*.npz"))) == 1
    assert main(argv) == 0
    assert "read from the cache" in _out(capsys)


@pytest.mark.tf
@pytest.mark.parametrize("method", ["negative", "mean", "perceptive"])
def test_mask_writes_a_masked_dataset_per_relevance_method_and_resumes(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["mask", "--method", method, "--dataset", TINY, "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--out", str(tmp_path / "masked")]) == 0
    root = tmp_path / "masked" / method
    rows = read_manifest(root)
    assert len(rows) == 16 and len(list(root.rglob("*.png"))) == 16
    header = json.loads((root / HEADER_FILE).read_text())
    assert (
        header["provenance"]["model"] == str(DEFAULT_TRAINER)
        and header["provenance"]["analyzer"] == "deep_taylor"
    )
    assert "wrote 16, kept 0" in _out(capsys)
    assert main([*argv, "--out", str(tmp_path / "masked")]) == 0
    assert "wrote 0, kept 16 from before" in _out(capsys)


@pytest.mark.tf
def test_mask_with_gaze_uses_the_fixations_of_a_study_and_skips_unseen_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"synthetic/train/{k}" for k in range(4)]
    study = _study(tmp_path / "study.sqlite", ids)
    viewings = read_image_fixations(study, (48, 48))
    assert sorted(viewings) == ids and len(viewings[ids[3]][0].fixations_image_px) == 0
    np.testing.assert_allclose(viewings[ids[0]][0].fixations_image_px[0], [23.52, 15.52], atol=0.01)
    assert study_fixation_counts(study) == [3, 3, 3, 0]

    argv = [
        "mask",
        "--method",
        "gaze",
        "--dataset",
        TINY,
        "--study",
        str(study),
        "--out",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 0
    text = _out(capsys)
    assert "wrote 3, kept 0" in text and "13 images have no fixations and were skipped" in text
    assert [row["id"] for row in read_manifest(tmp_path / "m" / "gaze")] == ids[:3]

    argv = [
        "mask",
        "--method",
        "perceptive",
        "--dataset",
        TINY,
        "--study",
        str(study),
        "--out",
        str(tmp_path / "m"),
    ]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    header = json.loads((tmp_path / "m" / "perceptive" / HEADER_FILE).read_text())
    assert header["options"]["n_points"] == 2  # the study's mean fixation count, round(9 / 4)


@pytest.mark.tf
def test_train_trainee_switches_from_a_masked_dataset_and_writes_its_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, masked = str(tmp_path / "cache"), tmp_path / "masked"
    assert (
        main(["mask", "--method", "mean", "--dataset", TINY, "--cache-dir", cache, "--out", str(masked)]) == 0
    )
    out = tmp_path / "trainee"
    argv = ["train-trainee", "--dataset", TINY, "--masked", str(masked / "mean"), "--switch-epoch", "1"]
    argv += [
        "--epochs",
        "2",
        "--architecture",
        "small_cnn",
        "--options",
        "{}",
        "--eval-every",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = _out(capsys)
    assert "16 of 16 training images have a masked copy" in text and "best val. macro-F1" in text
    with (out / "curves.csv").open() as handle:
        phases = [row["phase"] for row in csv.DictReader(handle)]
    assert phases == ["masked", "unmasked"]  # 16 images in batches of 32: one step per epoch
    record = json.loads((out / "trainee.json").read_text())
    assert record["variant"] == "mean+switch" and record["command"].startswith("rbdm train-trainee ")
    assert sum(int(v) for row in list(csv.reader((out / "confusion.csv").open()))[1:] for v in row[1:]) == 16
    confusion = read_confusion(out / "confusion.csv")  # the format of a run's Trainees, one reader
    assert confusion is not None and confusion.shape == (8, 8) and confusion.sum() == 16
    for name in ("trainee.keras", "learning_curves.png"):
        assert (out / name).is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.tf
def test_experiment_runs_the_chosen_variants_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "experiment",
        "--dataset",
        TINY,
        "--max-train",
        "16",
        "--max-val",
        "16",
        "--variants",
        "none,mean+switch",
    ]
    argv += ["--architecture", "small_cnn", "--epochs", "2", "--switch-epoch", "1", "--eval-every", "1"]
    argv += [
        "--no-tensorboard",
        "--out",
        str(tmp_path),
        "--name",
        "tiny",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    argv += ["--seeds", "0,1", "--train-sizes", "8,all", "--keep-models"]
    assert main(argv) == 0
    text = _out(capsys)
    (run_dir,) = tmp_path.glob("*-tiny")
    assert f"wrote {run_dir}/report.md" in text and "mean+switch" in text
    assert "n=8 " in text and "n=16 " in text and "baseline" in text
    with (run_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["train_size"]) for r in rows] == [
        (v, n) for n in ("8", "16") for v in ("none", "none", "mean+switch", "mean+switch")
    ]
    assert (run_dir / "learning_curves.png").is_file() and (run_dir / "report.md").is_file()
    assert (run_dir / "command.txt").read_text().startswith("rbdm experiment ")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["config"]["options"] == {}
    assert run["config"]["train_sizes"] == [8, None] and run["config"]["seeds"] == [0, 1]

    # a kept Trainee scored later on a split the run never saw, by rbdm evaluate
    kept = run_dir / "trainees" / "n16" / "none-seed0" / "best.keras"
    out = tmp_path / "eval" / "scores.csv"
    assert main(["evaluate", str(kept), "--dataset", TINY, "--split", "test", "--csv", str(out)]) == 0
    text = _out(capsys)
    assert "16 images" in text and "macro-F1" in text and "confusion" in text
    with out.open() as handle:
        scores = {row["measure"]: float(row["value"]) for row in csv.DictReader(handle)}
    assert scores["n_images"] == 16 and 0 <= scores["macro_f1"] <= scores["accuracy"] + 1
    assert set(scores) >= {"accuracy", "macro_f1", "f1_neutral", "f1_contempt"}
    with (tmp_path / "eval" / "scores_confusion.csv").open() as handle:
        matrix = [[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]]
    assert sum(map(sum, matrix)) == 16
    assert sum(matrix[k][k] for k in range(8)) / 16 == pytest.approx(scores["accuracy"])


@pytest.mark.tf
def test_experiment_interrupted_by_ctrl_c_is_recorded_as_cancelled_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen on a FER2013 study: Ctrl-C left run.json "failed" with an empty error and a traceback. Now the
    run says "cancelled" and how to go on, the command exits 130, and the same command trains the rest."""
    from rbdm_gui.cli import commands_models

    argv = ["experiment", "--dataset", TINY, "--max-train", "16", "--max-val", "16"]
    argv += ["--variants", "none,mean", "--seeds", "0", "--architecture", "small_cnn", "--options", "{}"]
    argv += ["--epochs", "1", "--eval-every", "1"]
    argv += ["--no-tensorboard", "--out", str(tmp_path), "--name", "tiny", "--cache-dir", str(tmp_path / "c")]
    show = commands_models._ProgressPrinter.__call__

    def press_ctrl_c_after_one_cell(self: object, progress: ExperimentProgress) -> None:
        show(self, progress)  # type: ignore[arg-type]
        if progress.stage == "training" and progress.point is None and progress.done >= 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(commands_models._ProgressPrinter, "__call__", press_ctrl_c_after_one_cell)
    assert main(argv) == 130
    (run_dir,) = tmp_path.glob("*-tiny")
    assert f"interrupted: 1 finished cells kept in {run_dir}" in _out(capsys)
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["status"] == "cancelled" and "run the same command again" in stored["error"]
    assert (run_dir / "command.txt").read_text().startswith("rbdm experiment ")

    monkeypatch.setattr(commands_models._ProgressPrinter, "__call__", show)
    assert main(argv) == 0
    assert f"{run_dir} (resuming its missing cells)" in _out(capsys)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    with (run_dir / "results.csv").open() as handle:
        assert [row["variant"] for row in csv.DictReader(handle)] == ["none", "mean"]


@pytest.mark.tf
def test_experiment_masks_with_gaze_and_its_fusion_with_relevance_from_a_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(tmp_path / "study.sqlite", [f"synthetic/train/{k}" for k in range(5)])  # 4 fixated
    argv = ["experiment", "--dataset", TINY, "--max-train", "16", "--max-val", "16", "--study", str(study)]
    argv += ["--variants", "none,gaze,fusion+switch", "--seeds", "0", "--architecture", "small_cnn"]
    argv += ["--epochs", "2", "--switch-epoch", "1", "--eval-every", "1", "--no-tensorboard"]
    argv += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs").glob("*-experiment")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["config"]["gaze_study"] == str(study)
    assert run["masked_images"] == {"fusion": 4, "gaze": 4}  # only the fixated training images
    with (run_dir / "results.csv").open() as handle:
        steps = {row["variant"]: int(row["steps"]) for row in csv.DictReader(handle)}
    assert steps == {"none": 2, "gaze": 2, "fusion+switch": 2}  # one batch per epoch each
    assert "| fusion+switch | 1 |" in (run_dir / "report.md").read_text(encoding="utf-8")
    assert "fusion+switch" in _out(capsys)
