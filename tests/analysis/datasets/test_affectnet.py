"""Tests for analysis/datasets/affectnet.py on hand-made AffectNet CSVs and generated images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from analysis.datasets.affectnet import (
    AFFECTNET_CODES,
    AffectNetLoader,
    AffectNetRow,
    clean_affectnet,
    parse_affectnet_rows,
)
from analysis.datasets.base import DatasetLoader
from analysis.labels import LABELS
from tests.analysis.datasets._fixtures import write_image

HEADER = [
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression", "valence", "arousal",
]  # fmt: skip

# (file path, expression code); training.csv then validation.csv (written without a header row)
TRAINING = [
    ("1/a.jpg", 0),
    ("1/b.jpg", 1),
    ("1/b.jpg", 2),  # repeated with another label
    ("1/b.jpg", 1),
    ("2/c.jpg", 8),  # None
    ("2/d.jpg", 9),  # Uncertain
    ("2/e.jpg", 10),  # Non-Face
    ("2/f.jpg", 7),
    ("3/g.jpg", 3),
    ("3/g.jpg", 9),  # repeated: kept only when the surprise row is drawn
]
VALIDATION = [("4/h.jpg", 6), ("1/a.jpg", 4)]  # a.jpg also in training


def _row(path: str, code: int) -> list[str]:
    return [path, "5", "6", "10", "12", "1.0;2.0;3.0;4.0", str(code), "0.1", "-0.2"]


def _write(path: Path, rows: list[tuple[str, int]], *, header: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(HEADER)
        writer.writerows(_row(p, c) for p, c in rows)
    return path


@pytest.fixture
def affectnet_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "affectnet"
    _write(root / "training.csv", TRAINING, header=True)
    _write(root / "validation.csv", VALIDATION, header=False)
    for path in {p for p, _ in TRAINING + VALIDATION}:
        write_image(root / "Manually_Annotated_Images" / path, rng, shape=(40, 40, 3))
    return root


def _rows() -> list[AffectNetRow]:
    return [
        *parse_affectnet_rows([HEADER, *(_row(p, c) for p, c in TRAINING)], split="train", source="t"),
        *parse_affectnet_rows([_row(p, c) for p, c in VALIDATION], split="validation", source="v"),
    ]


def _reference_clean(rows: list[AffectNetRow], rng: np.random.Generator) -> list[AffectNetRow]:
    """One random row per repeated path (a draw per repeated path, first-seen order), then drop 8-10."""
    order: list[str] = []
    for row in rows:
        if row.file_path not in order:
            order.append(row.file_path)
    chosen = []
    for path in order:
        candidates = [row for row in rows if row.file_path == path]
        chosen.append(
            candidates[int(rng.integers(len(candidates)))] if len(candidates) > 1 else candidates[0]
        )
    kept_ids = {id(row) for row in chosen if row.code <= 7}
    return [row for row in rows if id(row) in kept_ids]


def test_codes() -> None:
    assert [AFFECTNET_CODES[c] for c in range(8)] == [
        "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
    ]  # fmt: skip
    assert all(AFFECTNET_CODES[c] is None for c in (8, 9, 10))
    assert set(AFFECTNET_CODES.values()) - {None} == set(LABELS)


def test_parse_reads_box_and_skips_header() -> None:
    rows = _rows()
    assert len(rows) == len(TRAINING) + len(VALIDATION)
    assert rows[0] == AffectNetRow(split="train", file_path="1/a.jpg", code=0, box_px=(5, 6, 10, 12))
    assert rows[-1].split == "validation"


@pytest.mark.parametrize(
    ("cells", "match"),
    [
        (["1/a.jpg", "1"], "t line 1: expected 9 cells"),
        ([*_row("1/a.jpg", 0)[:6], "happy", "0", "0"], "t line 1: expression and face box must be integers"),
        (_row("1/a.jpg", 11), "t line 1: unknown expression code 11"),
    ],
)
def test_parse_errors_name_file_and_line(cells: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_affectnet_rows([cells], split="train", source="t")


@pytest.mark.parametrize("seed", range(12))
def test_clean_matches_reference(seed: int) -> None:
    rows = _rows()
    cleaned = clean_affectnet(rows, rng=np.random.default_rng(seed))
    assert list(cleaned.rows) == _reference_clean(rows, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(12))
def test_clean_keeps_each_image_once_without_none_uncertain_nonface(seed: int) -> None:
    rows = _rows()
    cleaned = clean_affectnet(rows, rng=np.random.default_rng(seed))
    paths = [row.file_path for row in cleaned.rows]
    assert len(paths) == len(set(paths))
    assert all(row.code <= 7 for row in cleaned.rows)
    assert all(row in rows for row in cleaned.rows)
    assert cleaned.removed["duplicate"] == 4
    assert cleaned.removed["none"] == 1 and cleaned.removed["non-face"] == 1
    assert cleaned.removed["uncertain"] in (1, 2)  # 2 when g.jpg's uncertain row is drawn
    assert sum(cleaned.removed.values()) + len(cleaned.rows) == len(rows)


def test_clean_is_seeded_and_random() -> None:
    rows = _rows()

    def label_of_b(seed: int) -> int:
        cleaned = clean_affectnet(rows, rng=np.random.default_rng(seed))
        return next(row.code for row in cleaned.rows if row.file_path == "1/b.jpg")

    assert label_of_b(5) == label_of_b(5)
    assert {label_of_b(seed) for seed in range(40)} == {1, 2}


def test_loader_splits_counts_and_stream(affectnet_root: Path) -> None:
    images = affectnet_root / "Manually_Annotated_Images"
    loader = AffectNetLoader(affectnet_root, images, rng=np.random.default_rng(1), size=24)
    assert isinstance(loader, DatasetLoader)
    assert loader.splits == ("train", "validation")
    train_counts = loader.class_counts("train")
    val_counts = loader.class_counts("validation")
    n_unique = len({p for p, _ in TRAINING + VALIDATION})
    n_removed = sum(n for reason, n in loader.removed.items() if reason != "duplicate")
    assert sum(train_counts.values()) + sum(val_counts.values()) == n_unique - n_removed
    assert train_counts["contempt"] == 1 and val_counts["anger"] == 1
    samples = list(loader.iter_samples("validation"))
    assert "4/h.jpg" in [s.id for s in samples]
    assert all(s.image.shape == (24, 24) for s in samples)


def test_loader_default_rng_is_reproducible(affectnet_root: Path) -> None:
    images = affectnet_root / "Manually_Annotated_Images"
    one = AffectNetLoader(affectnet_root, images)
    two = AffectNetLoader(affectnet_root, images)
    assert one.labels("train") == two.labels("train")
    assert one.labels("validation") == two.labels("validation")


def test_crop_face(affectnet_root: Path) -> None:
    images = affectnet_root / "Manually_Annotated_Images"
    loader = AffectNetLoader(affectnet_root / "validation.csv", images, crop_face=True)
    assert loader.splits == ("validation",)
    sample = next(loader.iter_samples("validation"))
    assert sample.image.shape == (12, 10)  # face_height x face_width


def test_missing_paths(tmp_path: Path, affectnet_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="AffectNet CSV not found"):
        AffectNetLoader(tmp_path / "nope.csv", affectnet_root)
    with pytest.raises(FileNotFoundError, match="AffectNet image folder not found"):
        AffectNetLoader(affectnet_root, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"expected training\.csv or validation\.csv"):
        AffectNetLoader(tmp_path / "empty", affectnet_root)
