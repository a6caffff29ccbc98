"""The experiment worker: variant choice, requests, the JSON-lines channel, run status, gaze Trainees."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.experiment import VARIANTS, ExperimentConfig, ExperimentProgress, load_run
from analysis.trainee import TRAINING_FIELDS, CurvePoint, TrainingOptions
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.experiment_worker import (
    GAZE_VARIANTS,
    METHODS,
    LaunchRequest,
    execute,
    mark_run,
    parse_event,
    partial_curves,
    progress_event,
    progress_from_event,
    run_state,
    split_use,
    variant_names,
)
from tests.tracking._study import session_settings, write_study


def _config(**changes: object) -> ExperimentConfig:
    """A tiny config; ``changes`` that name a :class:`TrainingOptions` field go into its ``training``."""
    values: dict[str, object] = {
        "dataset": "synthetic:n=2",
        "trainer": str(DEFAULT_TRAINER),
        "variants": ("none",),
        "tensorboard": False,
    }
    training: dict[str, object] = {"architecture": "small_cnn", "options": {}, "epochs": 2, "switch_epoch": 1}
    for key, value in changes.items():
        (training if key in TRAINING_FIELDS else values)[key] = value
    return ExperimentConfig(**values, training=TrainingOptions(**training))  # type: ignore[arg-type]


# --- choosing variants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("methods", "masked", "switch", "grid", "gaze"),
    [
        (
            METHODS,
            True,
            True,
            (*VARIANTS, "fusion", "regions", "fusion+switch", "regions+switch"),
            GAZE_VARIANTS,
        ),
        (list(METHODS)[:4], True, True, VARIANTS, ()),  # the paper's seven, in its order
        (["none"], False, False, ("none",), ()),
        (["mean", "none"], False, True, ("none", "mean+switch"), ()),
        (["perceptive", "negative"], True, False, ("negative", "perceptive"), ()),
        (["gaze"], True, True, (), GAZE_VARIANTS),
        (["gaze", "none"], False, True, ("none",), ("gaze+switch",)),
        ([], True, True, (), ()),
    ],
)
def test_variant_names_follow_the_papers_order(
    methods: list[str], masked: bool, switch: bool, grid: tuple[str, ...], gaze: tuple[str, ...]
) -> None:
    assert variant_names(methods, masked=masked, switch=switch) == (grid, gaze)


def test_variant_names_refuses_unknown_methods_and_masks_without_a_trainee() -> None:
    with pytest.raises(ValueError, match="unknown masking methods \\['blur'\\]"):
        variant_names(["none", "blur"])
    with pytest.raises(ValueError, match="'masked throughout', 'switch to the originals', or both"):
        variant_names(["mean"], masked=False, switch=False)


# --- requests -----------------------------------------------------------------------------------------


def test_a_request_survives_json(tmp_path: Path) -> None:
    request = LaunchRequest(
        _config(variants=("none", "mean+switch"), seeds=(0, 3), train_sizes=(8, None)),
        str(tmp_path / "run"),
        study=str(tmp_path / "study.sqlite"),
        gaze_variants=("gaze+switch",),
        nice=5,
        workers=2,
        cpus_per_cell=3,
    )
    again = LaunchRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert again.variants == ("none", "mean+switch", "gaze+switch")
    assert again.n_trainees == 12  # 2 sizes × 3 variants × 2 seeds (old code: 6, sizes forgotten)
    assert again.run_config.variants == again.variants and again.run_config.gaze_study == request.study
    assert again.engine.on_ray and (again.engine.workers, again.engine.cpus_per_cell) == (2, 3)
    assert not LaunchRequest(_config(), "run").engine.on_ray


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gaze_variants": ("gaze",)}, "gaze masks need a study file"),
        ({"gaze_variants": ("blur",), "study": "s.sqlite"}, "gaze_variants must be distinct names"),
        ({"gaze_variants": ("gaze", "gaze"), "study": "s.sqlite"}, "gaze_variants must be distinct names"),
        ({"nice": 20}, "nice must be an integer from 0 to 19; got 20"),
        ({"workers": 0}, "workers must be an integer ≥ 1; got 0"),
        ({"cpus_per_cell": 0}, "cpus_per_cell must be an integer ≥ 1; got 0"),
    ],
)
def test_a_request_refuses_inconsistent_options(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LaunchRequest(_config(), "run", **changes)  # type: ignore[arg-type]


def test_fusion_masks_need_a_study_too() -> None:
    with pytest.raises(ValueError, match="gaze masks need a study file"):
        LaunchRequest(_config(variants=("none", "fusion")), "run")
    request = LaunchRequest(_config(variants=("none", "fusion")), "run", study="s.sqlite")
    assert request.run_config.gaze_study == "s.sqlite" and request.run_config.variants == ("none", "fusion")


def test_gaze_switch_needs_a_switch_epoch_below_the_epochs() -> None:
    config = _config(epochs=2, switch_epoch=2)  # fine for the grid: no +switch variant there
    with pytest.raises(ValueError, match="switch_epoch must satisfy 1 ≤ switch_epoch < epochs \\(2\\)"):
        LaunchRequest(config, "run", study="s.sqlite", gaze_variants=("gaze+switch",))


# --- the channel --------------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_points = st.builds(
    CurvePoint,
    step=st.integers(0, 10**9),
    epoch=st.integers(1, 1000),
    phase=st.sampled_from(("masked", "unmasked")),
    images_seen=st.integers(0, 10**9),
    train_loss=_finite,
    val_loss=_finite,
    val_accuracy=_finite,
    val_macro_f1=_finite,
)
_progress = st.builds(
    ExperimentProgress,
    stage=st.sampled_from(("loading", "relevance", "masking", "training", "finished", "cancelled")),
    done=st.integers(0, 10**6),
    total=st.integers(0, 10**6),
    message=st.text(),
    variant=st.none() | st.sampled_from(VARIANTS + GAZE_VARIANTS),
    seed=st.none() | st.integers(-(2**31), 2**31),
    point=st.none() | _points,
    train_size=st.none() | st.integers(1, 10**6),
    running=st.integers(0, 10**4),
    failed=st.integers(0, 10**4),
    eta_s=st.none() | st.floats(0, 1e9, allow_nan=False),
)


@given(_progress)
def test_progress_survives_a_line_of_the_channel(progress: ExperimentProgress) -> None:
    line = json.dumps(progress_event(progress)) + "\n"
    assert "\n" not in line[:-1]  # one record, one line
    event = parse_event(line.encode("utf-8"))
    assert event is not None and event["event"] == "progress"
    assert progress_from_event(event) == progress


@pytest.mark.parametrize("line", ["", "   \n", "WARNING: tensorflow", "[1, 2]", '{"stage": "x"}', "{broken"])
def test_lines_that_are_not_events_are_skipped(line: str) -> None:
    assert parse_event(line) is None


# --- the run folder's status ----------------------------------------------------------------------------


def test_mark_run_rewrites_the_status_and_keeps_the_rest(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {"config": _config().to_dict(), "status": "running", "started_utc": "t0", "finished_utc": ""}
    (run_dir / "run.json").write_text(json.dumps({**record, "error": ""}), encoding="utf-8")
    assert mark_run(run_dir, status="cancelled")
    run = load_run(run_dir)
    assert (run.status, run.started_utc, run.error) == ("cancelled", "t0", "")
    assert run.finished_utc  # now
    assert mark_run(run_dir, status="failed", error="no dataset")
    assert load_run(run_dir).error == "no dataset"
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]  # no partial file left behind
    assert not mark_run(tmp_path / "never-started", status="cancelled")


def test_a_run_cancelled_before_training_is_stored_as_cancelled(tmp_path: Path) -> None:
    seen: list[ExperimentProgress] = []
    request = LaunchRequest(_config(), str(tmp_path / "runs" / "r"))
    run = execute(request, on_progress=seen.append, cancel=lambda: True)
    assert run.status == "cancelled" and run.results == ()
    assert load_run(tmp_path / "runs" / "r").status == "cancelled"
    assert seen[-1].stage == "cancelled"


def test_the_images_a_run_really_uses_are_recorded_with_a_warning(tmp_path: Path) -> None:
    """Old code: synthetic:n=50 has 400 training images; run.json said n_train 800, nothing said 400."""
    config = _config(dataset="synthetic:n=50", n_train=800, n_val=100)
    use = split_use(config)
    assert (use.n_train, use.n_val) == (400, 100)
    assert len(use.warnings) == 1 and "400 images instead of the 800 asked for" in use.warnings[0]
    request = LaunchRequest(config, str(tmp_path / "runs" / "r"))
    execute(request, cancel=lambda: True)
    record = json.loads((tmp_path / "runs" / "r" / "run.json").read_text(encoding="utf-8"))
    assert record["used"] == {"n_train": 400, "n_val": 100, "warnings": list(use.warnings)}
    assert record["status"] == "cancelled" and load_run(tmp_path / "runs" / "r").config.n_train == 800
    sized = split_use(_config(dataset="synthetic:n=50", train_sizes=(40, 120), n_val=100))
    assert sized.n_train == 120 and not sized.warnings  # the pool: the largest training-set size


def test_a_run_whose_worker_died_is_interrupted_and_keeps_its_partial_curves(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    request = LaunchRequest(_config(), str(folder))
    execute(request, cancel=lambda: True)
    mark_run(folder, status="running")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    (folder / "run.json").write_text(json.dumps({**record, "worker_pid": dead.pid}), encoding="utf-8")
    trainee = folder / "trainees" / "none-seed0"
    trainee.mkdir(parents=True)
    points = [CurvePoint(s, 1, "unmasked", 32 * s, 2.0, 2.0, 0.1, 0.1 * s) for s in (1, 2, 3)]
    with (trainee / "curves.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(points[0].as_row()))
        writer.writeheader()
        writer.writerows(p.as_row() for p in points)
        handle.write("4,1,unmas")  # the line the kill cut short
    run = load_run(folder)
    assert run.status == "running" and run.curves == {}
    assert run_state(run) == "interrupted"
    assert [p.step for p in partial_curves(run)[("none", 0)]] == [1, 2, 3]
    alive = json.loads((folder / "run.json").read_text(encoding="utf-8")) | {"worker_pid": os.getpid()}
    (folder / "run.json").write_text(json.dumps(alive), encoding="utf-8")
    assert run_state(load_run(folder)) == "running"


def test_a_launcher_that_goes_away_cancels_the_run_instead_of_failing_it(tmp_path: Path) -> None:
    """Old code: the next progress line raised BrokenPipeError and run.json said failed: Broken pipe."""
    folder = tmp_path / "runs" / "r"
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(LaunchRequest(_config(), str(folder), nice=0).to_dict()))
    worker = subprocess.Popen(
        [sys.executable, "-m", "rbdm_gui.workflows.experiment_worker", str(request_file), "--stdin-control"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
    )
    assert worker.stdout is not None and worker.stdin is not None
    assert json.loads(worker.stdout.readline())["event"] == "started"
    worker.stdout.close()  # the app was killed: nobody reads the channel any more
    worker.wait(timeout=120)
    worker.stdin.close()
    run = load_run(folder)
    assert run.status == "cancelled" and "Broken pipe" not in run.error


# --- gaze Trainees ----------------------------------------------------------------------------------------


@pytest.mark.tf
def test_gaze_trainees_train_on_the_fixated_images_into_the_same_run(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    write_study(study, settings=session_settings())  # fixations on synthetic/test/2, 5 and 10
    config = _config(train_split="test", n_train=None, n_val=16, batch_size=4, eval_every_steps=1)
    request = LaunchRequest(
        config, str(tmp_path / "runs" / "r"), study=str(study), gaze_variants=GAZE_VARIANTS
    )
    seen: list[ExperimentProgress] = []
    run = execute(request, on_progress=seen.append)

    assert run.status == "finished"
    assert [r.variant for r in run.results] == ["none", "gaze", "gaze+switch"]
    # 'gaze' trains on the 3 fixated images only (1 step per epoch); 'gaze+switch' then on all 16.
    steps = {r.variant: r.steps for r in run.results}
    assert steps == {"none": 8, "gaze": 2, "gaze+switch": 1 + 4}
    phases = [p.phase for p in run.curves[("gaze+switch", 0)]]
    assert phases == ["masked"] + ["unmasked"] * 4  # one epoch masked, then the originals
    gaze = json.loads((run.run_dir / "gaze.json").read_text(encoding="utf-8"))
    assert gaze == {
        "study": str(study),
        "variants": list(GAZE_VARIANTS),
        "n_fixated_images": 3,
        "n_train_images": 16,
    }
    with (run.run_dir / "trainees" / "gaze-seed0" / "confusion.csv").open(encoding="utf-8") as handle:
        matrix = np.array([[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]])
    assert matrix.shape == (8, 8) and matrix.sum() == 13  # 16 validation images, 3 held apart as test images
    assert run.plot_path.is_file()
    training = [p for p in seen if p.stage == "training"]
    assert {p.total for p in training} == {3}  # every Trainee of the run, gaze ones included
    assert [p.stage for p in seen][-1] == "finished"
    assert sum(p.stage == "finished" for p in seen) == 1  # the grid's own 'finished' is held back


@pytest.mark.tf
def test_a_study_without_fixations_on_the_training_images_fails_the_run(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    write_study(study, settings=session_settings())  # fixations on test images only
    request = LaunchRequest(
        _config(n_train=8, n_val=8), str(tmp_path / "runs" / "r"), study=str(study), gaze_variants=("gaze",)
    )
    with pytest.raises(Exception, match="none of the 8 'train' images of 'synthetic:n=2' has fixations"):
        execute(request)
    run = load_run(tmp_path / "runs" / "r")
    assert run.status == "failed" and "Label these images in a study first" in run.error


# --- the same curves as rbdm experiment -------------------------------------------------------------------

_ROOT = Path(__file__).resolve().parents[2]
#: Two seeds of the baseline on sixteen 48 px faces, a curve point every step (as in test_grid_engine).
_CLI = [
    "experiment",
    "--dataset",
    "synthetic:n=2",
    "--max-train",
    "16",
    "--max-val",
    "16",
    "--variants",
    "none",
]
_CLI += ["--seeds", "0,1", "--architecture", "small_cnn", "--epochs", "2", "--switch-epoch", "1"]
_CLI += ["--eval-every", "1", "--no-tensorboard", "--name", "tiny"]


def _cli_run(out: Path) -> Path:
    """``rbdm experiment`` in its own process (it limits that process's TensorFlow threads)."""
    script = "import sys; from rbdm_gui.cli.main import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run(
        [sys.executable, "-c", script, *_CLI, "--out", str(out)], cwd=_ROOT, check=True, timeout=600
    )
    (run_dir,) = out.glob("*-tiny")
    return run_dir


def _worker_run(request: LaunchRequest, tmp_path: Path, worker: Path | None = None) -> None:
    """The GUI's worker process on ``request`` (``python -m rbdm_gui.workflows.experiment_worker``, as the
    runner)."""
    file = tmp_path / "request.json"
    file.write_text(json.dumps(request.to_dict()), encoding="utf-8")
    program = ["-m", "rbdm_gui.workflows.experiment_worker"] if worker is None else [str(worker)]
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    done = subprocess.run(
        [sys.executable, *program, str(file)], cwd=_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.tf
@pytest.mark.slow
def test_the_gui_worker_gives_the_curves_of_the_cli_for_the_same_settings(tmp_path: Path) -> None:
    """Old code: the worker trained with TensorFlow's default threads (one per core), ``rbdm experiment``
    with ``--cpus-per-cell`` (1) threads; oneDNN splits its sums by thread count, so on a machine with
    more than one core the same settings gave different curves in the GUI and the CLI."""
    cli = load_run(_cli_run(tmp_path / "cli"))
    assert cli.status == "finished"
    request = LaunchRequest(cli.config, str(tmp_path / "gui" / "run"), nice=0)  # workers 1, 1 thread
    _worker_run(request, tmp_path)
    gui = load_run(request.run_dir)
    assert gui.status == "finished" and gui.config == cli.config
    assert gui.curves_by_size == cli.curves_by_size  # identical, not close (deterministic mode)
    assert [r.test_macro_f1 for r in gui.results] == [r.test_macro_f1 for r in cli.results]
