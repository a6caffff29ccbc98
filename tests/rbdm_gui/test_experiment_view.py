"""The Experiments screen: the form, kept runs reopened and compared, and a real run in the background.

The responsiveness test runs a tiny experiment from the view (a worker process, as the app does) and
measures the GUI event loop's latency meanwhile with a 10 ms timer; see its docstring for the bound.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from analysis.experiment import (
    VARIANTS,
    ExperimentProgress,
    load_run,
    read_confusion,
)
from analysis.experiment_report import VariantComparison
from analysis.trainee import CURVE_FIELDS, CurvePoint
from rbdm_gui.screens.experiment_curves_panel import PANELS
from rbdm_gui.screens.experiment_view import ExperimentView
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.experiment_display import COMPARISON_COLUMNS, comparison_cells
from rbdm_gui.workflows.experiment_screen import default_runs_dir
from tests.rbdm_gui._experiment_runs import points as _points
from tests.rbdm_gui._experiment_runs import write_run as _write_run

pytestmark = pytest.mark.gui


def _view(qtbot: QtBot, runs: Path) -> ExperimentView:
    view = ExperimentView(runs_dir=runs)
    qtbot.addWidget(view)
    view.resize(1400, 900)
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)
    return view


def _item(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    assert item is not None
    return item


def _cells(table: QTableWidget) -> list[list[str]]:
    return [[_item(table, r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def _legend(view: ExperimentView) -> list[str]:
    return [label.text for _, label in view.curves.legend.items]


def _curves(view: ExperimentView, panel: str = "val_macro_f1") -> list[pg.PlotDataItem]:
    return [item for item in view.curves.plots[panel].listDataItems() if item.xData is not None]


# --- the form --------------------------------------------------------------------------------------------


def test_the_default_form_runs_the_papers_seven_trainees(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    request = view.form_request()
    config = request.config
    assert config.variants == VARIANTS and request.gaze_variants == ()
    assert config.architecture == "MobileNetV2" and config.options == {"alpha": pytest.approx(0.35)}
    assert config.trainer == str(DEFAULT_TRAINER)
    assert config.size_px == 48 and not config.rgb  # from the Trainer's model card
    assert Path(request.run_dir).parent == tmp_path / "runs"
    assert not view.form.method_boxes["gaze"].isChecked() and not view.form.study_row.isEnabled()
    assert "No runs yet" in view.progress.status_label.text()


def test_the_form_describes_the_chosen_run(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    study = tmp_path / "study.sqlite"
    study.write_bytes(b"")
    for method, box in view.form.method_boxes.items():
        box.setChecked(method in ("none", "mean", "gaze"))
    assert view.form.study_row.isEnabled()
    view.form.study_edit.setText(str(study))
    view.form.masked_box.setChecked(False)
    view.form.architecture_combo.setCurrentText("small_cnn")
    assert not view.form.alpha_spin.isEnabled()
    view.form.seeds_edit.setText("3, 1")
    view.form.sizes_edit.setText("500, all, 2000")
    view.form.n_val_spin.setValue(0)
    view.form.epochs_spin.setValue(4)
    view.form.switch_spin.setValue(2)
    request = view.form_request()
    assert request.config.train_sizes == (500, None, 2000) and request.config.sizes == (500, 2000, None)
    assert request.config.variants == ("none", "mean+switch")
    assert request.gaze_variants == ("gaze+switch",) and request.study == str(study)
    assert request.config.seeds == (3, 1) and request.config.n_val is None
    assert request.config.options == {} and (request.config.epochs, request.config.switch_epoch) == (4, 2)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda v: [b.setChecked(False) for b in v.form.method_boxes.values()],
            "Choose at least one masking method",
        ),
        (
            lambda v: [b.setChecked(m == "gaze") for m, b in v.form.method_boxes.items()],
            "Choose 'no mask' or a relevance mask as well",
        ),
        (lambda v: v.form.method_boxes["gaze"].setChecked(True), "No study file at ''"),
        (
            lambda v: v.form.trainer_edit.setText("/nowhere/model.keras"),
            "No Trainer model at /nowhere/model.keras",
        ),
        (lambda v: v.form.seeds_edit.setText("0, x"), "Seeds must be whole numbers"),
        (lambda v: v.form.seeds_edit.setText("1, 1"), "different seeds"),
        (lambda v: v.form.sizes_edit.setText("500, most"), "Training-set sizes are whole numbers or 'all'"),
        (lambda v: v.form.sizes_edit.setText("0"), "Training-set sizes are whole numbers or 'all'"),
        (lambda v: v.form.switch_spin.setValue(6), "switch_epoch must satisfy"),
    ],
)
def test_an_incomplete_form_says_what_to_fix(
    qtbot: QtBot, tmp_path: Path, setup: object, message: str
) -> None:
    view = _view(qtbot, tmp_path / "runs")
    setup(view)  # type: ignore[operator]
    assert not view.start_run()
    assert message in view.progress.status_label.text()
    assert not view.runner.running and view.progress.run_button.isEnabled()


def test_the_form_is_remembered(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    view.form.dataset_edit.setText("synthetic:n=7")
    view.form.seeds_edit.setText("4, 12")
    view.form.sizes_edit.setText("40, all")
    view.form.n_train_spin.setValue(0)
    view.form.method_boxes["perceptive"].setChecked(False)
    view.form.method_boxes["regions"].setChecked(True)
    view.form.test_split_edit.setText("test")
    view.form.keep_models_box.setChecked(True)
    view.form.workers_spin.setValue(3)
    view.form.cpus_spin.setValue(2)
    view.save_form()
    again = _view(qtbot, tmp_path / "runs")
    assert again.form_values() == view.form_values()
    assert again.form.seeds_edit.text() == "4, 12" and again.form.n_train_spin.text() == "all"
    assert (
        again.form.workers_spin.value(),
        again.form.cpus_spin.value(),
        again.form.test_split_edit.text(),
    ) == (
        3,
        2,
        "test",
    )
    assert again.form.keep_models_box.isChecked() and again.form.method_boxes["regions"].isChecked()
    assert not again.form.test_fraction_spin.isEnabled()  # a test split: nothing held apart


def test_the_form_offers_the_engine_and_every_mask_source_of_the_cli(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    study = tmp_path / "study.sqlite"
    study.write_bytes(b"")
    assert set(view.form.method_boxes) >= {"gaze", "fusion", "regions"}
    assert not view.form.study_row.isEnabled()
    view.form.method_boxes["fusion"].setChecked(True)
    assert view.form.study_row.isEnabled()  # fusion needs the study's fixations too
    view.form.study_edit.setText(str(study))
    view.form.workers_spin.setValue(2)
    view.form.test_fraction_spin.setValue(0.25)
    request = view.form_request()
    assert "fusion" in request.config.variants and request.config.gaze_study == str(study)
    assert request.workers == 2 and request.engine.on_ray and request.config.test_fraction == 0.25


def test_runs_are_kept_in_the_users_data_folder_by_default(tmp_path: Path) -> None:
    assert default_runs_dir() == tmp_path / "data" / "experiments"  # RBDM_STUDIO_DATA_DIR from conftest


# --- kept runs -------------------------------------------------------------------------------------------


def test_a_kept_run_reopens_with_curves_table_and_confusion_matrix(qtbot: QtBot, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    old = _write_run(runs / "a", started_utc="2025-01-01T10:00:00+00:00", variants=("none",), seeds=(0,))
    new = _write_run(
        runs / "b", started_utc="2025-01-02T10:00:00+00:00", variants=("none", "mean+switch"), seeds=(0, 1)
    )
    view = _view(qtbot, runs)
    newest_first = [view.runs_panel.runs_list.item(k).text().split("\n")[0] for k in range(2)]
    assert newest_first == ["b", "a"]
    view.open_runs([new])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)

    rows = _cells(view.tables.results_table)
    assert [r[:3] for r in rows] == [
        ["none", "0", "finished"],
        ["none", "1", "finished"],
        ["mean+switch", "0", "finished"],
        ["mean+switch", "1", "finished"],
    ]
    assert len(_curves(view)) == 4  # one line per Trainee
    assert _legend(view) == ["none", "mean+switch"]  # one entry per variant
    assert _curves(view)[2].opts["pen"].style() != _curves(view)[0].opts["pen"].style()  # +switch dashed
    summary = _cells(view.tables.summary_table)
    assert [r[:2] for r in summary] == [["none", "2"], ["mean+switch", "2"]]
    assert summary[0][2] == "0.205 ± 0.007"  # best F1 0.20 and 0.21 over the seeds

    # the best Trainee is picked; its confusion matrix is shown, heat-coloured by the row's share
    assert view.tables.results_table.selectedIndexes()[0].row() == 1
    matrix = read_confusion(new / "trainees" / "none-seed1" / "confusion.csv")
    assert matrix is not None
    shown = [[int(c) for c in row] for row in _cells(view.confusion.confusion_table)]
    assert shown == matrix.tolist()
    diagonal = _item(view.confusion.confusion_table, 0, 0).background().color()
    off = _item(view.confusion.confusion_table, 0, 1).background().color()
    assert diagonal.lightness() < off.lightness()
    assert "none, seed 1 (b)" in view.confusion.confusion_caption.text()
    view.tables.results_table.selectRow(3)
    assert "mean+switch, seed 1" in view.confusion.confusion_caption.text()
    assert _cells(view.confusion.confusion_table)[0][0] == "5"

    view.open_runs([old])
    qtbot.waitUntil(lambda: not view.busy and view.model.shown[0].run_dir == old, timeout=10_000)
    assert len(_cells(view.tables.results_table)) == 1


def test_several_kept_runs_are_compared(qtbot: QtBot, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = _write_run(
        runs / "20250101-100000-x", started_utc="2025-01-01", variants=("none", "mean"), seeds=(0,)
    )
    b = _write_run(runs / "20250102-110000-x", started_utc="2025-01-02", variants=("none",), seeds=(0, 1))
    view = _view(qtbot, runs)
    view.open_runs([a, b])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 2, timeout=10_000)
    assert _legend(view) == ["110000 · none", "100000 · none", "100000 · mean"]  # seeds averaged
    symbols = [item.opts["symbol"] for item in _curves(view)]
    assert symbols[0] != symbols[1] == symbols[2]  # a marker shape per run
    header = view.tables.results_table.horizontalHeaderItem(0)
    assert header is not None and header.text() == "run"
    assert len(_cells(view.tables.results_table)) == 4
    assert [r[:3] for r in _cells(view.tables.summary_table)] == [
        ["20250102-110000-x", "none", "2"],
        ["20250101-100000-x", "none", "1"],
        ["20250101-100000-x", "mean", "1"],
    ]
    assert "Comparing" in view.curves.plot_title.text


def test_a_runs_settings_can_be_reused(qtbot: QtBot, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = _write_run(runs / "r", started_utc="2025-01-01", variants=("none", "negative+switch"), seeds=(2, 5))
    (run / "gaze.json").write_text(json.dumps({"study": "/s.sqlite", "variants": ["gaze+switch"]}), "utf-8")
    view = _view(qtbot, runs)
    view.open_runs([run])
    view.runs_panel.reuse_button.click()
    values = view.form_values()
    assert values["methods"] == ["none", "negative", "gaze"]
    assert (values["masked"], values["switch"]) == (False, True)
    assert values["seeds"] == "2, 5" and values["study"] == "/s.sqlite"
    assert "copied into the form" in view.progress.status_label.text()


def test_a_run_whose_process_died_is_listed_as_interrupted_with_its_partial_curves(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Old code: listed as "running" (or "failed: Broken pipe"), reopened with empty plots."""
    runs = tmp_path / "runs"
    run = _write_run(runs / "r", started_utc="2025-01-01", variants=("none",), seeds=(0,))
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    (run / "run.json").write_text(json.dumps({**record, "status": "running", "worker_pid": 0}), "utf-8")
    (run / "curves.csv").unlink()
    (run / "results.csv").unlink()
    with (run / "trainees" / "none-seed0" / "curves.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(p.as_row() for p in _points(0, switch=False)[:3])
    view = _view(qtbot, runs)
    assert "interrupted" in view.runs_panel.runs_list.item(0).text()
    view.open_runs([run])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    assert view.model.shown[0].status == "interrupted" and "interrupted" in view.progress.status_label.text()
    assert [list(item.xData) for item in _curves(view)] == [[1.0, 2.0, 3.0]]


def test_opening_another_run_resets_the_plot_axes(qtbot: QtBot, tmp_path: Path) -> None:
    """Old code: the previous run's (or the user's zoomed) axes stayed."""
    runs = tmp_path / "runs"
    a = _write_run(runs / "a", started_utc="2025-01-01", variants=("none",), seeds=(0,))
    b = _write_run(runs / "b", started_utc="2025-01-02", variants=("none",), seeds=(0,))
    view = _view(qtbot, runs)
    view.show()
    view.open_runs([a])
    qtbot.waitUntil(
        lambda: not view.busy and view.model.shown and view.model.shown[0].run_dir == a, timeout=10_000
    )
    plot = view.curves.plots["val_macro_f1"]
    plot.setXRange(0, 5000, padding=0)  # a long run's axis, or the user's zoom
    view.open_runs([b])
    qtbot.waitUntil(lambda: not view.busy and view.model.shown[0].run_dir == b, timeout=10_000)
    qtbot.wait(50)
    _low, high = plot.getViewBox().viewRange()[0]
    assert high < 10  # the curve's 4 steps fill the plot again


def test_the_form_shows_the_images_a_run_really_uses(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    view.form.n_train_spin.setValue(800)
    assert view.form.used_label.isHidden()
    view.runner.used.emit({"n_train": 400, "n_val": 400, "warnings": ["train: 400 images instead of 800"]})
    assert view.form.n_train_spin.value() == 400 and not view.form.used_label.isHidden()
    assert "400 images instead of 800" in view.form.used_label.text()


def test_closing_the_window_during_a_run_asks_first(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    from rbdm_gui.screens.main_window import MainWindow

    window = MainWindow([("Experiments", lambda: ExperimentView(runs_dir=tmp_path / "runs"))])
    qtbot.addWidget(window)
    window.show()
    view = window.view("Experiments")
    assert isinstance(view, ExperimentView)
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)
    assert window.closing_questions() == []  # nothing runs: no question
    monkeypatch.setattr(type(view.runner), "running", property(lambda self: True))
    stopped: list[bool] = []
    monkeypatch.setattr(view.runner, "stop", lambda **kw: stopped.append(True))
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return next(answers)

    monkeypatch.setattr(QMessageBox, "question", question)
    assert not window.close() and window.isVisible() and stopped == []  # "No": the run goes on
    assert "still running" in asked[0]
    assert window.close() and stopped == [True]  # "Yes": cancelled cleanly before the window goes


# --- a real run ------------------------------------------------------------------------------------------


def _tiny_form(view: ExperimentView) -> None:
    """64 training and 32 validation faces, the baseline and mean+switch, a small-CNN Trainee."""
    view.form.dataset_edit.setText("synthetic:n=8")
    view.form.n_train_spin.setValue(64)
    view.form.n_val_spin.setValue(32)
    for method, box in view.form.method_boxes.items():
        box.setChecked(method in ("none", "mean"))
    view.form.masked_box.setChecked(False)
    view.form.switch_box.setChecked(True)
    view.form.architecture_combo.setCurrentText("small_cnn")
    view.form.epochs_spin.setValue(2)
    view.form.switch_spin.setValue(1)
    view.form.seeds_edit.setText("0")
    view.form.eval_spin.setValue(2)


@pytest.mark.tf
def test_an_experiment_runs_in_the_worker_process_with_live_results(qtbot: QtBot, tmp_path: Path) -> None:
    """The Experiments screen runs a tiny experiment in its worker process and shows what it produced.

    How responsive the GUI stays meanwhile is measured by ``python -m benchmarks.gui_latency`` (a 10 ms
    timer's lateness, against the idle event loop and against the same run on a thread), not asserted
    here: a timing bound in the suite passes or fails with the machine's load, not with the code.
    """
    view = _view(qtbot, tmp_path / "runs")
    view.show()
    _tiny_form(view)
    assert view.start_run()
    assert not view.progress.run_button.isEnabled() and view.progress.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=120_000)
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    run = view.model.shown[0]
    assert run.status == "finished" and load_run(run.run_dir).status == "finished"
    assert "Run finished" in view.progress.status_label.text()
    assert [r[0] for r in _cells(view.tables.results_table)] == ["none", "mean+switch"]
    assert len(_curves(view)) == 2 and all(len(item.xData) == 2 for item in _curves(view))  # steps 2 and 4
    assert "seed 0" in view.confusion.confusion_caption.text()
    assert (
        sum(int(c) for row in _cells(view.confusion.confusion_table) for c in row) == 26
    )  # 32 val. images, 6 held apart as test images
    assert view.progress.run_button.isEnabled() and not view.progress.cancel_button.isEnabled()
    assert view.runs_panel.runs_list.count() == 1 and view.selected_run_dirs == [run.run_dir]


@pytest.mark.tf
@pytest.mark.slow
def test_cancelling_a_training_run_keeps_its_curves(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    _tiny_form(view)
    view.form.epochs_spin.setValue(50)
    view.form.eval_spin.setValue(1)
    assert view.start_run()
    qtbot.waitUntil(lambda: sum(map(len, view.model.live_curves.values())) >= 2, timeout=120_000)
    assert len(_curves(view)) == 1  # drawn live
    view.progress.cancel_button.click()
    assert not view.progress.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=60_000)
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    run = view.model.shown[0]
    assert run.status == "cancelled" and "Run cancelled" in view.progress.status_label.text()
    assert [r.status for r in run.results] == ["cancelled"]  # the baseline stopped; mean+switch never began
    assert 2 <= run.results[0].steps < 50 * 4


@pytest.mark.tf
@pytest.mark.slow
def test_a_grid_on_local_ray_shows_its_progress_is_cancelled_and_resumes(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Two workers on local Ray (started and shut down by the worker process): the bar counts cells done,
    running and failed with an ETA; Cancel keeps the finished cells; Run again with the same form resumes
    the run and trains only the missing cells. Old code: no workers field, a Trainee count instead of
    grid progress, and every Run started a new folder from the first cell."""
    pytest.importorskip("ray")
    view = _view(qtbot, tmp_path / "runs")
    _tiny_form(view)
    for method, box in view.form.method_boxes.items():
        box.setChecked(method == "none")
    view.form.seeds_edit.setText("0, 1, 2, 3")
    view.form.epochs_spin.setValue(6)
    view.form.workers_spin.setValue(2)
    bars: list[str] = []
    view.runner.progress.connect(lambda _: bars.append(view.progress.progress_bar.format()))
    assert view.start_run()
    assert "on local Ray, 2 at once" in view.progress.status_label.text()
    qtbot.waitUntil(lambda: any(re.match(r"[1-3]/4 cells done", bar) for bar in bars), timeout=240_000)
    view.progress.cancel_button.click()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=60_000)
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    first = view.model.shown[0]
    assert first.status == "cancelled" and "Run cancelled" in view.progress.status_label.text()
    assert any("2 running" in bar for bar in bars)  # two cells trained at once
    assert any("ETA" in bar for bar in bars if not bar.startswith("0/"))
    kept = {(r.variant, r.seed): r for r in first.results}
    assert 1 <= len(kept) < 4 and all(r.status == "finished" for r in kept.values())

    bars.clear()
    assert view.start_run()  # the same form: the cancelled run goes on
    assert f"Resuming {first.run_dir.name}" in view.progress.status_label.text()
    qtbot.waitUntil(lambda: not view.runner.running, timeout=240_000)
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    run = load_run(first.run_dir)
    assert run.status == "finished" and len(run.results) == 4 and view.runs_panel.runs_list.count() == 1
    for result in run.results:  # the finished cells were kept, not trained again
        if (result.variant, result.seed) in kept:
            assert result == kept[(result.variant, result.seed)]
    counted = [bar for bar in bars if "cells done" in bar]
    assert counted[0].startswith(f"{len(kept)}/4 cells done") and counted[-1].startswith("4/4 cells done")


def test_a_kept_run_shows_its_comparison_with_none_with_intervals_and_verdicts(
    qtbot: QtBot, tmp_path: Path
) -> None:
    run = _write_run(
        tmp_path / "runs" / "r", started_utc="2025-01-01", variants=("none", "mean+switch"), seeds=(0, 1, 2)
    )
    view = _view(qtbot, tmp_path / "runs")
    view.open_runs([run])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    header = view.tables.comparison_table.horizontalHeaderItem(len(COMPARISON_COLUMNS) - 1)
    assert header is not None and header.text() == "verdict"
    rows = _cells(view.tables.comparison_table)
    assert [r[1:3] for r in rows] == [["none", "3"], ["mean+switch", "3"]]
    assert rows[0][-1] == "baseline" and rows[0][-2] == "–"
    assert rows[1][-1].startswith(("accelerates learning", "no detectable difference", "slower"))
    assert re.fullmatch(r"0\.\d{3} \[-?\d\.\d{3}, \d\.\d{3}\]", rows[1][5])  # best val. F1 with its CI


def test_comparison_cells_show_means_intervals_and_the_verdict() -> None:
    from analysis.paired_statistics import MeanCI, PairedDifference

    row = VariantComparison(
        train_size=500,
        variant="mean",
        seeds=(0, 1, 2, 3, 4),
        k_steps=100,
        means={"aulc": MeanCI(0.41, 0.39, 0.43, 5), "steps_to_threshold": MeanCI(150.0, 120.0, 180.0, 5)},
        differences={"aulc": PairedDifference(0.04, 0.02, 0.06, 0.002, 5)},
        adjusted_p={"aulc": 0.01},
        reached=4,
        verdict="accelerates learning: AULC +0.040 [0.020, 0.060], p = 0.01",
    )
    assert comparison_cells(row) == [
        "500",
        "mean",
        "5",
        "0.410 [0.390, 0.430]",
        "150 [120, 180] (4/5)",
        "–",
        "–",
        "+0.040 [0.020, 0.060], p = 0.01",
        "accelerates learning: AULC +0.040 [0.020, 0.060], p = 0.01",
    ]


def _live_point(view: ExperimentView, step: int, variant: str = "none") -> None:
    point = CurvePoint(step, 1, "unmasked", 16 * step, 1.0 / step, 1.1 / step, 0.3, 0.01 * step)
    view.show_progress(ExperimentProgress("training", 0, 4, "training", variant, 0, point, 64))


def test_live_points_faster_than_the_redraw_interval_are_drawn_together_and_all_shown(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Old code: every point redrew the three plots at once (~10 ms of the GUI thread each, issue 22)."""
    view = _view(qtbot, tmp_path / "runs")
    view.curves.redraw_interval_ms = 200
    view.follow(tmp_path / "runs" / "live")
    _live_point(view, 2)  # the first point after a quiet spell: drawn at once
    (item,) = _curves(view)
    redraws: list[object] = []
    item.sigPlotChanged.connect(redraws.append)
    for step in (4, 6, 8):  # within the interval: they wait for its end
        _live_point(view, step)
    assert list(item.xData) == [2.0] and view.curves.pending == {("none", 0)}
    qtbot.waitUntil(lambda: list(item.xData) == [2.0, 4.0, 6.0, 8.0], timeout=5_000)
    assert len(redraws) == 1 and not view.curves.pending
    np.testing.assert_allclose(item.yData, [0.02, 0.04, 0.06, 0.08])
    for name, _ in PANELS:  # every panel got every point
        assert [list(i.xData) for i in _curves(view, name)] == [[2.0, 4.0, 6.0, 8.0]]


def test_a_live_redraw_fits_the_axes_before_the_paint(qtbot: QtBot, tmp_path: Path) -> None:
    """Old code: pyqtgraph fitted them while painting, and the new range asked for a second paint of the
    three plots. The view is not shown here, so nothing paints."""
    view = _view(qtbot, tmp_path / "runs")
    view.follow(tmp_path / "runs" / "live")
    for step in (2, 4, 6, 8):
        _live_point(view, step)
    view.curves.flush()
    for name, _ in PANELS:
        (x_low, x_high), (y_low, y_high) = view.curves.plots[name].viewRange()
        assert x_low <= 2.0 and x_high >= 8.0, name
    (y_low, y_high) = view.curves.plots["val_macro_f1"].viewRange()[1]
    assert y_low <= 0.02 and y_high >= 0.08


def test_live_points_waiting_for_a_redraw_are_not_drawn_over_a_reopened_run(
    qtbot: QtBot, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    kept = _write_run(runs / "kept", started_utc="2025-01-01", variants=("none",), seeds=(0,))
    view = _view(qtbot, runs)
    view.curves.redraw_interval_ms = 600_000  # the redraw comes when the test says (flush)
    view.follow(runs / "live")
    _live_point(view, 2, "mean+switch")
    _live_point(view, 4, "mean+switch")
    assert view.curves.pending == {("mean+switch", 0)}
    view.open_runs([kept])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    view.curves.flush()  # the interval's end
    assert not view.curves.pending
    assert [list(item.xData) for item in _curves(view)] == [[1.0, 2.0, 3.0, 4.0]]
    assert "mean+switch" not in _legend(view)


def test_live_curves_follow_the_training_set_size_being_trained(qtbot: QtBot, tmp_path: Path) -> None:
    view = _view(qtbot, tmp_path / "runs")
    view.follow(tmp_path / "runs" / "live")
    for size, step in ((8, 2), (8, 4), (16, 2)):
        point = CurvePoint(step, 1, "unmasked", 16 * step, 1.0, 1.1, 0.3, 0.2)
        view.show_progress(ExperimentProgress("training", 0, 4, "training", "none", 0, point, size))
    assert view.model.live_size == 16
    assert {key: [p.step for p in points] for key, points in view.model.live_curves.items()} == {
        ("none", 0): [2]
    }
    assert "16 training images" in view.curves.plot_title.text
    assert len(_curves(view)) == 1 and list(_curves(view)[0].xData) == [2]
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)


def test_a_kept_run_with_several_seeds_shades_each_variants_confidence_band(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from analysis.experiment_report import band_curves

    run = _write_run(
        tmp_path / "runs" / "r", started_utc="2025-01-01", variants=("none", "mean+switch"), seeds=(0, 1, 2)
    )
    single = _write_run(tmp_path / "runs" / "s", started_utc="2025-01-02", variants=("none",), seeds=(0,))
    view = _view(qtbot, tmp_path / "runs")
    view.open_runs([run])
    qtbot.waitUntil(lambda: not view.busy and len(view.model.shown) == 1, timeout=10_000)
    assert len(view.curves.bands) == 2 and all(
        band.scene() is view.curves.plots["val_macro_f1"].scene() for band in view.curves.bands
    )
    assert len(_curves(view)) == 6  # the bands add no curve: one line per Trainee as before
    expected = band_curves(view.model.shown[0].curves)["none"]
    low, high = view.curves.bands[0].curves
    np.testing.assert_allclose(low.getData()[1], expected["low"])
    np.testing.assert_allclose(high.getData()[1], expected["high"])
    assert np.all(expected["low"] <= expected["high"])
    view.open_runs([single])
    qtbot.waitUntil(lambda: not view.busy and view.model.shown[0].run_dir == single, timeout=10_000)
    assert view.curves.bands == []  # one seed: no interval
