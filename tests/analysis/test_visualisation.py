"""Tests for analysis/visualisation.py: BWR heatmaps, Top-X overlays, colour tables and prototype strips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from analysis.projection import top_x_mask
from analysis.visualisation import (
    PALETTE,
    StagePanel,
    bwr_heatmap,
    cluster_colour,
    frame_rgb,
    label_colours,
    name_colour,
    prototype_strip,
    save_png,
    stage_panels,
    top_x_overlay,
    upscale,
)

finite_maps = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-5, 5, allow_nan=False, allow_infinity=False),
)


def _slow_bwr(relevance: np.ndarray) -> np.ndarray:
    """Pixel by pixel: scale by the largest magnitude, then blend white with blue or red."""
    peak = np.abs(relevance).max()
    out = np.zeros((*relevance.shape, 3))
    for (row, col), value in np.ndenumerate(relevance):
        r = value / peak if peak > 0 else 0.0
        if r >= 0:
            out[row, col] = (1.0, 1.0 - r, 1.0 - r)  # white → red
        else:
            out[row, col] = (1.0 + r, 1.0 + r, 1.0)  # white → blue
    return np.round(out * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# BWR heatmaps
# --------------------------------------------------------------------------------------------------


@given(finite_maps)
def test_bwr_matches_the_pixelwise_definition(relevance: np.ndarray) -> None:
    image = bwr_heatmap(relevance)
    assert image.shape == (*relevance.shape, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, _slow_bwr(relevance))


def test_bwr_extremes_and_zero() -> None:
    image = bwr_heatmap(np.array([[-2.0, 0.0, 1.0]]))
    assert image[0, 0].tolist() == [0, 0, 255]  # the strongest relevance reaches full colour
    assert image[0, 1].tolist() == [255, 255, 255]
    assert image[0, 2].tolist() == [255, 128, 128]  # +1 of a peak of 2 is half way to red
    assert (bwr_heatmap(np.zeros((3, 3))) == 255).all()


def test_bwr_rejects_non_finite_maps() -> None:
    with pytest.raises(ValueError, match="finite"):
        bwr_heatmap(np.array([[np.nan, 1.0]]))


# --------------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------------


def test_label_colours_follow_the_order_and_cycle() -> None:
    labels = [f"AU{i:02d}" for i in range(12)]
    colours = label_colours(labels)
    assert [colours[label] for label in labels[:10]] == list(PALETTE)
    assert colours["AU10"] == PALETTE[0]
    assert label_colours(labels) == colours
    with pytest.raises(ValueError, match="distinct"):
        label_colours(["AU01", "AU01"])


def test_cluster_shades_stay_distinct_and_start_at_the_colour() -> None:
    base = PALETTE[1]
    shades = [cluster_colour(base, cluster) for cluster in range(5)]
    assert shades[0] == base
    assert len(set(shades)) == 5
    assert all(0 <= v <= 255 for shade in shades for v in shade)


def test_name_colour_of_labels_and_clusters() -> None:
    colours = label_colours(["AU01", "AU12"])
    assert name_colour("AU12", colours) == PALETTE[1]
    assert name_colour("AU12_A", colours) == PALETTE[1]
    assert name_colour("AU12_B", colours) == cluster_colour(PALETTE[1], 1)
    assert name_colour("AU01_AA", colours) == cluster_colour(PALETTE[0], 26)
    with pytest.raises(KeyError, match="AU05"):
        name_colour("AU05_A", colours)


# --------------------------------------------------------------------------------------------------
# Top-X overlays
# --------------------------------------------------------------------------------------------------


def test_overlay_colours_exactly_the_top_x_pixels(rng: np.random.Generator) -> None:
    frame = rng.uniform(0, 1, size=(12, 10)).astype(np.float32)
    relevance = rng.normal(size=(12, 10))
    colours = {"AU12": (10, 200, 30)}
    image = top_x_overlay(frame, {"AU12": relevance}, colours, x=0.25)
    mask = top_x_mask(relevance, x=0.25)
    assert image.shape == (12, 10, 3) and image.dtype == np.uint8
    assert (image[mask] == (10, 200, 30)).all()
    np.testing.assert_array_equal(image[~mask], frame_rgb(frame)[~mask])


def test_overlay_paints_labels_in_order(rng: np.random.Generator) -> None:
    frame = np.full((4, 4), 0.5, dtype=np.float32)
    first = np.zeros((4, 4))
    first[0, 0] = first[1, 1] = 1.0
    second = np.zeros((4, 4))
    second[1, 1] = 1.0
    colours = {"AU01": (255, 0, 0), "AU02": (0, 0, 255)}
    image = top_x_overlay(frame, {"AU01": first, "AU02": second}, colours, x=1.0)
    assert image[0, 0].tolist() == [255, 0, 0]
    assert image[1, 1].tolist() == [0, 0, 255]  # the later label is on top
    assert image[3, 3].tolist() == [128, 128, 128]


def test_overlay_opacity_blends() -> None:
    frame = np.zeros((2, 2), dtype=np.float32)
    relevance = np.array([[1.0, 0.0], [0.0, 0.0]])
    image = top_x_overlay(frame, {"AU01": relevance}, {"AU01": (200, 100, 0)}, x=1.0, opacity=0.5)
    assert image[0, 0].tolist() == [100, 50, 0]


def test_overlay_without_positive_relevance_is_the_frame(rng: np.random.Generator) -> None:
    frame = rng.uniform(0, 1, size=(5, 5, 3)).astype(np.float32)
    image = top_x_overlay(frame, {"AU01": -np.ones((5, 5))}, {"AU01": (1, 2, 3)})
    np.testing.assert_array_equal(image, frame_rgb(frame))


def test_overlay_checks_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        top_x_overlay(np.zeros((4, 4)), {"AU01": np.ones((3, 3))}, {"AU01": (0, 0, 0)})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        top_x_overlay(np.full((2, 2), 2.0), {}, {})


# --------------------------------------------------------------------------------------------------
# Strips and files
# --------------------------------------------------------------------------------------------------


def test_strip_layout_and_content(rng: np.random.Generator) -> None:
    frames = rng.uniform(0, 1, size=(3, 8, 6)).astype(np.float32)
    maps = rng.normal(size=(2, 8, 6))
    colours = label_colours(["AU01", "AU12"])
    panels = [
        StagePanel(frames[0]),
        StagePanel(frames[1], {"AU01_A": maps[0]}),
        StagePanel(frames[2], {"AU01_A": maps[0], "AU12_A": maps[1]}),
    ]
    strip = prototype_strip(panels, colours, gap_px=2)
    assert strip.shape == (8 + 2 + 8, 3 * 6 + 2 * 2, 3)
    np.testing.assert_array_equal(strip[:8, :6], frame_rgb(frames[0]))  # NONE stage: the frame itself
    assert (strip[10:, :6] == 255).all()  # and a white heatmap
    np.testing.assert_array_equal(
        strip[:8, 8:14], top_x_overlay(frames[1], panels[1].relevance_by_name, colours)
    )
    np.testing.assert_array_equal(strip[10:, 16:22], bwr_heatmap(maps[0] + maps[1]))
    assert (strip[:, 6:8] == 255).all()
    without = prototype_strip(panels, colours, heatmap=False, scale=3)
    assert without.shape == (24, 3 * (3 * 6 + 2 * 2), 3)


def test_strip_needs_panels_of_one_size(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="at least one"):
        prototype_strip([], {})
    with pytest.raises(ValueError, match="one size"):
        prototype_strip([StagePanel(np.zeros((4, 4))), StagePanel(np.zeros((5, 4)))], {})


def test_upscale_repeats_pixels() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = upscale(image, factor=2)
    assert big.shape == (4, 4, 3)
    np.testing.assert_array_equal(big[::2, ::2], image)
    np.testing.assert_array_equal(big[1::2, 1::2], image)


def test_save_png_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = save_png(tmp_path / "sub" / "strip.png", image)
    with Image.open(path) as loaded:
        np.testing.assert_array_equal(np.asarray(loaded.convert("RGB")), image)
    with pytest.raises(ValueError, match=r"\.png"):
        save_png(tmp_path / "strip.jpg", image)
    with pytest.raises(ValueError, match="uint8"):
        save_png(tmp_path / "x.png", image.astype(np.float32))


def test_stage_panels(toy) -> None:  # type: ignore[no-untyped-def]
    result, _ = toy
    panels = stage_panels(result, "s1")
    assert len(panels) == 4
    assert panels[0].relevance_by_name == {}
    sequence = result.sequence("s1")
    np.testing.assert_array_equal(panels[2].frame, sequence.frames[5])  # middle of frames 4-6
    unit_b, cluster = sequence.cluster_of("B_A")
    np.testing.assert_array_equal(panels[2].relevance_by_name["B_A"], result.mean_maps[(unit_b, cluster)])
    own = stage_panels(result, 1, source="stage")
    np.testing.assert_allclose(
        own[2].relevance_by_name["B_A"], sequence.relevance["B"].mean(axis=0), atol=1e-6
    )
    with pytest.raises(ValueError, match="source"):
        stage_panels(result, 0, source="frame")
