"""Tests for analysis/datasets/ckplus.py on a small CK+ tree in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.datasets.base import DatasetLoader
from analysis.datasets.ckplus import CKPLUS_CODES, CKPlusLoader, read_emotion_code
from analysis.labels import LABELS
from tests.analysis.datasets._fixtures import write_image

# subject, sequence, number of frames, emotion code or None (unlabelled)
SEQUENCES: list[tuple[str, str, int, int | None]] = [
    ("S005", "001", 3, 3),  # disgust
    ("S010", "002", 4, 7),  # surprise
    ("S010", "004", 2, None),  # unlabelled
    ("S011", "001", 1, 5),  # one frame, happy
    ("S014", "002", 3, 2),  # contempt
]


def _frame(subject: str, sequence: str, k: int) -> str:
    return f"{subject}_{sequence}_{k:08d}"


@pytest.fixture
def ck_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "CK+"
    for subject, sequence, n_frames, code in SEQUENCES:
        for k in range(1, n_frames + 1):
            write_image(
                root / "cohn-kanade-images" / subject / sequence / f"{_frame(subject, sequence, k)}.png", rng
            )
        emotion_dir = root / "Emotion" / subject / sequence
        emotion_dir.mkdir(parents=True)
        if code is not None:
            last = _frame(subject, sequence, n_frames)
            (emotion_dir / f"{last}_emotion.txt").write_text(f"   {code:.7e}\n")
    (root / "cohn-kanade-images" / "S005" / "001" / ".DS_Store").write_text("")
    return root


def test_codes_map_onto_vocabulary() -> None:
    assert set(CKPLUS_CODES) == set(range(8))
    assert set(CKPLUS_CODES.values()) == set(LABELS)


def test_first_frame_neutral_last_frame_labelled(ck_root: Path) -> None:
    loader = CKPlusLoader(ck_root)
    assert isinstance(loader, DatasetLoader)
    assert loader.splits == ("all",)
    samples = list(loader.iter_samples("all"))
    assert [(s.id, s.label) for s in samples] == [
        ("S005/001/S005_001_00000001", "neutral"),
        ("S005/001/S005_001_00000003", "disgust"),
        ("S010/002/S010_002_00000001", "neutral"),
        ("S010/002/S010_002_00000004", "surprise"),
        ("S011/001/S011_001_00000001", "happy"),
        ("S014/002/S014_002_00000001", "neutral"),
        ("S014/002/S014_002_00000003", "contempt"),
    ]


def test_counts_and_unlabelled_option(ck_root: Path) -> None:
    counts = CKPlusLoader(ck_root).class_counts("all")
    assert counts == {
        **dict.fromkeys(LABELS, 0),
        "neutral": 3,
        "disgust": 1,
        "surprise": 1,
        "happy": 1,
        "contempt": 1,
    }
    with_unlabelled = CKPlusLoader(ck_root, neutral_from_unlabelled=True)
    assert with_unlabelled.class_counts("all")["neutral"] == 4
    assert "S010/004/S010_004_00000001" in [s.id for s in with_unlabelled.iter_samples("all")]


def test_size_and_rgb(ck_root: Path) -> None:
    (sample,) = CKPlusLoader(ck_root, size=(20, 30), rgb=True).iter_samples("all", positions=[1])
    assert sample.image.shape == (20, 30, 3)


def test_read_emotion_code(tmp_path: Path) -> None:
    path = tmp_path / "x_emotion.txt"
    path.write_text("   6.0000000e+00\n")
    assert read_emotion_code(path) == "sad"
    for text, match in [("9.0", "unknown CK\\+ emotion code '9.0'"), ("2.5", "'2.5'"), ("sad", "one number")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            read_emotion_code(path)


def test_bad_label_file_is_named(ck_root: Path) -> None:
    bad = ck_root / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt"
    bad.write_text("8.0000000e+00")
    with pytest.raises(ValueError, match=r"S005_001_00000003_emotion\.txt.*0=neutral"):
        CKPlusLoader(ck_root)


def test_two_label_files_are_an_error(ck_root: Path) -> None:
    (ck_root / "Emotion" / "S005" / "001" / "S005_001_00000002_emotion.txt").write_text("1.0")
    with pytest.raises(ValueError, match="2 emotion files"):
        CKPlusLoader(ck_root)


def test_missing_paths(tmp_path: Path, ck_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CK\\+ dataset folder not found"):
        CKPlusLoader(tmp_path / "nope")
    (ck_root / "Emotion").rename(ck_root / "Labels")
    with pytest.raises(FileNotFoundError, match="CK\\+ label folder Emotion not found"):
        CKPlusLoader(ck_root)
