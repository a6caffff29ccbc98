"""Fixation detection, one algorithm per file, each usable online (sample by sample) and offline.

:data:`DETECTORS` maps a name to the online detector's class; each is called as
``DETECTORS[name](geometry, **options)`` and satisfies :class:`FixationDetector`.
"""

from __future__ import annotations

from collections.abc import Callable

from tracking.fixations._common import FixationDetector
from tracking.fixations.idt import IDTDetector, idt
from tracking.fixations.ivt import IVTDetector, ivt

__all__ = ["DETECTORS", "FixationDetector", "IDTDetector", "IVTDetector", "idt", "ivt"]

#: Online fixation detectors by name: ``DETECTORS["idt"](geometry, dispersion_deg=1.0)``.
DETECTORS: dict[str, Callable[..., FixationDetector]] = {
    "idt": IDTDetector,
    "ivt": IVTDetector,
}
