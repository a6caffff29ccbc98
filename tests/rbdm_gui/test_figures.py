"""Tests for rbdm_gui.workflows.figures: heatmap colours and the Figure 7/8 style PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rbdm_gui.workflows.figures import MAP_COLOURS, MODEL_COLOUR, map_colours, save_comparison_figure


def test_annotators_keep_their_colour_and_never_get_the_models() -> None:
    annotators = [f"P{k:02d}" for k in range(12)]  # more annotators than colours: the palette wraps
    colours = map_colours([*annotators, "model"], annotators=annotators)
    assert colours["model"] == MODEL_COLOUR
    assert MODEL_COLOUR not in [colours[a] for a in annotators]
    assert colours["P00"] == colours["P09"] == MAP_COLOURS[0]  # 9 colours once the model's is set aside
    assert map_colours(["P03"], annotators=annotators)["P03"] == colours["P03"]


def test_the_figure_has_a_row_per_stimulus_and_a_column_per_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.random((64, 64)), rng.random((64, 64, 3))]  # grey and RGB, larger than the maps
    heat = {"U1": rng.random((32, 32)), "model": np.zeros((32, 32))}  # an all-zero map has no contour
    masks = {"mean mask": rng.random((64, 64)) > 0.5}  # masks apply to the image as shown
    out = save_comparison_figure(
        tmp_path / "figure.png",
        images,
        [heat, heat],
        [masks, masks],
        titles=["a", "b"],
        colours={"U1": "#000000"},
    )
    assert out == tmp_path / "figure.png"
    with Image.open(out) as figure:
        width, height = figure.size
    # 1.9 in per panel at 110 dpi: 4 columns (image, two heatmaps, one mask) by 2 rows.
    assert (width, height) == (round(4 * 1.9 * 110), round(2 * 1.9 * 110))
