"""The experiment runner: a worker process whose news arrive as Qt signals; cancel and failure paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from analysis.experiment import ExperimentConfig, ExperimentProgress, load_run
from analysis.trainee import TrainingOptions
from rbdm_gui.cli.commands_models import DEFAULT_TRAINER
from rbdm_gui.screens.experiment_runner import ExperimentRunner
from rbdm_gui.workflows.experiment_worker import LaunchRequest

pytestmark = pytest.mark.gui


def _request(run_dir: Path, *, dataset: str = "synthetic:n=2") -> LaunchRequest:
    config = ExperimentConfig(
        dataset=dataset,
        trainer=str(DEFAULT_TRAINER),
        variants=("none",),
        training=TrainingOptions(architecture="small_cnn", options={}, epochs=1),
        tensorboard=False,
    )
    return LaunchRequest(config, str(run_dir))


def _finish(qtbot: QtBot, runner: ExperimentRunner) -> tuple[str, str]:
    outcome: list[tuple[str, str]] = []
    runner.finished.connect(lambda status, text: outcome.append((status, text)))
    qtbot.waitUntil(lambda: bool(outcome), timeout=60_000)
    assert not runner.running
    return outcome[0]


def test_a_cancelled_run_ends_as_cancelled_and_its_folder_says_so(qtbot: QtBot, tmp_path: Path) -> None:
    runner = ExperimentRunner()
    seen: list[ExperimentProgress] = []
    started: list[str] = []
    runner.progress.connect(seen.append)
    runner.started.connect(started.append)
    run_dir = tmp_path / "runs" / "r"
    runner.start(_request(run_dir))
    assert runner.running
    runner.cancel()  # before any training step: the worker stops at its first report
    assert runner.cancelling
    status, text = _finish(qtbot, runner)
    assert (status, text) == ("cancelled", str(run_dir))
    assert started == [str(run_dir)]
    assert load_run(run_dir).status == "cancelled"
    assert all(p.stage != "training" for p in seen)


def test_a_failing_run_reports_the_workers_error(qtbot: QtBot, tmp_path: Path) -> None:
    runner = ExperimentRunner()
    run_dir = tmp_path / "runs" / "r"
    runner.start(_request(run_dir, dataset=str(tmp_path / "no-such-dataset")))
    status, text = _finish(qtbot, runner)
    assert status == "failed"
    assert "no-such-dataset" in text
    assert load_run(run_dir).status == "failed"


def test_one_run_at_a_time(qtbot: QtBot, tmp_path: Path) -> None:
    runner = ExperimentRunner()
    runner.start(_request(tmp_path / "runs" / "a"))
    with pytest.raises(RuntimeError, match="an experiment is running already"):
        runner.start(_request(tmp_path / "runs" / "b"))
    runner.stop()
    assert not runner.running
    assert load_run(tmp_path / "runs" / "a").status == "cancelled"


def test_a_worker_that_cannot_start_is_reported(qtbot: QtBot, tmp_path: Path) -> None:
    runner = ExperimentRunner(python=str(tmp_path / "no-python"))
    runner.start(_request(tmp_path / "runs" / "r"))
    status, text = _finish(qtbot, runner)
    assert status == "failed" and "Could not start" in text


def test_a_run_cancelled_before_its_worker_started_is_recorded_as_cancelled(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Seen on a busy machine: the niced worker was still importing TensorFlow when the cancel grace ran
    out, so it never wrote run.json and the cancelled run left no record. A worker that never starts
    (an interpreter that only sleeps) reproduces it without the load."""
    sleeper = tmp_path / "slow-python"
    sleeper.write_text("#!/bin/sh\nexec sleep 60\n", encoding="utf-8")
    sleeper.chmod(0o755)
    runner = ExperimentRunner(python=str(sleeper), cancel_grace_ms=0)
    run_dir = tmp_path / "runs" / "r"
    request = _request(run_dir)
    runner.start(request)
    runner.cancel()
    status, text = _finish(qtbot, runner)
    assert (status, text) == ("cancelled", str(run_dir))
    stored = load_run(run_dir)
    assert stored.status == "cancelled" and stored.results == ()
    assert stored.config == request.run_config
    assert stored.finished_utc


def test_a_cancel_without_grace_still_ends_as_cancelled(qtbot: QtBot, tmp_path: Path) -> None:
    """The worker is asked to stop and, at once, terminated: either way the run ends as cancelled."""
    runner = ExperimentRunner(cancel_grace_ms=0)
    run_dir = tmp_path / "runs" / "r"
    runner.start(_request(run_dir))
    qtbot.waitUntil(lambda: run_dir.joinpath("run.json").is_file(), timeout=30_000)
    runner.cancel()
    status, _ = _finish(qtbot, runner)
    assert status == "cancelled"
    assert load_run(run_dir).status == "cancelled"
