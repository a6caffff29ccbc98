"""Tests for analysis/datasets/__init__.py: LOADERS and open_dataset's spec parsing and layout detection."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import analysis.datasets as datasets
from analysis.datasets import (
    LOADERS,
    AffectNetLoader,
    CKPlusLoader,
    DatasetLoader,
    FERPlusLoader,
    ImageFolderLoader,
    SyntheticLoader,
    open_dataset,
)
from tests.analysis.datasets._fixtures import write_image


def test_loaders_registry_and_all() -> None:
    assert set(LOADERS) == {"folders", "ferplus", "ckplus", "affectnet", "synthetic", "ck_sequences"}
    for name in datasets.__all__:
        assert hasattr(datasets, name)


def test_synthetic_specs() -> None:
    default = open_dataset("synthetic")
    assert isinstance(default, SyntheticLoader) and isinstance(default, DatasetLoader)
    assert next(default.iter_samples("train")).image.shape == (48, 48)
    custom = open_dataset("synthetic:n=2,size=20,rgb=1,seed=4")
    assert isinstance(custom, SyntheticLoader)
    assert custom.class_counts("test")["happy"] == 2
    assert next(custom.iter_samples("train")).image.shape == (20, 20, 3)
    assert next(open_dataset("synthetic:n=1", size=24).iter_samples("train")).image.shape == (24, 24)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("synthetic:count=3", "bad synthetic dataset option 'count=3'"),
        ("synthetic:n", "bad synthetic dataset option 'n'"),
        ("synthetic:n=many", "'n' needs an integer; got 'many'"),
        ("synthetic:rgb=maybe", "rgb must be 0/1"),
    ],
)
def test_bad_synthetic_specs(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        open_dataset(spec)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dataset not found at .*nowhere.*'synthetic'"):
        open_dataset(tmp_path / "nowhere")


def test_detects_image_folders(folder_root: Path) -> None:
    loader = open_dataset(folder_root, size=48)
    assert isinstance(loader, ImageFolderLoader)
    assert loader.splits == ("train", "validation")


def _ferplus_csv(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
                         "disgust", "fear", "contempt", "unknown", "NF"])  # fmt: skip
        writer.writerow(["Training", "fer0000000.png", 0, 9, 0, 0, 0, 0, 0, 0, 1, 0])
    return path


def test_detects_ferplus_folder_and_csv(tmp_path: Path, rng: np.random.Generator) -> None:
    csv_path = _ferplus_csv(tmp_path / "fer2013new.csv")
    write_image(tmp_path / "FER2013Train" / "fer0000000.png", rng)
    for spec in (tmp_path, csv_path):
        loader = open_dataset(spec)
        assert isinstance(loader, FERPlusLoader)
        assert [s.label for s in loader.iter_samples("train")] == ["happy"]


def test_detects_ckplus(tmp_path: Path, rng: np.random.Generator) -> None:
    write_image(tmp_path / "cohn-kanade-images" / "S005" / "001" / "S005_001_00000001.png", rng)
    write_image(tmp_path / "cohn-kanade-images" / "S005" / "001" / "S005_001_00000002.png", rng)
    (tmp_path / "Emotion" / "S005" / "001").mkdir(parents=True)
    (tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000002_emotion.txt").write_text("5.0")
    loader = open_dataset(tmp_path)
    assert isinstance(loader, CKPlusLoader)
    assert loader.labels("all") == ("neutral", "happy")


def test_detects_affectnet(tmp_path: Path, rng: np.random.Generator) -> None:
    with (tmp_path / "training.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                         "facial_landmarks", "expression", "valence", "arousal"])  # fmt: skip
        writer.writerow(["1/a.jpg", 0, 0, 8, 8, "", 6, 0.0, 0.0])
    write_image(tmp_path / "Manually_Annotated_Images" / "1" / "a.jpg", rng)
    loader = open_dataset(tmp_path)
    assert isinstance(loader, AffectNetLoader)
    (sample,) = loader.iter_samples("train")
    assert sample.label == "anger"
    write_image(tmp_path / "1" / "a.jpg", rng)
    assert isinstance(open_dataset(tmp_path / "training.csv"), AffectNetLoader)


def test_unrecognised_layouts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot tell the dataset layout"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="neither a FERPlus label file"):
        open_dataset(tmp_path / "other.csv")
