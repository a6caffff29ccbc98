"""Top-X-Relevance Projection: show only the features that carry x of the positive relevance (TP §3.5).

Negative relevance is removed, the positive relevance mass is summed, and the most relevant pixels
are kept until their cumulative relevance first reaches x of that mass; every other pixel becomes 0.
The paper's Top-25 projection is ``x = 0.25``.

References
----------
.. [1] Finzel et al. (2021), Temporal Prototypes, §3.5, "Top-X-Relevance Projection".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_map, check_positive

__all__ = ["top_x_mask", "top_x_relevance"]


def top_x_mask(relevance: ArrayLike, x: float = 0.25) -> NDArray[np.bool_]:
    """The pixels of the Top-X-Relevance Projection: the fewest most relevant pixels reaching x of the mass.

    Pixels with positive relevance are ranked by relevance, higher first and ties by lower row-major
    index; the mask holds the shortest prefix of that ranking whose sum is >= x · (sum of all positive
    relevance), both sums taken in the same floating-point order. With x = 1 it holds every pixel
    whose relevance still adds to that sum.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map; negative values never enter the projection.
    x : float
        Portion of the positive relevance mass, 0 < x <= 1 (0.25 for the paper's Top-25).

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on the kept pixels; all False when no relevance is positive.

    Raises
    ------
    ValueError
        For a non-finite or non-2-D map, or ``x`` outside (0, 1].

    References
    ----------
    .. [1] Finzel et al. (2021), Temporal Prototypes, §3.5: "combining those features with the
       highest relevance score add up to x percent of the entire relevance mass".
    """
    values = check_map(relevance=relevance)
    portion = _check_portion(x)
    flat = values.ravel()
    positive = np.flatnonzero(flat > 0)
    ranked = positive[np.argsort(-flat[positive], kind="stable")]
    mask = np.zeros(flat.size, dtype=np.bool_)
    if ranked.size:
        cumulative = np.cumsum(flat[ranked])
        count = int(np.searchsorted(cumulative, portion * cumulative[-1], side="left")) + 1
        mask[ranked[:count]] = True
    return mask.reshape(values.shape)


def top_x_relevance(relevance: ArrayLike, x: float = 0.25) -> NDArray[np.float64]:
    """Top-X-Relevance Projection: the kept pixels keep their relevance, all others become 0.

    Parameters
    ----------
    relevance : array_like, shape (H, W)
        Finite relevance map; negative relevance is removed.
    x : float
        Portion of the positive relevance mass, 0 < x <= 1 (0.25 for the paper's Top-25).

    Returns
    -------
    ndarray of float64, shape (H, W)
        R on the pixels of :func:`top_x_mask`, 0 elsewhere, so every value is >= 0 and the kept mass
        is >= x of the positive mass. All zero when no relevance is positive.

    Raises
    ------
    ValueError
        For a non-finite or non-2-D map, or ``x`` outside (0, 1].

    References
    ----------
    .. [1] Finzel et al. (2021), Temporal Prototypes, §3.5, Top-X-Relevance Projection.
    """
    values = check_map(relevance=relevance)
    return np.where(top_x_mask(values, x=x), values, 0.0)


def _check_portion(x: float) -> float:
    portion = check_positive(x=x)
    if portion > 1.0:
        raise ValueError(
            f"x must be a portion of the positive relevance mass, 0 < x <= 1; got {x!r}. "
            "For the paper's Top-25 projection pass x=0.25."
        )
    return portion
