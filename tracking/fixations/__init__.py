"""Fixation detection, one algorithm per file, each usable online (sample by sample) and offline.

:data:`DETECTORS` maps a name to the online detector's class; each is called as
``DETECTORS[name](geometry, **options)`` and satisfies :class:`FixationDetector`.
"""

from __future__ import annotations

from collections.abc import Callable

from tracking.fixations._common import FixationDetector
from tracking.fixations.adaptive import AdaptiveVelocityDetector, adaptive_velocity
from tracking.fixations.idt import IDTDetector, idt
from tracking.fixations.ivt import IVTDetector, ivt
from tracking.fixations.savitzky_golay import FilteredSample, SavitzkyGolayFilter

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "AdaptiveVelocityDetector",
    "FilteredSample",
    "FixationDetector",
    "IDTDetector",
    "IVTDetector",
    "SavitzkyGolayFilter",
    "adaptive_velocity",
    "idt",
    "ivt",
]

#: Online fixation detectors by name: ``DETECTORS["idt"](geometry, dispersion_deg=1.0)``.
DETECTORS: dict[str, Callable[..., FixationDetector]] = {
    "idt": IDTDetector,
    "ivt": IVTDetector,
    "adaptive": AdaptiveVelocityDetector,
}

#: The default detector: the adaptive velocity threshold works at 60-1,200 Hz and 0.02-0.3°
#: of noise without tuning (``python -m benchmarks.fixations``), where I-DT and I-VT with their
#: fixed thresholds break up or miss fixations of fast, noisy trackers. (The GUI's session
#: settings still default to "idt" until they read this constant.)
DEFAULT_DETECTOR = "adaptive"
