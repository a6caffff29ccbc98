"""How fast a Trainee learns: the learning-speed measures of one learning curve (RBDM §6).

RBDM's claim is that masking with a Trainer's relevance *accelerates* learning (§1, §6, Figures 10–12).
Best and final scores alone cannot show that; these measures read the speed off a validation macro-F1
curve ``(steps, f1)``:

- :func:`steps_to_reach`: the first step whose score reaches a threshold (e.g. 90 % of the unmasked
  baseline's best), or None — "never" within the budget is a value, not a failure;
- :func:`normalised_aulc`: the area under the curve over the first ``k_steps`` steps divided by the
  length of that window, a mean score in [0, 1] that is high when a Trainee learns early.

Pure numpy: arrays in, numbers out.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6 (learning curves, accelerated training).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DEFAULT_THRESHOLD_SHARE", "check_curve", "normalised_aulc", "steps_to_reach"]

#: Share of the unmasked baseline's best validation macro-F1 that :func:`steps_to_reach` waits for.
DEFAULT_THRESHOLD_SHARE: Final = 0.9


def check_curve(steps: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate a learning curve: one finite score per step, steps strictly increasing and ≥ 0.

    Raises
    ------
    ValueError
        For an empty curve, mismatched lengths, non-finite values or steps that do not increase.
    """
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape or len(x) == 0:
        raise ValueError(
            f"a curve needs one score per step (1-D, non-empty); got steps of shape {x.shape!r} and "
            f"scores of shape {y.shape!r}."
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(
            f"curve steps and scores must be finite; got {int(np.sum(~np.isfinite(y)))} bad scores."
        )
    if x[0] < 0 or np.any(np.diff(x) <= 0):
        raise ValueError(f"curve steps must be ≥ 0 and strictly increasing; got {x.tolist()!r}.")
    return x, y


def steps_to_reach(steps: ArrayLike, scores: ArrayLike, threshold: float) -> int | None:
    """The first step at which the curve reaches ``threshold`` (score ≥ threshold), or None if never.

    Parameters
    ----------
    steps : array_like of int, shape (P,)
        Training steps of the curve points, increasing.
    scores : array_like of float, shape (P,)
        Validation macro-F1 at those steps.
    threshold : float
        The score to reach, e.g. ``0.9 ×`` the unmasked baseline's best validation macro-F1.

    Returns
    -------
    int or None
        The step; None when no point reaches the threshold within the curve ("never").

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6 (accelerated training).
    """
    x, y = check_curve(steps, scores)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite; got {threshold!r}.")
    reached = np.flatnonzero(y >= threshold)
    return int(x[reached[0]]) if len(reached) else None


def normalised_aulc(steps: ArrayLike, scores: ArrayLike, *, k_steps: float) -> float:
    """Area under the learning curve from its first point to step ``k_steps``, divided by that length.

    The curve is linear between points (trapezoidal rule) and interpolated at ``k_steps`` when that falls
    between two points; the result is the curve's mean height over the window, so a curve constant at
    ``s`` gives ``s``.

    Parameters
    ----------
    steps, scores : array_like, shape (P,)
        The curve, as for :func:`steps_to_reach`.
    k_steps : float
        End of the window (K); must lie after the first point and not beyond the last one, so that every
        curve compared over the same K is measured over the same steps.

    Returns
    -------
    float
        Normalised area; for a curve with one point at ``k_steps`` exactly, that point's score.

    Raises
    ------
    ValueError
        When ``k_steps`` lies outside ``[first step, last step]``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6 (accelerated training).
    """
    x, y = check_curve(steps, scores)
    if not (np.isfinite(k_steps) and x[0] <= k_steps <= x[-1]):
        raise ValueError(
            f"k_steps must lie within the curve's steps [{x[0]:g}, {x[-1]:g}]; got {k_steps!r}. "
            "Choose K no larger than the shortest curve."
        )
    if k_steps == x[0]:
        return float(y[0])
    inside = x < k_steps
    xs = np.append(x[inside], k_steps)
    ys = np.append(y[inside], np.interp(k_steps, x, y))
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))
    return area / float(k_steps - x[0])
