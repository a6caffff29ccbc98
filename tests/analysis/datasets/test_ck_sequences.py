"""Tests for analysis/datasets/ck_sequences.py on a small CK+ tree with FACS files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.datasets import LOADERS
from analysis.datasets.base import DatasetLoader
from analysis.datasets.ck_sequences import (
    NO_EMOTION,
    CKSequenceLoader,
    au_name,
    is_ck_sequences_layout,
    read_facs_file,
)
from analysis.errors import AnalysisWarning
from tests.analysis.datasets._fixtures import write_corrupt, write_image

# subject, sequence, frames, FACS lines (AU, intensity) or None, emotion code or None
SEQUENCES: list[tuple[str, str, int, list[tuple[int, int]] | None, int | None]] = [
    ("S005", "001", 3, [(9, 0), (17, 2), (25, 0)], 3),  # disgust
    ("S010", "002", 4, [(1, 4), (2, 4), (5, 1), (27, 3)], 7),  # surprise
    ("S010", "004", 2, [(12, 0)], None),  # unlabelled
    ("S011", "001", 1, None, 5),  # one frame, no FACS file, happy
]


def _frame(subject: str, sequence: str, k: int) -> str:
    return f"{subject}_{sequence}_{k:08d}"


@pytest.fixture
def ck_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "CK+"
    for subject, sequence, n_frames, facs, code in SEQUENCES:
        for k in range(1, n_frames + 1):
            write_image(
                root / "cohn-kanade-images" / subject / sequence / f"{_frame(subject, sequence, k)}.png",
                rng,
                shape=(30, 40),
            )
        last = _frame(subject, sequence, n_frames)
        if facs is not None:
            folder = root / "FACS" / subject / sequence
            folder.mkdir(parents=True)
            lines = "".join(f"   {au:.7e}   {level:.7e}\n" for au, level in facs)
            (folder / f"{last}_facs.txt").write_text(lines + "\n")
        if code is not None:
            folder = root / "Emotion" / subject / sequence
            folder.mkdir(parents=True)
            (folder / f"{last}_emotion.txt").write_text(f"   {code:.7e}\n")
    (root / "FACS").mkdir(exist_ok=True)
    (root / "cohn-kanade-images" / "S005" / "001" / ".DS_Store").write_text("")
    return root


def test_registered_and_layout(ck_root: Path) -> None:
    assert LOADERS["ck_sequences"] is CKSequenceLoader
    assert is_ck_sequences_layout(ck_root)
    assert not is_ck_sequences_layout(ck_root / "FACS")


def test_index_has_sequences_with_action_units(ck_root: Path) -> None:
    loader = CKSequenceLoader(ck_root)
    assert [s.id for s in loader.sequences] == ["S005/001", "S010/002", "S010/004", "S011/001"]
    assert [s.n_frames for s in loader.sequences] == [3, 4, 2, 1]
    first, second, unlabelled, single = loader.sequences
    assert first.action_units == {"AU09": 0, "AU17": 2, "AU25": 0}
    assert second.action_units == {"AU01": 4, "AU02": 4, "AU05": 1, "AU27": 3}
    assert (first.emotion, second.emotion, unlabelled.emotion) == ("disgust", "surprise", None)
    assert unlabelled.class_name == NO_EMOTION and second.class_name == "surprise"
    assert single.action_units == {}
    assert [p.name for p in first.frame_paths] == [f"{_frame('S005', '001', k)}.png" for k in (1, 2, 3)]


def test_sequences_decode_lazily_in_order(ck_root: Path) -> None:
    loader = CKSequenceLoader(ck_root, size=16)
    frames = loader.iter_frames("S010/002")
    first = next(frames)
    assert first.shape == (16, 16) and first.dtype == np.float32
    decoded = list(loader.iter_sequences())
    assert [d.id for d in decoded] == [s.id for s in loader.sequences]
    surprise = decoded[1]
    assert surprise.frames.shape == (4, 16, 16)
    np.testing.assert_array_equal(surprise.frames[0], first)
    assert surprise.action_units["AU27"] == 3 and surprise.class_name == "surprise"
    rgb = CKSequenceLoader(ck_root, rgb=True).load("S005/001")
    assert rgb.frames.shape == (3, 30, 40, 3)


def test_iter_sequences_selects_ids(ck_root: Path) -> None:
    loader = CKSequenceLoader(ck_root)
    assert [d.id for d in loader.iter_sequences(ids=["S011/001", "S005/001"])] == ["S005/001", "S011/001"]
    with pytest.raises(KeyError, match="S999"):
        loader.sequence("S999/001")


def test_image_view_is_first_neutral_last_labelled(ck_root: Path) -> None:
    loader = CKSequenceLoader(ck_root, size=8)
    assert isinstance(loader, DatasetLoader)
    assert loader.name == "ck_sequences" and loader.splits == ("all",)
    assert loader.labels("all") == ("neutral", "disgust", "neutral", "surprise", "happy")
    assert loader.class_counts("all")["neutral"] == 2
    samples = list(loader.iter_samples("all"))
    assert samples[1].id == "S005/001/S005_001_00000003"
    assert samples[0].image.shape == (8, 8)


def test_unreadable_sequence_is_skipped_with_a_warning(ck_root: Path) -> None:
    write_corrupt(ck_root / "cohn-kanade-images" / "S010" / "004" / "S010_004_00000002.png")
    loader = CKSequenceLoader(ck_root)
    with pytest.warns(AnalysisWarning, match="S010_004_00000002"):
        ids = [d.id for d in loader.iter_sequences()]
    assert "S010/004" not in ids and len(ids) == 3
    assert [item.id for item in loader.skipped] == ["S010/004"]


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CK\\+ dataset folder"):
        CKSequenceLoader(tmp_path / "nothing")
    (tmp_path / "cohn-kanade-images").mkdir()
    with pytest.raises(FileNotFoundError, match="FACS"):
        CKSequenceLoader(tmp_path)


def test_read_facs_file(tmp_path: Path) -> None:
    path = tmp_path / "a_facs.txt"
    path.write_text("   1.0000000e+00   3.0000000e+00\n\n   4.0000000e+00\n")
    assert read_facs_file(path) == {"AU01": 3, "AU04": 0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("one two\n", "AU number and an intensity"),
        ("1 2 3\n", "AU number and an intensity"),
        ("1.5 0\n", "positive integer"),
        ("1 7\n", "intensity must be 0-5"),
        ("1 1\n1 2\n", "twice"),
    ],
)
def test_read_facs_file_rejects_malformed_lines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b_facs.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_facs_file(path)


def test_two_facs_files_in_one_sequence(ck_root: Path) -> None:
    (ck_root / "FACS" / "S005" / "001" / "extra_facs.txt").write_text("1 0\n")
    with pytest.raises(ValueError, match="2 FACS files"):
        CKSequenceLoader(ck_root)


def test_au_name() -> None:
    assert au_name(1) == "AU01" and au_name(25.0) == "AU25"
    with pytest.raises(ValueError):
        au_name(0)
