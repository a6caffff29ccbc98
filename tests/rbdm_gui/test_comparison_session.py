"""The Compare screen's Qt-free model: settings, what is open and chosen, texts and exports (RBDM §5.3.2)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from analysis.metrics import ComparisonTable
from rbdm_gui.workflows.comparison import (
    ComparisonSession,
    ComparisonSettings,
    comparison_config_path,
    export_file_name,
    flagged_text,
    load_comparison_settings,
    open_comparison,
    save_comparison_settings,
    stimulus_caption,
    trainer_text,
)
from tests.tracking._study import STIMULI, write_study
from tracking.errors import StoreError
from tracking.store import SessionStore
from tracking.study import TrainerInfo

ROOT = Path(__file__).resolve().parents[2]


def _flag(path: Path, position: int = 1, reason: str = "participant looked away") -> str:
    """Mark P01's trial at ``position`` bad; return its stimulus."""
    with SessionStore(path) as store:
        session = store.sessions()[0]
        store.flag_trial(session.session_id, position, reason=reason)
        return session.stimulus_order[position]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study.sqlite"
    write_study(path)
    return path


def _session(study: Path, tmp_path: Path, **settings: bool) -> ComparisonSession:
    session = ComparisonSession(ComparisonSettings(**settings), settings_path=tmp_path / "comparison.json")
    include = session.settings.include_flagged
    session.open(open_comparison(study, None, include_flagged=include))
    return session


def test_the_model_imports_no_qt() -> None:
    code = (
        "import sys, rbdm_gui.workflows.comparison; "
        "print('PySide6' in sys.modules, 'pyqtgraph' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_settings_round_trip_through_the_atomic_writer(tmp_path: Path) -> None:
    path = tmp_path / "comparison.json"
    assert load_comparison_settings(path) == ComparisonSettings()  # no file: the defaults
    settings = ComparisonSettings(study_path="/a/study.sqlite", model_path="m.keras", include_flagged=True)
    assert save_comparison_settings(settings, path) == path
    assert load_comparison_settings(path) == settings
    assert json.loads(path.read_text()) == {
        "study_path": "/a/study.sqlite",
        "model_path": "m.keras",
        "include_flagged": True,
    }
    assert comparison_config_path().name == "comparison.json"


def test_old_and_odd_settings_files_keep_what_fits(tmp_path: Path) -> None:
    """The file of the untyped version (two paths) still reads; a value of the wrong type is the default."""
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps({"study_path": "s.sqlite", "model_path": "", "include_flagged": "yes"}))
    assert load_comparison_settings(path) == ComparisonSettings(study_path="s.sqlite")


def test_a_damaged_settings_file_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "comparison.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="damaged") as caught:
        load_comparison_settings(path)
    assert not path.exists() and "kept as" in str(caught.value)
    assert [p.name.startswith("comparison.json.damaged-") for p in tmp_path.iterdir()] == [True]


def test_remember_saves_once_per_change_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "comparison.json"
    session = ComparisonSession(ComparisonSettings(), settings_path=path)
    news: list[str] = []
    session.changed.subscribe(news.append)
    assert session.remember(study_path="s.sqlite", include_flagged=True)
    assert not session.remember(include_flagged=True)
    assert news == ["settings"] and load_comparison_settings(path).include_flagged
    unwritable = ComparisonSession(ComparisonSettings(), settings_path=tmp_path / "file" / "x.json")
    (tmp_path / "file").write_text("a file, not a folder")
    assert unwritable.remember(study_path="s.sqlite")  # kept in memory; the comparison works without it
    assert unwritable.settings.study_path == "s.sqlite"


def test_opening_shows_the_first_stimulus_and_choices_are_news(study: Path, tmp_path: Path) -> None:
    session = _session(study, tmp_path)
    assert session.comparison is not None and session.stimulus_id == STIMULI[0]
    news: list[str] = []
    session.changed.subscribe(news.append)
    assert session.select_stimulus(STIMULI[2]) and not session.select_stimulus(STIMULI[2])
    with pytest.raises(KeyError, match="no stimulus 'nope'"):
        session.select_stimulus("nope")
    session.set_shown(session.comparison.stimulus(STIMULI[2]))
    session.set_tables(session.comparison.tables())
    assert session.shown is not None and session.tables is not None
    session.comparison.set_annotators(["P01"])  # another choice drops what was computed
    assert news == ["stimulus", "shown", "tables", "annotators"]
    assert session.shown is None and session.tables is None


def test_texts_name_the_frame_the_table_and_the_labels(study: Path, tmp_path: Path) -> None:
    session = _session(study, tmp_path)
    assert session.table_caption() == "The study table appears once every stimulus is compared."
    assert session.comparison is not None
    session.set_tables(session.comparison.tables())
    assert (
        "3 stimuli in all" in session.table_caption() and "compared at 64 × 64 px" in session.table_caption()
    )
    assert session.frame_text().startswith("Heatmaps at 64 × 64 px (the image's own size)")
    caption = stimulus_caption(session.comparison.stimulus(STIMULI[0]))
    assert caption == f"{STIMULI[0]} — P01: happy · P02: sad"
    assert trainer_text(None, "deep_taylor") == ""
    trainer = TrainerInfo(Path("t.keras"), "tiny", (48, 32, 1))
    assert trainer_text(trainer, "lrp_z") == "tiny: 32 × 48 px grey input; saliency by lrp_z."
    assert export_file_name("synthetic/test/2") == "synthetic_test_2.png"


def test_trials_marked_bad_are_left_out_or_included_and_counted(study: Path, tmp_path: Path) -> None:
    """Issue 21: the monitor's 'mark bad' leaves a trial out of Compare unless the user includes it."""
    stimulus = _flag(study)
    left_out = _session(study, tmp_path)
    assert [(f.annotator, f.stimulus_id) for f in left_out.flagged] == [("P01", stimulus)]
    assert left_out.comparison is not None and "P01" not in left_out.comparison.study.viewings[stimulus]
    left_out.set_tables(left_out.comparison.tables())
    assert left_out.tables is not None and left_out.tables.pair_counts == {("P01", "P02"): 2}
    assert "1 trial marked bad in the live monitor left out" in left_out.table_caption()
    assert left_out.flagged_tooltip() == f"P01 on {stimulus}: participant looked away"
    left_out.remember(include_flagged=True)  # asked for, not yet read: the caption says what was read
    assert "left out" in left_out.table_caption() and not left_out.flagged_included

    included = _session(study, tmp_path, include_flagged=True)
    assert [f.stimulus_id for f in included.flagged] == [stimulus]
    assert included.comparison is not None and "P01" in included.comparison.study.viewings[stimulus]
    assert included.comparison.study.flagged_left_out == () and included.flagged_included
    included.set_tables(included.comparison.tables())
    assert included.tables is not None and included.tables.pair_counts == {("P01", "P02"): 3}
    assert "1 trial marked bad in the live monitor included" in included.table_caption()
    assert flagged_text((), included=True) == ""


def test_all_trials_marked_bad_says_how_to_compare_them(study: Path) -> None:
    with SessionStore(study) as store:
        for session in store.sessions():
            for position in range(len(session.stimulus_order)):
                store.flag_trial(session.session_id, position, reason="bad")
    with pytest.raises(StoreError, match="include-flagged"):
        open_comparison(study, None)
    assert open_comparison(study, None, include_flagged=True).study.stimuli == STIMULI


def test_without_a_trainer_the_opened_study_says_why(study: Path, tmp_path: Path) -> None:
    assert "No trainer model chosen" in open_comparison(study, None).trainer_problem
    missing = open_comparison(study, tmp_path / "none.keras")
    assert missing.trainer is None and "rbdm train-trainer" in missing.trainer_problem


def test_exports_write_the_figure_and_both_tables(study: Path, tmp_path: Path) -> None:
    session = _session(study, tmp_path)
    with pytest.raises(ValueError, match="no stimulus is shown"):
        session.export_png(tmp_path / "f.png")
    with pytest.raises(ValueError, match="not ready"):
        session.export_csv(tmp_path)
    assert session.comparison is not None
    session.set_shown(session.comparison.stimulus(STIMULI[0]))
    session.set_tables(session.comparison.tables())
    with Image.open(session.export_png(tmp_path / "figure.png")) as image:
        assert image.format == "PNG" and image.width > image.height
    table1, stimuli = session.export_csv(tmp_path / "tables")
    assert session.tables is not None and ComparisonTable.from_csv(table1.read_text()) == session.tables.study
    assert [row[0] for row in list(csv.reader(stimuli.open()))[1:]] == list(STIMULI)


def test_opening_remembers_the_files_and_reads_as_the_settings_say(study: Path, tmp_path: Path) -> None:
    _flag(study)
    path = tmp_path / "comparison.json"
    session = ComparisonSession(ComparisonSettings(include_flagged=True), settings_path=path)
    work = session.opening(study, None)
    assert load_comparison_settings(path) == ComparisonSettings(str(study), "", include_flagged=True)
    opened = work(lambda fraction, text: None, lambda: False)
    assert len(opened.study.flagged_included) == 1 and opened.study.flagged_left_out == ()
    session.open(opened)
    with pytest.raises(ValueError, match="no study with a trainer"):
        session.relevance_work("deep_taylor")  # no Trainer: the annotators are compared alone


def test_a_damaged_settings_file_leaves_the_session_on_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "comparison.json"
    path.write_text("[1, 2]")
    session = ComparisonSession(settings_path=path)
    assert session.settings == ComparisonSettings() and "damaged" in session.settings_problem
