"""A Savitzky–Golay smoothing and velocity filter for gaze streams, causal and rate-independent.

Each sample's position and velocity are the constant and linear terms of a least-squares quadratic
fitted to the samples within ``± window_ms / 2`` of it (at least one neighbour each side), in
time-stamp units. On evenly spaced samples this is exactly the Savitzky–Golay filter of order 2
that Nyström & Holmqvist (2010) use for velocities; on real streams it honours jitter and dropped
samples, and its width is set in milliseconds, so it means the same at 60 and at 1,200 Hz. With
only three samples in the window (low rates) it passes the position through unchanged and its
velocity is the central difference.

The filter is causal: it emits a sample once the samples half a window later have arrived, a fixed
delay of ``window_ms / 2`` (one sample at low rates). Invalid samples inside a gap of at most
``max_gap_ms`` between valid samples (short data loss) are filled in by linear interpolation
between the valid samples either side (the gap fill-in of Olsen 2012) and emitted flagged
``filled``, so that the fit does not extrapolate at the gap's edges; a longer gap (a blink) ends
the segment, and the samples before it are emitted with the one-sided windows they have. No
window spans such a gap.
"""

from __future__ import annotations

import math
from typing import NamedTuple, cast

from tracking._validation import check_positive

__all__ = ["FilteredSample", "SavitzkyGolayFilter"]


class FilteredSample(NamedTuple):
    """One filtered sample: the raw position, the smoothed one and the angular velocity.

    ``velocity_deg_s`` is NaN for a sample alone in its segment (no velocity can be taken).
    ``filled`` marks an invalid sample filled in by interpolation; its screen position is NaN.
    """

    t_ms: float
    x_screen_px: float
    y_screen_px: float
    x_deg: float
    y_deg: float
    velocity_deg_s: float
    filled: bool = False


#: What :meth:`SavitzkyGolayFilter.push` emits: filtered samples, and None where a segment ended.
FilterOutput = list[FilteredSample | None]

_Raw = tuple[float, float, float, float, float, bool]  # t_ms, x_px, y_px, x_deg, y_deg, filled


class SavitzkyGolayFilter:
    """Online quadratic Savitzky–Golay filter over time stamps; one sample in, ready samples out.

    Parameters
    ----------
    window_ms : float, optional
        Width of the fitting window in milliseconds (20 ms: the minimum saccade duration twice,
        as in Nyström & Holmqvist 2010). At least one neighbour each side is always used.
    max_gap_ms : float, optional
        Longest gap between valid samples that a segment bridges (short data loss); a longer gap
        (a blink) ends the segment.

    Raises
    ------
    ValueError
        For a non-positive ``window_ms`` or ``max_gap_ms``.

    References
    ----------
    .. [1] Savitzky, A. & Golay, M. J. E. (1964), Smoothing and differentiation of data by
       simplified least squares procedures, Analytical Chemistry 36(8).
    .. [2] Nyström, M. & Holmqvist, K. (2010), An adaptive algorithm for fixation, saccade, and
       glissade detection in eyetracking data, Behavior Research Methods 42(1), §"Noise
       reduction" (second-order Savitzky–Golay filter, 20 ms window).
    .. [3] Olsen, A. (2012), The Tobii I-VT Fixation Filter, Tobii Technology: gap fill-in by
       linear interpolation, 75 ms maximum gap.
    """

    def __init__(self, *, window_ms: float = 20.0, max_gap_ms: float = 75.0) -> None:
        self.window_ms = check_positive(window_ms=window_ms)
        self.max_gap_ms = check_positive(max_gap_ms=max_gap_ms)
        self._half_ms = self.window_ms / 2.0
        self._segment: list[_Raw] = []
        self._gap_ms: list[float] = []
        self._centre = 0
        self._last_valid_ms = -math.inf
        self._broken = True

    @property
    def delay_ms(self) -> float:
        """Half the window: how long after a sample's time stamp it is emitted (at least one sample)."""
        return self._half_ms

    def push(
        self, t_ms: float, x_px: float, y_px: float, x_deg: float, y_deg: float, valid: bool
    ) -> FilterOutput:
        """Take the next sample (time stamps increasing); return the samples now filtered."""
        if not valid:
            if self._broken:
                return []
            if t_ms - self._last_valid_ms > self.max_gap_ms:
                return self._end_segment()
            self._gap_ms.append(t_ms)
            return []
        out: FilterOutput = []
        if not self._broken and t_ms - self._last_valid_ms > self.max_gap_ms:
            out = self._end_segment()
        self._fill_gap(t_ms, x_deg, y_deg)
        self._broken = False
        self._last_valid_ms = t_ms
        self._segment.append((t_ms, x_px, y_px, x_deg, y_deg, False))
        out += self._ready()
        return out

    def _fill_gap(self, t_ms: float, x_deg: float, y_deg: float) -> None:
        """Interpolate the invalid samples since the last valid one, linearly in degrees."""
        gap, self._gap_ms = self._gap_ms, []
        if not gap or not self._segment:
            return
        t0, _, _, x0, y0, _ = self._segment[-1]
        for t in gap:
            a = (t - t0) / (t_ms - t0)
            self._segment.append((t, math.nan, math.nan, x0 + a * (x_deg - x0), y0 + a * (y_deg - y0), True))

    def flush(self) -> FilterOutput:
        """End of the stream: emit the samples still waiting, then a segment end; start afresh."""
        out = self._end_segment() if not self._broken else []
        self._last_valid_ms = -math.inf
        return out

    def _ready(self) -> FilterOutput:
        segment, out = self._segment, cast(FilterOutput, [])
        latest_ms = segment[-1][0]
        while self._centre < len(segment) - 1 and latest_ms >= segment[self._centre][0] + self._half_ms:
            out.append(self._fit(self._centre))
            self._centre += 1
        self._trim()
        return out

    def _end_segment(self) -> FilterOutput:
        out: FilterOutput = [self._fit(i) for i in range(self._centre, len(self._segment))]
        out.append(None)
        self._segment.clear()
        self._gap_ms.clear()
        self._centre = 0
        self._broken = True
        return out

    def _trim(self) -> None:
        """Forget samples no window will use again (keeps the list short at any rate)."""
        segment, centre = self._segment, self._centre
        if centre < 64:
            return
        oldest_ms = segment[centre][0] - self._half_ms
        drop = centre - 1
        while drop > 0 and segment[drop - 1][0] >= oldest_ms:
            drop -= 1
        if drop > 32:
            del segment[:drop]
            self._centre -= drop

    def _fit(self, centre: int) -> FilteredSample:
        segment, half = self._segment, self._half_ms
        t_c, x_px, y_px, x_deg, y_deg, filled = segment[centre]
        first = centre - 1 if centre > 0 else 0
        while first > 0 and segment[first - 1][0] >= t_c - half:
            first -= 1
        last = centre + 1 if centre + 1 < len(segment) else centre
        while last + 1 < len(segment) and segment[last + 1][0] <= t_c + half:
            last += 1
        window = segment[first : last + 1]
        x_fit, y_fit, vx, vy = _quadratic_fit(window, t_c)
        if len(window) < 3:
            x_fit, y_fit = x_deg, y_deg
        return FilteredSample(t_c, x_px, y_px, x_fit, y_fit, math.hypot(vx, vy) * 1000.0, filled)


def _quadratic_fit(window: list[_Raw], t_c: float) -> tuple[float, float, float, float]:
    """Least-squares ``a + b·τ + c·τ²`` (τ = t − t_c, ms) to x and y degrees: ``(a_x, a_y, b_x, b_y)``.

    Two samples give the straight line through them, one sample no velocity (NaN).
    """
    n = len(window)
    if n == 1:
        return window[0][3], window[0][4], math.nan, math.nan
    s1 = s2 = s3 = s4 = 0.0
    x0 = x1 = x2 = y0 = y1 = y2 = 0.0
    for t, _, _, x, y, _ in window:
        tau = t - t_c
        tau2 = tau * tau
        s1 += tau
        s2 += tau2
        s3 += tau2 * tau
        s4 += tau2 * tau2
        x0 += x
        x1 += x * tau
        x2 += x * tau2
        y0 += y
        y1 += y * tau
        y2 += y * tau2
    if n == 2:
        det = n * s2 - s1 * s1
        bx, by = (n * x1 - s1 * x0) / det, (n * y1 - s1 * y0) / det
        return (x0 - bx * s1) / n, (y0 - by * s1) / n, bx, by
    # Normal equations [[n, s1, s2], [s1, s2, s3], [s2, s3, s4]] · (a, b, c) = (Σv, Σvτ, Σvτ²), by Cramer.
    m00, m01, m02 = s2 * s4 - s3 * s3, s1 * s4 - s2 * s3, s1 * s3 - s2 * s2
    det = n * m00 - s1 * m01 + s2 * m02

    def solve(v0: float, v1: float, v2: float) -> tuple[float, float]:
        a = (v0 * m00 - s1 * (v1 * s4 - s3 * v2) + s2 * (v1 * s3 - s2 * v2)) / det
        b = (n * (v1 * s4 - s3 * v2) - v0 * m01 + s2 * (s1 * v2 - v1 * s2)) / det
        return a, b

    ax, bx = solve(x0, x1, x2)
    ay, by = solve(y0, y1, y2)
    return ax, ay, bx, by
