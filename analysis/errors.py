"""Exceptions and warnings raised by :mod:`analysis`."""

from __future__ import annotations

__all__ = ["AnalysisError", "AnalysisWarning", "UnsafeModelError", "UnsupportedLayerError"]


class AnalysisError(Exception):
    """Base class for failures of the analysis pipeline (not for bad arguments)."""


class UnsupportedLayerError(AnalysisError):
    """An explainer cannot handle a layer of the model; the message names the layer."""


class UnsafeModelError(AnalysisError):
    """A model file would run code stored in it while loading (a Lambda layer); it is refused unloaded."""


class AnalysisWarning(UserWarning):
    """A recoverable data-quality problem (an unreadable image skipped, an empty map)."""
