"""Savitzky–Golay filter: polyfit and scipy oracles, exact on quadratics, rate-independent, causal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.signal import savgol_filter

from tracking.fixations.savitzky_golay import FilteredSample, SavitzkyGolayFilter


def _run(
    t: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64], **options: float
) -> list[FilteredSample | None]:
    f = SavitzkyGolayFilter(**options)
    out: list[FilteredSample | None] = []
    for ti, xi, yi in zip(t.tolist(), x.tolist(), y.tolist(), strict=True):
        out += f.push(ti, 0.0, 0.0, xi, yi, True)
    return out + f.flush()


def reference_fit(
    t: NDArray[np.float64], x: NDArray[np.float64], i: int, half_ms: float
) -> tuple[float, float]:
    """np.polyfit of degree ≤ 2 over the samples within ±half of t[i], at least one neighbour each side."""
    inside = np.flatnonzero(np.abs(t - t[i]) <= half_ms)
    first = min(inside[0], max(i - 1, 0))
    last = max(inside[-1], min(i + 1, t.size - 1))
    tau, v = t[first : last + 1] - t[i], x[first : last + 1]
    if tau.size < 3:
        slope = np.polyfit(tau, v, 1)[0]
        return float(x[i]), float(slope)
    _, c1, c0 = np.polyfit(tau, v, 2)
    return float(c0), float(c1)


def test_equals_scipy_savgol_on_evenly_spaced_samples(rng: np.random.Generator) -> None:
    t = np.arange(600) * (1000.0 / 1200.0)
    x = np.cumsum(rng.normal(0.0, 0.05, t.size))
    out = [s for s in _run(t, x, np.zeros_like(x), window_ms=21.0) if s is not None]
    # ±10.5 ms at 1,200 Hz: 12 samples each side, a 25-sample window.
    smooth = savgol_filter(x, 25, 2, mode="interp")
    slope = savgol_filter(x, 25, 2, deriv=1, delta=1000.0 / 1200.0, mode="interp")
    got_x = np.array([s.x_deg for s in out])
    got_v = np.array([s.velocity_deg_s for s in out])
    np.testing.assert_allclose(got_x[12:-12], smooth[12:-12], atol=1e-9)
    np.testing.assert_allclose(got_v[12:-12], np.abs(slope[12:-12]) * 1000.0, rtol=1e-7, atol=1e-7)


@given(seed=st.integers(0, 2**32 - 1), window_ms=st.floats(2.0, 60.0))
def test_property_matches_polyfit_on_jittered_samples(seed: int, window_ms: float) -> None:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.3, 20.0, 80))
    x = np.cumsum(rng.normal(0.0, 0.3, t.size))
    out = [s for s in _run(t, x, np.zeros_like(x), window_ms=window_ms, max_gap_ms=100.0) if s is not None]
    assert [s.t_ms for s in out] == t.tolist()
    for i, sample in enumerate(out):
        position, slope = reference_fit(t, x, i, window_ms / 2.0)
        assert sample.x_deg == pytest.approx(position, abs=1e-6)
        assert sample.velocity_deg_s == pytest.approx(abs(slope) * 1000.0, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("rate_hz", [60.0, 120.0, 300.0, 600.0, 1200.0])
def test_velocity_of_a_quadratic_is_exact_at_any_rate(rate_hz: float, rng: np.random.Generator) -> None:
    t = np.cumsum(rng.uniform(0.8, 1.2, 300) * 1000.0 / rate_hz)  # jittered
    x = 2.0 + 0.01 * (t - t[0]) + 2e-6 * (t - t[0]) ** 2  # degrees; 10 °/s plus an acceleration
    out = [s for s in _run(t, x, np.zeros_like(x)) if s is not None]
    expected = (0.01 + 4e-6 * (t - t[0])) * 1000.0
    # The first and last sample of a segment have one neighbour at 60 Hz: a straight line there.
    np.testing.assert_allclose([s.velocity_deg_s for s in out][1:-1], expected[1:-1], rtol=1e-6)
    np.testing.assert_allclose([s.x_deg for s in out], x, atol=1e-9)


def test_emits_half_a_window_late_and_flushes_the_rest() -> None:
    f = SavitzkyGolayFilter(window_ms=20.0)
    emitted = [len(f.push(float(t), 0.0, 0.0, 0.0, 0.0, True)) for t in range(0, 30)]  # 1 kHz
    assert emitted[:10] == [0] * 10 and emitted[10:] == [1] * 20  # sample k leaves when k + 10 arrives
    rest = f.flush()
    assert len(rest) == 11 and rest[-1] is None
    assert [s.t_ms for s in rest[:-1] if s is not None] == [float(t) for t in range(20, 30)]


def test_short_data_loss_is_bridged_and_a_blink_ends_the_segment() -> None:
    f = SavitzkyGolayFilter(window_ms=20.0, max_gap_ms=75.0)
    out: list[FilteredSample | None] = []
    for t in range(0, 400, 4):
        lost = 100 <= t < 150  # 50 ms: bridged
        blink = 250 <= t < 350  # 100 ms: ends the segment
        out += f.push(float(t), 0.0, 0.0, 1.0, 1.0, not (lost or blink))
    out += f.flush()
    breaks = [i for i, s in enumerate(out) if s is None]
    assert len(breaks) == 2 and breaks[-1] == len(out) - 1
    assert out[breaks[0] - 1] is not None and out[breaks[0] - 1].t_ms == 248.0
    assert all(s is None or s.velocity_deg_s == pytest.approx(0.0, abs=1e-9) for s in out)
    filled = [s for s in out if s is not None and s.filled]
    assert [s.t_ms for s in filled] == [float(t) for t in range(100, 150, 4)]  # the short loss only
    assert all(math.isnan(s.x_screen_px) and s.x_deg == 1.0 for s in filled)


def test_data_loss_is_filled_in_linearly_between_its_valid_neighbours() -> None:
    f = SavitzkyGolayFilter(window_ms=4.0, max_gap_ms=75.0)
    out: list[FilteredSample | None] = []
    for t in range(0, 40, 2):
        x = 0.1 * t  # 100 °/s
        out += f.push(float(t), x, 0.0, x, 0.0, not 10 <= t < 20)
    out += f.flush()
    samples = [s for s in out if s is not None]
    assert [s.t_ms for s in samples] == [float(t) for t in range(0, 40, 2)]
    np.testing.assert_allclose([s.x_deg for s in samples], [0.1 * t for t in range(0, 40, 2)], atol=1e-9)
    np.testing.assert_allclose([s.velocity_deg_s for s in samples], 100.0, rtol=1e-9)


def test_a_lone_sample_has_no_velocity() -> None:
    f = SavitzkyGolayFilter()
    assert f.push(0.0, 1.0, 2.0, 0.1, 0.2, True) == []
    (lone, end) = f.flush()
    assert lone is not None and end is None
    assert math.isnan(lone.velocity_deg_s) and (lone.x_screen_px, lone.x_deg) == (1.0, 0.1)


@pytest.mark.parametrize("option", ["window_ms", "max_gap_ms"])
def test_rejects_non_positive_options(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        SavitzkyGolayFilter(**{option: 0.0})
