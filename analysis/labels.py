"""The common 8-label vocabulary of facial expressions (RBDM §4.1, the AffectNet/FERPlus categories)."""

from __future__ import annotations

__all__ = ["LABELS", "label_index"]

#: Label order used everywhere: model outputs, keys 1–8 in the labeling protocol, confusion matrices.
LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


def label_index(label: str) -> int:
    """Position of ``label`` in :data:`LABELS`.

    Raises
    ------
    ValueError
        For a name outside the vocabulary; the message lists the known names.
    """
    try:
        return LABELS.index(label)
    except ValueError as err:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}.") from err
