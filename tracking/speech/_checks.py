"""Argument checks shared by the recognisers (messages name the argument and show the bad value)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from analysis.labels import LABELS

__all__ = ["check_non_negative", "check_synonyms", "check_unit_interval"]


def check_unit_interval(**kwargs: object) -> float:
    """Return the value as float if it is a number in [0, 1], else raise ``ValueError``."""
    ((name, value),) = kwargs.items()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def check_non_negative(**kwargs: object) -> float:
    """Return the value as float if it is a finite number >= 0, else raise ``ValueError``."""
    ((name, value),) = kwargs.items()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_synonyms(synonyms: Mapping[str, str]) -> Mapping[str, str]:
    """Return a read-only copy of a spoken word → label mapping, or raise ``ValueError``.

    Words must be single lower-case words; labels must be in :data:`analysis.labels.LABELS`.
    """
    if not isinstance(synonyms, Mapping) or not synonyms:
        raise ValueError(f"synonyms must be a non-empty mapping of spoken word to label; got {synonyms!r}.")
    for word, label in synonyms.items():
        if not isinstance(word, str) or not word or word != word.lower() or len(word.split()) != 1:
            raise ValueError(f"spoken words must be single lower-case words; got {word!r}.")
        if label not in LABELS:
            raise ValueError(f"synonyms[{word!r}] must be one of {', '.join(LABELS)}; got {label!r}.")
    return MappingProxyType(dict(synonyms))
