"""Tests for analysis.paired_statistics against hand-computed values and the textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.paired_statistics import (
    PairedDifference,
    holm,
    mean_ci,
    paired_difference,
    verdict,
)


def _t3_cdf(t: float) -> float:
    """Student's t CDF with 3 degrees of freedom, in closed form (the oracle for df = 3)."""
    u = t / math.sqrt(3)
    return 0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi


def test_mean_ci_by_hand() -> None:
    ci = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t_{0.975, 4} · s / √n
    assert ci.mean == 3 and ci.n == 5
    assert ci.low == pytest.approx(3 - half) and ci.high == pytest.approx(3 + half)
    assert ci.high - ci.low == pytest.approx(3.926486, abs=1e-6)
    single = mean_ci([0.4])
    assert single.mean == 0.4 and math.isnan(single.low) and math.isnan(single.high)
    flat = mean_ci([0.2, 0.2, 0.2])
    assert flat.low == pytest.approx(0.2) and flat.high == pytest.approx(0.2)


def test_the_paired_t_test_by_hand() -> None:
    variant, baseline = [0.5, 0.6, 0.7, 0.8], [0.4, 0.4, 0.5, 0.5]
    # d = 0.1, 0.2, 0.2, 0.3: mean 0.2, sd √(0.02/3), t = 0.2 / (sd/2) = 4.89898 with 3 df
    difference = paired_difference(variant, baseline)
    sd = math.sqrt(0.02 / 3)
    t = 0.2 / (sd / 2)
    assert difference.mean == pytest.approx(0.2) and difference.n == 4
    assert difference.p == pytest.approx(2 * (1 - _t3_cdf(t)), rel=1e-9)
    assert difference.p == pytest.approx(0.01627, abs=1e-5)
    half = 3.182446305284263 * sd / 2
    assert (difference.low, difference.high) == pytest.approx((0.2 - half, 0.2 + half))
    # the pairing matters: the same numbers unpaired would differ in spread, not in the mean
    swapped = paired_difference(baseline, variant)
    assert swapped.mean == pytest.approx(-0.2) and swapped.p == pytest.approx(difference.p)


def test_degenerate_pairs_have_documented_answers() -> None:
    same = paired_difference([0.3, 0.4, 0.5], [0.3, 0.4, 0.5])
    assert same.mean == 0 and same.p == 1.0
    shifted = paired_difference([0.4, 0.5, 0.6], [0.3, 0.4, 0.5])
    assert shifted.mean == pytest.approx(0.1) and shifted.p == 0.0
    one = paired_difference([0.4], [0.3])
    assert one.n == 1 and math.isnan(one.p)
    with pytest.raises(ValueError, match="one value per seed each"):
        paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="censored"):
        paired_difference([np.nan, 0.2], [0.1, 0.2])


def test_holm_by_hand() -> None:
    # sorted 0.01·4 = 0.04, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.5·1
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm([0.3, 0.2]), [0.4, 0.4])
    adjusted = holm([0.01, np.nan, 0.02])  # NaN is not a test: m = 2
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.02])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(holm([0.6, 0.9]), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_verdicts_in_plain_words() -> None:
    faster = PairedDifference(0.04, 0.02, 0.06, 0.004, 5)
    assert verdict(faster, 0.01) == "accelerates learning: AULC +0.040 [0.020, 0.060], p = 0.01"
    slower = PairedDifference(-0.04, -0.06, -0.02, 0.001, 5)
    assert verdict(slower, 0.003).startswith("slower: AULC -0.040")
    unsure = PairedDifference(0.01, -0.02, 0.04, 0.3, 5)
    assert verdict(unsure, 0.6).startswith("no detectable difference (AULC +0.010")
    steps = PairedDifference(-150.0, -200.0, -100.0, 0.001, 5)
    assert verdict(steps, 0.002, measure="steps to 90 %", higher_is_better=False).startswith(
        "accelerates learning: steps to 90 % -150"
    )
    assert verdict(faster, float("nan")).startswith("no detectable difference")
