"""Tests for analysis/datasets/folders.py on a FER2013-style fixture tree in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import analysis.datasets.base as base
from analysis.datasets.base import DatasetLoader
from analysis.datasets.folders import FER2013_LABEL_MAP, FOLDER_LABEL_MAP, ImageFolderLoader
from analysis.errors import AnalysisWarning
from analysis.labels import LABELS
from tests.analysis.datasets._fixtures import write_image


def test_satisfies_protocol(folder_root: Path) -> None:
    assert isinstance(ImageFolderLoader(folder_root), DatasetLoader)


def test_fer2013_names_map_onto_common_vocabulary() -> None:
    assert set(FER2013_LABEL_MAP) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert FER2013_LABEL_MAP["angry"] == "anger"
    assert set(FER2013_LABEL_MAP.values()) <= set(LABELS)
    assert all(FOLDER_LABEL_MAP[label] == label for label in LABELS)


def test_splits_and_class_counts_from_index(folder_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("class_counts must not decode images")

    monkeypatch.setattr(base, "decode_image", no_decoding)
    loader = ImageFolderLoader(folder_root)
    assert loader.splits == ("train", "validation")
    counts = loader.class_counts("train")
    assert tuple(counts) == LABELS
    assert counts == {**dict.fromkeys(LABELS, 0), "anger": 3, "happy": 3, "surprise": 1}
    assert loader.class_counts("validation")["sad"] == 1


def test_stream_yields_sorted_samples_and_skips_corrupt_with_warning(folder_root: Path) -> None:
    loader = ImageFolderLoader(folder_root, size=48)
    with pytest.warns(AnalysisWarning, match="zz_broken.png"):
        samples = list(loader.iter_samples("train"))
    assert [s.id for s in samples] == [
        "train/angry/a0.png",
        "train/angry/a1.png",
        "train/angry/a2.png",
        "train/happy/h0.jpg",
        "train/happy/h1.JPG",
        "train/surprise/s0.png",
    ]
    assert [s.label for s in samples] == ["anger"] * 3 + ["happy"] * 2 + ["surprise"]
    assert all(s.label_index == LABELS.index(s.label) for s in samples)
    assert all(s.image.shape == (48, 48) and s.image.dtype == np.float32 for s in samples)
    assert all(0.0 <= s.image.min() and s.image.max() <= 1.0 for s in samples)
    assert all(s.region_mask is None for s in samples)
    (skipped,) = loader.skipped
    assert skipped.id == "train/happy/zz_broken.png"
    assert skipped.path == str(folder_root / "train" / "happy" / "zz_broken.png")
    assert "UnidentifiedImageError" in skipped.reason


def test_skipped_lists_each_item_once(folder_root: Path) -> None:
    loader = ImageFolderLoader(folder_root)
    for _ in range(2):
        with pytest.warns(AnalysisWarning):
            list(loader.iter_samples("train"))
    assert len(loader.skipped) == 1


def test_native_size_and_rgb(folder_root: Path) -> None:
    loader = ImageFolderLoader(folder_root, rgb=True)
    (surprise,) = loader.iter_samples("train", positions=[6])
    assert surprise.id == "train/surprise/s0.png"
    assert surprise.image.shape == (60, 40, 3)


def test_stream_is_lazy(folder_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = base.decode_image

    def counting(path: Path, **kwargs: object) -> NDArray[np.float32]:
        calls.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(base, "decode_image", counting)
    stream = ImageFolderLoader(folder_root).iter_samples("train")
    assert calls == []  # nothing decoded before the first next()
    for sample in stream:
        assert sample.id == "train/angry/a0.png"
        break
    assert calls == [folder_root / "train" / "angry" / "a0.png"]


def test_positions_select_items(folder_root: Path) -> None:
    loader = ImageFolderLoader(folder_root)
    picked = [s.id for s in loader.iter_samples("train", positions=[4, 0])]
    assert picked == ["train/angry/a0.png", "train/happy/h1.JPG"]


def test_deterministic_between_loaders(folder_root: Path) -> None:
    one = list(ImageFolderLoader(folder_root, size=16).iter_samples("validation"))
    two = list(ImageFolderLoader(folder_root, size=16).iter_samples("validation"))
    assert [s.id for s in one] == [s.id for s in two]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_unknown_folder_name_is_named(folder_root: Path, rng: np.random.Generator) -> None:
    write_image(folder_root / "train" / "joy" / "j.png", rng)
    with pytest.raises(ValueError) as info:
        ImageFolderLoader(folder_root)
    message = str(info.value)
    assert "unknown label name 'joy'" in message
    assert "angry" in message and "label_map" in message


def test_custom_label_map(folder_root: Path, rng: np.random.Generator) -> None:
    write_image(folder_root / "train" / "joy" / "j.png", rng)
    loader = ImageFolderLoader(folder_root, label_map={**FOLDER_LABEL_MAP, "joy": "happy"})
    assert loader.class_counts("train")["happy"] == 4
    with pytest.raises(ValueError, match="'joy': 'joyful'"):
        ImageFolderLoader(folder_root, label_map={**FOLDER_LABEL_MAP, "joy": "joyful"})


def test_missing_root_and_bad_layouts(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(FileNotFoundError, match=r"image folder dataset not found at .*missing"):
        ImageFolderLoader(tmp_path / "missing")
    write_image(tmp_path / "flat" / "happy" / "h.png", rng)  # <label>/ only: no split level
    with pytest.raises(ValueError, match="no images found as <split>/<label>/"):
        ImageFolderLoader(tmp_path / "flat")
    with pytest.raises(ValueError, match="got file"):
        ImageFolderLoader(tmp_path / "flat" / "happy" / "h.png")


def test_unknown_split(folder_root: Path) -> None:
    loader = ImageFolderLoader(folder_root)
    with pytest.raises(ValueError, match="no split 'test'"):
        loader.iter_samples("test")
    with pytest.raises(ValueError, match="no split 'test'"):
        loader.class_counts("test")
