"""The Experiments screen's Qt-free model and its remembered form, run without Qt.

:class:`ExperimentScreen` gets a launcher that only records what it was asked, and reads run folders at
once (:func:`run_now`); its listeners are plain lists here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.experiment import ExperimentProgress, read_confusion
from analysis.trainee import CurvePoint
from rbdm_gui.workflows.experiment_display import (
    confusion_caption,
    run_list_text,
    run_tooltip,
    short_run_name,
    trainer_text,
)
from rbdm_gui.workflows.experiment_form import FORM_DEFAULTS
from rbdm_gui.workflows.experiment_screen import ExperimentScreen, ProgressBar
from rbdm_gui.workflows.experiment_settings import (
    ExperimentSettings,
    experiments_config_path,
    load_experiment_settings,
    save_experiment_settings,
)
from rbdm_gui.workflows.experiment_worker import LaunchRequest
from tests.rbdm_gui._experiment_runs import write_run


class _Launcher:
    """Records the runs it is asked to start; "runs" until told it finished."""

    def __init__(self) -> None:
        self.running = False
        self.cancelling = False
        self.started: list[LaunchRequest] = []

    def start(self, request: LaunchRequest) -> None:
        self.started.append(request)
        self.running = True

    def cancel(self) -> None:
        self.cancelling = True


def _screen(runs: Path, **kwargs: Any) -> tuple[ExperimentScreen, _Launcher, dict[str, list[Any]]]:
    launcher = _Launcher()
    screen = ExperimentScreen(launcher, runs_dir=runs, **kwargs)
    heard: dict[str, list[Any]] = {}
    for name in (
        "status_changed",
        "runs_changed",
        "shown_changed",
        "point_added",
        "trainee_changed",
        "progress_changed",
        "running_changed",
        "used_changed",
        "form_changed",
    ):
        heard[name] = []
        getattr(screen, name).subscribe(heard[name].append)
    return screen, launcher, heard


def _two_runs(runs: Path) -> tuple[Path, Path]:
    old = write_run(
        runs / "20250101-100000-x", started_utc="2025-01-01", variants=("none", "mean"), seeds=(0,)
    )
    new = write_run(
        runs / "20250102-110000-x", started_utc="2025-01-02", variants=("none", "mean+switch"), seeds=(0, 1)
    )
    return old, new


# --- the remembered form ---------------------------------------------------------------------------------


def test_the_default_settings_are_the_forms_defaults() -> None:
    assert ExperimentSettings().form_values() == dict(FORM_DEFAULTS)
    assert ExperimentSettings.from_values({}) == ExperimentSettings()


def test_settings_are_saved_atomically_and_read_back(tmp_path: Path) -> None:
    assert experiments_config_path() == tmp_path / "config" / "experiments.json"  # conftest's folder
    assert load_experiment_settings() == ExperimentSettings()  # no file yet: the defaults
    settings = ExperimentSettings(
        dataset="synthetic:n=7", seeds="4, 12", train_sizes="40, all", n_train=0, methods=("none", "regions")
    )
    path = save_experiment_settings(settings)
    assert path == experiments_config_path()
    assert json.loads(path.read_text(encoding="utf-8"))["methods"] == ["none", "regions"]
    assert load_experiment_settings() == settings
    assert [p.name for p in path.parent.iterdir()] == ["experiments.json"]  # no temporary file left


def test_a_damaged_settings_file_is_kept_aside_and_the_defaults_are_used(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is damaged") as caught:
        load_experiment_settings(path)
    assert not path.exists() and "experiments.json.damaged-" in str(caught.value)
    path.write_text("{not json", encoding="utf-8")
    screen, _, _ = _screen(tmp_path / "runs", settings_path=path)
    assert screen.form == ExperimentSettings() and "is damaged" in screen.status


def test_older_and_odd_form_values_take_the_defaults_where_they_do_not_fit() -> None:
    settings = ExperimentSettings.from_values(
        {
            "dataset": "",
            "n_train": None,
            "n_val": 0,
            "methods": ["perceptive", "none", "unknown"],
            "seeds": [3, 1],
            "train_sizes": [500, None],
            "epochs": "many",
            "options": {},
            "architecture": "small_cnn",
            "workers": True,
            "test_fraction": 0,
        }
    )
    default = ExperimentSettings()
    assert settings.dataset == default.dataset and settings.n_train == default.n_train and settings.n_val == 0
    assert settings.methods == ("none", "perceptive")  # in the form's order
    assert (settings.seeds, settings.train_sizes) == ("3, 1", "500, all")
    assert (settings.epochs, settings.workers, settings.test_fraction) == (6, 1, default.test_fraction)
    assert settings.form_values()["options"] == {} and settings.alpha == default.alpha


# --- kept runs -------------------------------------------------------------------------------------------


def test_an_empty_runs_folder_says_how_to_start(tmp_path: Path) -> None:
    screen, _, heard = _screen(tmp_path / "runs")
    screen.refresh_runs()
    assert screen.listed == () and "No runs yet" in screen.status and heard["runs_changed"]
    assert not screen.can_reuse and screen.can_run and not screen.can_cancel


def test_a_kept_run_reopens_with_its_tables_and_the_best_trainee_chosen(tmp_path: Path) -> None:
    old, new = _two_runs(tmp_path / "runs")
    screen, _, heard = _screen(tmp_path / "runs")
    screen.refresh_runs()
    assert screen.listed == (new, old)  # newest first
    screen.select([new])
    assert [run.run_dir for run in screen.shown] == [new] and screen.can_reuse
    assert heard["shown_changed"] and not screen.live_shown
    assert screen.plot_title.startswith("20250102-110000-x (finished)")
    table = screen.trainee_table()
    assert not table.several and table.titles[0] == "variant"
    assert [row[:3] for row in table.rows] == [
        ("none", "0", "finished"),
        ("none", "1", "finished"),
        ("mean+switch", "0", "finished"),
        ("mean+switch", "1", "finished"),
    ]
    assert screen.summary_table().rows[0][:3] == ("none", "2", "0.205 ± 0.007")
    assert [row[1] for row in screen.comparison_table().rows] == ["none", "mean+switch"]
    assert screen.trainee == (new, "none", 1, 0) and screen.trainee_row == 1  # the best validation F1
    expected = read_confusion(new / "trainees" / "none-seed1" / "confusion.csv")
    assert expected is not None and (screen.confusion() == expected).all()
    screen.choose_trainee(3)
    assert heard["trainee_changed"][-1] == (new, "mean+switch", 1, 0)
    assert "mean+switch, seed 1 (20250102-110000-x)" in confusion_caption(screen.trainee, screen.confusion())
    screen.choose_trainee(None)
    assert screen.confusion() is None and "pick a finished Trainee" in confusion_caption(None, None)


def test_a_run_of_several_sizes_shows_each_trainees_own_confusion_matrix(tmp_path: Path) -> None:
    """The screen keyed confusion matrices by (run, variant, seed): with --train-sizes 500,2000 the
    2000-image Trainee's matrix replaced the 500-image one of the same variant and seed."""
    run = write_run(
        tmp_path / "runs" / "20250103-090000-sizes",
        started_utc="2025-01-03T09:00:00+00:00",
        variants=("none",),
        seeds=(0,),
        sizes=(500, 2000),
    )
    screen, _, _ = _screen(tmp_path / "runs")
    screen.refresh_runs()
    screen.select([run])
    trainees = [(r.train_size, r.variant, r.seed) for _, r in screen.results]
    assert trainees == [(500, "none", 0), (2000, "none", 0)]
    shown = []
    for row, size in enumerate((500, 2000)):
        screen.choose_trainee(row)
        assert screen.trainee == (run, "none", 0, size) and screen.trainee_row == row
        expected = read_confusion(run / "trainees" / f"n{size}" / "none-seed0" / "confusion.csv")
        matrix = screen.confusion()
        assert expected is not None and matrix is not None and (matrix == expected).all()
        assert f"{size} training images" in confusion_caption(screen.trainee, matrix)
        shown.append(matrix)
    assert not (shown[0] == shown[1]).all()
    assert [row[-1] for row in screen.trainee_table().rows] == ["500", "2000"]


def test_several_kept_runs_are_compared(tmp_path: Path) -> None:
    old, new = _two_runs(tmp_path / "runs")
    screen, _, _ = _screen(tmp_path / "runs")
    screen.refresh_runs()
    screen.select([old, new])
    assert [run.run_dir for run in screen.shown] == [new, old] and not screen.can_reuse
    assert screen.plot_title == "Comparing 20250102-110000-x, 20250101-100000-x (mean over seeds)"
    table = screen.trainee_table()
    assert table.several and table.titles[0] == "run" and len(table.rows) == 6
    assert [short_run_name(run) for run in screen.shown] == ["110000", "100000"]


def test_a_runs_settings_are_reused_but_the_engine_stays_the_forms(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "runs" / "r", started_utc="2025-01-01", variants=("none", "negative+switch"), seeds=(2, 5)
    )
    (run / "gaze.json").write_text(json.dumps({"study": "/s.sqlite", "variants": ["gaze+switch"]}), "utf-8")
    screen, _, heard = _screen(tmp_path / "runs")
    screen.set_form(ExperimentSettings(workers=3))
    screen.refresh_runs(select=run)
    screen.reuse_settings()
    form = screen.form
    assert form.methods == ("none", "negative", "gaze") and (form.masked, form.switch) == (False, True)
    assert (form.seeds, form.study, form.workers) == ("2, 5", "/s.sqlite", 3)
    assert heard["form_changed"] == [form] and "copied into the form" in screen.status


def test_a_run_whose_process_died_is_shown_as_interrupted(tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs" / "r", started_utc="2025-01-01", variants=("none",), seeds=(0,))
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    (run / "run.json").write_text(json.dumps({**record, "status": "running", "worker_pid": 0}), "utf-8")
    screen, _, _ = _screen(tmp_path / "runs")
    screen.refresh_runs(select=run)
    assert screen.runs[run].status == "interrupted" and screen.shown[0].status == "interrupted"
    assert "was interrupted" in screen.status


# --- running ---------------------------------------------------------------------------------------------


def test_an_invalid_form_starts_nothing_and_says_what_to_fix(tmp_path: Path) -> None:
    screen, launcher, _ = _screen(tmp_path / "runs")
    screen.set_form(ExperimentSettings(seeds="0, x"))
    assert not screen.start_run()
    assert "Seeds must be whole numbers" in screen.status and launcher.started == []


def test_run_starts_the_forms_run_remembers_the_form_and_follows_it_live(tmp_path: Path) -> None:
    settings_path = tmp_path / "experiments.json"
    screen, launcher, heard = _screen(tmp_path / "runs", settings_path=settings_path)
    screen.set_form(ExperimentSettings(methods=("none", "mean"), architecture="small_cnn", workers=2))
    assert screen.start_run()
    (request,) = launcher.started
    assert request.config.variants == ("none", "mean", "mean+switch") and request.workers == 2
    assert Path(request.run_dir).parent == tmp_path / "runs" and screen.live_dir == Path(request.run_dir)
    assert load_experiment_settings(settings_path) == screen.form
    assert heard["progress_changed"] == [ProgressBar("starting…", busy=True)]
    assert heard["running_changed"] == [True] and screen.live_shown
    assert screen.status.startswith("Starting ") and "on local Ray, 2 at once" in screen.status
    assert not screen.can_run and screen.can_cancel
    assert not screen.start_run() and "A run is going on" in screen.status  # one at a time
    assert "still running" in screen.closing_question()
    screen.cancel_run()
    assert launcher.cancelling and not screen.can_cancel and "Cancelling" in screen.status


def test_a_finished_run_is_listed_and_picked(tmp_path: Path) -> None:
    screen, launcher, heard = _screen(tmp_path / "runs")
    screen.set_form(ExperimentSettings(methods=("none",), architecture="small_cnn"))
    assert screen.start_run()
    run = write_run(
        Path(launcher.started[0].run_dir), started_utc="2025-01-01", variants=("none",), seeds=(0,)
    )
    launcher.running = False
    screen.finish("finished", str(run))
    assert heard["running_changed"][-1] is False and screen.status == f"Run finished: {run}"
    assert screen.selected == (run,) and [r.run_dir for r in screen.shown] == [run]
    assert screen.closing_question() == ""
    screen.finish("failed", "out of memory")
    assert screen.status == "The run failed: out of memory"


def test_live_curves_follow_the_training_set_size_being_trained(tmp_path: Path) -> None:
    screen, _, heard = _screen(tmp_path / "runs")
    screen.follow(tmp_path / "runs" / "live")
    for size, step in ((8, 2), (8, 4), (16, 2)):
        point = CurvePoint(step, 1, "unmasked", 16 * step, 1.0, 1.1, 0.3, 0.2)
        screen.show_progress(ExperimentProgress("training", 1, 4, "training", "none", 0, point, size))
    assert screen.live_size == 16 and screen.live_shown
    assert {key: [p.step for p in points] for key, points in screen.live_curves.items()} == {("none", 0): [2]}
    assert heard["point_added"] == [("none", 0)] * 3
    assert screen.plot_title == "live (running, 16 training images)"
    assert (
        heard["progress_changed"][-1].fraction == 0.25
        and "1/4 cells done" in heard["progress_changed"][-1].text
    )
    assert screen.status == "none, seed 0, 16 images: step 2, val. macro-F1 0.200"
    screen.show_progress(ExperimentProgress("relevance", 0, 0, "computing relevance"))
    assert heard["progress_changed"][-1] == ProgressBar("relevance", None, busy=True)


def test_the_images_a_run_really_uses_go_into_the_form_with_a_warning(tmp_path: Path) -> None:
    screen, _, heard = _screen(tmp_path / "runs")
    screen.set_form(ExperimentSettings(n_train=800, n_val=400))
    screen.show_used({"n_train": 400, "n_val": 0, "warnings": ["train: 400 images instead of 800"]})
    assert (screen.form.n_train, screen.form.n_val) == (400, 400)
    assert heard["form_changed"] == [screen.form]
    assert heard["used_changed"] == ["⚠ train: 400 images instead of 800"]


def test_the_study_chosen_in_setup_goes_into_the_form(tmp_path: Path) -> None:
    screen, _, heard = _screen(tmp_path / "runs", trainer_path=tmp_path / "trainer.keras")
    assert screen.form.trainer == str(tmp_path / "trainer.keras")
    screen.follow_study(tmp_path / "study.sqlite")
    assert screen.form.study == str(tmp_path / "study.sqlite") and len(heard["form_changed"]) == 1


def test_a_kept_run_is_described_in_the_list_and_its_tooltip(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "runs" / "r", started_utc="2025-01-01", variants=("none", "mean"), seeds=(0, 1)
    )
    screen, _, _ = _screen(tmp_path / "runs")
    screen.refresh_runs()
    run = screen.runs[run_dir]
    assert run_list_text(run) == "r\n   finished · 2 variants × 2 seeds · MobileNetV2, 6 epochs"
    tip = run_tooltip(run).split("\n")
    assert tip[0] == str(run_dir) and tip[1].startswith("dataset synthetic:n=50 (train: 800")
    assert tip[2] == "started 2025-01-01, ended 2025-01-01"
    assert "No model card" in trainer_text(tmp_path / "none.keras")
