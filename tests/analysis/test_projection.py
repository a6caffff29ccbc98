"""Tests for analysis.projection: the Top-X-Relevance Projection of TP §3.5 against a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from analysis.projection import top_x_mask, top_x_relevance

Floats = NDArray[np.float64]

maps = arrays(
    np.float64,
    st.tuples(st.integers(1, 10), st.integers(1, 10)),
    elements=st.floats(-10, 10, allow_subnormal=False) | st.sampled_from([0.0, 1.0, 2.0]),
)
portions = st.floats(0.0, 1.0, exclude_min=True)


def reference_top_x(relevance: Floats, x: float) -> Floats:
    """Drop negatives; walk the pixels from most to least relevant (ties in reading order), adding
    their relevance one at a time, and stop at the first pixel where the sum reaches x of the mass."""
    flat = relevance.ravel().tolist()
    order = sorted((i for i, v in enumerate(flat) if v > 0), key=lambda i: (-flat[i], i))
    running, partial_sums = 0.0, []
    for i in order:
        running += flat[i]
        partial_sums.append(running)
    projection = np.zeros(len(flat))
    for i, partial in zip(order, partial_sums, strict=True):
        projection[i] = flat[i]
        if partial >= x * running:
            break
    return projection.reshape(relevance.shape)


@given(relevance=maps, x=portions)
def test_projection_is_the_reference(relevance: Floats, x: float) -> None:
    np.testing.assert_array_equal(top_x_relevance(relevance, x=x), reference_top_x(relevance, x))
    np.testing.assert_array_equal(top_x_mask(relevance, x=x), reference_top_x(relevance, x) > 0)


@given(relevance=maps, x=portions)
def test_projection_keeps_the_minimal_most_relevant_set_reaching_x(relevance: Floats, x: float) -> None:
    mask = top_x_mask(relevance, x=x)
    positive = relevance > 0
    mass = relevance[positive].sum()
    assert mask.dtype == np.bool_ and mask.shape == relevance.shape
    assert not (mask & ~positive).any()
    if not positive.any():
        assert not mask.any()
        return
    kept = np.sort(relevance[mask])[::-1]
    assert np.cumsum(kept)[-1] >= x * mass * (1 - 1e-12)  # reaches x of the mass
    if kept.size > 1:
        assert np.cumsum(kept)[-2] < x * mass * (1 + 1e-12)  # one pixel fewer would not
    left_out = relevance[positive & ~mask]
    if left_out.size:
        assert kept[-1] >= left_out.max()  # the most relevant ones


@given(relevance=maps, x=portions)
def test_kept_pixels_keep_their_relevance_and_the_rest_is_zero(relevance: Floats, x: float) -> None:
    projection = top_x_relevance(relevance, x=x)
    mask = top_x_mask(relevance, x=x)
    assert projection.dtype == np.float64 and (projection >= 0).all()
    np.testing.assert_array_equal(projection[mask], relevance[mask])
    assert not projection[~mask].any()


@given(relevance=maps, x1=portions, x2=portions)
def test_a_larger_portion_keeps_a_superset(relevance: Floats, x1: float, x2: float) -> None:
    small, large = sorted((x1, x2))
    assert not (top_x_mask(relevance, x=small) & ~top_x_mask(relevance, x=large)).any()


def test_top_25_of_a_small_example() -> None:
    relevance = np.array([[4.0, -9.0, 1.0], [3.0, 2.0, 0.0]])  # mass 10: 4 alone is 40 %
    np.testing.assert_array_equal(top_x_relevance(relevance), [[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_x_relevance(relevance, x=0.5), [[4.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_x_relevance(relevance, x=0.4), [[4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_x_relevance(relevance, x=1.0), [[4.0, 0.0, 1.0], [3.0, 2.0, 0.0]])


def test_ties_at_the_cut_are_taken_in_reading_order() -> None:
    relevance = np.ones((2, 4))
    np.testing.assert_array_equal(
        top_x_mask(relevance, x=0.3), np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    )


@pytest.mark.parametrize("relevance", [np.zeros((3, 4)), -np.ones((3, 4)), np.array([[-1.0, 0.0]])])
def test_no_positive_relevance_gives_an_all_zero_projection(relevance: Floats) -> None:
    assert not top_x_relevance(relevance).any()
    assert not top_x_mask(relevance).any()


def test_projection_does_not_modify_its_input(rng: np.random.Generator) -> None:
    relevance = rng.normal(size=(8, 8))
    before = relevance.copy()
    top_x_relevance(relevance, x=0.1)
    np.testing.assert_array_equal(relevance, before)


@pytest.mark.parametrize(
    ("x", "error"),
    [
        (0.0, ValueError),
        (-0.2, ValueError),
        (1.01, ValueError),
        (25, ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
    ],
)
def test_bad_portions_are_refused(x: float, error: type[Exception]) -> None:
    with pytest.raises(error, match="x must"):
        top_x_relevance(np.ones((2, 2)), x=x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_relevance_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        top_x_mask(np.array([[1.0, bad]]))
