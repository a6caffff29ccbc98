"""Figures written as PNG files by the command line and the views' export buttons (matplotlib, Agg).

Plotting only: every number shown is computed by :mod:`analysis` and handed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAP_COLOURS", "MODEL_COLOUR", "map_colours", "save_comparison_figure"]

#: Heatmap colours: matplotlib's default cycle, so the screen and the PNG export agree.
MAP_COLOURS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
#: The model's (Trainer's) heatmap is always this colour, however many annotators there are.
MODEL_COLOUR = "#d62728"


def map_colours(keys: Sequence[str], *, annotators: Sequence[str]) -> dict[str, str]:
    """A colour per heatmap that stays the same when maps come and go.

    Each annotator keeps the colour of its place among all the study's ``annotators`` (unchecking one
    does not recolour the others); every other key (a model) is :data:`MODEL_COLOUR`, which no
    annotator gets.
    """
    palette = [c for c in MAP_COLOURS if c != MODEL_COLOUR]
    place = {name: k for k, name in enumerate(annotators)}
    return {key: palette[place[key] % len(palette)] if key in place else MODEL_COLOUR for key in keys}


def save_comparison_figure(
    path: str | Path,
    images: Sequence[NDArray[np.floating[Any]]],
    heatmaps: Sequence[Mapping[str, NDArray[np.floating[Any]]]],
    masks: Sequence[Mapping[str, NDArray[np.bool_]]],
    *,
    titles: Sequence[str],
    colours: Mapping[str, str] | None = None,
) -> Path:
    """One row per stimulus: the image with each heatmap's contour, each heatmap, then each mask.

    The layout follows RBDM Figure 7 (heatmaps of two annotators and the model) and Figure 8 (the
    three masking methods applied to the image). An image of another size than its heatmaps (a
    stimulus compared at the model's input size) is stretched over the heatmaps' pixel grid.
    ``colours`` gives each heatmap's contour colour by key (:func:`map_colours`); by default the
    colours follow the maps' order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 1 + len(heatmaps[0]) + len(masks[0])
    fig, axes = plt.subplots(len(images), n_cols, figsize=(1.9 * n_cols, 1.9 * len(images)), squeeze=False)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (image, heat, mask, title) in enumerate(zip(images, heatmaps, masks, titles, strict=True)):
        grey = image if image.ndim == 2 else image.mean(axis=-1)
        extent = _grid_extent(next(iter(heat.values()), grey))
        axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=1, extent=extent)
        for k, (key, values) in enumerate(heat.items()):
            colour = colours[key] if colours is not None and key in colours else cycle[k % len(cycle)]
            if values.max() > 0:
                axes[row, 0].contour(values > 0, levels=[0.5], colors=[colour], linewidths=1.0)
        axes[row, 0].set_ylabel(title, fontsize=8)
        for col, (name, values) in enumerate(heat.items(), start=1):
            axes[row, col].imshow(grey, cmap="gray", vmin=0, vmax=1, extent=extent)
            axes[row, col].imshow(_heat_rgba(values, plt.get_cmap("inferno")))
            axes[0, col].set_title(name, fontsize=8)
        for col, (name, keep) in enumerate(mask.items(), start=1 + len(heat)):
            axes[row, col].imshow(np.where(keep, grey, 0), cmap="gray", vmin=0, vmax=1)
            axes[0, col].set_title(name, fontsize=8)
    axes[0, 0].set_title("image + contours", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _grid_extent(grid: NDArray[np.generic]) -> tuple[float, float, float, float]:
    """imshow's extent of an (H, W) map drawn at its own pixels (pixel centres on integers)."""
    height, width = grid.shape[:2]
    return (-0.5, width - 0.5, height - 0.5, -0.5)


def _heat_rgba(values: NDArray[np.floating[Any]], cmap: object) -> NDArray[np.float64]:
    """Colour a heatmap with transparency growing with the value, so the image shows through."""
    peak = float(values.max())
    scaled = values / peak if peak > 0 else np.zeros_like(values)
    rgba: NDArray[np.float64] = np.asarray(cmap(scaled), dtype=np.float64)  # type: ignore[operator]
    rgba[..., 3] = 0.9 * np.sqrt(scaled)
    return rgba
