"""Tracker validation on a 3 × 3 grid of targets: accuracy and precision in degrees of visual angle.

Before the first trial of a labeling session (RBDM §5.3.1) the annotator may look at nine targets
in turn. For each target the gaze samples recorded after a settle time give

- *accuracy*: the mean angular offset of the samples from the target, and
- *precision*: the RMS of the angular distances between successive samples,

both in degrees, with positions mapped to degrees by
:meth:`analysis.geometry.ScreenGeometry.screen_px_to_deg`. :class:`ValidationProcedure` is the
Qt-free state machine a view drives frame by frame to show the targets and collect the samples.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (Eye Tribe ET1000, 27" screen
   at 70 cm), §5.3.2 (visual angle).
.. [2] Holmqvist, K. et al. (2011), Eye Tracking: A comprehensive guide to methods and measures,
   accuracy as mean offset, precision as RMS sample-to-sample deviation.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.geometry import ScreenGeometry
from tracking._validation import check_points, check_positive
from tracking.clock import now_ms
from tracking.protocol import Listeners
from tracking.records import GazeSample, ValidationPoint, ValidationResult

__all__ = [
    "GRID_FRACTIONS",
    "TargetOnset",
    "ValidationProcedure",
    "validation_point",
    "validation_result",
    "validation_targets",
]

#: Target positions as fractions of the screen's width and height (10 %, 50 %, 90 %).
GRID_FRACTIONS: tuple[float, ...] = (0.1, 0.5, 0.9)


def validation_targets(
    geometry: ScreenGeometry, *, fractions: Sequence[float] = GRID_FRACTIONS
) -> tuple[tuple[float, float], ...]:
    """The validation targets in screen pixels: every (x, y) of ``fractions`` of width and height.

    Row by row from the top left; 9 targets for the default 10/50/90 % grid.

    Raises
    ------
    ValueError
        For no fractions or a fraction outside [0, 1].
    """
    if not isinstance(geometry, ScreenGeometry):
        raise TypeError(f"geometry must be a ScreenGeometry; got {type(geometry).__name__}.")
    chosen = [float(f) for f in fractions]
    if not chosen or not all(0.0 <= f <= 1.0 for f in chosen):
        raise ValueError(f"fractions must be a non-empty list of numbers in [0, 1]; got {fractions!r}.")
    return tuple((fx * geometry.width_px, fy * geometry.height_px) for fy in chosen for fx in chosen)


def validation_point(
    target_screen_px: tuple[float, float], xy_screen_px: ArrayLike, *, geometry: ScreenGeometry
) -> ValidationPoint:
    """Accuracy and precision of the gaze samples recorded at one target, in degrees.

    Parameters
    ----------
    target_screen_px : (float, float)
        The target's (x, y) in screen pixels.
    xy_screen_px : array_like, shape (N, 2)
        The valid samples' (x, y) in screen pixels, in time order; N ≥ 2.
    geometry : ScreenGeometry
        Screen and viewing distance for the conversion to degrees.

    Returns
    -------
    ValidationPoint
        ``accuracy_deg``: mean of ``|g_i − target|``; ``precision_deg``: ``sqrt(mean |g_{i+1} − g_i|²)``,
        with positions in degrees from the screen centre.

    Raises
    ------
    ValueError
        For fewer than two samples (no precision can be measured) or non-finite values.

    References
    ----------
    .. [1] Holmqvist et al. (2011), accuracy (mean offset) and precision (RMS-S2S).
    .. [2] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """
    tx, ty = (float(v) for v in target_screen_px)
    xy = check_points(xy_screen_px=xy_screen_px)
    if len(xy) < 2:
        raise ValueError(
            f"the target at ({tx:.0f}, {ty:.0f}) px has {len(xy)} valid gaze samples; at least 2 are needed. "
            "The tracker lost the eyes there: check the setup and validate again."
        )
    gaze_deg = geometry.screen_px_to_deg(xy)
    target_deg = geometry.screen_px_to_deg([(tx, ty)])[0]
    offsets = np.hypot(*(gaze_deg - target_deg).T)
    steps = np.diff(gaze_deg, axis=0)
    rms = math.sqrt(float((steps**2).sum(axis=1).mean()))
    return ValidationPoint(tx, ty, float(offsets.mean()), rms)


def validation_result(
    samples_by_target: Sequence[tuple[tuple[float, float], Sequence[GazeSample]]],
    *,
    geometry: ScreenGeometry,
    t_ms: float,
) -> ValidationResult:
    """One :class:`ValidationPoint` per target from the samples recorded there (invalid ones ignored).

    Raises
    ------
    ValueError
        When a target has fewer than two valid samples (the message names the target).
    """
    points = []
    for target, samples in samples_by_target:
        xy = [(s.x_screen_px, s.y_screen_px) for s in samples if s.valid]
        points.append(validation_point(target, xy, geometry=geometry))
    return ValidationResult(float(t_ms), tuple(points))


@dataclass(frozen=True, slots=True)
class TargetOnset:
    """Target ``index`` at (x, y) screen pixels appeared on screen at ``t_ms``."""

    index: int
    x_screen_px: float
    y_screen_px: float
    t_ms: float


class ValidationProcedure:
    """Shows targets one after another and measures the gaze at each (driven frame by frame).

    Parameters
    ----------
    geometry : ScreenGeometry
        The screen; the targets default to its 3 × 3 grid at 10/50/90 %.
    targets_screen_px : sequence of (x, y), optional
        Targets to show, in order.
    show_ms : float
        How long each target is shown (about 1.5 s).
    settle_ms : float
        Samples from the first ``settle_ms`` of a target are not used (the eyes travel to it).
    latency_ms : float
        After the last target, wait this long for samples still on their way from the tracker.
    clock : callable
        Time source for the result's time stamp.

    Notes
    -----
    :meth:`add_sample` may be called from the driver's thread; everything else from the thread that
    draws. Listeners: ``target_shown`` (:class:`TargetOnset`), ``finished``
    (:class:`~tracking.records.ValidationResult`), ``failed`` (str: why no result could be computed).
    """

    def __init__(
        self,
        geometry: ScreenGeometry,
        *,
        targets_screen_px: Sequence[tuple[float, float]] | None = None,
        show_ms: float = 1500.0,
        settle_ms: float = 500.0,
        latency_ms: float = 100.0,
        clock: Callable[[], float] = now_ms,
    ) -> None:
        self._geometry = geometry
        targets = validation_targets(geometry) if targets_screen_px is None else targets_screen_px
        self._targets = tuple((float(x), float(y)) for x, y in targets)
        if not self._targets:
            raise ValueError("targets_screen_px must hold at least one target.")
        self._show_ms = check_positive(show_ms=show_ms)
        if not (math.isfinite(settle_ms) and 0 <= settle_ms < show_ms):
            raise ValueError(f"settle_ms must lie in [0, show_ms = {show_ms!r}); got {settle_ms!r}.")
        self._settle_ms = float(settle_ms)
        if not (math.isfinite(latency_ms) and latency_ms >= 0):
            raise ValueError(f"latency_ms must be finite and >= 0; got {latency_ms!r}.")
        self._latency_ms = float(latency_ms)
        self._clock = clock
        self._index = -1
        self._onsets: list[float] = []
        self._pending_onset = False
        self._done = False
        self._lock = threading.Lock()
        self._samples: list[GazeSample] = []
        self.target_shown: Listeners[TargetOnset] = Listeners()
        self.finished: Listeners[ValidationResult] = Listeners()
        self.failed: Listeners[str] = Listeners()

    @property
    def targets(self) -> tuple[tuple[float, float], ...]:
        """The targets in screen pixels, in the order shown."""
        return self._targets

    @property
    def current_target(self) -> tuple[float, float] | None:
        """The target to draw now; None before the start and after the last one."""
        return self._targets[self._index] if 0 <= self._index < len(self._targets) else None

    @property
    def done(self) -> bool:
        """Whether the procedure has ended (with a result or a failure)."""
        return self._done

    def add_sample(self, sample: GazeSample) -> None:
        """Keep one gaze sample (thread-safe; pass this method as a driver's ``on_sample``)."""
        with self._lock:
            self._samples.append(sample)

    def start(self) -> None:
        """Show the first target with the next frame."""
        if self._index >= 0:
            raise RuntimeError("this validation procedure has already started; create a new one.")
        self._index, self._pending_onset = 0, True

    def begin_frame(self, t_ms: float) -> tuple[float, float] | None:
        """A frame is about to be painted at ``t_ms``: move on when a target has been shown long enough."""
        if self._done or self._index < 0 or self._pending_onset:
            return self.current_target
        elapsed_ms = t_ms - self._onsets[-1]
        if self._index < len(self._targets) and elapsed_ms >= self._show_ms:
            self._index += 1
            self._pending_onset = self._index < len(self._targets)
        if self._index >= len(self._targets) and elapsed_ms >= self._show_ms + self._latency_ms:
            self._finish()
        return self.current_target

    def frame_presented(self, t_ms: float) -> None:
        """The frame was presented at ``t_ms``; the first frame of a target stamps its onset."""
        if not self._pending_onset:
            return
        self._pending_onset = False
        self._onsets.append(t_ms)
        x, y = self._targets[self._index]
        self.target_shown.emit(TargetOnset(self._index, x, y, t_ms))

    def _finish(self) -> None:
        self._done = True
        with self._lock:
            samples = sorted(self._samples, key=lambda s: s.t_ms)
        windows = [(t + self._settle_ms, t + self._show_ms) for t in self._onsets]
        per_target = [
            (target, [s for s in samples if start <= s.t_ms < stop])
            for target, (start, stop) in zip(self._targets, windows, strict=True)
        ]
        try:
            result = validation_result(per_target, geometry=self._geometry, t_ms=self._clock())
        except ValueError as err:
            self.failed.emit(str(err))
            return
        self.finished.emit(result)
