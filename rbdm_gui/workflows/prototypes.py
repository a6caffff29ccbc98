"""What the Temporal prototypes screen shows, Qt-free: the compute work, the lists' texts and the pictures.

:func:`compute_synthetic` is the screen's *Compute* (synthetic AU sequences through the default action
unit model and the whole TP pipeline, :func:`analysis.prototype_pipeline.analyse_sequences`); the other
functions turn a :class:`~analysis.prototype_pipeline.PrototypeResult` into what a panel shows: the
sequence and stage titles, TP Table 1 as text, the enlarged stage (its Top-X projection and plain
heatmap), a unit's cluster mean maps side by side, and the units' colour legend. Every number and
picture comes from :mod:`analysis`; nothing here imports Qt.

References
----------
.. [1] Finzel et al. (2021), Explaining Deep Neural Networks for Temporal Sequences (TP), §3.3–§3.5
   and Table 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.progress import ProgressCallback
from analysis.prototype_pipeline import PrototypeResult, SequenceAnalysis
from analysis.visualisation import bwr_heatmap, name_colour, stage_panels, top_x_overlay, upscale
from rbdm_gui.workflows.assets import DEFAULT_UNIT_MODEL

__all__ = [
    "DETAIL_SCALE",
    "STRIP_SCALE",
    "Compute",
    "cluster_row",
    "cluster_summary",
    "compute_synthetic",
    "export_name",
    "legend_html",
    "sequence_title",
    "stage_detail",
    "stage_titles",
    "table_cells",
]

Compute = Callable[[ProgressCallback, Callable[[], bool]], PrototypeResult]
Colours = Mapping[str, tuple[int, int, int]]

#: Pixels per frame pixel of the prototype strip and of the enlarged stage.
STRIP_SCALE = 3
DETAIL_SCALE = 5
_GAP_PX = 4


def compute_synthetic(
    *, model_path: Path | None = DEFAULT_UNIT_MODEL, n_per_class: int = 6, seed: int = 0
) -> Compute:
    """A worker function: synthetic AU sequences through the default model and the whole pipeline.

    The model is read from ``model_path`` when that file exists, else the default is trained first
    (a minute or two). Runs on a worker thread (:func:`rbdm_gui.screens.workers.run_task`).

    References
    ----------
    .. [1] Finzel et al. (2021), TP §3.1–§3.5 (the pipeline :func:`analyse_sequences` runs).
    """

    def compute(progress: ProgressCallback, cancelled: Callable[[], bool]) -> PrototypeResult:
        from analysis.action_units import default_unit_model
        from analysis.datasets.synthetic_sequences import make_sequences
        from analysis.prototype_pipeline import analyse_sequences

        progress(0.0, "loading the action unit model")
        model, units = default_unit_model(
            model_path, seed=seed, on_epoch=lambda r: progress(0.05, f"training the model: epoch {r.epoch}")
        )
        progress(0.4, "drawing synthetic sequences")
        sequences = make_sequences(n_per_class, rng=np.random.default_rng(seed))
        return analyse_sequences(
            model,
            sequences,
            units=units,
            rng=np.random.default_rng(seed),
            on_progress=lambda fraction, text: progress(0.4 + 0.6 * fraction, text),
        )

    return compute


def sequence_title(sequence: SequenceAnalysis) -> str:
    """A sequence's line in the list: its id, class and number of prototype stages."""
    return f"{sequence.id}  [{sequence.class_name}]  {sequence.prototype.n_stages} stages"


def stage_titles(sequence: SequenceAnalysis) -> list[str]:
    """Each stage's line: its frames and its active units or clusters (``NONE`` when none is)."""
    return [
        f"frames {stage.start_frame}–{stage.stop_frame - 1}: ({', '.join(sorted(stage.names)) or 'NONE'})"
        for stage in sequence.stages
    ]


def table_cells(result: PrototypeResult) -> tuple[list[str], list[list[str]]]:
    """TP Table 1 as text: the column titles and each row's cells (floats three decimals wide)."""
    rows = result.table.to_rows()
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    return list(result.table.columns), cells


def stage_detail(
    result: PrototypeResult,
    sequence_id: str,
    stage: int,
    colours: Colours,
    *,
    source: str = "cluster",
    x: float = 0.25,
    scale: int = DETAIL_SCALE,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """A stage enlarged: its Top-X projection in the units' colours, and the plain heatmap of its maps' sum.

    Returns
    -------
    overlay, heatmap : ndarray of uint8, shape (H·scale, W·scale, 3)

    References
    ----------
    .. [1] Finzel et al. (2021), TP §3.5 (Top-X relevance projection).
    """
    panel = stage_panels(result, sequence_id, source=source)[stage]
    overlay = top_x_overlay(panel.frame, panel.relevance_by_name, colours, x=x)
    total = sum(
        (np.asarray(m, dtype=np.float64) for m in panel.relevance_by_name.values()),
        np.zeros(overlay.shape[:2]),
    )
    return upscale(overlay, factor=scale), upscale(bwr_heatmap(total), factor=scale)


def cluster_row(result: PrototypeResult, unit: str, *, scale: int = 2) -> NDArray[np.uint8] | None:
    """The mean map of each SpRAy cluster of ``unit`` as a BWR heatmap, side by side (None when none).

    References
    ----------
    .. [1] Finzel et al. (2021), TP §3.3–§3.4 (clusters and their average heatmaps).
    """
    outcome = result.spray[unit]
    maps = [result.mean_maps[(unit, c)] for c in range(outcome.n_clusters) if (unit, c) in result.mean_maps]
    tiles = [upscale(bwr_heatmap(m), factor=scale) for m in maps]
    if not tiles:
        return None
    gap = np.full((tiles[0].shape[0], _GAP_PX, 3), 255, dtype=np.uint8)
    return np.concatenate([piece for tile in tiles for piece in (tile, gap)][:-1], axis=1)


def cluster_summary(result: PrototypeResult, unit: str, colours: Colours) -> str:
    """How many clusters SpRAy found for ``unit``, their sizes and the unit's colour."""
    outcome = result.spray[unit]
    counts = np.bincount(outcome.labels, minlength=outcome.n_clusters)
    colour = name_colour(unit, colours)
    return f"{unit}: {outcome.n_clusters} clusters of {counts.tolist()} maps (colour {colour})"


def legend_html(colours: Colours) -> str:
    """One coloured square and name per unit, in the colours of the Top-X projections."""
    return "&nbsp;&nbsp;".join(
        f'<span style="color:#{r:02x}{g:02x}{b:02x}">&#9632;</span>&nbsp;{unit}'
        for unit, (r, g, b) in colours.items()
    )


def export_name(sequence: SequenceAnalysis | None) -> str:
    """The file name offered for a sequence's strip."""
    return f"{sequence.id.replace('/', '_')}.png" if sequence is not None else "prototype.png"
