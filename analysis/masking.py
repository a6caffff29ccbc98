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

Each accepts one map (H, W) or a stack of maps (B, H, W) and returns masks of the same shape; a
stack is masked in one pass over each chunk of maps, with the checks paid once per chunk, and gives
the same masks as masking the maps one by one.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, "Masking the Input".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_count, check_fraction, check_map, check_positive, check_same_shape
from analysis.heatmap import _top_set, relevance_heatmap

Floats = NDArray[np.float64]

__all__ = ["MASKS", "apply_mask", "mean_mask", "negative_mask", "perceptive_mask"]

Mask = NDArray[np.bool_]

_EPS = float(np.finfo(np.float64).eps)

#: Maps are processed in chunks of about this many pixels, so that the passes over a chunk find it
#: in the cache (one 224 × 224 float64 map is 400 kB).
_CHUNK_PIXELS = 1 << 16

#: Mean masking's chunks: its passes are few and cheap, so fewer, larger chunks cost less Python per map
#: (8 maps of 224 × 224, 227 of 48 × 48).
_MEAN_CHUNK_PIXELS = 1 << 19

#: A Gaussian at least this large (float64) stays > 0 when the heatmap is rounded to float32.
_SAFE_GAUSSIAN = 2.0**-140


def negative_mask(relevance: ArrayLike, fraction: float = 0.10) -> Mask:
    """Negative masking: zero the most relevant ``fraction`` of the pixels.

    m_i = 0 if R_i is part of the top 10 % of all R_i's, 1 if not. Exactly ⌈fraction · N⌉ pixels are
    zeroed (N = H · W, the product evaluated in double precision), chosen as in
    :func:`analysis.heatmap.top_n_points`: higher relevance first, ties by lower row-major index. A
    constant map therefore loses its first ⌈fraction · N⌉ pixels in reading order.

    Parameters
    ----------
    relevance : array_like, shape (H, W) or (B, H, W)
        Finite relevance map R, or a stack of maps masked each on its own.
    fraction : float
        Share of pixels to zero, 0 < fraction < 1 (0.10 in the paper).

    Returns
    -------
    ndarray of bool, shape of ``relevance``
        False on the ⌈fraction · N⌉ most relevant pixels, True elsewhere.

    Raises
    ------
    ValueError
        For a non-finite map, or one neither (H, W) nor (B, H, W), or ``fraction`` outside (0, 1).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, negative masking, m_i.
    """
    maps = _maps(relevance)
    share = check_fraction(fraction=fraction)
    flat = maps.reshape(len(maps), maps.shape[1] * maps.shape[2])
    count = math.ceil(share * flat.shape[1])
    mask = np.ones(flat.shape, dtype=np.bool_)
    for start, stop in _chunks(maps):
        _checked_sums(maps[start:stop])
        for i in range(start, stop):
            mask[i, _top_set(flat[i], count)] = False
    return mask.reshape(np.shape(relevance))


def mean_mask(relevance: ArrayLike) -> Mask:
    """Mean masking: keep the pixels whose relevance is at least the mean relevance.

    m_i = 1 if R_i >= (Σ_i R_i) / N, 0 if not. The test is made as N · R_i >= Σ_i R_i. Pixels far
    from the mean are decided with a fast float sum and its error bound; those within that bound are
    decided against the correctly rounded sum (``math.fsum``). So a pixel whose relevance is >= the
    exact mean is never dropped: a constant (or all-zero) map keeps every pixel, and the maximum is
    always kept. Pixels within a rounding error below the mean may be kept.

    Parameters
    ----------
    relevance : array_like, shape (H, W) or (B, H, W)
        Finite relevance map R, or a stack of maps masked each on its own.

    Returns
    -------
    ndarray of bool, shape of ``relevance``
        True where R_i >= mean(R).

    Raises
    ------
    ValueError
        For a non-finite map, or one neither (H, W) nor (B, H, W).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, mean masking, m_i.
    """
    maps = _maps(relevance)
    mask = np.empty(maps.shape, dtype=np.bool_)
    chunks = _chunks(maps, pixels=_MEAN_CHUNK_PIXELS)
    rows = max((stop - start for start, stop in chunks), default=0)
    sure = np.empty((rows, maps.shape[1] * maps.shape[2]), dtype=np.bool_)
    with np.errstate(over="ignore", invalid="ignore"):  # sums of extreme maps; _mean_mask_one decides those
        for start, stop in chunks:
            _mean_chunk(maps[start:stop], mask[start:stop], sure[: stop - start])
    return mask.reshape(np.shape(relevance))


def _mean_chunk(maps: Floats, out: NDArray[np.bool_], sure: NDArray[np.bool_]) -> None:
    """Mean masks of a chunk of maps (b, H, W) into ``out``, as :func:`_mean_mask_one` decides them.

    Σ R_i comes from one fast sum per map, and its error is bounded through Σ|R_i| <= √(N · Σ R_i²)
    (Cauchy–Schwarz; Σ R_i² is one batched dot product, cheaper than a pass over |R| or the max and min
    reductions). Pixels farther from the mean than four times that bound are decided by one comparison;
    ``sure`` (b, N, preallocated) receives the pixels above the band, and only if some pixel lies inside
    it is any map looked at again: those pixels exactly as in :func:`_mean_mask_one` (N · R_i against
    the correctly rounded sum), as are maps whose squares overflow (max|R_i| beyond about 2^500).
    """
    values = maps.reshape(len(maps), maps.shape[1] * maps.shape[2])
    keep = out.reshape(values.shape)
    count = values.shape[1]
    totals = _checked_sums(maps)
    squares = np.matmul(values[:, None, :], values[:, :, None]).reshape(len(values))
    safe = squares < 2.0**1000  # no rescaling in _mean_mask_one, and N · Σ R_i² stays finite
    # The computed Σ R_i² errs by at most N·ε of itself (any order), plus what products lost to underflow
    # (< 2^-1021 each, even with denormals flushed to zero).
    squares_bound = np.where(safe, squares, 0.0) * (1.0 + 2.0 * count * _EPS) + count * 2.0**-1021
    magnitude = np.sqrt(count * squares_bound) * (1.0 + 4.0 * _EPS)  # >= Σ|R_i|
    error = 2.0 * count * _EPS * magnitude + 4.0 * count * 2.0**-1074
    slack = error + _EPS * (np.abs(totals) + error) + 2.0**-1060
    pad = 4.0 * (slack + _EPS * np.abs(totals)) / count + 2.0**-1070
    centre = totals / count
    np.greater_equal(values, (centre - pad)[:, None], out=keep)
    np.greater(values, (centre + pad)[:, None], out=sure)
    if safe.all() and np.count_nonzero(keep) == np.count_nonzero(sure):
        return
    for i in np.flatnonzero(~safe | (np.count_nonzero(keep, axis=1) != np.count_nonzero(sure, axis=1))):
        if not safe[i]:
            out[i] = _mean_mask_one(maps[i])
            continue
        unsure = keep[i] & ~sure[i]
        keep[i, unsure] = values[i, unsure] * count >= math.fsum(values[i].tolist())


def _mean_mask_one(values: Floats) -> Mask:
    """The mean mask of one finite map, with its own Σ|R_i| and rescaling of huge values."""
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
    relevance : array_like, shape (H, W) or (B, H, W)
        Finite relevance map R, or a stack of maps masked each on its own.
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
    ndarray of bool, shape of ``relevance``
        True inside the union of the disks around the selected pixels.

    Raises
    ------
    ValueError
        For a non-finite map, or one neither (H, W) nor (B, H, W), ``n_points`` above the number of
        pixels, or ``c`` or ``radius`` <= 0.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, perceptive masking, m_i, and
       §5.3.2 (heatmap, n most relevant pixels, visual span).
    """
    maps = _maps(relevance)
    count = check_count(n_points=n_points)
    c_px, radius_px = check_positive(c=c), check_positive(radius=radius)
    _, height, width = maps.shape
    if count > height * width:
        raise ValueError(
            f"n_points must not exceed the number of pixels ({height * width} in a {(height, width)!r} "
            f"map); got {n_points!r}. Lower n_points or use a larger map."
        )
    widths = _disk_half_widths(radius_px, c_px, height, width)
    flat = maps.reshape(len(maps), maps.shape[1] * maps.shape[2])
    mask = np.empty(maps.shape, dtype=np.bool_)
    chunks = _chunks(maps)
    longest = max((stop - start for start, stop in chunks), default=0)
    edges = np.empty(longest * height * (width + 1), dtype=np.int64)
    for start, stop in chunks:
        _checked_sums(maps[start:stop])
        if widths is None:
            for i in range(start, stop):
                mask[i] = relevance_heatmap(maps[i], count, c_px, radius=radius_px) > 0
        else:
            points = [_top_set(flat[i], count) for i in range(start, stop)]
            _disk_union(points, widths, edges, mask[start:stop])
    return mask.reshape(np.shape(relevance))


def _maps(relevance: ArrayLike) -> Floats:
    """One map (H, W) or a stack (B, H, W) as a float64 (B, H, W) array (finiteness checked later)."""
    arr = np.asarray(relevance)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"relevance must be a numeric array; got dtype {arr.dtype!r}.")
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"relevance must be a 2-D (H, W) map or a (B, H, W) stack of maps; got shape {arr.shape!r}. "
            "Sum colour relevance over its channel axis first."
        )
    if arr.shape[-1] * arr.shape[-2] == 0:
        raise ValueError(f"relevance must not be empty; got shape {arr.shape!r}.")
    maps = arr.astype(np.float64, copy=False)
    return maps if maps.ndim == 3 else maps[None]


def _chunks(maps: Floats, *, pixels: int = _CHUNK_PIXELS) -> list[tuple[int, int]]:
    """[start, stop) ranges of maps holding about ``pixels`` pixels each (at least one map)."""
    step = max(1, pixels // (maps.shape[1] * maps.shape[2]))
    return [(start, min(start + step, len(maps))) for start in range(0, len(maps), step)]


def _checked_sums(maps: Floats) -> Floats:
    """Σ R_i of each map (b, H, W); raises as :func:`check_map` does for a map with NaN or infinity.

    The sums are one matrix-vector product with a ones vector (BLAS; any summation order errs by at
    most (N - 1)·ε·Σ|R_i|, the bound the masks allow for). A finite sum proves every term finite, so
    only a map whose sum is not finite is looked at.
    """
    pixels = maps.shape[1] * maps.shape[2]
    totals: Floats = np.matmul(maps.reshape(len(maps), pixels), _ones(pixels))
    if not np.isfinite(totals).all():
        for i in np.flatnonzero(~np.isfinite(totals)):
            check_map(relevance=maps[i])
    return totals


@functools.lru_cache(maxsize=8)
def _ones(length: int) -> Floats:
    """A read-only float64 vector of ``length`` ones, kept between calls (no allocation per chunk)."""
    ones = np.ones(length)
    ones.flags.writeable = False
    return ones


def _disk_half_widths(radius_px: float, c_px: float, height: int, width: int) -> NDArray[np.intp] | None:
    """Per row offset dy = 0, 1, ...: the largest dx with dx² + dy² <= radius² (float64, the disk
    test of :func:`analysis.heatmap.gaze_heatmap`), for the offsets that reach a pixel of the image.

    ``None`` when a Gaussian inside the disk might round to 0 in the float32 heatmap (radius / c above
    about 13.9) or the radius is too large for exact integer squares: the heatmap decides then.
    """
    r2 = radius_px * radius_px
    if r2 >= 2.0**52 or math.exp(r2 * (-0.5 / (c_px * c_px))) < _SAFE_GAUSSIAN:
        return None
    dy2 = np.square(np.arange(min(height - 1, math.isqrt(int(r2)) + 1) + 1, dtype=np.float64))
    dy2 = dy2[dy2 <= r2]
    dx = np.minimum(np.floor(np.sqrt(r2 - dy2)), float(width))
    dx += (np.square(dx + 1.0) + dy2 <= r2) & (dx < width)
    dx -= np.square(dx) + dy2 > r2
    widths: NDArray[np.intp] = dx.astype(np.intp)
    return widths


def _disk_union(
    points: list[NDArray[np.intp]], widths: NDArray[np.intp], edges: NDArray[np.int64], out: NDArray[np.bool_]
) -> None:
    """Mark in ``out`` (b, H, W) the pixels within the disks around each map's points (flat indices).

    Each disk is a run of pixels per row: +1 where a run starts, -1 past its end, and a running sum
    along the rows counts the runs covering each pixel, for all maps of the chunk at once. ``edges``
    is scratch space of at least b · H · (W + 1) integers, reused from chunk to chunk.
    """
    count, height, width = out.shape
    reach = widths.size - 1
    offsets = np.arange(-reach, reach + 1)
    half = widths[np.abs(offsets)]
    which = np.repeat(np.arange(count), [len(p) for p in points])
    rows, cols = np.divmod(np.concatenate(points), width)
    y = rows[:, None] + offsets
    inside = (y >= 0) & (y < height)
    starts = np.maximum(cols[:, None] - half, 0)
    stops = np.minimum(cols[:, None] + half + 1, width)
    base = (which[:, None] * height + y) * (width + 1)
    runs = edges[: count * height * (width + 1)].reshape(count, height, width + 1)
    runs.fill(0)
    np.add.at(edges, (base + starts)[inside], 1)
    np.add.at(edges, (base + stops)[inside], -1)
    np.cumsum(runs, axis=2, out=runs)
    np.greater(runs[:, :, :width], 0, out=out)


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
