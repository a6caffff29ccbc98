"""Pieces shared by the fixation detectors: the detector Protocol, degrees, checks, records.

Both detectors are state machines fed one sample at a time. The offline functions check the
arrays once and then run the very same state machine over them, so online and offline results
are identical by construction (and tested to be).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.geometry import ScreenGeometry
from tracking.records import Fixation, GazeSample

__all__ = ["FixationDetector"]


@runtime_checkable
class FixationDetector(Protocol):
    """An online fixation detector: fed samples in time order, it emits fixations as they end."""

    def feed(self, sample: GazeSample) -> list[Fixation]:
        """Take the next sample; return the fixations that it ended (usually none)."""
        ...

    def flush(self) -> list[Fixation]:
        """End of the stream (or of a protocol phase): return a fixation still open, and start afresh.

        The next sample begins a new fixation and may lie earlier than the last one. A detector
        may carry what it learnt about the tracker's noise over to samples that continue the
        stream in time (the adaptive detector does).
        """
        ...


class _DegreeMap:
    """Screen pixels → degrees of visual angle from the screen centre, one sample at a time.

    The same formula as :meth:`analysis.geometry.ScreenGeometry.screen_px_to_deg`, evaluated
    with :mod:`math` on scalars so that a sample maps to the same degrees whichever path
    (online or offline) it takes.
    """

    __slots__ = ("_centre_x_px", "_centre_y_px", "_distance_cm", "_px_per_cm")

    def __init__(self, geometry: ScreenGeometry) -> None:
        if not isinstance(geometry, ScreenGeometry):
            raise TypeError(f"geometry must be a ScreenGeometry; got {type(geometry).__name__}.")
        self._centre_x_px = geometry.width_px / 2.0
        self._centre_y_px = geometry.height_px / 2.0
        self._px_per_cm = geometry.px_per_cm
        self._distance_cm = float(geometry.distance_cm)

    def __call__(self, x_screen_px: float, y_screen_px: float) -> tuple[float, float]:
        x_cm = (x_screen_px - self._centre_x_px) / self._px_per_cm
        y_cm = (y_screen_px - self._centre_y_px) / self._px_per_cm
        return (
            math.degrees(math.atan2(x_cm, self._distance_cm)),
            math.degrees(math.atan2(y_cm, self._distance_cm)),
        )


class _SampleOrder:
    """Remembers the last time stamp fed and rejects samples that do not move forward."""

    __slots__ = ("last_t_ms",)

    def __init__(self) -> None:
        self.last_t_ms = -math.inf

    def check(self, sample: GazeSample) -> None:
        if not isinstance(sample, GazeSample):
            raise TypeError(f"feed() takes a GazeSample; got {type(sample).__name__}.")
        if not sample.t_ms > self.last_t_ms:
            raise ValueError(
                f"samples must arrive with strictly increasing t_ms; got {sample.t_ms!r} after "
                f"{self.last_t_ms!r}. Drop duplicate samples, or call flush() before a new stream."
            )
        self.last_t_ms = sample.t_ms


def fixation_of_run(
    samples: Sequence[tuple[float, float, float]], *, min_duration_ms: float
) -> list[Fixation]:
    """A run of fixation samples as a fixation, when it lasted ``min_duration_ms``; else nothing."""
    if samples and samples[-1][0] - samples[0][0] >= min_duration_ms:
        return [make_fixation(samples)]
    return []


def make_fixation(samples: Sequence[tuple[float, float, float]]) -> Fixation:
    """The fixation made of ``(t_ms, x_screen_px, y_screen_px)`` samples: first onset, mean position."""
    n = len(samples)
    onset_ms = samples[0][0]
    return Fixation(
        onset_ms=onset_ms,
        duration_ms=samples[-1][0] - onset_ms,
        x_screen_px=math.fsum(s[1] for s in samples) / n,
        y_screen_px=math.fsum(s[2] for s in samples) / n,
        n_samples=n,
    )


def check_sample_arrays(
    t_ms: ArrayLike, xy_screen_px: ArrayLike, valid: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Check the offline detectors' arrays; return them as float64 (N,), (N, 2) and bool (N,).

    ``valid=None`` means: valid where the position is finite.
    """
    t = np.asarray(t_ms, dtype=np.float64)
    xy = np.asarray(xy_screen_px, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t_ms must be 1-D; got shape {t.shape!r}.")
    if xy.size == 0 and t.size == 0:
        xy = xy.reshape(0, 2)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != t.shape[0]:
        raise ValueError(
            f"xy_screen_px must have shape (N, 2) with N = len(t_ms) = {t.shape[0]}; got shape {xy.shape!r}."
        )
    ok = _check_valid(valid, xy)
    _check_times(t)
    return t, xy, ok


def _check_valid(valid: ArrayLike | None, xy: NDArray[np.float64]) -> NDArray[np.bool_]:
    finite: NDArray[np.bool_] = np.isfinite(xy).all(axis=1)
    if valid is None:
        return finite
    ok = np.asarray(valid)
    if ok.dtype != np.bool_ or ok.shape != finite.shape:
        raise ValueError(
            f"valid must be a bool array of shape {finite.shape!r}; "
            f"got dtype {ok.dtype!r}, shape {ok.shape!r}."
        )
    bad = np.flatnonzero(ok & ~finite)
    if bad.size:
        raise ValueError(
            f"{bad.size} samples are marked valid but have a NaN or infinite position "
            f"(first at index {int(bad[0])}: {tuple(xy[bad[0]])!r}). Mark them valid=False."
        )
    return ok


def _check_times(t: NDArray[np.float64]) -> None:
    if not np.isfinite(t).all():
        raise ValueError(f"t_ms must be finite; got {int((~np.isfinite(t)).sum())} NaN or infinite values.")
    steps = np.diff(t)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(
            f"t_ms must be strictly increasing; t_ms[{i}] = {t[i]!r} follows t_ms[{i - 1}] = {t[i - 1]!r}. "
            "Sort the samples by time and drop duplicates."
        )


class _SteppedDetector(Protocol):
    def _step(self, t_ms: float, x_px: float, y_px: float, valid: bool) -> list[Fixation]: ...

    def flush(self) -> list[Fixation]: ...


def run_offline(
    detector: _SteppedDetector, t_ms: ArrayLike, xy_screen_px: ArrayLike, valid: ArrayLike | None
) -> list[Fixation]:
    """Feed a whole recording through an online detector's step, then flush: the offline result.

    Both detectors' offline functions run exactly their online state machine this way, which is
    why online and offline detection give identical fixations.
    """
    t, xy, ok = check_sample_arrays(t_ms, xy_screen_px, valid)
    fixations: list[Fixation] = []
    for t_i, (x_i, y_i), ok_i in zip(t.tolist(), xy.tolist(), ok.tolist(), strict=True):
        fixations += detector._step(t_i, x_i, y_i, ok_i)
    return fixations + detector.flush()
