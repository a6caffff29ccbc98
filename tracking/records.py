"""Records passed between drivers, fixation detectors, the store and the GUI.

Frozen dataclasses with unit-named fields that validate themselves. Hot paths (1,200 Hz sample
streams, whole sessions) use numpy arrays instead of lists of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Fixation", "GazeSample"]


@dataclass(frozen=True, slots=True)
class GazeSample:
    """One gaze sample in screen pixels on the shared monotonic clock.

    Parameters
    ----------
    t_ms : float
        Time stamp on :func:`tracking.clock.now_ms`'s clock.
    x_screen_px, y_screen_px : float
        Gaze position; NaN is allowed only for an invalid sample (blink, lost track).
    valid : bool
        False during blinks, tracking loss or when the device flags the sample.
    pupil_size : float or None
        Pupil size in the device's own unit (EyeTribe: arbitrary units), when reported.
    """

    t_ms: float
    x_screen_px: float
    y_screen_px: float
    valid: bool = True
    pupil_size: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_ms):
            raise ValueError(f"t_ms must be finite; got {self.t_ms!r}.")
        if self.valid and not (math.isfinite(self.x_screen_px) and math.isfinite(self.y_screen_px)):
            raise ValueError(
                f"a valid sample needs a finite position; got ({self.x_screen_px!r}, {self.y_screen_px!r}). "
                "Mark it valid=False."
            )


@dataclass(frozen=True, slots=True)
class Fixation:
    """A fixation: where the gaze rested and for how long.

    Parameters
    ----------
    onset_ms : float
        Time stamp of its first sample on the shared clock.
    duration_ms : float
        Last sample's time minus the first's (≥ 0).
    x_screen_px, y_screen_px : float
        Mean position of its samples.
    n_samples : int
        Number of samples it was built from.
    """

    onset_ms: float
    duration_ms: float
    x_screen_px: float
    y_screen_px: float
    n_samples: int

    def __post_init__(self) -> None:
        values = (self.onset_ms, self.duration_ms, self.x_screen_px, self.y_screen_px)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"fixation fields must be finite; got {values!r}.")
        if self.duration_ms < 0:
            raise ValueError(f"duration_ms must be >= 0; got {self.duration_ms!r}.")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1; got {self.n_samples!r}.")

    @property
    def offset_ms(self) -> float:
        """Time stamp of its last sample."""
        return self.onset_ms + self.duration_ms
