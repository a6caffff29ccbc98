"""Tests for analysis.learning_speed against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.learning_speed import normalised_aulc, steps_to_reach


def test_steps_to_reach_is_the_first_point_at_or_above_the_threshold() -> None:
    steps, f1 = [10, 20, 30, 40], [0.1, 0.35, 0.3, 0.5]
    assert steps_to_reach(steps, f1, 0.3) == 20
    assert steps_to_reach(steps, f1, 0.35) == 20  # reaching it exactly counts
    assert steps_to_reach(steps, f1, 0.4) == 40
    assert steps_to_reach(steps, f1, 0.05) == 10
    assert steps_to_reach(steps, f1, 0.51) is None  # "never"


def test_the_normalised_area_by_hand() -> None:
    steps, f1 = [0, 10, 20, 30], [0.0, 0.2, 0.4, 0.4]
    # trapezoids over [0, 20]: 10·(0 + 0.2)/2 + 10·(0.2 + 0.4)/2 = 1 + 3 = 4; divided by 20
    assert normalised_aulc(steps, f1, k_steps=20) == pytest.approx(0.2)
    # K = 25 falls between points: the curve is 0.4 there; + 5·0.4 = 2 → 6 / 25
    assert normalised_aulc(steps, f1, k_steps=25) == pytest.approx(0.24)
    # a curve starting at step 10: area over [10, 30] = 3 + 4 = 7, divided by 20
    assert normalised_aulc(steps[1:], f1[1:], k_steps=30) == pytest.approx(0.35)
    assert normalised_aulc([5], [0.7], k_steps=5) == pytest.approx(0.7)


def test_a_window_outside_the_curve_and_bad_curves_are_refused() -> None:
    with pytest.raises(ValueError, match="k_steps must lie within"):
        normalised_aulc([10, 20], [0.1, 0.2], k_steps=30)
    with pytest.raises(ValueError, match="strictly increasing"):
        steps_to_reach([10, 10], [0.1, 0.2], 0.1)
    with pytest.raises(ValueError, match="one score per step"):
        steps_to_reach([10, 20], [0.1], 0.1)
    with pytest.raises(ValueError, match="finite"):
        steps_to_reach([10, 20], [0.1, np.nan], 0.1)


@given(st.lists(st.floats(0, 1), min_size=2, max_size=12), st.floats(0, 1))
def test_the_area_of_a_curve_lies_between_its_lowest_and_highest_score(
    scores: list[float], at: float
) -> None:
    steps = np.arange(len(scores)) * 5 + 5
    k = float(steps[0] + at * (steps[-1] - steps[0]))
    area = normalised_aulc(steps, scores, k_steps=k)
    assert min(scores) - 1e-12 <= area <= max(scores) + 1e-12
    lifted = normalised_aulc(steps, np.asarray(scores) + 0.5, k_steps=k)
    assert lifted == pytest.approx(area + 0.5)
