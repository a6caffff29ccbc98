"""Argument checks for :mod:`tracking`; the shared helpers live in :mod:`analysis._validation`."""

from __future__ import annotations

from analysis._validation import (
    check_fraction,
    check_map,
    check_points,
    check_positive,
    check_same_shape,
    check_shape,
)

__all__ = [
    "check_fraction",
    "check_map",
    "check_points",
    "check_positive",
    "check_same_shape",
    "check_shape",
]
