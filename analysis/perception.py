"""Comparing human gaze with model saliency (RBDM §5.3, "Analyzing Human Perception").

Fixations and relevance maps become heatmaps with the same Gaussian visual-span kernel
(RBDM §5.3.2); their overlap and correlation are then measured pair by pair (RBDM Table 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_positive, check_shape
from analysis.geometry import VISUAL_SPAN_DEG, ScreenGeometry, StimulusRect
from analysis.heatmap import gaze_heatmap, relevance_heatmap
from analysis.metrics import ComparisonTable, compare

__all__ = [
    "VisualSpan",
    "compare_stimulus",
    "fixation_heatmap",
    "mean_fixation_count",
    "stimulus_heatmaps",
    "visual_span_in_image",
]


@dataclass(frozen=True, slots=True)
class VisualSpan:
    """The heatmap kernel in image pixels: Gaussian ``c`` and truncation radius (the visual span).

    Parameters
    ----------
    c : float
        Gaussian constant in image pixels, 0.17 × visual span (RBDM §5.3.2).
    radius : float
        Visual span in image pixels: each fixation's Gaussian is zero beyond it.
    """

    c: float
    radius: float

    def __post_init__(self) -> None:
        check_positive(c=self.c)
        check_positive(radius=self.radius)


def visual_span_in_image(
    geometry: ScreenGeometry,
    stimulus_rect: StimulusRect,
    image_shape: tuple[int, int],
    *,
    angle_deg: float = VISUAL_SPAN_DEG,
) -> VisualSpan:
    """The visual-span kernel of a screen, scaled into the pixels of an image drawn in ``stimulus_rect``.

    A 48 px image drawn 1200 px wide on the RBDM screen gets ``c`` ≈ 1.78 px and a span of ≈ 10.5 px.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2: 5° visual angle,
       c = 0.17 · visualspan.
    """
    _, width = check_shape(image_shape=image_shape)
    scale = width / stimulus_rect.width_px
    return VisualSpan(
        c=geometry.gaussian_c(angle_deg) * scale, radius=geometry.visual_span_px(angle_deg) * scale
    )


def fixation_heatmap(
    fixations: ArrayLike,
    image_shape: tuple[int, int],
    span: VisualSpan,
    *,
    durations_ms: ArrayLike | None = None,
) -> NDArray[np.float32]:
    """A viewer's heatmap: one visual-span Gaussian per fixation, summed (RBDM §5.3.2, I(x, y)).

    Parameters
    ----------
    fixations : array_like, shape (N, 2)
        Fixation centres ``(x, y)`` in image pixels (see :func:`analysis.geometry.screen_to_image`).
    image_shape : tuple of int
        ``(height, width)`` of the heatmap.
    span : VisualSpan
        Kernel in image pixels.
    durations_ms : array_like, shape (N,), optional
        Weight each fixation by its duration; the paper weights all fixations equally.

    Returns
    -------
    ndarray of float32, shape (H, W)
        All zero when there are no fixations.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, I(x, y) = Σ_n p(x, y, f_n).
    """
    return gaze_heatmap(fixations, image_shape, span.c, weights=durations_ms, radius=span.radius)


def mean_fixation_count(counts: ArrayLike) -> int:
    """``n`` of RBDM §5.3.2 and §5.4: the average number of fixations per image, rounded, at least 1.

    Parameters
    ----------
    counts : array_like of int
        Fixations per (annotator, image) recording.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 ("n is equal to the average
       number of fixated points by both of our participants").
    """
    values = np.asarray(counts, dtype=np.float64)
    if values.size == 0:
        raise ValueError("counts must hold at least one fixation count; got none. Record a session first.")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"counts must be finite and >= 0; got {values.tolist()!r}.")
    return max(1, round(float(values.mean())))


def stimulus_heatmaps(
    fixations: Mapping[str, ArrayLike],
    relevance: Mapping[str, ArrayLike],
    image_shape: tuple[int, int],
    span: VisualSpan,
    *,
    n_points: int,
) -> dict[str, NDArray[np.float32]]:
    """The heatmaps of one stimulus: one per viewer's fixations, then one per model's relevance.

    Parameters
    ----------
    fixations : mapping of str to array_like, shape (N, 2)
        Viewer id → fixation centres ``(x, y)`` in image pixels.
    relevance : mapping of str to array_like, shape (H, W)
        Model id → relevance map of this stimulus (channels already summed).
    image_shape : tuple of int
        ``(height, width)`` of the stimulus image.
    span : VisualSpan
        Kernel in image pixels.
    n_points : int
        Most relevant pixels a model's heatmap is built from (:func:`mean_fixation_count`).

    Returns
    -------
    dict of str to ndarray of float32
        Viewers first, in their given order, then models: the row order of RBDM Table 1.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Figure 7.
    """
    shape = check_shape(image_shape=image_shape)
    clash = set(fixations) & set(relevance)
    if clash:
        raise ValueError(f"viewer and model ids must differ; both use {sorted(clash)!r}.")
    maps = {viewer: fixation_heatmap(points, shape, span) for viewer, points in fixations.items()}
    for model, relevance_map in relevance.items():
        if np.shape(relevance_map) != shape:
            raise ValueError(
                f"relevance of {model!r} has shape {np.shape(relevance_map)!r}, the image {shape!r}. "
                "Compute relevance on the image as shown, or resize the map."
            )
        maps[model] = relevance_heatmap(relevance_map, n_points, span.c, radius=span.radius)
    return maps


def compare_stimulus(
    fixations: Mapping[str, ArrayLike],
    relevance: Mapping[str, ArrayLike],
    image_shape: tuple[int, int],
    span: VisualSpan,
    *,
    n_points: int,
) -> ComparisonTable:
    """Every pair of viewers and models on one stimulus, with all metrics (RBDM Table 1, one image).

    The heatmaps come from :func:`stimulus_heatmaps`; the fixation-based metrics (NSS, AUC-Judd)
    score the later map of a pair against the earlier viewer's actual fixation points. Average the
    tables of a study's stimuli with :func:`analysis.metrics.mean_table` for RBDM Table 1.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """
    maps = stimulus_heatmaps(fixations, relevance, image_shape, span, n_points=n_points)
    return compare(maps, fixations=fixations)
