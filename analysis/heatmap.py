"""Gaze heatmaps: one Gaussian per fixation, summed (RBDM §5.3.2).

Coordinates follow :mod:`analysis.geometry`: points are ``(x, y)`` in image pixels with x the column
and y the row, and heatmap pixel ``[row, col]`` is the value at the point ``(x=col, y=row)``.

How it is computed
------------------
The Gaussian is separable, ``exp(-(dx² + dy²) / 2c²) = exp(-dy² / 2c²) · exp(-dx² / 2c²)``, so the sum
over N fixations is one matrix product ``Gyᵀ · Gx`` of an (N, H) and an (N, W) factor, evaluated by
BLAS in float64 and rounded once to float32: it equals the per-pixel formula to float32 precision.

A truncation ``radius`` (the visual span) makes each Gaussian exactly zero outside a disk, which is not
separable. Small problems are evaluated densely, fixation by fixation. Larger ones split each disk
into its inscribed square, whose pixels are all inside and so go into the matrix product, and four
strips around it (above, below, left, right of the square), evaluated pixel by pixel. The disk test
is ``(x - f_x)² + (y - f_y)² <= radius²`` in float64, exactly as written (in the strips through an
equivalent per-row limit on dx²), so the set of pixels that receive a fixation's Gaussian is exactly
its disk. The split runs about 4 to 5 times slower than the untruncated product on 1200 × 1200 px,
but 15 to 20 times faster than the per-fixation formula (``python -m benchmarks.core``).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, I(x, y) = Σ_n p(x, y, f_n) and
   p(x, y, f_n) = exp(-((x - f_n,x)² + (y - f_n,y)²) / 2c²).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_count, check_map, check_points, check_positive, check_shape

__all__ = ["gaze_heatmap", "relevance_heatmap", "top_n_points"]

#: Radius-truncated heatmaps with at most this many (fixation × pixel) terms are evaluated densely;
#: larger ones use the inscribed-square split (the two cost the same near 0.5 M terms, 2-core machine).
_DENSE_TERMS = 1 << 19

#: Maps with at least this many pixels choose their top pixels among candidates read off every
#: ``_SAMPLE_STRIDE``-th pixel (a full partition of a 224 × 224 map costs about 0.4 ms).
_SAMPLE_FROM = 4096
_SAMPLE_STRIDE = 16

Floats = NDArray[np.float64]


def gaze_heatmap(
    points: ArrayLike,
    shape: tuple[int, ...],
    c: float,
    weights: ArrayLike | None = None,
    radius: float | None = None,
) -> NDArray[np.float32]:
    """Heatmap of fixations: I(x, y) = Σ_n w_n · exp(-((x - f_n,x)² + (y - f_n,y)²) / 2c²).

    Parameters
    ----------
    points : array_like, shape (N, 2)
        Fixations ``(x, y)`` in image pixels (x = column, y = row). Points outside the image are kept:
        the tails of their Gaussians that reach into the image are part of the heatmap.
    shape : tuple of int
        ``(height, width)`` of the heatmap in pixels.
    c : float
        Gaussian constant in image pixels, > 0; RBDM sets c = 0.17 · visual span (FWHM = 2.358 · c).
    weights : array_like, shape (N,), optional
        Finite weights >= 0, one per point, e.g. fixation durations in ms; all 1 when omitted (as in
        the paper).
    radius : float, optional
        Truncation radius in image pixels, > 0 (the visual span). Each Gaussian is exactly 0 where
        the distance to its point is greater than ``radius``: a pixel receives fixation n iff
        ``(x - f_n,x)² + (y - f_n,y)² <= radius²``. Omitted: no truncation.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The heatmap, >= 0; all zero when there are no points. Pixel ``[row, col]`` is I(col, row).

    Raises
    ------
    ValueError
        For a malformed or non-finite ``points``, a bad ``shape``, ``c`` or ``radius`` <= 0, or
        weights that are negative, non-finite or not one per point.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, I(x, y) and p(x, y, f_n);
       visual span as the truncation radius.
    """
    xy = check_points(points=points)
    height, width = check_shape(shape=shape)
    c_px = check_positive(c=c)
    radius_px = None if radius is None else check_positive(radius=radius)
    w = _check_weights(weights, len(xy))
    if len(xy) == 0:
        return np.zeros((height, width), dtype=np.float32)
    dx2, gx = _axis_factors(xy[:, 0], width, c_px)
    dy2, gy = _axis_factors(xy[:, 1], height, c_px)
    gx *= w[:, None]
    if radius_px is None:
        heat = gy.T @ gx
    elif len(xy) * height * width <= _DENSE_TERMS:
        heat = _truncated_dense(dy2, gy, dx2, gx, radius_px * radius_px)
    else:
        heat = _truncated_split(xy, dy2, gy, dx2, gx, radius_px)
    return heat.astype(np.float32)


def top_n_points(relevance: ArrayLike, n: int) -> NDArray[np.float64]:
    """The ``n`` most relevant pixels as points ``(x, y)``, most relevant first.

    Ties are broken deterministically: higher relevance first, then lower row-major index
    (``row * W + col``), so among equal values the pixel nearer the top-left comes first.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map R (e.g. a saliency map, RBDM §5.2).
    n : int
        Number of points, 0 <= n <= H · W.

    Returns
    -------
    ndarray of float64, shape (n, 2)
        ``(x, y) = (col, row)`` of the selected pixels, in decreasing relevance.

    Raises
    ------
    ValueError
        When the map is not 2-D and finite, or ``n`` exceeds the number of pixels (there are not
        that many pixels to choose; lower ``n`` or use a larger map).
    TypeError
        When ``n`` is not an integer.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 ("we only consider the n most
       relevant pixels") and §5.4 (perceptive masking).
    """
    values = check_map(relevance=relevance)
    count = check_count(n=n)
    if count > values.size:
        raise ValueError(
            f"n must not exceed the number of pixels ({values.size} in a {values.shape!r} map); got {n!r}. "
            "Lower n or use a larger map."
        )
    rows, cols = np.divmod(_top_indices(values.ravel(), count), values.shape[1])
    return np.column_stack([cols, rows]).astype(np.float64)


def relevance_heatmap(
    relevance: ArrayLike, n_points: int, c: float, *, radius: float | None = None
) -> NDArray[np.float32]:
    """A model's heatmap: its ``n_points`` most relevant pixels taken as fixations (RBDM §5.3.2).

    "To limit the visual focus of the network, we only consider the n most relevant pixels" and
    apply the same heatmapping as for gaze: :func:`top_n_points` → :func:`gaze_heatmap`.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map.
    n_points : int
        n, the annotators' mean number of fixations per image; 0 gives an all-zero map.
    c : float
        Gaussian constant in image pixels (0.17 · visual span).
    radius : float, optional
        Truncation radius (the visual span) in image pixels.

    Returns
    -------
    ndarray of float32, shape (H, W)

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2.
    """
    values = check_map(relevance=relevance)
    return gaze_heatmap(top_n_points(values, n_points), values.shape, c, radius=radius)


def _top_indices(flat: Floats, k: int) -> NDArray[np.intp]:
    """Flat indices of the k largest values: by value descending, then index ascending."""
    chosen = _top_set(flat, k)
    ranked: NDArray[np.intp] = chosen[np.lexsort((chosen, -flat[chosen]))]
    return ranked


def _top_set(flat: Floats, k: int) -> NDArray[np.intp]:
    """Flat indices of the k largest values, ties by lower index, in no particular order.

    The k-th largest value is looked for among the candidates at least as large as a value read
    off a strided sample, chosen so that there are k of them for any map not made to defeat the
    sample; where there are fewer, among all pixels. Either way the result is exact: whenever k
    candidates are >= a value, the k largest are among them.
    """
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    candidates = _candidates(flat, k)
    values = flat[candidates]
    cut = values.size - k
    threshold = np.partition(values, cut)[cut]
    above = candidates[values > threshold]
    tied = candidates[values == threshold][: k - above.size]
    chosen: NDArray[np.intp] = np.concatenate([above, tied])
    return chosen


def _candidates(flat: Floats, k: int) -> NDArray[np.intp]:
    """Ascending flat indices of pixels that hold the k largest (all pixels for small maps)."""
    if flat.size < _SAMPLE_FROM or 2 * k > flat.size:
        return np.arange(flat.size)
    sample = flat[::_SAMPLE_STRIDE]
    expected = k / _SAMPLE_STRIDE
    rank = min(sample.size, math.ceil(expected + 4.0 * math.sqrt(expected) + 4.0))
    floor_value = np.partition(sample, sample.size - rank)[sample.size - rank]
    candidates = np.flatnonzero(flat >= floor_value)
    return candidates if candidates.size >= k else np.arange(flat.size)


def _check_weights(weights: ArrayLike | None, n_points: int) -> Floats:
    if weights is None:
        return np.ones(n_points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_points,):
        raise ValueError(
            f"weights must hold one value per point, shape ({n_points},); got shape {w.shape!r}. "
            "Pass one weight (e.g. the fixation duration in ms) for each point."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(
            f"weights must be finite and >= 0; got {int(bad.sum())} bad values, e.g. {w[bad][0]!r}. "
            "Use durations in ms or leave weights out."
        )
    return w


def _axis_factors(coords: Floats, size: int, c_px: float) -> tuple[Floats, Floats]:
    """Squared distances (N, size) from each coordinate to the pixel centres 0..size-1, and their
    Gaussian factors exp(-d² / 2c²)."""
    with np.errstate(over="ignore"):
        d2 = np.square(np.arange(size, dtype=np.float64)[None, :] - coords[:, None])
    return d2, np.exp(d2 * (-0.5 / (c_px * c_px)))


def _truncated_dense(dy2: Floats, gy: Floats, dx2: Floats, gx: Floats, r2: float) -> Floats:
    """Σ_n gy[n, row] · gx[n, col] over the fixations whose disk holds the pixel, all at once."""
    inside = dy2[:, :, None] + dx2[:, None, :] <= r2
    result: Floats = np.einsum("nh,nhw->hw", gy, gx[:, None, :] * inside)
    return result


def _truncated_split(
    xy: Floats, dy2: Floats, gy: Floats, dx2: Floats, gx: Floats, radius_px: float
) -> Floats:
    """Truncated heatmap: inscribed squares by one matrix product, the rest of each disk by strips.

    Per fixation the box around its disk is cut into the square (rows ra:rb, cols ca:cb), a strip
    above and one below it (the square's columns widened by 2 px, which hold every disk pixel of
    those rows) and a strip left and one right of it.
    """
    box_rows = _spans(xy[:, 1] - radius_px, xy[:, 1] + radius_px, gy.shape[1])
    box_cols = _spans(xy[:, 0] - radius_px, xy[:, 0] + radius_px, gx.shape[1])
    lo, hi, ok, narrow = _inscribed_squares(xy, radius_px)
    core_rows = _clip_span(lo[:, 1], hi[:, 1] + 1, box_rows, ok)
    core_cols = _clip_span(lo[:, 0], hi[:, 0] + 1, box_cols, ok)
    cap_cols = np.where(narrow[:, None], _clip_span(lo[:, 0] - 2, hi[:, 0] + 3, box_cols, narrow), box_cols)
    heat = _on_span(gy, core_rows).T @ _on_span(gx, core_cols)
    box_shape = (int(np.max(np.diff(box_rows))), int(np.max(np.diff(box_cols))))
    strips = _Strips(dy2, gy, dx2, gx, radius_px * radius_px, box_shape)
    for n in range(len(xy)):
        (r0, r1), (c0, c1) = box_rows[n], box_cols[n]
        (ra, rb), (ca, cb), (k0, k1) = core_rows[n], core_cols[n], cap_cols[n]
        if r0 < r1 and c0 < c1:
            above, below = (r0, ra, k0, k1), (rb, r1, k0, k1)
            strips.add(heat, n, (r0, r1, c0, c1), [above, below, (ra, rb, c0, ca), (ra, rb, cb, c1)])
    return heat


def _spans(low: Floats, high: Floats, size: int) -> NDArray[np.intp]:
    """Pixel ranges [start, stop) covering [low, high] with a 1 px margin, clipped to 0..size."""
    start = np.clip(np.floor(low) - 1, 0, size)
    stop = np.clip(np.ceil(high) + 2, 0, size)
    return np.column_stack([start, np.maximum(start, stop)]).astype(np.intp)


def _inscribed_squares(
    xy: Floats, radius_px: float
) -> tuple[Floats, Floats, NDArray[np.bool_], NDArray[np.bool_]]:
    """First and last pixel (x, y) of a square of pixels inside each disk; whether there is one;
    whether the strips above and below it may be narrowed to its columns widened by 2 px.

    The square has half-side r/√2, so its corners lie on the circle. One whose farthest corner fails
    the exact disk test (rounding) shrinks by a pixel; all pixels of a square pass the test, as the
    squared distance grows with |dx| and |dy|. Above or below an unshrunk square, a pixel more than
    2 px beside it lies farther than sqrt(r² + 2·r/√2 + 1) from the point, and that excess exceeds any
    rounding error of the disk test while r and the coordinates stay below 1e6 px.
    """
    r2 = radius_px * radius_px
    half = radius_px / math.sqrt(2.0)
    lo = np.ceil(xy - half)
    hi = np.floor(xy + half)
    unshrunk = _corners_inside(xy, lo, hi, r2)
    for _ in range(3):
        shrink = ~_corners_inside(xy, lo, hi, r2)
        lo += shrink[:, None]
        hi -= shrink[:, None]
    ok = _corners_inside(xy, lo, hi, r2) & (lo <= hi).all(axis=1)
    narrow = ok & unshrunk & (np.abs(xy) < 1e6).all(axis=1) & (radius_px < 1e6)
    return lo, hi, ok, narrow


def _corners_inside(xy: Floats, lo: Floats, hi: Floats, r2: float) -> NDArray[np.bool_]:
    with np.errstate(over="ignore", invalid="ignore"):
        dx2 = np.maximum(np.square(lo[:, 0] - xy[:, 0]), np.square(hi[:, 0] - xy[:, 0]))
        dy2 = np.maximum(np.square(lo[:, 1] - xy[:, 1]), np.square(hi[:, 1] - xy[:, 1]))
        inside: NDArray[np.bool_] = dx2 + dy2 <= r2
    return inside


def _clip_span(start: Floats, stop: Floats, box: NDArray[np.intp], ok: NDArray[np.bool_]) -> NDArray[np.intp]:
    """[start, stop) clipped into the box range; an empty span at the box start where not ``ok``."""
    with np.errstate(invalid="ignore"):
        first = np.clip(np.where(ok, start, box[:, 0]), box[:, 0], box[:, 1])
        last = np.clip(np.where(ok, stop, box[:, 0]), first, box[:, 1])
    return np.column_stack([first, last]).astype(np.intp)


def _on_span(factors: Floats, spans: NDArray[np.intp]) -> Floats:
    """Factors (N, size) set to 0 outside each row's [start, stop)."""
    index = np.arange(factors.shape[1])
    keep = (index >= spans[:, :1]) & (index < spans[:, 1:])
    return np.where(keep, factors, 0.0)


class _Strips:
    """Adds a fixation's Gaussian to rectangles of the heatmap, on the pixels inside its disk only.

    Scratch buffers sized for the largest box are reused: allocating fresh ones for every strip
    costs page faults that take longer than the arithmetic.
    """

    def __init__(
        self, dy2: Floats, gy: Floats, dx2: Floats, gx: Floats, r2: float, box_shape: tuple[int, int]
    ) -> None:
        self._dy2, self._gy, self._dx2, self._gx, self._r2 = dy2, gy, dx2, gx, r2
        self._values = np.empty(box_shape, dtype=np.float64)
        self._outside = np.empty(box_shape, dtype=np.bool_)

    def add(
        self, heat: Floats, n: int, box: tuple[int, int, int, int], strips: list[tuple[int, int, int, int]]
    ) -> None:
        """Add fixation n on each strip (row0, row1, col0, col1) lying in its box (same layout)."""
        r0, r1, c0, c1 = box
        limits = _row_limits(self._dx2[n, c0:c1], self._dy2[n, r0:r1], self._r2)
        for a, b, c, d in strips:
            if a >= b or c >= d:
                continue
            values = self._values[: b - a, : d - c]
            outside = self._outside[: b - a, : d - c]
            np.multiply.outer(self._gy[n, a:b], self._gx[n, c:d], out=values)
            np.greater(self._dx2[n, None, c:d], limits[a - r0 : b - r0, None], out=outside)
            np.copyto(values, 0.0, where=outside)
            heat[a:b, c:d] += values


def _row_limits(dx2: Floats, dy2: Floats, r2: float) -> Floats:
    """For each row's dy², the largest of the dx² values with dx² + dy² <= r² (in float64), else -1.

    The disk test is monotone in dx², so ``dx2 <= limit`` is exactly the test, one comparison per
    pixel instead of a sum and a comparison.
    """
    candidates = np.sort(dx2)
    count = np.searchsorted(candidates, r2 - dy2, side="right")
    while True:  # moves each count by the few candidates that rounding puts on the wrong side
        grow = count < candidates.size
        grow[grow] = candidates[count[grow]] + dy2[grow] <= r2
        shrink = count > 0
        shrink[shrink] = candidates[count[shrink] - 1] + dy2[shrink] > r2
        if not (grow.any() or shrink.any()):
            break
        count += grow
        count -= shrink
    limits: Floats = np.where(count > 0, candidates[np.maximum(count - 1, 0)], -1.0)
    return limits
