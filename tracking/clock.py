"""The one monotonic clock that gaze samples and stimulus phase onsets share, in milliseconds."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> float:
    """Milliseconds on the process-wide monotonic clock (``time.monotonic_ns``)."""
    return time.monotonic_ns() / 1e6
