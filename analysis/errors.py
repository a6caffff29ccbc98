"""Exceptions and warnings raised by :mod:`analysis`."""

from __future__ import annotations

__all__ = ["AnalysisError", "AnalysisWarning", "UnsupportedLayerError"]


class AnalysisError(Exception):
    """Base class for failures of the analysis pipeline (not for bad arguments)."""


class UnsupportedLayerError(AnalysisError):
    """An explainer cannot handle a layer of the model; the message names the layer."""


class AnalysisWarning(UserWarning):
    """A recoverable data-quality problem (an unreadable image skipped, an empty map)."""
