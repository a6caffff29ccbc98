"""Recording: tracker drivers, fixation detection and session storage. No Qt here.

Import the modules themselves; this package re-exports nothing:

- ``drivers`` — one tracker per file behind the ``GazeDriver`` Protocol (``DRIVERS``)
- ``fixations`` — I-DT and I-VT, online and offline (``DETECTORS``)
- ``store`` — the crash-safe SQLite session store, CSV export and import
- ``records`` — gaze samples, fixations, trials, sessions, validation results
- ``clock`` — the one monotonic clock (ms) that samples and phase onsets share
"""

from __future__ import annotations

__all__ = ["clock", "drivers", "errors", "fixations", "records", "store"]
