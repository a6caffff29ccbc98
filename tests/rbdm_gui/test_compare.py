"""``rbdm compare``: a recorded study's tables and figure from the command line (RBDM §5.3.2)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from analysis.metrics import ComparisonTable
from rbdm_gui.cli.main import main
from tests.tracking._study import STIMULI, write_study
from tracking.store import SessionStore
from tracking.study import StudyComparison, load_stimulus_images, read_study


@pytest.fixture
def study_path(tmp_path: Path) -> Path:
    path = tmp_path / "study.sqlite"
    write_study(path)
    return path


def test_compare_writes_table_one_the_stimulus_rows_and_the_figure(
    study_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["compare", str(study_path), "--out", str(out), "--no-model", "--figure-stimuli", "2"]) == 0
    study = read_study(study_path)
    expected = StudyComparison(study, load_stimulus_images(study)).tables()
    assert ComparisonTable.from_csv((out / "table1.csv").read_text()) == expected.study
    rows = list(csv.reader((out / "stimuli.csv").open()))
    assert [row[:3] for row in rows[1:]] == [[s, "P01", "P02"] for s in STIMULI]
    with Image.open(out / "comparison.png") as figure:
        assert figure.format == "PNG" and figure.height > 100
    text = capsys.readouterr().out
    assert "RBDM Table 1 of study.sqlite: 3 stimuli" in text and "no model" in text
    assert "compared at 64×64 px" in text and f"n = {expected.n_points} points" in text
    assert "zero_measure" in text and str(out / "table1.csv") in text


def test_compare_with_one_annotator_and_no_model_has_nothing_to_pair(
    study_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["compare", str(study_path), "--out", str(out), "--no-model", "--annotators", "P02"]) == 0
    assert (out / "stimuli.csv").read_text() == "stimulus,ID_1,ID_2\n"
    assert not (out / "comparison.png").exists()
    assert "no pairs to compare" in capsys.readouterr().out


def test_compare_leaves_out_trials_marked_bad_and_says_how_many(
    study_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SessionStore(study_path) as store:
        session = store.sessions()[0]  # P01's
        store.flag_trial(session.session_id, 0, reason="participant looked away")
    out, kept = tmp_path / "out", tmp_path / "kept"
    assert main(["compare", str(study_path), "--out", str(out), "--no-model"]) == 0
    text = capsys.readouterr().out
    assert "1 trial marked bad left out" in text and "--include-flagged" in text
    assert f"P01 on {session.stimulus_order[0]} (participant looked away)" in text
    study = read_study(study_path)
    left_out = StudyComparison(study, load_stimulus_images(study)).tables()
    assert ComparisonTable.from_csv((out / "table1.csv").read_text()) == left_out.study
    rows = list(csv.reader((out / "stimuli.csv").open()))
    assert [row[0] for row in rows[1:]] == [s for s in STIMULI if s != session.stimulus_order[0]]

    assert main(["compare", str(study_path), "--out", str(kept), "--no-model", "--include-flagged"]) == 0
    assert "marked bad" not in capsys.readouterr().out
    every = read_study(study_path, include_flagged=True)
    expected = StudyComparison(every, load_stimulus_images(every)).tables()
    assert ComparisonTable.from_csv((kept / "table1.csv").read_text()) == expected.study != left_out.study


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["compare", "{tmp}/none.sqlite", "--no-model"], "no study file"),
        (["compare", "{study}", "--model", "{tmp}/none.keras"], "no model at"),
        (["compare", "{study}", "--no-model", "--annotators", "P09"], "unknown annotators"),
        (["compare", "{study}", "--no-model", "--stimulus-set", "other"], "no sessions on stimulus set"),
    ],
)
def test_compare_errors_are_messages(
    study_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    filled = [a.format(tmp=tmp_path, study=study_path) for a in arguments]
    assert main([*filled, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
