"""Adaptive velocity threshold: fixations between saccades whose threshold follows the noise.

Nyström & Holmqvist (2010): velocities come from a second-order Savitzky–Golay filter
(:class:`~tracking.fixations.savitzky_golay.SavitzkyGolayFilter`); the saccade peak threshold
``PT`` is found by iterating ``PT ← μ + 6σ`` over the velocities below the current ``PT``,
starting from 100 °/s, until it moves by less than 1 °/s; the onset threshold is ``μ + 3σ``.
Here μ and σ are the median and the scaled median absolute deviation (1.4826 · MAD), as in
Engbert & Kliegl (2003), instead of the mean and SD: at 60-120 Hz a large share of the
velocities below 100 °/s are saccade samples, which inflate the SD (PT ≈ 100 °/s at 0.02° of
noise) but hardly move the median; on pure noise both give the same threshold within a few
per cent. Neither threshold falls below a floor (``min_peak_deg_s``, its half for the onset),
so that the tiny noise of a clean tracker does not make drift and edge effects saccades. A
saccade is a run of samples at or above the onset threshold whose peak reaches ``PT``; an
excursion that stays below ``PT`` is noise and belongs to the fixation around it. Fixations are
the maximal runs of samples between saccades and blinks that last at least ``min_duration_ms``;
their position is the mean of their raw samples. The fixations feed the gaze heatmaps of
RBDM §5.3.2.

Online: the thresholds follow the velocities of the last ``adaptation_ms`` of the stream and are
updated every ``update_ms`` of stream time, so noisy and clean trackers, 60 and 1,200 Hz alike,
get thresholds that fit them without any setting. All parameters are in degrees and
milliseconds and do not depend on the sampling rate. Short data loss (up to ``max_gap_ms``) is
bridged; a blink ends the fixation. A fixation is emitted as soon as the velocity after it
reaches PT (the filter's delay, half a window or about 10 ms, after the saccade began), or when
a blink, a long gap or :meth:`AdaptiveVelocityDetector.flush` ends it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.geometry import ScreenGeometry
from tracking._validation import check_positive
from tracking.fixations._common import _DegreeMap, _SampleOrder, fixation_of_run, run_offline
from tracking.fixations.savitzky_golay import FilteredSample, SavitzkyGolayFilter
from tracking.records import Fixation, GazeSample

__all__ = ["AdaptiveVelocityDetector", "adaptive_velocity"]

_RUN = list[tuple[float, float, float]]
#: Most velocities a threshold update looks at (a 10 s window at 1,200 Hz holds 12,000).
_MAX_ESTIMATE_SAMPLES = 3000


class _AdaptiveThreshold:
    """``PT = μ + 6σ`` and onset ``μ + 3σ`` of the recent velocities below PT, updated on a time grid.

    μ is the median and σ = 1.4826 · MAD of the velocities below PT; the results are held at or
    above ``floor_deg_s`` (PT) and half of it (onset).

    Velocities are kept in a growing numpy buffer trimmed by time, so an update costs a few
    passes over the window (at most :data:`_MAX_ESTIMATE_SAMPLES` of it, evenly strided), ten
    times a second of stream, and adding a velocity costs a store.
    """

    __slots__ = (
        "_adaptation_ms",
        "_floor_deg_s",
        "_initial_deg_s",
        "_min_samples",
        "_n",
        "_next_update_ms",
        "_start",
        "_t",
        "_update_ms",
        "_v",
        "onset_deg_s",
        "peak_deg_s",
    )

    def __init__(
        self, *, initial_deg_s: float, floor_deg_s: float, adaptation_ms: float, update_ms: float
    ) -> None:
        self._initial_deg_s = initial_deg_s
        self._floor_deg_s = floor_deg_s
        self._adaptation_ms = adaptation_ms
        self._update_ms = update_ms
        self._min_samples = 30
        self._t: NDArray[np.float64] = np.empty(1024)
        self._v: NDArray[np.float64] = np.empty(1024)
        self.reset()

    def reset(self) -> None:
        self._n = self._start = 0
        self._next_update_ms = -math.inf
        self.peak_deg_s = max(self._initial_deg_s, self._floor_deg_s)
        self.onset_deg_s = self.peak_deg_s / 2.0

    def add(self, t_ms: float, velocity_deg_s: float) -> None:
        if self._n > self._start and t_ms < self._t[self._n - 1]:
            self.reset()  # a new stream that starts earlier: its noise is not known yet
        if self._n == self._t.shape[0]:
            self._compact()
        self._t[self._n] = t_ms
        self._v[self._n] = velocity_deg_s
        self._n += 1
        if t_ms >= self._next_update_ms:
            self._next_update_ms = t_ms + self._update_ms
            self._update(t_ms)

    def _compact(self) -> None:
        kept = self._n - self._start
        if kept > self._t.shape[0] // 2:
            self._t = np.concatenate([self._t, np.empty_like(self._t)])
            self._v = np.concatenate([self._v, np.empty_like(self._v)])
        self._t[:kept] = self._t[self._start : self._n]
        self._v[:kept] = self._v[self._start : self._n]
        self._start, self._n = 0, kept

    def _update(self, t_ms: float) -> None:
        self._start += int(np.searchsorted(self._t[self._start : self._n], t_ms - self._adaptation_ms))
        velocities = self._v[self._start : self._n]
        if velocities.shape[0] > _MAX_ESTIMATE_SAMPLES:  # every k-th: the same statistics, bounded cost
            velocities = velocities[:: -(-velocities.shape[0] // _MAX_ESTIMATE_SAMPLES)]
        if velocities.shape[0] < self._min_samples:
            return
        peak = self._initial_deg_s
        for _ in range(100):
            below = velocities[velocities < peak]
            if below.shape[0] < self._min_samples:
                return
            centre, spread = _median_and_sigma(below)
            new_peak = centre + 6.0 * spread
            if abs(new_peak - peak) < 1.0:
                break
            peak = new_peak
        self.peak_deg_s = max(new_peak, self._floor_deg_s)
        self.onset_deg_s = max(centre + 3.0 * spread, self._floor_deg_s / 2.0)


def _median_and_sigma(values: NDArray[np.float64]) -> tuple[float, float]:
    """Median and 1.4826 · median absolute deviation (σ of a normal distribution, robustly)."""
    centre = float(np.median(values))
    return centre, 1.4826 * float(np.median(np.abs(values - centre)))


class AdaptiveVelocityDetector:
    """Online adaptive-threshold detector (Nyström & Holmqvist 2010); fixations come back as they end.

    Parameters
    ----------
    geometry : ScreenGeometry
        Screen and viewing distance; positions are converted to degrees of visual angle.
    min_duration_ms : float, optional
        Shortest fixation, last sample's time minus the first's, in milliseconds.
    window_ms : float, optional
        Width of the Savitzky–Golay velocity filter in milliseconds.
    initial_peak_deg_s : float, optional
        Peak velocity threshold (°/s) the iteration starts from, and the one used until enough
        velocities have been seen (its half is the onset threshold meanwhile).
    min_peak_deg_s : float, optional
        Floor of PT in °/s (its half floors the onset threshold): saccades of 1° and more peak
        well above 40 °/s, also measured at 60 Hz, while a clean tracker's noise, drift and the
        edges of data loss would otherwise pass a PT of a few °/s.
    adaptation_ms : float, optional
        How much of the recent stream the thresholds are estimated from, in milliseconds.
    update_ms : float, optional
        Stream time between threshold updates, in milliseconds.
    max_gap_ms : float, optional
        Longest data loss inside a fixation that is bridged; longer gaps (blinks) end it.

    Raises
    ------
    ValueError
        For a non-positive parameter; :meth:`feed` for time stamps that do not increase.

    References
    ----------
    .. [1] Nyström, M. & Holmqvist, K. (2010), An adaptive algorithm for fixation, saccade, and
       glissade detection in eyetracking data, Behavior Research Methods 42(1), 188–204:
       velocity filter, data-driven peak (μ + 6σ) and onset (μ + 3σ) thresholds, 40 ms minimum
       fixation duration.
    .. [2] Engbert, R. & Kliegl, R. (2003), Microsaccades uncover the orientation of covert
       attention, Vision Research 43(9), 1035–1045: median-based velocity thresholds.
    .. [3] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (fixations as heatmap points).
    """

    def __init__(
        self,
        geometry: ScreenGeometry,
        *,
        min_duration_ms: float = 40.0,
        window_ms: float = 20.0,
        initial_peak_deg_s: float = 100.0,
        min_peak_deg_s: float = 40.0,
        adaptation_ms: float = 10_000.0,
        update_ms: float = 100.0,
        max_gap_ms: float = 75.0,
    ) -> None:
        self._to_deg = _DegreeMap(geometry)
        self.min_duration_ms = check_positive(min_duration_ms=min_duration_ms)
        self._filter = SavitzkyGolayFilter(window_ms=window_ms, max_gap_ms=max_gap_ms)
        self._threshold = _AdaptiveThreshold(
            initial_deg_s=check_positive(initial_peak_deg_s=initial_peak_deg_s),
            floor_deg_s=check_positive(min_peak_deg_s=min_peak_deg_s),
            adaptation_ms=check_positive(adaptation_ms=adaptation_ms),
            update_ms=check_positive(update_ms=update_ms),
        )
        self._order = _SampleOrder()
        self._run: _RUN = []
        self._excursion: _RUN = []
        self._saccade = False

    @property
    def peak_threshold_deg_s(self) -> float:
        """The current saccade peak velocity threshold PT (°/s)."""
        return self._threshold.peak_deg_s

    @property
    def onset_threshold_deg_s(self) -> float:
        """The current saccade onset velocity threshold (°/s)."""
        return self._threshold.onset_deg_s

    def feed(self, sample: GazeSample) -> list[Fixation]:
        """Take the next sample (strictly later than the last); return the fixations it ended."""
        self._order.check(sample)
        return self._step(sample.t_ms, sample.x_screen_px, sample.y_screen_px, sample.valid)

    def flush(self) -> list[Fixation]:
        """End of the stream (or of a protocol phase): return the open fixation, if any.

        The velocity statistics carry over to the samples fed next, when they continue the
        stream in time (the noise is the tracker's, not the phase's); a stream that starts
        earlier than the last sample starts them afresh, as a new detector does.
        """
        ended = self._classify_all(self._filter.flush())
        self._order = _SampleOrder()
        return ended

    def _step(self, t_ms: float, x_px: float, y_px: float, valid: bool) -> list[Fixation]:
        if valid:
            x_deg, y_deg = self._to_deg(x_px, y_px)
        else:
            x_deg = y_deg = math.nan
        return self._classify_all(self._filter.push(t_ms, x_px, y_px, x_deg, y_deg, valid))

    def _classify_all(self, items: list[FilteredSample | None]) -> list[Fixation]:
        ended: list[Fixation] = []
        for item in items:
            ended += self._classify(item)
        return ended

    def _classify(self, item: FilteredSample | None) -> list[Fixation]:
        if item is None or math.isnan(item.velocity_deg_s):
            return self._settle_excursion() + self._end_run()
        velocity = item.velocity_deg_s
        if not item.filled:  # filled-in samples count for saccades, not for thresholds or positions
            self._threshold.add(item.t_ms, velocity)
        sample = (item.t_ms, item.x_screen_px, item.y_screen_px)
        if velocity >= self._threshold.onset_deg_s:
            if not item.filled:
                self._excursion.append(sample)
            if velocity >= self._threshold.peak_deg_s and not self._saccade:
                self._saccade = True  # known now: the fixation before it has ended
                return self._end_run()
            return []
        ended = self._settle_excursion()
        if not item.filled:
            self._run.append(sample)
        return ended

    def _settle_excursion(self) -> list[Fixation]:
        """A finished excursion above the onset threshold: a saccade if it reached PT (the run
        before it has then ended already), else noise that belongs to the fixation."""
        excursion, self._excursion = self._excursion, []
        saccade, self._saccade = self._saccade, False
        if not saccade:
            self._run += excursion
        return []

    def _end_run(self) -> list[Fixation]:
        run, self._run = self._run, []
        return fixation_of_run(run, min_duration_ms=self.min_duration_ms)


def adaptive_velocity(
    t_ms: ArrayLike,
    xy_screen_px: ArrayLike,
    valid: ArrayLike | None = None,
    *,
    geometry: ScreenGeometry,
    min_duration_ms: float = 40.0,
    window_ms: float = 20.0,
    initial_peak_deg_s: float = 100.0,
    min_peak_deg_s: float = 40.0,
    adaptation_ms: float = 10_000.0,
    update_ms: float = 100.0,
    max_gap_ms: float = 75.0,
) -> list[Fixation]:
    """Offline adaptive-threshold detection; the same fixations as :class:`AdaptiveVelocityDetector` online.

    Parameters
    ----------
    t_ms : array_like, shape (N,)
        Strictly increasing time stamps in milliseconds.
    xy_screen_px : array_like, shape (N, 2)
        Gaze positions ``(x, y)`` in screen pixels; NaN allowed where invalid.
    valid : array_like of bool, shape (N,), optional
        False for blinks and tracking loss; by default, valid where the position is finite.
    geometry : ScreenGeometry
        Screen and viewing distance for the conversion to degrees.
    min_duration_ms, window_ms, initial_peak_deg_s, min_peak_deg_s : float, optional
        As for :class:`AdaptiveVelocityDetector`.
    adaptation_ms, update_ms, max_gap_ms : float, optional
        As for :class:`AdaptiveVelocityDetector`.

    Returns
    -------
    list of Fixation
        In time order, non-overlapping; empty for no samples or no fixation.

    Raises
    ------
    ValueError
        For mismatched shapes, time stamps that do not strictly increase, valid samples with a
        non-finite position or a non-positive parameter.

    References
    ----------
    .. [1] Nyström, M. & Holmqvist, K. (2010), An adaptive algorithm for fixation, saccade, and
       glissade detection in eyetracking data, Behavior Research Methods 42(1), 188–204.
    .. [2] Engbert, R. & Kliegl, R. (2003), Microsaccades uncover the orientation of covert
       attention, Vision Research 43(9), 1035–1045: median-based velocity thresholds.
    .. [3] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (fixations as heatmap points).
    """
    detector = AdaptiveVelocityDetector(
        geometry,
        min_duration_ms=min_duration_ms,
        window_ms=window_ms,
        initial_peak_deg_s=initial_peak_deg_s,
        min_peak_deg_s=min_peak_deg_s,
        adaptation_ms=adaptation_ms,
        update_ms=update_ms,
        max_gap_ms=max_gap_ms,
    )
    return run_offline(detector, t_ms, xy_screen_px, valid)
