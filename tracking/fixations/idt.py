"""I-DT: fixations by dispersion threshold (Salvucci & Goldberg, 2000), online and offline.

A window of samples that spans at least the minimum duration is a fixation while its
dispersion ``(max x − min x) + (max y − min y)``, in degrees of visual angle, stays within the
threshold; it grows sample by sample until the next sample would break the threshold. A
window that starts too dispersed loses its first sample and is tried again. The fixations
feed the gaze heatmaps of RBDM §5.3.2.

Invalid samples (blinks, lost tracking) end the current window: a fixation open at a blink is
emitted with the samples before it, and no window spans a blink.

Noise: the dispersion of raw samples grows with the number of samples a window holds, so a
fixed threshold that fits 60 Hz rejects every window of a noisy 1,200 Hz tracker (0.2° of noise:
a 100 ms window spans about 2° at 1,200 Hz, 1° at 60 Hz). By default the dispersion is
therefore measured on positions smoothed by the causal Savitzky–Golay filter
(:class:`~tracking.fixations.savitzky_golay.SavitzkyGolayFilter`, ``smoothing_ms`` wide), which
removes that growth at high rates and changes nothing at 60 Hz (three samples span 20 ms there,
and a quadratic through three samples is the samples); the fixation's position is still the
mean of its raw samples. The filter also bridges data loss of up to 75 ms (gap fill-in) and
delays each decision by half its window. ``smoothing_ms=None`` is Salvucci & Goldberg's I-DT on
the raw samples.
"""

from __future__ import annotations

import math
from collections import deque

from numpy.typing import ArrayLike

from analysis.geometry import ScreenGeometry
from tracking._validation import check_positive
from tracking.fixations._common import _DegreeMap, _SampleOrder, make_fixation, run_offline
from tracking.fixations.savitzky_golay import FilteredSample, SavitzkyGolayFilter
from tracking.records import Fixation, GazeSample

__all__ = ["IDTDetector", "idt"]


class _SlidingRange:
    """Max − min of a sliding window of numbers (monotonic deques; O(1) amortised per sample)."""

    __slots__ = ("_highs", "_lows")

    def __init__(self) -> None:
        self._highs: deque[tuple[int, float]] = deque()
        self._lows: deque[tuple[int, float]] = deque()

    def push(self, index: int, value: float) -> None:
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= value:
            highs.pop()
        highs.append((index, value))
        while lows and lows[-1][1] >= value:
            lows.pop()
        lows.append((index, value))

    def drop_before(self, index: int) -> None:
        if self._highs[0][0] < index:
            self._highs.popleft()
        if self._lows[0][0] < index:
            self._lows.popleft()

    def span(self) -> float:
        return self._highs[0][1] - self._lows[0][1]

    def span_with(self, value: float) -> float:
        return max(self._highs[0][1], value) - min(self._lows[0][1], value)

    def clear(self) -> None:
        self._highs.clear()
        self._lows.clear()


class IDTDetector:
    """Online I-DT: feed samples one at a time; fixations come back when they end.

    A fixation can only be known to have ended when the sample after it arrives (or an invalid
    sample, or :meth:`flush`), so each is emitted one sample after its last one.

    Parameters
    ----------
    geometry : ScreenGeometry
        Screen and viewing distance; positions are converted to degrees of visual angle.
    dispersion_deg : float, optional
        Largest dispersion ``(max x − min x) + (max y − min y)`` of a fixation, in degrees.
    min_duration_ms : float, optional
        Shortest fixation, last sample's time minus the first's, in milliseconds.
    smoothing_ms : float or None, optional
        Width in milliseconds of the Savitzky–Golay filter the dispersion is measured on
        (module docstring); None measures it on the raw samples.

    Raises
    ------
    ValueError
        For a non-positive threshold; :meth:`feed` for time stamps that do not increase.

    References
    ----------
    .. [1] Salvucci, D. D. & Goldberg, J. H. (2000), Identifying fixations and saccades in
       eye-tracking protocols, ETRA, I-DT.
    .. [2] Nyström, M. & Holmqvist, K. (2010), Behavior Research Methods 42(1), 188–204:
       Savitzky–Golay smoothing before event detection.
    .. [3] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (fixations as heatmap points).
    """

    def __init__(
        self,
        geometry: ScreenGeometry,
        *,
        dispersion_deg: float = 1.0,
        min_duration_ms: float = 100.0,
        smoothing_ms: float | None = 20.0,
    ) -> None:
        self._to_deg = _DegreeMap(geometry)
        self.dispersion_deg = check_positive(dispersion_deg=dispersion_deg)
        self.min_duration_ms = check_positive(min_duration_ms=min_duration_ms)
        self._filter = (
            None
            if smoothing_ms is None
            else SavitzkyGolayFilter(window_ms=check_positive(smoothing_ms=smoothing_ms))
        )
        self._order = _SampleOrder()
        self._window: deque[tuple[float, float, float]] = deque()
        self._x_range = _SlidingRange()
        self._y_range = _SlidingRange()
        self._first_index = 0
        self._next_index = 0
        self._in_fixation = False

    def feed(self, sample: GazeSample) -> list[Fixation]:
        """Take the next sample (strictly later than the last); return the fixations it ended."""
        self._order.check(sample)
        return self._step(sample.t_ms, sample.x_screen_px, sample.y_screen_px, sample.valid)

    def flush(self) -> list[Fixation]:
        """End of the stream: return the open fixation, if any, and forget all state."""
        ended = self._smoothed(self._filter.flush()) if self._filter is not None else []
        ended += self._end_window()
        self._order = _SampleOrder()
        return ended

    def _step(self, t_ms: float, x_px: float, y_px: float, valid: bool) -> list[Fixation]:
        x_deg, y_deg = self._to_deg(x_px, y_px) if valid else (math.nan, math.nan)
        if self._filter is not None:
            return self._smoothed(self._filter.push(t_ms, x_px, y_px, x_deg, y_deg, valid))
        if not valid:
            return self._end_window()
        return self._classify(t_ms, x_px, y_px, x_deg, y_deg)

    def _smoothed(self, items: list[FilteredSample | None]) -> list[Fixation]:
        """Classify filtered samples: a segment end ends the window; filled-in samples are skipped."""
        ended: list[Fixation] = []
        for item in items:
            if item is None:
                ended += self._end_window()
            elif not item.filled:
                ended += self._classify(item.t_ms, item.x_screen_px, item.y_screen_px, item.x_deg, item.y_deg)
        return ended

    def _classify(self, t_ms: float, x_px: float, y_px: float, x_deg: float, y_deg: float) -> list[Fixation]:
        ended: list[Fixation] = []
        if self._in_fixation:
            within = self._x_range.span_with(x_deg) + self._y_range.span_with(y_deg) <= self.dispersion_deg
            if within:
                self._push(t_ms, x_px, y_px, x_deg, y_deg)
                return ended
            ended = self._end_window()
        self._push(t_ms, x_px, y_px, x_deg, y_deg)
        self._search()
        return ended

    def _push(self, t_ms: float, x_px: float, y_px: float, x_deg: float, y_deg: float) -> None:
        self._window.append((t_ms, x_px, y_px))
        self._x_range.push(self._next_index, x_deg)
        self._y_range.push(self._next_index, y_deg)
        self._next_index += 1

    def _search(self) -> None:
        """Slide the window start forward until it covers the minimum duration within the threshold."""
        window = self._window
        while window and window[-1][0] - window[0][0] >= self.min_duration_ms:
            if self._x_range.span() + self._y_range.span() <= self.dispersion_deg:
                self._in_fixation = True
                return
            window.popleft()
            self._first_index += 1
            self._x_range.drop_before(self._first_index)
            self._y_range.drop_before(self._first_index)

    def _end_window(self) -> list[Fixation]:
        ended = [make_fixation(self._window)] if self._in_fixation else []
        self._window.clear()
        self._x_range.clear()
        self._y_range.clear()
        self._first_index = self._next_index
        self._in_fixation = False
        return ended


def idt(
    t_ms: ArrayLike,
    xy_screen_px: ArrayLike,
    valid: ArrayLike | None = None,
    *,
    geometry: ScreenGeometry,
    dispersion_deg: float = 1.0,
    min_duration_ms: float = 100.0,
    smoothing_ms: float | None = 20.0,
) -> list[Fixation]:
    """Offline I-DT over a whole recording; the same fixations as :class:`IDTDetector` fed sample by sample.

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
    dispersion_deg, min_duration_ms : float, optional
        As for :class:`IDTDetector`.
    smoothing_ms : float or None, optional
        As for :class:`IDTDetector`.

    Returns
    -------
    list of Fixation
        In time order, non-overlapping; empty for no samples or no fixation.

    Raises
    ------
    ValueError
        For mismatched shapes, time stamps that do not strictly increase, valid samples with a
        non-finite position or a non-positive threshold.

    References
    ----------
    .. [1] Salvucci, D. D. & Goldberg, J. H. (2000), Identifying fixations and saccades in
       eye-tracking protocols, ETRA, I-DT.
    .. [2] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (fixations as heatmap points).
    """
    detector = IDTDetector(
        geometry, dispersion_deg=dispersion_deg, min_duration_ms=min_duration_ms, smoothing_ms=smoothing_ms
    )
    return run_offline(detector, t_ms, xy_screen_px, valid)
