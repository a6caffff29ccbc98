"""Relevance and temporal prototypes as RGB arrays: BWR heatmaps, Top-X overlays, strips (TP §3.5).

TP §3.5 shows relevance two ways. The plain heatmap normalises a map into [-1, 1] and colours it with
the blue-white-red (BWR) scheme: negative relevance blue, none white, positive red. The
*Top-X-Relevance Projection* keeps only the most relevant pixels that carry x of the positive relevance
mass (:mod:`analysis.projection`) and, for a temporal prototype, paints each label's projection in the
label's own colour over the frame (TP Figure 4). :func:`prototype_strip` lays the stages of a temporal
prototype side by side, each stage's overlay above its plain BWR heatmap; :func:`stage_panels` picks
those stages' frames and maps from a :class:`~analysis.prototype_pipeline.PrototypeResult`.

Everything here is a pure function returning ``uint8`` RGB arrays of shape (H, W, 3) (or, for
:func:`stage_panels`, the panels to draw); no Qt and no matplotlib. Only
:func:`save_png` writes a file (with Pillow), for the command line and the GUI's export.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.5, Figures 3-5.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_count, check_map, check_same_shape
from analysis.projection import top_x_mask

if TYPE_CHECKING:
    from analysis.prototype_pipeline import PrototypeResult

__all__ = [
    "PALETTE",
    "RGB",
    "StagePanel",
    "bwr_heatmap",
    "cluster_colour",
    "frame_rgb",
    "label_colours",
    "name_colour",
    "prototype_strip",
    "save_png",
    "stage_panels",
    "top_x_overlay",
    "upscale",
]

RGB = tuple[int, int, int]
RGBImage = NDArray[np.uint8]

#: Ten well-separated colours (the "tab10" qualitative scheme), assigned to labels in order.
PALETTE: tuple[RGB, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)

_CLUSTER_NAME = re.compile(r"^(.*)_([A-Z]+)$")
_BLUE = np.array([0.0, 0.0, 1.0])
_WHITE = np.array([1.0, 1.0, 1.0])
_RED = np.array([1.0, 0.0, 0.0])


# --------------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------------


def label_colours(labels: Sequence[str]) -> dict[str, RGB]:
    """A fixed colour per label: the i-th label gets ``PALETTE[i mod 10]``.

    The table depends only on the order of ``labels`` (e.g. the model's output order), so the same
    label keeps its colour in every picture (the Temporal prototypes screen shows it as a legend).

    Parameters
    ----------
    labels : sequence of str
        Distinct label names.

    Returns
    -------
    dict of str to (int, int, int)

    References
    ----------
    .. [1] Finzel et al. (2021), §3.5 and Figure 4: "heatmaps, colored differently for each Action Unit".
    """
    names = list(labels)
    if len(set(names)) != len(names):
        raise ValueError(f"labels must be distinct; got {names!r}.")
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def cluster_colour(colour: RGB, cluster: int) -> RGB:
    """A shade of a label's colour for its ``cluster``-th cluster (0 = the colour itself).

    Odd clusters are lightened and even ones darkened, in steps of 30 % towards white or black, so the
    clusters of one label (AU02_A, AU02_B in TP Figure 2) stay recognisably one hue.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, Figure 2 ("two different colors for AU02").
    """
    index = check_count(cluster=cluster)
    base = np.asarray(_check_colour(colour), dtype=np.float64)
    if index == 0:
        return _check_colour(colour)
    step = min(0.3 * ((index + 1) // 2), 0.9)
    target = 255.0 if index % 2 == 1 else 0.0
    mixed = base + (target - base) * step
    return (round(mixed[0]), round(mixed[1]), round(mixed[2]))


def _letters_index(letters: str) -> int:
    """A → 0, Z → 25, AA → 26 (the inverse of the naming in analysis.prototypes)."""
    index = 0
    for char in letters:
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def name_colour(name: str, colours: Mapping[str, RGB]) -> RGB:
    """The colour of a stage name: a label (``"AU12"``) or a named cluster (``"AU12_B"``).

    Raises
    ------
    KeyError
        When the name's label has no colour in ``colours``.
    """
    if name in colours:
        return colours[name]
    match = _CLUSTER_NAME.match(name)
    if match is None or match.group(1) not in colours:
        raise KeyError(f"no colour for {name!r}; colours are given for {sorted(colours)!r}.")
    return cluster_colour(colours[match.group(1)], _letters_index(match.group(2)))


def _check_colour(colour: object) -> RGB:
    try:
        values = tuple(int(v) for v in colour)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as err:
        raise ValueError(f"a colour must be three integers 0-255; got {colour!r}.") from err
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ValueError(f"a colour must be three integers 0-255; got {colour!r}.")
    return (values[0], values[1], values[2])


# --------------------------------------------------------------------------------------------------
# Single pictures
# --------------------------------------------------------------------------------------------------


def bwr_heatmap(relevance: ArrayLike) -> RGBImage:
    """The plain heatmap of a relevance map: normalised into [-1, 1], coloured blue-white-red (TP §3.5).

    The map is divided by its largest absolute value, so the strongest relevance of either sign reaches
    full blue (-1) or full red (+1); 0 is white, and colours in between are linear (matplotlib's
    ``"bwr"``). An all-zero map is all white.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    References
    ----------
    .. [1] Finzel et al. (2021), §3.5, normalisation into [-1, 1] and the BWR scheme (Figure 3, left).
    """
    values = check_map(relevance=relevance)
    peak = float(np.abs(values).max())
    r = values / peak if peak > 0 else np.zeros_like(values)
    negative = np.clip(-r, 0.0, 1.0)[..., None]
    positive = np.clip(r, 0.0, 1.0)[..., None]
    colours = _WHITE + negative * (_BLUE - _WHITE) + positive * (_RED - _WHITE)
    return _to_uint8(colours)


def frame_rgb(frame: ArrayLike) -> RGBImage:
    """A grey (H, W) or colour (H, W, 3) image with values in [0, 1] as uint8 RGB."""
    image = np.asarray(frame, dtype=np.float64)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3 or image.size == 0:
        raise ValueError(f"frame must be a grey (H, W) or RGB (H, W, 3) image; got shape {image.shape!r}.")
    if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise ValueError("frame must hold finite intensities in [0, 1]; divide 8-bit images by 255.")
    return _to_uint8(image)


def _to_uint8(image: NDArray[np.float64]) -> RGBImage:
    return np.asarray(np.clip(np.round(image * 255.0), 0, 255), dtype=np.uint8)


def top_x_overlay(
    frame: ArrayLike,
    relevance_by_label: Mapping[str, ArrayLike],
    colours: Mapping[str, RGB],
    *,
    x: float = 0.25,
    opacity: float = 1.0,
) -> RGBImage:
    """Each label's Top-X-Relevance Projection painted in its colour over the frame (TP §3.5, Figure 4).

    The pixels of :func:`analysis.projection.top_x_mask` of each label's map are painted with the
    label's colour (blended with ``opacity``); every other pixel shows the frame unchanged. Labels
    are painted in the order of ``relevance_by_label``, so where two projections overlap the later one
    is on top.

    Parameters
    ----------
    frame : array_like, shape (H, W) or (H, W, 3)
        The image, intensities in [0, 1].
    relevance_by_label : mapping of str to array_like (H, W)
        Relevance map of each label to show (e.g. its cluster's mean map).
    colours : mapping of str to (int, int, int)
        Colour of each label, or of its label for cluster names (see :func:`name_colour`).
    x : float, default 0.25
        Portion of the positive relevance mass shown (the paper's Top-25 projection).
    opacity : float, default 1.0
        Weight of the colour over the frame, in (0, 1].

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    References
    ----------
    .. [1] Finzel et al. (2021), §3.5, Top-X-Relevance Projection; Figure 4.
    """
    canvas = frame_rgb(frame).astype(np.float64)
    alpha = float(opacity)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"opacity must lie in (0, 1]; got {opacity!r}.")
    for label, relevance in relevance_by_label.items():
        values = check_map(relevance=relevance)
        check_same_shape(frame=canvas[..., 0], relevance=values)
        mask = top_x_mask(values, x=x)
        colour = np.asarray(name_colour(label, colours), dtype=np.float64)
        canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * colour
    return np.asarray(np.clip(np.round(canvas), 0, 255), dtype=np.uint8)


def upscale(image: ArrayLike, *, factor: int) -> RGBImage:
    """Enlarge a uint8 RGB image by an integer ``factor`` with nearest-neighbour pixels (for display)."""
    rgb = _check_rgb_image(image)
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1; got {factor!r}.")
    return np.repeat(np.repeat(rgb, int(factor), axis=0), int(factor), axis=1)


def _check_rgb_image(image: ArrayLike) -> RGBImage:
    rgb = np.asarray(image)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3); got {rgb.dtype} {rgb.shape!r}.")
    return rgb


# --------------------------------------------------------------------------------------------------
# Strips
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagePanel:
    """What one stage of a temporal prototype shows: a frame and the relevance of its active names.

    Parameters
    ----------
    frame : ndarray, shape (H, W) or (H, W, 3)
        The stage's representative frame, intensities in [0, 1].
    relevance_by_name : mapping of str to ndarray (H, W)
        Relevance of each active label or cluster (``"AU12_A"``) of the stage, e.g. the mean map of
        its cluster (TP §3.4 "prototypes (the average heatmap from a cluster)"); empty for ``NONE``.
    """

    frame: NDArray[np.float32]
    relevance_by_name: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)


def prototype_strip(
    panels: Sequence[StagePanel],
    colours: Mapping[str, RGB],
    *,
    x: float = 0.25,
    heatmap: bool = True,
    gap_px: int = 2,
    scale: int = 1,
    background: RGB = (255, 255, 255),
) -> RGBImage:
    """A temporal prototype as one picture: its stages left to right (TP §3.5, Figures 4-5).

    Each stage is a column: on top, the frame with the Top-X projection of every active name in its
    colour (:func:`top_x_overlay`); below it (with ``heatmap``), the plain BWR heatmap
    (:func:`bwr_heatmap`) of the sum of the stage's maps, white for a ``NONE`` stage. Columns are
    separated by ``gap_px`` pixels of ``background`` (before scaling).

    Parameters
    ----------
    panels : sequence of StagePanel
        One panel per stage, all frames of one size.
    colours : mapping of str to (int, int, int)
        Colour per label (cluster names take shades, :func:`name_colour`).
    x : float, default 0.25
        Portion of the positive relevance mass shown in the overlays.
    heatmap : bool, default True
        Add the row of BWR heatmaps.
    gap_px : int, default 2
        Space between columns and rows.
    scale : int, default 1
        Nearest-neighbour enlargement of the whole strip.
    background : (int, int, int)
        Colour of the gaps.

    Returns
    -------
    ndarray of uint8, shape (rows · H + (rows − 1) · gap, n · W + (n − 1) · gap, 3) × scale

    Raises
    ------
    ValueError
        For no panels or frames of different sizes.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.5, Figure 4 (visual representation of a temporal prototype) and
       Figure 3 (BWR heatmap beside the Top-25 projection).
    """
    if not panels:
        raise ValueError("panels is empty; a strip needs at least one stage.")
    gap = check_count(gap_px=gap_px)
    columns = [
        _panel_column(panel, colours, x=x, heatmap=heatmap, gap=gap, background=background)
        for panel in panels
    ]
    shapes = {column.shape for column in columns}
    if len(shapes) != 1:
        raise ValueError(f"all stage frames must have one size; got column shapes {sorted(shapes)!r}.")
    height = columns[0].shape[0]
    spacer = np.empty((height, gap, 3), dtype=np.uint8)
    spacer[:] = _check_colour(background)
    pieces: list[RGBImage] = []
    for index, column in enumerate(columns):
        if index:
            pieces.append(spacer)
        pieces.append(column)
    return upscale(np.concatenate(pieces, axis=1), factor=scale)


def _panel_column(
    panel: StagePanel, colours: Mapping[str, RGB], *, x: float, heatmap: bool, gap: int, background: RGB
) -> RGBImage:
    overlay = top_x_overlay(panel.frame, panel.relevance_by_name, colours, x=x)
    if not heatmap:
        return overlay
    height, width = overlay.shape[:2]
    total = np.zeros((height, width), dtype=np.float64)
    for relevance in panel.relevance_by_name.values():
        total += check_map(relevance=relevance)
    spacer = np.empty((gap, width, 3), dtype=np.uint8)
    spacer[:] = _check_colour(background)
    return np.concatenate([overlay, spacer, bwr_heatmap(total)], axis=0)


def stage_panels(
    result: PrototypeResult, sequence: int | str, *, source: str = "cluster"
) -> list[StagePanel]:
    """The panels of a sequence's prototype strip: per stage its middle frame and its maps (TP §3.5).

    Parameters
    ----------
    result : PrototypeResult
    sequence : int or str
        Index into ``result.sequences`` or a sequence id.
    source : {"cluster", "stage"}
        ``"cluster"``: each active name shows its cluster's mean map, the prototype of TP §3.4.
        ``"stage"``: the mean of the stage's own frames' maps for that unit (aligned with this face).

    Returns
    -------
    list of StagePanel
        One per stage, keyed by cluster names (``AU12_A``).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4 (prototype = average heatmap of a cluster), §3.5, Figure 4.
    """
    if source not in ("cluster", "stage"):
        raise ValueError(f"source must be 'cluster' or 'stage'; got {source!r}.")
    item = result.sequences[sequence] if isinstance(sequence, int) else result.sequence(sequence)
    panels = []
    for stage in item.stages:
        maps = {}
        for name in sorted(stage.names):
            unit, cluster = item.cluster_of(name)
            if source == "cluster":
                maps[name] = result.mean_maps[(unit, cluster)]
            else:
                frames = range(stage.start_frame, stage.stop_frame)
                maps[name] = np.mean([item.frame_relevance(t, unit) for t in frames], axis=0).astype(
                    np.float64
                )
        middle = (stage.start_frame + stage.stop_frame - 1) // 2
        panels.append(StagePanel(frame=item.frames[middle], relevance_by_name=maps))
    return panels


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def save_png(path: str | Path, rgb: ArrayLike) -> Path:
    """Write a uint8 RGB image as a PNG file (parent folders are created); returns the path."""
    from PIL import Image

    image = _check_rgb_image(rgb)
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"save_png writes .png files; got {str(target)!r}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(target, format="PNG")
    return target
