"""Argument checks shared by the public functions of :mod:`analysis` and :mod:`tracking`.

Each helper takes its argument as a keyword so that the message can name it, e.g.
``check_positive(radius=radius)``. Messages say what was expected, what arrived and what to do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "check_count",
    "check_fraction",
    "check_map",
    "check_points",
    "check_positive",
    "check_same_shape",
    "check_shape",
]


def _single(kwargs: dict[str, Any]) -> tuple[str, Any]:
    if len(kwargs) != 1:
        raise TypeError(f"pass exactly one keyword argument, got {sorted(kwargs)!r}")
    return next(iter(kwargs.items()))


def check_map(**kwargs: Any) -> NDArray[np.float64]:
    """Return a 2-D finite float64 view/copy of a map, or raise ``ValueError``.

    Raises
    ------
    ValueError
        When the map is not 2-D, is empty, or holds NaN or infinite values.
    """
    name, value = _single(kwargs)
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype!r}.")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (H, W) map; got shape {arr.shape!r}. "
            "Sum colour relevance over its channel axis first."
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape!r}.")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ValueError(
            f"{name} must be finite; got {n_nan} NaN and {n_inf} infinite values. "
            "Replace them (e.g. np.nan_to_num) before using the map."
        )
    return arr


def check_same_shape(**kwargs: Any) -> None:
    """Raise ``ValueError`` unless all given arrays share one shape."""
    shapes = {name: np.shape(value) for name, value in kwargs.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape!r}" for name, shape in shapes.items())
        raise ValueError(f"maps must have the same shape; got {listed}. Resize one to match the other.")


def check_positive(**kwargs: Any) -> float:
    """Return the value as float if it is finite and > 0, else raise ``ValueError``."""
    name, value = _single(kwargs)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    if not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}.")
    return float(value)


def check_fraction(**kwargs: Any) -> float:
    """Return the value as float if 0 < value < 1, else raise ``ValueError``."""
    name, value = _single(kwargs)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {value!r}.")
    return float(value)


def check_shape(**kwargs: Any) -> tuple[int, int]:
    """Return an (H, W) shape of positive ints, else raise ``ValueError``."""
    name, value = _single(kwargs)
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a (height, width) pair of integers; got {value!r}.") from err
    if height <= 0 or width <= 0:
        raise ValueError(f"{name} must have positive height and width; got {value!r}.")
    return height, width


def check_points(**kwargs: Any) -> NDArray[np.float64]:
    """Return points as a finite float64 array of shape (N, 2) holding (x, y), else raise.

    An empty sequence gives an array of shape (0, 2).
    """
    name, value = _single(kwargs)
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) holding (x, y) columns; got shape {arr.shape!r}.")
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name} must be finite; got {int((~np.isfinite(arr)).sum())} NaN or infinite values."
        )
    return arr


def check_count(**kwargs: Any) -> int:
    """Return a count (an integer >= 0, not a bool) as int, else raise ``TypeError``/``ValueError``."""
    name, value = _single(kwargs)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer count; got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}.")
    return int(value)
