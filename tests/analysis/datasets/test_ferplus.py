"""Tests for analysis/datasets/ferplus.py on hand-made fer2013new.csv rows and generated images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.datasets.base import DatasetLoader
from analysis.datasets.ferplus import (
    FERPLUS_COLUMNS,
    FERPlusLoader,
    majority_vote,
    parse_ferplus_rows,
    read_ferplus_csv,
    strict_majority_vote,
)
from analysis.errors import AnalysisWarning
from tests.analysis.datasets._fixtures import write_image

HEADER = ["Usage", "Image name", *(column for column, _ in FERPLUS_COLUMNS)]

# (Usage, Image name, votes in CSV column order, label under "majority" or None when removed)
ROWS: list[tuple[str, str, list[int], str | None]] = [
    ("Training", "fer0000000.png", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0], "neutral"),  # clear majority
    ("Training", "fer0000001.png", [0, 0, 0, 4, 4, 2, 0, 0, 0, 0], "sad"),  # tie: sadness before anger
    ("Training", "fer0000002.png", [0, 4, 0, 0, 0, 0, 0, 0, 4, 2], "happy"),  # tie with unknown: kept
    ("Training", "fer0000003.png", [1, 0, 0, 0, 0, 0, 0, 0, 7, 2], None),  # unknown
    ("PublicTest", "fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 0, 1, 9], None),  # not a face
    ("PublicTest", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None),  # empty name
    ("PublicTest", "fer0000006.png", [0, 0, 0, 0, 1, 1, 0, 6, 1, 1], "contempt"),
    ("PrivateTest", "fer0000007.png", [0, 0, 9, 0, 0, 0, 1, 0, 0, 0], "surprise"),
    ("PrivateTest", "fer0000008.png", [0, 2, 0, 0, 0, 3, 3, 0, 2, 0], "disgust"),  # tie: disgust before fear
]


def _lines(rows: list[tuple[str, str, list[int], str | None]] = ROWS) -> list[list[str]]:
    return [HEADER, *([usage, name, *map(str, votes)] for usage, name, votes, _ in rows)]


def _write_csv(path: Path, lines: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(lines)
    return path


def _reference_majority(votes: list[int]) -> int:
    """Sort columns by votes descending, then by CSV position; the first wins."""
    return sorted(range(len(votes)), key=lambda i: (-votes[i], i))[0]


def _reference_strict(votes: list[int]) -> int:
    """Drop single votes; a column wins only with more than half of what remains; else 'unknown' (8)."""
    kept = [0 if v == 1 else v for v in votes]
    winners = [i for i, v in enumerate(kept) if v > 0 and 2 * v > sum(kept)]
    return winners[0] if winners else 8


VOTES = st.lists(st.integers(0, 10), min_size=10, max_size=10).filter(lambda v: sum(v) > 0)


@given(VOTES)
def test_majority_vote_matches_reference(votes: list[int]) -> None:
    assert majority_vote(votes) == _reference_majority(votes)


@given(VOTES)
def test_strict_majority_vote_matches_reference(votes: list[int]) -> None:
    assert strict_majority_vote(votes) == _reference_strict(votes)


def test_strict_majority_examples() -> None:
    assert strict_majority_vote([6, 0, 1, 1, 0, 0, 0, 0, 2, 0]) == 0  # 6 of 8 after dropping singles
    assert strict_majority_vote([4, 0, 0, 4, 1, 0, 0, 0, 1, 0]) == 8  # 4 of 8 is not more than half
    assert strict_majority_vote([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]) == 8  # every vote is an outlier


def test_parse_votes_filters_and_splits() -> None:
    parsed = parse_ferplus_rows(_lines())
    expected = [(name, label) for _, name, _, label in ROWS if label is not None]
    assert [(row.image_name, row.label) for row in parsed.rows] == expected
    assert [row.split for row in parsed.rows] == ["train", "train", "train", "validation", "test", "test"]
    assert parsed.rows[0].votes == (6, 0, 1, 1, 0, 0, 0, 0, 2, 0)
    assert parsed.removed == {"empty name": 1, "unknown": 1, "NF": 1}


def test_parse_strict_majority_removes_more() -> None:
    parsed = parse_ferplus_rows(_lines(), vote_rule="strict_majority")
    assert [row.image_name for row in parsed.rows] == ["fer0000000.png", "fer0000006.png", "fer0000007.png"]
    assert parsed.removed == {"empty name": 1, "unknown": 4, "NF": 1}


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([["Usage", "Image", "x"]], "not a FERPlus label file"),
        ([], "not a FERPlus label file"),
        ([HEADER, ["Training", "a.png", "1"]], "line 2: expected 12 cells"),
        ([HEADER, ["Training", "a.png", *["x"] * 10]], "line 2: vote counts must be integers"),
        ([HEADER, ["Training", "a.png", "-1", *["1"] * 9]], "line 2: vote counts must be >= 0"),
        ([HEADER, ["Extra", "a.png", *["1"] * 10]], "line 2: unknown Usage 'Extra'"),
    ],
)
def test_parse_errors_name_the_problem(lines: list[list[str]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_ferplus_rows(lines)


def test_unknown_vote_rule() -> None:
    with pytest.raises(ValueError, match="unknown vote_rule 'mean'; choose one of 'majority'"):
        parse_ferplus_rows(_lines(), vote_rule="mean")


def test_read_csv_and_missing_file(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "fer2013new.csv", _lines())
    assert len(read_ferplus_csv(path).rows) == 6
    with pytest.raises(FileNotFoundError, match=r"fer2013new\.csv not found"):
        read_ferplus_csv(tmp_path / "nope.csv")


@pytest.fixture
def ferplus_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    """FERPlus layout: the CSV and FER2013Train/Valid/Test folders; fer0000008.png is missing."""
    root = tmp_path / "ferplus"
    _write_csv(root / "fer2013new.csv", _lines())
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for usage, name, _, _ in ROWS:
        if name and name != "fer0000008.png":
            write_image(root / folders[usage] / name, rng)
    return root


def test_loader_counts_and_streams_authors_split(ferplus_root: Path) -> None:
    loader = FERPlusLoader(ferplus_root / "fer2013new.csv", ferplus_root, size=32)
    assert isinstance(loader, DatasetLoader)
    assert loader.splits == ("train", "validation", "test")
    assert loader.class_counts("train") == {
        "neutral": 1, "happy": 1, "sad": 1, "surprise": 0, "fear": 0, "disgust": 0, "anger": 0, "contempt": 0,
    }  # fmt: skip
    assert loader.labels("test") == ("surprise", "disgust")
    assert loader.removed == {"empty name": 1, "unknown": 1, "NF": 1}
    train = list(loader.iter_samples("train"))
    assert [s.id for s in train] == ["train/fer0000000.png", "train/fer0000001.png", "train/fer0000002.png"]
    assert all(s.image.shape == (32, 32) for s in train)
    (contempt,) = loader.iter_samples("validation")
    assert contempt.label == "contempt" and contempt.label_index == 7


def test_missing_image_is_skipped_and_listed(ferplus_root: Path) -> None:
    loader = FERPlusLoader(ferplus_root / "fer2013new.csv", ferplus_root)
    with pytest.warns(AnalysisWarning, match="fer0000008.png"):
        test = list(loader.iter_samples("test"))
    assert [s.id for s in test] == ["test/fer0000007.png"]
    assert [item.id for item in loader.skipped] == ["test/fer0000008.png"]
    assert "FileNotFoundError" in loader.skipped[0].reason


def test_flat_image_folder(tmp_path: Path, rng: np.random.Generator) -> None:
    csv_path = _write_csv(tmp_path / "labels" / "fer2013new.csv", _lines(ROWS[:2]))
    for name in ("fer0000000.png", "fer0000001.png"):
        write_image(tmp_path / "images" / name, rng)
    loader = FERPlusLoader(csv_path, tmp_path / "images")
    assert [s.label for s in loader.iter_samples("train")] == ["neutral", "sad"]
    assert loader.labels("test") == ()


def test_missing_paths(tmp_path: Path, ferplus_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="FERPlus image folder not found"):
        FERPlusLoader(ferplus_root / "fer2013new.csv", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"fer2013new\.csv not found"):
        FERPlusLoader(tmp_path / "nope.csv", ferplus_root)
