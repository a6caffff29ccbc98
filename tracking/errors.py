"""Exceptions and warnings raised by :mod:`tracking`."""

from __future__ import annotations

__all__ = ["DriverError", "StoreError", "TrackingError", "TrackingWarning"]


class TrackingError(Exception):
    """Base class for failures of recording (drivers, storage)."""


class DriverError(TrackingError):
    """A tracker driver could not connect, stream or calibrate; the message says what to do."""


class StoreError(TrackingError):
    """The session store could not read or write; the message names the file and the problem."""


class TrackingWarning(UserWarning):
    """A recoverable data-quality problem while recording (dropped samples, a lost connection)."""
