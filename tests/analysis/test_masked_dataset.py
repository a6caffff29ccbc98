"""Tests for analysis.masked_dataset: masks per method, gaze masks, the resumable masked-dataset writer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.datasets import ImageFolderLoader, SplitArrays, load_arrays, open_dataset
from analysis.errors import AnalysisError
from analysis.geometry import ScreenGeometry
from analysis.labels import LABELS
from analysis.masked_dataset import (
    DEFAULT_N_POINTS,
    HEADER_FILE,
    MANIFEST_FIELDS,
    MANIFEST_FILE,
    MASK_METHODS,
    ImageFixations,
    MaskSet,
    gaze_masks,
    image_file_name,
    load_masked_images,
    perceptive_options,
    read_manifest,
    relevance_masks,
    write_masked_dataset,
)
from analysis.masking import MASKS
from analysis.perception import VisualSpan


@pytest.fixture
def faces() -> SplitArrays:
    """24 synthetic 48 px faces, 3 of each label, with ids like 'synthetic/train/5'."""
    return load_arrays(open_dataset("synthetic:n=3,size=48"), "train")


def _relevance(faces: SplitArrays, rng: np.random.Generator) -> np.ndarray:
    """Relevance maps that favour each face's expression region (a stand-in for a Trainer's maps)."""
    assert faces.region_masks is not None
    return rng.random(faces.images.shape) + 2.0 * faces.region_masks


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------------


def test_the_methods_are_the_papers_three_and_gaze() -> None:
    assert MASK_METHODS == ("negative", "mean", "perceptive", "gaze")


def test_perceptive_options_are_the_visual_span_of_the_paper_screen_in_image_pixels() -> None:
    options = perceptive_options((48, 48))
    geometry = ScreenGeometry()
    scale = 48 / 1200
    assert options["n_points"] == DEFAULT_N_POINTS
    assert options["radius"] == pytest.approx(geometry.visual_span_px(5.0) * scale)
    assert options["c"] == pytest.approx(0.17 * options["radius"])
    assert options["radius"] == pytest.approx(10.47, abs=0.01)


@pytest.mark.parametrize("method", ["negative", "mean", "perceptive"])
def test_relevance_masks_apply_the_core_mask_to_every_map(
    method: str, faces: SplitArrays, rng: np.random.Generator
) -> None:
    maps = _relevance(faces, rng)
    options = {"negative": {"fraction": 0.2}, "mean": {}, "perceptive": perceptive_options((48, 48))}[method]
    mask_set = relevance_masks(maps, method, options=options)
    assert mask_set.method == method and mask_set.options == options
    assert mask_set.masks.shape == maps.shape and mask_set.masks.dtype == np.bool_
    np.testing.assert_array_equal(mask_set.positions, np.arange(len(maps)))
    for relevance, mask in zip(maps, mask_set.masks, strict=True):
        np.testing.assert_array_equal(mask, MASKS[method](relevance, **options))


@pytest.mark.parametrize("method", sorted(MASKS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relevance_masks_of_a_dataset_equal_the_per_image_loop(
    method: str, dtype: type, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stacked masking in slices gives what masking each image on its own gave (before issue 22)."""
    import analysis.masked_dataset as masked_dataset

    monkeypatch.setattr(masked_dataset, "_MASK_BATCH_PIXELS", 7 * 48 * 48)  # several slices, the last short
    maps = rng.normal(size=(30, 48, 48)).astype(dtype)
    maps[3] = 0.0
    maps[4] = np.round(maps[4])
    options = {"negative": {"fraction": 0.2}, "mean": {}, "perceptive": perceptive_options((48, 48))}[method]
    expected = np.stack([MASKS[method](relevance, **options) for relevance in maps])
    np.testing.assert_array_equal(relevance_masks(maps, method, options=options).masks, expected)


def test_fusion_masks_of_a_dataset_equal_the_per_image_loop(rng: np.random.Generator) -> None:
    from analysis.masked_dataset import _unit_max, fusion_masks

    relevance, gaze = rng.normal(size=(25, 48, 48)), rng.random((25, 48, 48))
    gaze[2] = 0.0
    fused = (_unit_max(np.clip(relevance, 0, None)) + _unit_max(gaze)) / 2
    expected = np.stack([MASKS["mean"](f) for f in fused])
    np.testing.assert_array_equal(fusion_masks(relevance, gaze), expected)


def test_relevance_masks_refuse_gaze_and_unknown_methods(rng: np.random.Generator) -> None:
    maps = rng.random((2, 8, 8))
    with pytest.raises(ValueError, match="'gaze' masks come from fixations"):
        relevance_masks(maps, "gaze")
    with pytest.raises(ValueError, match="unknown relevance masking method 'median'"):
        relevance_masks(maps, "median")
    with pytest.raises(ValueError, match=r"non-empty batch \(N, H, W\)"):
        relevance_masks(maps[0], "mean")


def _gaze_mask_reference(points: list[np.ndarray], radius: float, shape: tuple[int, int]) -> np.ndarray:
    """Literal: a pixel is kept when it lies within the visual span of at least one fixation."""
    keep = np.zeros(shape, dtype=bool)
    for row in range(shape[0]):
        for col in range(shape[1]):
            for viewer in points:
                for x, y in viewer:
                    if (col - x) ** 2 + (row - y) ** 2 <= radius**2:
                        keep[row, col] = True
    return keep


def test_gaze_masks_keep_what_any_viewer_perceived_and_list_unseen_images(rng: np.random.Generator) -> None:
    span = VisualSpan(c=0.6, radius=3.5)
    other_span = VisualSpan(c=0.4, radius=2.0)
    a = rng.uniform(0, 19, size=(4, 2))
    b = rng.uniform(0, 19, size=(2, 2))
    viewings = {
        "s/0": [ImageFixations(a, span), ImageFixations(b, other_span)],
        "s/2": [ImageFixations(np.zeros((0, 2)), span)],  # a trial without fixations counts as not seen
    }
    mask_set = gaze_masks(viewings, ["s/0", "s/1", "s/2"], (20, 20))
    assert mask_set.method == "gaze"
    assert mask_set.missing == ("s/1", "s/2")
    np.testing.assert_array_equal(mask_set.positions, [0])
    expected = _gaze_mask_reference([a], 3.5, (20, 20)) | _gaze_mask_reference([b], 2.0, (20, 20))
    np.testing.assert_array_equal(mask_set.masks[0], expected)
    assert mask_set.options == {"spans_px": [{"c": 0.4, "radius": 2.0}, {"c": 0.6, "radius": 3.5}]}


def test_gaze_masks_without_any_fixation_are_empty_and_list_every_image() -> None:
    mask_set = gaze_masks({}, ["a", "b"], (6, 6))
    assert mask_set.masks.shape == (0, 6, 6) and mask_set.missing == ("a", "b")


def test_a_mask_set_checks_its_shapes() -> None:
    with pytest.raises(ValueError, match="one position each"):
        MaskSet("mean", {}, np.ones((2, 4, 4), dtype=bool), np.arange(3))
    with pytest.raises(ValueError, match="unknown masking method"):
        MaskSet("median", {}, np.ones((1, 4, 4), dtype=bool), np.arange(1))


# --------------------------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------------------------


def test_file_names_are_readable_versions_of_the_ids() -> None:
    assert image_file_name("train/angry/Training_10118481.jpg") == "train_angry_Training_10118481.png"
    assert image_file_name("synthetic/train/3") == "synthetic_train_3.png"
    assert image_file_name("S005/001/S005_001_00000011.PNG") == "S005_001_S005_001_00000011.png"


@given(st.text(min_size=1, max_size=40).filter(lambda s: re.search(r"[A-Za-z0-9]", s) is not None))
def test_file_names_are_safe_pngs(sample_id: str) -> None:
    name = image_file_name(sample_id)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png", name), name
    assert image_file_name(sample_id) == name


# --------------------------------------------------------------------------------------------------------
# Writing, reading back, resuming
# --------------------------------------------------------------------------------------------------------


def _mean_masks(faces: SplitArrays, rng: np.random.Generator) -> MaskSet:
    return relevance_masks(_relevance(faces, rng), "mean")


def test_the_masked_copy_is_i_times_m_in_the_folder_layout_with_a_manifest(
    tmp_path: Path, faces: SplitArrays, rng: np.random.Generator
) -> None:
    mask_set = _mean_masks(faces, rng)
    result = write_masked_dataset(
        faces, mask_set, tmp_path / "mean", split="train", source="synthetic:n=3", provenance={"model": "m"}
    )
    assert (result.written, result.reused, result.missing) == (24, 0, ())
    assert result.mean_kept_fraction == pytest.approx(mask_set.masks.mean())
    header = json.loads((tmp_path / "mean" / HEADER_FILE).read_text())
    assert header == {
        "method": "mean",
        "options": {},
        "source": "synthetic:n=3",
        "provenance": {"model": "m"},
    }

    rows = read_manifest(tmp_path / "mean")
    assert tuple(rows[0]) == MANIFEST_FIELDS and [r["id"] for r in rows] == list(faces.ids)
    for row, mask, label in zip(rows, mask_set.masks, faces.labels, strict=True):
        assert row["file"] == f"train/{label}/{image_file_name(row['id'])}"
        assert (row["split"], row["label"], row["method"], row["options"]) == ("train", label, "mean", "{}")
        assert float(row["kept_fraction"]) == pytest.approx(mask.mean())

    loader = ImageFolderLoader(tmp_path / "mean")  # the folder loader reads it back
    assert loader.splits == ("train",)
    back = {s.id: s for s in loader.iter_samples("train")}
    for k, sample_id in enumerate(faces.ids):
        sample = back[f"train/{faces.labels[k]}/{image_file_name(sample_id)}"]
        assert sample.label == faces.labels[k]
        expected = np.where(mask_set.masks[k], faces.images[k], 0.0)
        np.testing.assert_allclose(sample.image, np.round(expected * 255) / 255, atol=1e-6)
        assert not sample.image[~mask_set.masks[k]].any()


def test_an_interrupted_write_resumes_to_the_same_bytes(
    tmp_path: Path, faces: SplitArrays, rng: np.random.Generator
) -> None:
    mask_set = _mean_masks(faces, rng)
    write_masked_dataset(faces, mask_set, tmp_path / "whole", split="train", source="s")

    class Stop(Exception):
        pass

    def stop_after_seven(done: int, total: int) -> None:
        if done == 7:
            raise Stop

    with pytest.raises(Stop):
        write_masked_dataset(
            faces, mask_set, tmp_path / "resumed", split="train", source="s", on_image=stop_after_seven
        )
    assert len(read_manifest(tmp_path / "resumed")) == 7
    seen: list[tuple[int, int]] = []
    result = write_masked_dataset(
        faces,
        mask_set,
        tmp_path / "resumed",
        split="train",
        source="s",
        on_image=lambda d, t: seen.append((d, t)),
    )
    assert (result.written, result.reused) == (17, 7)
    assert seen == [(k, 24) for k in range(1, 25)]
    assert _tree(tmp_path / "resumed") == _tree(tmp_path / "whole")
    again = write_masked_dataset(faces, mask_set, tmp_path / "resumed", split="train", source="s")
    assert (again.written, again.reused) == (0, 24)


def test_a_manifest_row_cut_short_and_a_lost_image_are_redone(
    tmp_path: Path, faces: SplitArrays, rng: np.random.Generator
) -> None:
    mask_set = _mean_masks(faces, rng)
    write_masked_dataset(faces, mask_set, tmp_path / "whole", split="train", source="s")
    write_masked_dataset(faces, mask_set, tmp_path / "damaged", split="train", source="s")
    manifest = tmp_path / "damaged" / MANIFEST_FILE
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(lines[:-3]) + lines[-3][:10])  # the last rows lost, one cut in half
    lost = tmp_path / "damaged" / read_manifest(tmp_path / "damaged")[0]["file"]
    lost.unlink()
    assert len(read_manifest(tmp_path / "damaged")) == 21
    result = write_masked_dataset(faces, mask_set, tmp_path / "damaged", split="train", source="s")
    assert (result.written, result.reused) == (4, 20)
    whole, damaged = _tree(tmp_path / "whole"), _tree(tmp_path / "damaged")
    assert damaged.keys() == whole.keys()
    assert all(damaged[name] == whole[name] for name in whole if name.endswith(".png"))
    ids = [row["id"] for row in read_manifest(tmp_path / "damaged")]
    assert set(ids) == set(faces.ids) and len(ids) == 25  # the lost image is listed again


def test_a_folder_made_differently_is_not_mixed_into(
    tmp_path: Path, faces: SplitArrays, rng: np.random.Generator
) -> None:
    maps = _relevance(faces, rng)
    write_masked_dataset(faces, relevance_masks(maps, "negative"), tmp_path, split="train", source="s")
    other = relevance_masks(maps, "negative", options={"fraction": 0.3})
    with pytest.raises(AnalysisError, match=r"made differently.*Choose another output folder"):
        write_masked_dataset(faces, other, tmp_path, split="train", source="s")


def test_several_splits_share_one_masked_dataset(tmp_path: Path, rng: np.random.Generator) -> None:
    loader = open_dataset("synthetic:n=1,size=32")
    for split in ("train", "validation"):
        arrays = load_arrays(loader, split)
        write_masked_dataset(
            arrays, relevance_masks(rng.random((8, 32, 32)), "mean"), tmp_path, split=split, source="s"
        )
    assert ImageFolderLoader(tmp_path).splits == ("train", "validation")
    assert [r["split"] for r in read_manifest(tmp_path)] == ["train"] * 8 + ["validation"] * 8


def test_gaze_masked_datasets_skip_images_nobody_looked_at(tmp_path: Path, faces: SplitArrays) -> None:
    span = VisualSpan(c=1.78, radius=10.5)
    viewings = {
        faces.ids[k]: [ImageFixations(np.array([[24.0, 20.0], [30.0, 31.0]]), span)] for k in (1, 4, 9)
    }
    mask_set = gaze_masks(viewings, faces.ids, (48, 48))
    result = write_masked_dataset(faces, mask_set, tmp_path, split="train", source="s")
    assert result.written == 3 and len(result.missing) == 21
    assert [r["id"] for r in read_manifest(tmp_path)] == [faces.ids[k] for k in (1, 4, 9)]
    images, positions = load_masked_images(tmp_path, faces.ids)
    np.testing.assert_array_equal(positions, [1, 4, 9])
    assert images.shape == (3, 48, 48) and images.dtype == np.float32
    assert images[:, 0, 0].max() == 0.0  # the corner is farther than the span from both fixations


def test_masks_that_do_not_fit_the_images_are_refused(tmp_path: Path, faces: SplitArrays) -> None:
    small = MaskSet("mean", {}, np.ones((2, 8, 8), dtype=bool), np.arange(2))
    with pytest.raises(ValueError, match=r"masks are \(8, 8\) px but the images \(48, 48\)"):
        write_masked_dataset(faces, small, tmp_path, split="train", source="s")
    beyond = MaskSet("mean", {}, np.ones((1, 48, 48), dtype=bool), np.array([99]))
    with pytest.raises(ValueError, match="must index the split's 24 images"):
        write_masked_dataset(faces, beyond, tmp_path, split="train", source="s")


def test_loading_masked_images_needs_a_manifest_and_shared_ids(
    tmp_path: Path, faces: SplitArrays, rng: np.random.Generator
) -> None:
    with pytest.raises(FileNotFoundError, match="Write one with 'rbdm mask'"):
        load_masked_images(tmp_path / "nothing", faces.ids)
    mask_set = _mean_masks(faces, rng)
    write_masked_dataset(faces, mask_set, tmp_path, split="train", source="s")
    with pytest.raises(AnalysisError, match="none of the 2 images has a masked copy"):
        load_masked_images(tmp_path, ["x", "y"])
    images, positions = load_masked_images(tmp_path, ["x", *faces.ids[:3]])
    np.testing.assert_array_equal(positions, [1, 2, 3])
    expected = np.round(np.where(mask_set.masks[:3], faces.images[:3], 0.0) * 255) / 255
    np.testing.assert_allclose(images, expected, atol=1e-6)
    assert math.isclose(float(images.max()), float(expected.max()), abs_tol=1e-6)
    assert set(LABELS) >= {row["label"] for row in read_manifest(tmp_path)}


def test_fusion_masks_keep_pixels_above_the_mean_of_the_normalised_mean() -> None:
    from analysis.masked_dataset import fusion_masks

    relevance = np.array([[[4.0, -2.0], [0.0, 2.0]]])  # R⁺ / max: 1, 0, 0, 0.5
    gaze = np.array([[[0.0, 3.0], [0.0, 0.0]]])  # G / max: 0, 1, 0, 0
    # F = 0.5, 0.5, 0, 0.25 with mean 0.3125: keep the first two
    np.testing.assert_array_equal(fusion_masks(relevance, gaze), [[[True, True], [False, False]]])
    # a source that is zero everywhere contributes nothing: only the relevance decides
    np.testing.assert_array_equal(
        fusion_masks(relevance, np.zeros_like(gaze)), [[[True, False], [False, True]]]
    )
    with pytest.raises(ValueError, match="same images"):
        fusion_masks(relevance, gaze[:, :1])
