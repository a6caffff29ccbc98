"""The Experiments form without Qt: values → launch request (what the CLI offers), resume, progress text."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.experiment import DEFAULT_TRAINING, ExperimentProgress, ExperimentRun, load_run, write_run_json
from analysis.trainee import CurvePoint, TrainingOptions
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.experiment_form import (
    FORM_DEFAULTS,
    FORM_TRAINING_FIELDS,
    form_of_run,
    form_of_training,
    form_request,
    form_training,
    parse_seeds,
    parse_sizes,
    progress_display,
    run_name,
)

_ROOT = Path(__file__).resolve().parents[2]


def _values(**changes: object) -> dict[str, object]:
    return {**FORM_DEFAULTS, "trainer": str(DEFAULT_TRAINER), **changes}


def test_the_form_module_needs_no_qt() -> None:
    code = (
        "import sys, rbdm_gui.workflows.experiment_form; assert 'PySide6' not in sys.modules, 'Qt imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=_ROOT, check=True, timeout=120)


def test_the_form_offers_what_rbdm_experiment_offers(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    study.write_bytes(b"")
    values = _values(
        methods=["none", "fusion", "regions"],
        masked=True,
        switch=False,
        study=str(study),
        seeds="0, 1, 2, 3, 4",
        train_sizes="500, all, 2000",
        test_split="test",
        test_fraction=0.3,
        keep_models=True,
        workers=2,
        cpus_per_cell=2,
    )
    request = form_request(values, runs_dir=tmp_path / "runs")
    config = request.config
    assert config.variants == ("none", "fusion", "regions") and request.gaze_variants == ()
    assert config.gaze_study == str(study) and request.run_config.gaze_study == str(study)
    assert config.seeds == (0, 1, 2, 3, 4) and config.sizes == (500, 2000, None)
    assert (config.test_split, config.test_fraction, config.keep_models) == ("test", 0.3, True)
    assert (request.workers, request.cpus_per_cell) == (2, 2) and request.engine.on_ray
    assert request.n_trainees == 3 * 5 * 3
    held_apart = form_request(_values(test_split="  "), runs_dir=tmp_path / "runs").config
    assert held_apart.test_split is None and held_apart.test_fraction == FORM_DEFAULTS["test_fraction"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": ["none", "fusion"]}, "No study file at ''"),
        ({"methods": []}, "Choose at least one masking method"),
        ({"seeds": "0, 0"}, "different seeds"),
        ({"train_sizes": "10, ten"}, "Training-set sizes are whole numbers or 'all'"),
        ({"workers": 0}, "workers must be an integer ≥ 1"),
        ({"test_fraction": 1.0}, "test_fraction must lie in \\(0, 1\\)"),
    ],
)
def test_an_inconsistent_form_says_what_to_fix(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        form_request(_values(**changes), runs_dir=tmp_path)


def test_parsers_and_names() -> None:
    assert (
        parse_seeds("3; 1, 2") == (3, 1, 2) and parse_sizes("all, 40") == (None, 40) and parse_sizes("") == ()
    )
    assert run_name("synthetic:n=8") == "synthetic-n-8" and run_name("/data/FER2013/") == "FER2013"


def test_an_unfinished_run_of_the_same_settings_is_resumed_and_a_finished_one_is_not(tmp_path: Path) -> None:
    """Old code: every Run made a new folder, so a cancelled grid started again from its first cell (and
    ``resumable_run`` missed folders whose name ends in digits, as ``…-synthetic-n-8`` does)."""
    runs = tmp_path / "runs"
    values = _values(dataset="synthetic:n=8", methods=["none"])
    first = form_request(values, runs_dir=runs)
    assert not Path(first.run_dir).exists() and Path(first.run_dir).name.endswith("-synthetic-n-8")
    run = ExperimentRun(Path(first.run_dir), first.run_config, "cancelled", "2026-01-01T00:00:00+00:00")
    run.run_dir.mkdir(parents=True)
    write_run_json(run)
    assert form_request(values, runs_dir=runs).run_dir == first.run_dir  # resumed
    other = form_request({**values, "seeds": "0, 1"}, runs_dir=runs)
    assert other.run_dir != first.run_dir  # other settings: a new folder
    write_run_json(dataclasses.replace(run, status="finished"))
    assert form_request(values, runs_dir=runs).run_dir != first.run_dir  # nothing left to resume


def test_write_run_json_keeps_what_the_worker_added(tmp_path: Path) -> None:
    """Old code: the run's second run.json write dropped ``worker_pid`` and ``used``, so a live run was
    listed as interrupted."""
    values = _values(methods=["none"])
    request = form_request(values, runs_dir=tmp_path)
    run = ExperimentRun(Path(request.run_dir), request.run_config, "running", "2026-01-01T00:00:00+00:00")
    run.run_dir.mkdir(parents=True)
    write_run_json(run)
    record = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8"))
    (run.run_dir / "run.json").write_text(json.dumps({**record, "worker_pid": 42}), encoding="utf-8")
    write_run_json(dataclasses.replace(run, test_source="20 % held apart"))
    record = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["worker_pid"] == 42 and record["test_source"] == "20 % held apart"


def test_a_kept_run_fills_the_form_again(tmp_path: Path) -> None:
    values = _values(
        methods=["none", "mean", "regions"],
        switch=False,
        seeds="2, 5",
        train_sizes="40, all",
        keep_models=True,
    )
    request = form_request(values, runs_dir=tmp_path)
    run = ExperimentRun(Path(request.run_dir), request.run_config, "finished", "2026-01-01T00:00:00+00:00")
    run.run_dir.mkdir(parents=True)
    write_run_json(run)
    again = form_of_run(load_run(run.run_dir))
    assert set(again) <= set(FORM_DEFAULTS)
    assert form_request({**values, **again}, runs_dir=tmp_path / "other").run_config == request.run_config


def test_the_form_maps_to_and_from_the_training_options(tmp_path: Path) -> None:
    assert form_training(FORM_DEFAULTS) == DEFAULT_TRAINING  # the form's defaults are the experiment's
    assert {key: FORM_DEFAULTS[key] for key in FORM_TRAINING_FIELDS} == form_of_training(DEFAULT_TRAINING)
    shown = {
        "architecture": "small_cnn",
        "options": {},
        "epochs": 4,
        "switch_epoch": 2,
        "eval_every_steps": 5,
    }
    training = form_training(_values(**shown))
    assert training == TrainingOptions(architecture="small_cnn", options={}, epochs=4, switch_epoch=2,
                                       eval_every_steps=5)  # fmt: skip
    assert form_of_training(training) == shown
    config = form_request(_values(methods=["none"], **shown), runs_dir=tmp_path).config
    assert config.training == training
    with pytest.raises(ValueError, match="epochs must be an integer ≥ 1; got 0"):
        form_request(_values(epochs=0), runs_dir=tmp_path)


def _point(step: int) -> CurvePoint:
    return CurvePoint(step, 1, "unmasked", 16 * step, 1.0, 1.1, 0.3, 0.25)


def test_progress_shows_cells_done_running_failed_and_the_eta() -> None:
    training = ExperimentProgress(
        "training", 3, 12, "", "mean", 1, _point(40), 500, running=2, failed=1, eta_s=600.0
    )
    shown = progress_display(training)
    assert shown.fraction == pytest.approx(0.25)
    assert shown.bar_text == "3/12 cells done, 2 running, 1 failed, ETA 10 min"
    assert shown.status_text == "mean, seed 1, 500 images: step 40, val. macro-F1 0.250"
    first = progress_display(ExperimentProgress("training", 0, 4, "", "none", 0, running=1))
    assert first.fraction == 0 and first.bar_text == "0/4 cells done, 1 running, 0 failed"  # no ETA yet
    loading = progress_display(ExperimentProgress("relevance", 10, 64, "relevance maps 10/64"))
    assert loading.fraction is None and loading.status_text == "relevance maps 10/64"
