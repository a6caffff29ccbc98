"""Tests for analysis/datasets/synthetic.py (the loader around analysis.datasets.synthetic_faces)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.datasets.base import DatasetLoader
from analysis.datasets.synthetic import SyntheticLoader
from analysis.datasets.synthetic_faces import make_face
from analysis.labels import LABELS


def test_counts_labels_and_protocol() -> None:
    loader = SyntheticLoader(n_per_class=2, size=16)
    assert isinstance(loader, DatasetLoader)
    assert loader.name == "synthetic"
    assert loader.splits == ("train", "validation", "test")
    assert loader.class_counts("train") == dict.fromkeys(LABELS, 2)
    assert loader.labels("test") == LABELS + LABELS
    assert loader.skipped == ()


def test_samples_carry_region_masks() -> None:
    loader = SyntheticLoader(n_per_class=1, size=24, rgb=True)
    samples = list(loader.iter_samples("validation"))
    assert [s.label for s in samples] == list(LABELS)
    assert [s.id for s in samples] == [f"synthetic/validation/{i}" for i in range(8)]
    for sample in samples:
        assert sample.image.shape == (24, 24, 3) and sample.image.dtype == np.float32
        assert sample.region_mask is not None
        assert sample.region_mask.shape == (24, 24) and sample.region_mask.dtype == bool


def test_sample_is_make_face_with_its_own_seed() -> None:
    loader = SyntheticLoader(n_per_class=1, size=16, seed=3)
    (sample,) = loader.iter_samples("train", positions=[5])
    rng = np.random.default_rng([3, zlib.crc32(b"train"), 5])
    face = make_face(LABELS[5], size=16, rng=rng)
    np.testing.assert_array_equal(sample.image, face.image)
    assert sample.region_mask is not None
    np.testing.assert_array_equal(sample.region_mask, face.region_mask)


def test_deterministic_and_positions_match_full_stream() -> None:
    full = list(SyntheticLoader(n_per_class=1, size=16, seed=7).iter_samples("train"))
    again = list(SyntheticLoader(n_per_class=1, size=16, seed=7).iter_samples("train", positions=[6, 1]))
    assert [s.id for s in again] == [full[1].id, full[6].id]
    np.testing.assert_array_equal(again[0].image, full[1].image)
    np.testing.assert_array_equal(again[1].image, full[6].image)


def test_splits_and_seeds_differ() -> None:
    def first(split: str, seed: int) -> NDArray[np.float32]:
        return next(SyntheticLoader(n_per_class=1, size=16, seed=seed).iter_samples(split)).image

    assert not np.array_equal(first("train", 0), first("validation", 0))
    assert not np.array_equal(first("train", 0), first("train", 1))


def test_per_split_counts_and_validation() -> None:
    loader = SyntheticLoader(n_per_class={"train": 3, "test": 1}, size=16)
    assert sum(loader.class_counts("train").values()) == 24
    assert sum(loader.class_counts("validation").values()) == 0
    assert list(loader.iter_samples("validation")) == []
    with pytest.raises(ValueError, match="unknown splits"):
        SyntheticLoader(n_per_class={"holdout": 1})
    with pytest.raises(ValueError, match="n_per_class must be a non-negative integer"):
        SyntheticLoader(n_per_class=-1)
    with pytest.raises(ValueError, match="size >= 16"):
        SyntheticLoader(size=8)
    with pytest.raises(ValueError, match="no split 'holdout'"):
        loader.labels("holdout")


def test_stream_is_lazy() -> None:
    stream = SyntheticLoader(n_per_class=1000, size=16).iter_samples("train")
    assert next(stream).label == "neutral"  # 8,000 faces are not drawn up front
