"""Tests for analysis/datasets/arrays.py: subset choice and in-memory arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.datasets.arrays import SplitArrays, load_arrays, subset_positions
from analysis.datasets.folders import ImageFolderLoader
from analysis.datasets.synthetic import SyntheticLoader
from analysis.errors import AnalysisWarning
from analysis.labels import LABELS

LABEL_LISTS = st.lists(st.sampled_from(LABELS), max_size=40)
CAPS = st.none() | st.integers(0, 12)


def _reference_subset(labels: list[str], max_count: int | None, per_class: int | None) -> list[int]:
    """Key each item by (its rank within its class, its class's place in LABELS); keep the smallest keys."""
    keyed = []
    for position, label in enumerate(labels):
        rank = labels[:position].count(label)
        if per_class is None or rank < per_class:
            keyed.append(((rank, LABELS.index(label)), position))
    keyed.sort()
    if max_count is not None:
        keyed = keyed[:max_count]
    return sorted(position for _, position in keyed)


@given(LABEL_LISTS, CAPS, CAPS)
def test_subset_matches_reference(labels: list[str], max_count: int | None, per_class: int | None) -> None:
    assert subset_positions(labels, max_count=max_count, per_class=per_class) == _reference_subset(
        labels, max_count, per_class
    )


@given(LABEL_LISTS, CAPS, CAPS, st.integers(0, 2**32 - 1))
def test_random_subset_respects_caps(
    labels: list[str], max_count: int | None, per_class: int | None, seed: int
) -> None:
    chosen = subset_positions(
        labels, max_count=max_count, per_class=per_class, rng=np.random.default_rng(seed)
    )
    assert chosen == sorted(set(chosen))
    assert all(0 <= p < len(labels) for p in chosen)
    expected = len(_reference_subset(labels, max_count, per_class))
    assert len(chosen) == expected  # the same number as the first-k choice
    for label in LABELS:
        n = sum(labels[p] == label for p in chosen)
        assert per_class is None or n <= per_class
    again = subset_positions(
        labels, max_count=max_count, per_class=per_class, rng=np.random.default_rng(seed)
    )
    assert chosen == again


def test_subset_is_balanced_round_robin() -> None:
    labels = ["happy"] * 10 + ["sad"] * 3 + ["anger"] * 10
    chosen = subset_positions(labels, max_count=9)
    picked = [labels[p] for p in chosen]
    assert picked.count("sad") == 3 and picked.count("happy") == 3 and picked.count("anger") == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_caps_are_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="max_count must be a non-negative integer"):
        subset_positions(["sad"], max_count=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="per_class must be a non-negative integer"):
        subset_positions(["sad"], per_class=bad)  # type: ignore[arg-type]


def test_load_arrays_synthetic_with_masks() -> None:
    loader = SyntheticLoader(n_per_class=3, size=16)
    arrays = load_arrays(loader, "train", per_class=2, max_count=10)
    assert arrays.images.shape == (10, 16, 16) and arrays.images.dtype == np.float32
    assert arrays.label_indices.dtype == np.int64
    assert arrays.region_masks is not None and arrays.region_masks.shape == (10, 16, 16)
    assert np.bincount(arrays.label_indices, minlength=8).max() <= 2
    assert arrays.labels == tuple(LABELS[i] for i in arrays.label_indices)
    again = load_arrays(SyntheticLoader(n_per_class=3, size=16), "train", per_class=2, max_count=10)
    assert arrays.ids == again.ids
    np.testing.assert_array_equal(arrays.images, again.images)


def test_load_arrays_folders(folder_root: Path) -> None:
    with pytest.raises(ValueError, match=r"differ in shape.*size=48"):
        load_arrays(ImageFolderLoader(folder_root), "train", per_class=1)
    loader = ImageFolderLoader(folder_root, size=20, rgb=True)
    with pytest.warns(AnalysisWarning, match="zz_broken"):
        arrays = load_arrays(loader, "train")
    assert arrays.images.shape == (6, 20, 20, 3)  # 7 listed, the corrupt one skipped
    assert arrays.region_masks is None
    assert "train/happy/zz_broken.png" not in arrays.ids


def test_load_arrays_empty_and_bad_split() -> None:
    loader = SyntheticLoader(n_per_class=1, size=16)
    empty = load_arrays(loader, "train", max_count=0)
    assert empty.images.shape[0] == 0 and empty.ids == ()
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_arrays(loader, "dev")


def test_split_arrays_checks_lengths() -> None:
    with pytest.raises(ValueError, match="share their length"):
        SplitArrays(
            images=np.zeros((2, 4, 4), np.float32), label_indices=np.zeros(3, np.int64), ids=("a", "b")
        )
