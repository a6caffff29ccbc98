"""Masking the input with the Trainer's relevance (RBDM §5.4).

Each masking algorithm turns a relevance map R (H, W) into a binary mask M of the same shape; the
masked image is the component-wise product I * M (:func:`apply_mask`). ``True`` keeps a pixel
(m_i = 1), ``False`` zeroes it (m_i = 0).

All masks are called the same way, ``MASKS[name](relevance, **options)``, with the options as keyword
arguments:

- ``"negative"``: ``fraction`` (default 0.10);
- ``"mean"``: none;
- ``"perceptive"``: ``n_points``, ``c`` and ``radius`` (required; ``c`` and ``radius`` in image
  pixels, e.g. from :func:`analysis.perception.visual_span_in_image`).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, "Masking the Input".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_count, check_fraction, check_map, check_positive, check_same_shape
from analysis.heatmap import relevance_heatmap, top_n_points

__all__ = ["MASKS", "apply_mask", "mean_mask", "negative_mask", "perceptive_mask"]

Mask = NDArray[np.bool_]

_EPS = float(np.finfo(np.float64).eps)


def negative_mask(relevance: ArrayLike, fraction: float = 0.10) -> Mask:
    """Negative masking: zero the most relevant ``fraction`` of the pixels.

    m_i = 0 if R_i is part of the top 10 % of all R_i's, 1 if not. Exactly ⌈fraction · N⌉ pixels are
    zeroed (N = H · W, the product evaluated in double precision), chosen as in
    :func:`analysis.heatmap.top_n_points`: higher relevance first, ties by lower row-major index. A
    constant map therefore loses its first ⌈fraction · N⌉ pixels in reading order.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map R.
    fraction : float
        Share of pixels to zero, 0 < fraction < 1 (0.10 in the paper).

    Returns
    -------
    ndarray of bool, shape (H, W)
        False on the ⌈fraction · N⌉ most relevant pixels, True elsewhere.

    Raises
    ------
    ValueError
        For a non-finite or non-2-D map, or ``fraction`` outside (0, 1).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, negative masking, m_i.
    """
    values = check_map(relevance=relevance)
    share = check_fraction(fraction=fraction)
    count = math.ceil(share * values.size)
    points = top_n_points(values, count).astype(np.intp)
    mask = np.ones(values.shape, dtype=np.bool_)
    mask[points[:, 1], points[:, 0]] = False
    return mask


def mean_mask(relevance: ArrayLike) -> Mask:
    """Mean masking: keep the pixels whose relevance is at least the mean relevance.

    m_i = 1 if R_i >= (Σ_i R_i) / N, 0 if not. The test is made as N · R_i >= Σ_i R_i. Pixels far
    from the mean are decided with a fast float sum and its error bound; those within that bound are
    decided against the correctly rounded sum (``math.fsum``). So a pixel whose relevance is >= the
    exact mean is never dropped: a constant (or all-zero) map keeps every pixel, and the maximum is
    always kept. Pixels within a rounding error below the mean may be kept.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map R.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True where R_i >= mean(R).

    Raises
    ------
    ValueError
        For a non-finite or non-2-D map.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, mean masking, m_i.
    """
    values = check_map(relevance=relevance)
    magnitudes = np.abs(values)
    if float(magnitudes.max()) > 2.0**500:  # keep N · R_i and the sums finite; exact power-of-two scaling
        scale = -math.frexp(float(magnitudes.max()))[1]
        values, magnitudes = np.ldexp(values, scale), np.ldexp(magnitudes, scale)
    count = values.size
    scaled = values * count
    total = float(np.sum(values))
    # Any summation order errs by at most (N - 1)·ε·Σ|R_i| (twice that covers the rounded Σ|R_i|),
    # and N · R_i by ε/2 of itself; 4·N·2^-1074 covers subnormal rounding.
    bound = 2.0 * count * _EPS * float(np.sum(magnitudes)) + 4.0 * count * 2.0**-1074
    keep = scaled >= total
    unsure = np.abs(scaled - total) <= bound + _EPS * np.abs(scaled)
    if unsure.any():
        keep[unsure] = scaled[unsure] >= math.fsum(values.ravel().tolist())
    return keep


def perceptive_mask(relevance: ArrayLike, n_points: int, c: float, radius: float) -> Mask:
    """Perceptive masking: keep what a viewer fixating the n most relevant pixels would perceive.

    The ``n_points`` most relevant pixels (:func:`analysis.heatmap.top_n_points`) stand in for human
    fixations; their heatmap (:func:`analysis.heatmap.gaze_heatmap`, truncated at ``radius``) gives
    I, and m_i = 1 if I_i > 0, 0 if not. Ties among equally relevant pixels are resolved as in
    ``top_n_points`` (lower row-major index first), so a constant map is masked around its first
    ``n_points`` pixels in reading order. With ``n_points = 0`` every pixel is zeroed.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map R.
    n_points : int
        n, the average number of fixations of the annotators (RBDM §5.3.2); 0 <= n_points <= H · W.
    c : float
        Gaussian constant in image pixels, > 0 (0.17 · visual span).
    radius : float
        Visual span in image pixels, > 0: the heatmap is exactly 0 farther than this from every point.
        Keep ``radius / c`` below about 13 (the paper's ratio is 1 / 0.17 ≈ 5.9): further out the
        Gaussian underflows float32 and those pixels count as unperceived.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True inside the union of the disks around the selected pixels.

    Raises
    ------
    ValueError
        For a non-finite or non-2-D map, ``n_points`` above the number of pixels, or ``c`` or
        ``radius`` <= 0.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, perceptive masking, m_i, and
       §5.3.2 (heatmap, n most relevant pixels, visual span).
    """
    values = check_map(relevance=relevance)
    check_count(n_points=n_points)
    check_positive(c=c)
    check_positive(radius=radius)
    heat = relevance_heatmap(values, n_points, c, radius=radius)
    return np.asarray(heat > 0, dtype=np.bool_)


def apply_mask(image: ArrayLike, mask: ArrayLike) -> NDArray[np.generic]:
    """The masked image I * M: pixels where the mask is False become 0.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Grey or colour image of any numeric dtype; the mask applies to every channel.
    mask : array_like of bool, shape (H, W)
        Binary mask M; numeric masks must hold only 0 and 1.

    Returns
    -------
    ndarray, same shape and dtype as ``image``
        A new array; the inputs are not changed. A masked pixel is exactly 0 even where the image
        holds NaN or infinity.

    Raises
    ------
    ValueError
        When the image is not 2-D or 3-D, the mask is not 2-D with values 0/1, or their (H, W) differ.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, "the component wise product I * M".
    """
    pixels = np.asarray(image)
    if pixels.ndim not in (2, 3) or not (np.issubdtype(pixels.dtype, np.number) or pixels.dtype == bool):
        raise ValueError(
            f"image must be a numeric (H, W) or (H, W, C) array; got shape {pixels.shape!r}, "
            f"dtype {pixels.dtype!r}."
        )
    keep = _check_mask(mask)
    check_same_shape(image=pixels[..., 0] if pixels.ndim == 3 else pixels, mask=keep)
    if pixels.ndim == 3:
        keep = keep[:, :, None]
    return np.where(keep, pixels, np.zeros((), dtype=pixels.dtype))


def _check_mask(mask: ArrayLike) -> Mask:
    keep = np.asarray(mask)
    if keep.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array; got shape {keep.shape!r}.")
    if keep.dtype == bool:
        return keep
    if not np.issubdtype(keep.dtype, np.number) or not np.isin(keep, (0, 1)).all():
        raise ValueError(
            f"mask must be boolean or hold only 0 and 1; got dtype {keep.dtype!r}. "
            "Build it with one of analysis.masking.MASKS."
        )
    return keep.astype(bool)


#: The masking algorithms of RBDM §5.4 by name; call as ``MASKS[name](relevance, **options)``.
MASKS: Final[dict[str, Callable[..., Mask]]] = {
    "negative": negative_mask,
    "mean": mean_mask,
    "perceptive": perceptive_mask,
}
