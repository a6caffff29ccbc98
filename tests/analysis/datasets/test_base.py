"""Tests for analysis/datasets/base.py: decoding, the Sample record, label maps, shared checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from analysis.datasets.base import (
    Sample,
    check_label_map,
    check_split,
    count_labels,
    decode_image,
    existing_path,
    resolve_label,
    resolve_size,
    select_positions,
)
from analysis.labels import LABELS
from tests.analysis.datasets._fixtures import write_corrupt


def _write_exact(path: Path, pixels: NDArray[np.uint8]) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_decode_grey_png_is_pixels_over_255(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(7, 5), dtype=np.uint8)
    image = decode_image(_write_exact(tmp_path / "g.png", pixels))
    assert image.dtype == np.float32
    assert image.shape == (7, 5)
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-7)


def test_decode_rgb_and_grey_of_colour_file(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    path = _write_exact(tmp_path / "c.png", pixels)
    rgb = decode_image(path, rgb=True)
    np.testing.assert_allclose(rgb, pixels / 255.0, atol=1e-7)
    grey = decode_image(path)
    # ITU-R 601-2 luma, as Pillow's "L" conversion, to within rounding to 8 bits.
    luma = (pixels @ np.array([0.299, 0.587, 0.114])) / 255.0
    np.testing.assert_allclose(grey, luma, atol=1.0 / 255.0 + 1e-6)


def test_decode_grey_file_as_rgb_repeats_channel(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(5, 5), dtype=np.uint8)
    rgb = decode_image(_write_exact(tmp_path / "g.png", pixels), rgb=True)
    assert rgb.shape == (5, 5, 3)
    for channel in range(3):
        np.testing.assert_allclose(rgb[..., channel], pixels / 255.0, atol=1e-7)


def test_decode_resizes_to_int_or_pair(tmp_path: Path, rng: np.random.Generator) -> None:
    path = _write_exact(tmp_path / "g.png", rng.integers(0, 256, size=(30, 20), dtype=np.uint8))
    assert decode_image(path, size=48).shape == (48, 48)
    assert decode_image(path, size=(12, 16)).shape == (12, 16)
    assert decode_image(path, size=(30, 20), rgb=True).shape == (30, 20, 3)


def test_decode_crops_box_before_resizing(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(10, 12), dtype=np.uint8)
    path = _write_exact(tmp_path / "g.png", pixels)
    crop = decode_image(path, box_px=(2, 3, 5, 4))  # left, top, width, height
    np.testing.assert_allclose(crop, pixels[3:7, 2:7] / 255.0, atol=1e-7)


def test_decode_corrupt_truncated_or_missing_raises_oserror(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(OSError):
        decode_image(write_corrupt(tmp_path / "bad.png"))
    whole = _write_exact(tmp_path / "whole.png", rng.integers(0, 256, size=(48, 48), dtype=np.uint8))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(OSError, match="truncated"):
        decode_image(truncated)
    with pytest.raises(OSError):
        decode_image(tmp_path / "missing.png")


@pytest.mark.parametrize("size", [0, -3, (4, 0), (1, 2, 3), "big"])
def test_resolve_size_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(ValueError, match="size"):
        resolve_size(size)  # type: ignore[arg-type]


def test_resolve_size() -> None:
    assert resolve_size(None) is None
    assert resolve_size(48) == (48, 48)
    assert resolve_size((10, 20)) == (10, 20)


def test_sample_validates_itself() -> None:
    image = np.zeros((4, 4), dtype=np.float32)
    Sample(image=image, label="happy", label_index=1, id="x")
    with pytest.raises(ValueError, match="float32"):
        Sample(image=image.astype(np.float64), label="happy", label_index=1, id="x")
    with pytest.raises(ValueError, match="3 channels"):
        Sample(image=np.zeros((4, 4, 2), dtype=np.float32), label="happy", label_index=1, id="x")
    with pytest.raises(ValueError, match="does not match"):
        Sample(image=image, label="happy", label_index=2, id="x")
    with pytest.raises(ValueError, match="unknown label 'joy'"):
        Sample(image=image, label="joy", label_index=1, id="x")
    with pytest.raises(ValueError, match="region_mask"):
        Sample(image=image, label="sad", label_index=2, id="x", region_mask=np.zeros((3, 4), dtype=bool))


def test_resolve_label_names_the_unknown_and_lists_known() -> None:
    assert resolve_label("angry", {"angry": "anger"}, source="here") == "anger"
    with pytest.raises(ValueError) as info:
        resolve_label("joy", {"angry": "anger", "sad": "sad"}, source="folder 'x/joy'")
    message = str(info.value)
    assert "'joy'" in message and "folder 'x/joy'" in message
    assert "angry, sad" in message and "label_map" in message


def test_check_label_map_rejects_values_outside_vocabulary() -> None:
    assert check_label_map({"joy": "happy"}) == {"joy": "happy"}
    with pytest.raises(ValueError, match="'joy': 'joyful'"):
        check_label_map({"joy": "joyful"})


def test_existing_path_and_check_split(tmp_path: Path) -> None:
    assert existing_path(tmp_path, what="x") == tmp_path
    with pytest.raises(FileNotFoundError, match=r"thing not found at .*nowhere"):
        existing_path(tmp_path / "nowhere", what="thing")
    check_split("train", ("train",), dataset="d")
    with pytest.raises(ValueError, match="d has no split 'test'; choose one of 'train'"):
        check_split("test", ("train",), dataset="d")


def test_count_labels_lists_every_label_in_order() -> None:
    counts = count_labels(["sad", "sad", "contempt"])
    assert tuple(counts) == LABELS
    assert counts["sad"] == 2 and counts["contempt"] == 1 and sum(counts.values()) == 3


@given(st.integers(0, 30), st.lists(st.integers(0, 29)))
def test_select_positions_sorted_unique(n: int, positions: list[int]) -> None:
    valid = [p for p in positions if p < n]
    assert select_positions(n, valid) == sorted(set(valid))
    assert select_positions(n, None) == list(range(n))


def test_select_positions_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\); got 3"):
        select_positions(3, [0, 3])
    with pytest.raises(ValueError, match="got -1"):
        select_positions(3, [-1])
