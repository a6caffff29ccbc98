"""The comparison screen: a recorded study's stimuli, heatmap contours, tables and exports (RBDM §5.3.2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from analysis.metrics import ComparisonTable
from rbdm_gui.screens.app import StudioApp
from rbdm_gui.screens.comparison_view import ComparisonView
from rbdm_gui.screens.table1_widget import METRIC_TITLES
from rbdm_gui.workflows.comparison import comparison_config_path
from rbdm_gui.workflows.session import session_settings
from rbdm_gui.workflows.settings import KEYBOARD_ONLY, StudySettings
from tests.tracking import _study
from tests.tracking._study import GEOMETRY, SPEC, STIMULI, write_study
from tracking.protocol import ProtocolTiming
from tracking.recording import StimulusSet
from tracking.records import Fixation, PhaseOnsets, Trial

pytestmark = pytest.mark.gui

HEADER = ["ID_1", "ID_2", *METRIC_TITLES.values()]


def _study_file(folder: Path) -> Path:
    """Two participants' sessions over three faces, with the settings the app stores for a session."""
    settings = StudySettings(
        stimuli=SPEC,
        split="test",
        recogniser=KEYBOARD_ONLY,
        screen_width_px=GEOMETRY.width_px,
        screen_height_px=GEOMETRY.height_px,
        diagonal_in=GEOMETRY.diagonal_in,
        distance_cm=GEOMETRY.distance_cm,
    )
    stored = session_settings(
        settings, StimulusSet(SPEC, "test", {}), timing=ProtocolTiming(), refresh_hz=60.0, frame_counted=True
    )
    path = folder / "study.sqlite"
    write_study(path, settings=stored)
    return path


def _ready(qtbot: QtBot, view: ComparisonView, *, timeout_ms: int = 20_000) -> None:
    qtbot.waitUntil(
        lambda: not view.busy and view.shown is not None and view.tables is not None, timeout=timeout_ms
    )


def _text(item: QTableWidgetItem | None) -> str:
    assert item is not None
    return item.text()


def _cells(table: QTableWidget) -> list[list[str]]:
    return [[_text(table.item(r, c)) for c in range(table.columnCount())] for r in range(table.rowCount())]


def _header(table: QTableWidget) -> list[str]:
    return [_text(table.horizontalHeaderItem(c)) for c in range(table.columnCount())]


@pytest.fixture
def view(qtbot: QtBot, tmp_path: Path) -> ComparisonView:
    shown = ComparisonView(study_path=_study_file(tmp_path), model_path=tmp_path / "no-model.keras")
    qtbot.addWidget(shown)
    _ready(qtbot, shown)
    return shown


def test_a_stimulus_shows_its_contours_panels_and_table(qtbot: QtBot, view: ComparisonView) -> None:
    assert [view.stimulus_list.item(k).text() for k in range(view.stimulus_list.count())] == list(STIMULI)
    assert view.current_stimulus == STIMULI[0]
    assert "No trainer model" in view.model_label.text()
    assert view.model is not None and view.shown is not None
    table = view.shown.comparison.table
    assert _header(view.stimulus_table) == HEADER
    assert _cells(view.stimulus_table) == [
        [r.id_1, r.id_2, *(f"{v:.3f}" for v in r.values)] for r in table.rows
    ]
    curves = [item for item in view.image_box.addedItems if isinstance(item, pg.PlotCurveItem)]
    assert len(curves) == 2 and all(len(curve.xData) > 0 for curve in curves)
    assert view.panel_grid.count() == 2
    view.select_stimulus(STIMULI[2])
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.comparison.stimulus_id == STIMULI[2])
    assert STIMULI[2] in view.stimulus_caption.text() and "P01: happy" in view.stimulus_caption.text()
    assert _cells(view.stimulus_table) == [
        [r.id_1, r.id_2, *(f"{v:.3f}" for v in r.values)] for r in view.model.stimulus(STIMULI[2]).table.rows
    ]
    # The heatmaps are at the image's own size (no model), drawn over it.
    assert view.shown.comparison.shape == (64, 64)


def test_the_study_tab_is_rbdm_table_one(view: ComparisonView) -> None:
    assert view.tables is not None
    assert _header(view.study_table) == ["ID_1", "ID_2", "stimuli", *HEADER[2:]]
    assert [row[:3] for row in _cells(view.study_table)] == [["P01", "P02", "3"]]  # old code: no count
    assert _cells(view.study_table)[0][3] == f"{view.tables.study.value('P01', 'P02', 'zero_measure'):.3f}"
    assert "3 stimuli" in view.study_caption.text()


def test_table_one_counts_the_stimuli_each_pair_shares(qtbot: QtBot, tmp_path: Path) -> None:
    """Old code: a pair sharing 2 of 3 stimuli was still "mean over the 3 stimuli", with no count."""
    from tracking.store import SessionStore

    path = _study_file(tmp_path)
    with SessionStore(path) as store:  # a third annotator who labelled two of the three faces
        settings = store.sessions()[0].settings
        pid = store.create_participant("P03")
        sid = store.create_session(
            pid, settings=settings, geometry=GEOMETRY, tracker="mouse", recogniser="keyboard",
            stimulus_order=list(STIMULI),
        )  # fmt: skip
        for position, stimulus in enumerate(STIMULI[:2]):
            t = 10_000.0 * position
            phases = PhaseOnsets(t, t + 500, t + 700, t + 1200, t + 3000)
            trial = Trial(position, stimulus, phases, "sad", "keyboard")
            store.record_trial(sid, trial, [Fixation(t + 1300, 300.0, 960.0, 540.0, 30)])
    view = ComparisonView(study_path=path, model_path=tmp_path / "no-model.keras")
    qtbot.addWidget(view)
    _ready(qtbot, view)
    counts = {(row[0], row[1]): row[2] for row in _cells(view.study_table)}
    assert counts == {("P01", "P02"): "3", ("P01", "P03"): "2", ("P02", "P03"): "2"}


def test_table_one_leaves_out_the_trials_marked_bad_and_says_how_many(qtbot: QtBot, tmp_path: Path) -> None:
    """Old code: a trial marked bad in the live monitor still counted in Table 1, and nothing said so."""
    from tracking.store import SessionStore

    path = _study_file(tmp_path)
    with SessionStore(path) as store:
        session = store.sessions()[0]  # P01's
        store.flag_trial(session.session_id, 1, reason="participant looked away")
    view = ComparisonView(study_path=path, model_path=tmp_path / "no-model.keras")
    qtbot.addWidget(view)
    _ready(qtbot, view)
    assert [row[:3] for row in _cells(view.study_table)] == [["P01", "P02", "2"]]
    caption = view.study_caption.text()
    assert "2 stimuli" in caption and "1 trial marked bad in the live monitor left out" in caption
    assert f"P01 on {session.stimulus_order[1]}: participant looked away" in view.study_caption.toolTip()


def test_a_visible_toggle_includes_the_trials_marked_bad_and_counts_them(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Issue 21: the Compare screen offers what 'rbdm compare --include-flagged' does, with the count."""
    from tracking.store import SessionStore

    path = _study_file(tmp_path)
    with SessionStore(path) as store:
        session = store.sessions()[0]
        store.flag_trial(session.session_id, 1, reason="participant looked away")
    view = ComparisonView(study_path=path, model_path=tmp_path / "no-model.keras")
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    _ready(qtbot, view)
    box = view.flagged_box
    assert box.isVisible() and box.isEnabled() and not box.isChecked()
    assert box.text() == "Include trials marked bad (1)"
    assert f"P01 on {session.stimulus_order[1]}" in box.toolTip()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert box.isChecked() and view.busy  # the study is read again, with the trial
    _ready(qtbot, view)
    assert [row[:3] for row in _cells(view.study_table)] == [["P01", "P02", "3"]]
    assert "1 trial marked bad in the live monitor included" in view.study_caption.text()
    assert box.text() == "Include trials marked bad (1)"
    assert json.loads(comparison_config_path().read_text())["include_flagged"] is True
    again = ComparisonView()  # remembered
    qtbot.addWidget(again)
    _ready(qtbot, again)
    assert again.flagged_box.isChecked() and [r[2] for r in _cells(again.study_table)] == ["3"]
    again.flagged_box.setChecked(False)
    _ready(qtbot, again)
    assert [r[2] for r in _cells(again.study_table)] == ["2"]


def test_colours_stay_with_their_annotator_and_the_model(view: ComparisonView) -> None:
    """Old code: colours followed the maps' order, so the Trainer's changed with the number of annotators."""
    from rbdm_gui.workflows.figures import MODEL_COLOUR, map_colours

    two = map_colours(["P01", "P02", "tiny"], annotators=["P01", "P02"])
    three = map_colours(["P01", "P02", "P03", "tiny"], annotators=["P01", "P02", "P03"])
    only_second = map_colours(["P02", "tiny"], annotators=["P01", "P02", "P03"])
    assert two["tiny"] == three["tiny"] == only_second["tiny"] == MODEL_COLOUR
    assert only_second["P02"] == three["P02"] == two["P02"] and MODEL_COLOUR not in {two["P01"], two["P02"]}
    assert view.colours(["P01", "P02", "tiny"]) == two


def test_unchecking_an_annotator_changes_the_model_and_not_the_boxes(
    qtbot: QtBot, view: ComparisonView
) -> None:
    assert view.model is not None
    news: list[str] = []
    view.model.changed.subscribe(news.append)
    view.annotator_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert view.model.annotators == ("P01",) and news == ["annotators"]
    assert view.annotator_list.item(0).checkState() == Qt.CheckState.Checked
    _ready(qtbot, view)
    assert view.stimulus_table.rowCount() == 0 and view.study_table.rowCount() == 0
    assert list(view.shown.comparison.heatmaps) == ["P01"]  # type: ignore[union-attr]
    view.annotator_list.item(1).setCheckState(Qt.CheckState.Checked)
    _ready(qtbot, view)
    assert news == ["annotators", "annotators"] and view.study_table.rowCount() == 1


def test_exports_write_the_figure_and_both_tables(view: ComparisonView, tmp_path: Path) -> None:
    figure = view.export_png(tmp_path / "figure.png")
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width > image.height > 100
    table1, stimuli = view.export_csv(tmp_path / "tables")
    assert view.tables is not None
    assert ComparisonTable.from_csv(table1.read_text()) == view.tables.study
    rows = list(csv.reader(stimuli.open()))
    assert rows[0][:3] == ["stimulus", "ID_1", "ID_2"]
    assert [row[0] for row in rows[1:]] == list(STIMULI)
    assert view.png_button.isEnabled() and view.csv_button.isEnabled()


def test_the_study_file_is_remembered_and_reopened(
    qtbot: QtBot, view: ComparisonView, tmp_path: Path
) -> None:
    remembered = json.loads(comparison_config_path().read_text())
    assert remembered["study_path"] == str(tmp_path / "study.sqlite")
    again = ComparisonView()
    qtbot.addWidget(again)
    _ready(qtbot, again)
    assert again.study_edit.text() == str(tmp_path / "study.sqlite")
    assert again.model is not None and again.model.study.stimuli == STIMULI


def test_without_a_study_file_the_view_says_where_to_record_one(qtbot: QtBot, tmp_path: Path) -> None:
    view = ComparisonView(study_path=tmp_path / "none.sqlite")
    qtbot.addWidget(view)
    assert not view.busy and "No study file" in view.status_label.text()
    view.open_study()
    qtbot.waitUntil(lambda: not view.busy)
    assert "no study file" in view.status_label.text() and view.model is None
    assert not view.png_button.isEnabled() and not view.csv_button.isEnabled()


def test_the_main_window_offers_the_comparison(qtbot: QtBot) -> None:
    studio = StudioApp()
    qtbot.addWidget(studio.window)
    assert "Compare" in studio.window.titles
    assert isinstance(studio.window.show_page("Compare"), ComparisonView)


@pytest.fixture(scope="module")
def tiny_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _study.train_tiny_trainer(tmp_path_factory.mktemp("trainer") / "tiny.keras")


@pytest.mark.tf
def test_the_trainers_rows_appear_once_its_saliency_is_computed(
    qtbot: QtBot, tmp_path: Path, tiny_trainer: Path
) -> None:
    view = ComparisonView(study_path=_study_file(tmp_path), model_path=tiny_trainer)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.model is not None and view.model.relevance is not None, timeout=60_000)
    _ready(qtbot, view)
    pairs = [("P01", "P02"), ("P01", "tiny"), ("P02", "tiny")]
    assert [tuple(row[:2]) for row in _cells(view.stimulus_table)] == pairs
    assert [tuple(row[:2]) for row in _cells(view.study_table)] == pairs
    assert view.shown is not None and view.shown.comparison.shape == (48, 48)
    assert "48 × 48" in view.info_label.text() and "tiny" in view.model_label.text()
    assert view.panel_grid.count() == 3


@pytest.mark.parametrize("size", [(1280, 800), (2560, 1440)])
def test_table_headers_are_never_clipped(qtbot: QtBot, view: ComparisonView, size: tuple[int, int]) -> None:
    """Old code: at 1280 px the stretched columns cut "Cosine distance", "ZeroMeasure" ..."""
    view.resize(*size)
    view.show()
    qtbot.wait(50)
    for table in (view.stimulus_table, view.study_table):
        header = table.horizontalHeader()
        metrics = header.fontMetrics()
        for column in range(table.columnCount()):
            text = _text(table.horizontalHeaderItem(column))
            assert header.sectionSize(column) >= metrics.horizontalAdvance(text), text
