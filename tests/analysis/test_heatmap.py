"""Tests for analysis.heatmap: the RBDM §5.3.2 formula against slow references, and its invariants."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

import analysis.heatmap
from analysis.heatmap import gaze_heatmap, relevance_heatmap, top_n_points

Floats = NDArray[np.float64]


# --- slow, obvious references ------------------------------------------------------------------


def per_pixel_heatmap(
    points: Floats,
    shape: tuple[int, int],
    c: float,
    weights: Floats | None = None,
    radius: float | None = None,
) -> Floats:
    """I(x, y) = Σ_n w_n · exp(-((x - f_nx)² + (y - f_ny)²) / 2c²), pixel by pixel, fixation by fixation."""
    height, width = shape
    heat = np.zeros(shape)
    for row in range(height):
        for col in range(width):
            total = 0.0
            for n, (fx, fy) in enumerate(points.tolist()):
                d2 = (col - fx) ** 2 + (row - fy) ** 2
                if radius is not None and d2 > radius**2:
                    continue
                weight = 1.0 if weights is None else float(weights[n])
                total += weight * math.exp(-d2 / (2 * c**2))
            heat[row, col] = total
    return heat


def vectorised_heatmap(
    points: Floats,
    shape: tuple[int, int],
    c: float,
    weights: Floats | None = None,
    radius: float | None = None,
) -> Floats:
    """The same formula evaluated over the whole pixel grid, one fixation at a time."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    heat = np.zeros(shape)
    for n, (fx, fy) in enumerate(points):
        d2 = (cols - fx) ** 2 + (rows - fy) ** 2
        term = (1.0 if weights is None else weights[n]) * np.exp(-d2 / (2 * c**2))
        if radius is not None:
            term[d2 > radius**2] = 0.0
        heat += term
    return heat


def ranked_pixels(relevance: Floats) -> list[int]:
    """Row-major indices by relevance descending, ties by index ascending."""
    flat = relevance.ravel().tolist()
    return sorted(range(len(flat)), key=lambda i: (-flat[i], i))


def assert_float32_equal(actual: NDArray[np.float32], expected: Floats) -> None:
    """Equal to the float64 reference up to float32 rounding (a few ulps; subnormals absolutely)."""
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=4e-7, atol=1e-42)


@pytest.fixture(params=["dense", "split"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a truncated-heatmap test through both evaluation strategies."""
    monkeypatch.setattr(analysis.heatmap, "_DENSE_TERMS", 1 << 40 if request.param == "dense" else 0)
    yield request.param


# --- gaze_heatmap against the formula ----------------------------------------------------------


@pytest.mark.parametrize("radius", [None, 6.5, 11.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_the_per_pixel_formula(
    rng: np.random.Generator, path: str, radius: float | None, weighted: bool
) -> None:
    shape = (17, 23)
    points = np.vstack([rng.uniform(-6, 29, size=(6, 2)), [[3.0, 4.0], [22.0, 0.0], [-4.0, 8.5]]])
    weights = rng.uniform(0, 300, size=len(points)) if weighted else None
    expected = per_pixel_heatmap(points, shape, 3.2, weights, radius)
    assert_float32_equal(gaze_heatmap(points, shape, 3.2, weights=weights, radius=radius), expected)


@pytest.mark.parametrize("radius", [None, 9.0, 40.0, 400.0])
def test_equals_the_vectorised_formula_on_a_larger_map(
    rng: np.random.Generator, path: str, radius: float | None
) -> None:
    shape = (131, 157)
    points = rng.uniform(-30, 180, size=(40, 2))
    weights = rng.uniform(50, 600, size=40)
    expected = vectorised_heatmap(points, shape, 7.5, weights, radius)
    assert_float32_equal(gaze_heatmap(points, shape, 7.5, weights=weights, radius=radius), expected)


def test_equals_the_formula_at_the_paper_scale(rng: np.random.Generator) -> None:
    """1200 × 1200 px, c = 0.17 · visual span and the span as radius (RBDM §5.3.2)."""
    span = 261.79
    points = rng.uniform(0, 1200, size=(12, 2))
    for radius in (None, span):
        expected = vectorised_heatmap(points, (1200, 1200), 0.17 * span, radius=radius)
        assert_float32_equal(gaze_heatmap(points, (1200, 1200), 0.17 * span, radius=radius), expected)


@given(
    points=arrays(np.float64, st.tuples(st.integers(1, 5), st.just(2)), elements=st.floats(-8, 30)),
    c=st.floats(0.3, 8.0),
    radius=st.none() | st.floats(0.2, 20.0),
)
def test_equals_the_formula_for_any_points(points: Floats, c: float, radius: float | None) -> None:
    shape = (13, 19)
    expected = vectorised_heatmap(points, shape, c, radius=radius)
    original = analysis.heatmap._DENSE_TERMS
    for dense_terms in (1 << 40, 0):
        analysis.heatmap._DENSE_TERMS = dense_terms
        try:
            assert_float32_equal(gaze_heatmap(points, shape, c, radius=radius), expected)
        finally:
            analysis.heatmap._DENSE_TERMS = original


def test_equals_the_formula_for_huge_radii_and_far_points(path: str) -> None:
    """Radii and coordinates beyond 1e6 px take the strips' wide (unnarrowed) layout."""
    points = np.array([[-1.5e6, 20.0], [10.0, 2.1e6], [12.0, 7.0]])
    for radius in (2.0e6, 2.2e6):
        expected = vectorised_heatmap(points, (24, 30), 1.0e6, radius=radius)
        assert_float32_equal(gaze_heatmap(points, (24, 30), 1.0e6, radius=radius), expected)


# --- the radius cut-off --------------------------------------------------------------------------


@given(
    x=st.floats(-5, 45),
    y=st.floats(-5, 35),
    radius=st.floats(0.5, 25.0),
    ratio=st.floats(1.0, 8.0),
)
def test_radius_cut_off_is_exact(x: float, y: float, radius: float, ratio: float) -> None:
    """Zero exactly where (x - f_x)² + (y - f_y)² > r², positive on the disk (no underflow at r/c <= 8)."""
    shape = (31, 41)
    heat = gaze_heatmap([[x, y]], shape, radius / ratio, radius=radius)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside = (cols - x) ** 2 + (rows - y) ** 2 <= radius**2
    np.testing.assert_array_equal(heat > 0, inside)


def test_radius_cut_off_on_integer_grids_includes_the_circle(path: str) -> None:
    """Pixels exactly at distance r (a 3-4-5 triangle) are inside; one step further they are not."""
    heat = gaze_heatmap([[10.0, 10.0]], (21, 21), 2.0, radius=5.0)
    assert heat[10 + 4, 10 + 3] > 0 and heat[10 - 3, 10 - 4] > 0 and heat[10, 15] > 0
    assert heat[10, 16] == 0 and heat[10 + 4, 10 + 4] == 0


@pytest.mark.parametrize("k", [1, 3, 8])
def test_radius_just_below_a_square_diagonal(path: str, k: int) -> None:
    """r one ulp below k·√2: the square's corner pixels (±k, ±k) fall just outside the disk."""
    radius = float(np.nextafter(math.sqrt(2.0) * k, 0.0))
    points = np.array([[10.0, 10.0], [10.5, 10.25], [3.0, 17.0]])
    heat = gaze_heatmap(points, (21, 23), 1.5, radius=radius)
    assert_float32_equal(heat, vectorised_heatmap(points, (21, 23), 1.5, radius=radius))
    alone = gaze_heatmap(points[:1], (21, 23), 1.5, radius=radius)
    assert (alone[10 + k, 10 + k] > 0) == ((k**2 + k**2) <= radius**2)


@pytest.mark.parametrize("radius", [3.0, 12.0])
def test_union_of_disks_is_the_support(rng: np.random.Generator, path: str, radius: float) -> None:
    points = rng.uniform(0, 60, size=(25, 2))
    heat = gaze_heatmap(points, (60, 60), radius / 4, radius=radius)
    rows, cols = np.mgrid[0:60, 0:60]
    d2 = (cols[None] - points[:, 0, None, None]) ** 2 + (rows[None] - points[:, 1, None, None]) ** 2
    np.testing.assert_array_equal(heat > 0, (d2 <= radius**2).any(axis=0))


# --- invariants ----------------------------------------------------------------------------------


@given(
    points=arrays(np.float64, st.tuples(st.integers(0, 8), st.just(2)), elements=st.floats(-50, 80)),
    c=st.floats(0.1, 30.0),
    radius=st.none() | st.floats(0.1, 60.0),
    weights_seed=st.integers(0, 10),
)
def test_heatmap_is_finite_non_negative_float32_of_the_requested_shape(
    points: Floats, c: float, radius: float | None, weights_seed: int
) -> None:
    weights = np.random.default_rng(weights_seed).uniform(0, 5, size=len(points))
    heat = gaze_heatmap(points, (24, 33), c, weights=weights, radius=radius)
    assert heat.shape == (24, 33) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and (heat >= 0).all()


@given(
    points=arrays(np.int64, st.tuples(st.integers(1, 6), st.just(2)), elements=st.integers(-80, 400)),
    shift=st.tuples(st.integers(0, 12), st.integers(0, 12)),
    radius=st.none() | st.floats(1.0, 9.0),
)
def test_heatmap_moves_with_the_points(
    points: NDArray[np.int64], shift: tuple[int, int], radius: float | None
) -> None:
    """Shifting every point by (dx, dy) shifts the map by dx columns and dy rows (eighth-pixel points)."""
    dx, dy = shift
    xy = points / 8.0
    shape = (40, 48)
    base = gaze_heatmap(xy, shape, 2.5, radius=radius)
    moved = gaze_heatmap(xy + np.array([dx, dy]), shape, 2.5, radius=radius)
    overlap = moved[dy:, dx:], base[: shape[0] - dy, : shape[1] - dx]
    np.testing.assert_allclose(*overlap, rtol=4e-7, atol=1e-42)
    np.testing.assert_array_equal(overlap[0] > 0, overlap[1] > 0)


@given(
    scale=st.floats(0.0, 1e3),
    radius=st.none() | st.floats(1.0, 15.0),
)
def test_weights_scale_linearly(scale: float, radius: float | None) -> None:
    rng = np.random.default_rng(7)
    points, w1, w2 = rng.uniform(-5, 35, size=(7, 2)), rng.uniform(0, 2, 7), rng.uniform(0, 2, 7)
    heat = gaze_heatmap(points, (28, 32), 3.0, weights=w1, radius=radius).astype(np.float64)
    scaled = gaze_heatmap(points, (28, 32), 3.0, weights=scale * w1, radius=radius)
    np.testing.assert_allclose(scaled, scale * heat, rtol=1e-6, atol=1e-40)
    both = gaze_heatmap(points, (28, 32), 3.0, weights=w1 + w2, radius=radius)
    second = gaze_heatmap(points, (28, 32), 3.0, weights=w2, radius=radius)
    np.testing.assert_allclose(both, heat + second, rtol=1e-6, atol=1e-40)


def test_unit_weights_equal_no_weights(rng: np.random.Generator) -> None:
    points = rng.uniform(0, 30, size=(9, 2))
    np.testing.assert_array_equal(
        gaze_heatmap(points, (30, 30), 2.0, weights=np.ones(9)), gaze_heatmap(points, (30, 30), 2.0)
    )


def test_one_fixation_peaks_at_one_on_its_pixel() -> None:
    heat = gaze_heatmap([[7.0, 3.0]], (10, 12), 1.5)
    assert heat[3, 7] == 1.0
    assert [int(i) for i in np.unravel_index(np.argmax(heat), heat.shape)] == [3, 7]
    assert heat[3, 8] == pytest.approx(math.exp(-1 / (2 * 1.5**2)))


def test_no_fixations_give_an_all_zero_map() -> None:
    cases: list[object] = [[], np.zeros((0, 2))]
    for points in cases:
        heat = gaze_heatmap(points, (5, 7), 2.0, radius=3.0)  # type: ignore[arg-type]
        assert heat.shape == (5, 7) and heat.dtype == np.float32 and not heat.any()


def test_points_outside_the_image_contribute_their_tails(path: str) -> None:
    heat = gaze_heatmap([[-3.0, 4.0]], (9, 9), 2.0, radius=5.0)
    assert heat[4, 0] == pytest.approx(math.exp(-9 / 8), rel=1e-6)
    assert heat[4, 2] > 0 and heat[4, 3] == 0  # distance 5 is in, 6 is out
    far = gaze_heatmap([[-1e6, 5e5]], (9, 9), 2.0)
    assert not far.any()


def test_inputs_are_not_modified(rng: np.random.Generator) -> None:
    points, weights = rng.uniform(0, 20, size=(5, 2)), rng.uniform(0, 1, 5)
    before = points.copy(), weights.copy()
    gaze_heatmap(points, (20, 20), 2.0, weights=weights, radius=6.0)
    np.testing.assert_array_equal(points, before[0])
    np.testing.assert_array_equal(weights, before[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"c": 0.0}, ValueError, "c must"),
        ({"c": float("nan")}, ValueError, "c must"),
        ({"c": -1.0}, ValueError, "c must"),
        ({"radius": 0.0}, ValueError, "radius must"),
        ({"radius": float("inf")}, ValueError, "radius must"),
        ({"weights": [1.0, 2.0]}, ValueError, "one value per point"),
        ({"weights": [1.0, -2.0, 1.0]}, ValueError, ">= 0"),
        ({"weights": [1.0, float("nan"), 1.0]}, ValueError, "finite"),
        ({"points": [[1.0, 2.0, 3.0]]}, ValueError, "points must"),
        ({"points": [[1.0, float("nan")]]}, ValueError, "finite"),
        ({"shape": (0, 5)}, ValueError, "shape must"),
        ({"shape": (5,)}, ValueError, "shape must"),
        ({"c": "2"}, TypeError, "c must"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    arguments: dict[str, object] = {"points": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "shape": (8, 8), "c": 2.0}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        gaze_heatmap(**arguments)  # type: ignore[arg-type]


# --- top_n_points --------------------------------------------------------------------------------


@given(
    relevance=arrays(
        np.float64, st.tuples(st.integers(1, 7), st.integers(1, 7)), elements=st.integers(-3, 3).map(float)
    ),
    data=st.data(),
)
def test_top_n_points_are_the_most_relevant_with_deterministic_ties(
    relevance: Floats, data: st.DataObject
) -> None:
    n = data.draw(st.integers(0, relevance.size))
    points = top_n_points(relevance, n)
    expected = [divmod(i, relevance.shape[1]) for i in ranked_pixels(relevance)[:n]]
    assert points.shape == (n, 2) and points.dtype == np.float64
    assert [(int(y), int(x)) for x, y in points] == expected


def test_top_n_points_are_x_column_y_row() -> None:
    relevance = np.zeros((4, 6))
    relevance[1, 5] = 2.0
    relevance[3, 0] = 1.0
    np.testing.assert_array_equal(top_n_points(relevance, 2), [[5.0, 1.0], [0.0, 3.0]])


def test_top_n_points_on_a_constant_map_take_the_first_pixels_in_reading_order() -> None:
    np.testing.assert_array_equal(
        top_n_points(np.full((3, 4), 0.5), 5), [[0, 0], [1, 0], [2, 0], [3, 0], [0, 1]]
    )


def test_top_n_points_treat_signed_zeros_as_ties() -> None:
    relevance = np.array([[0.0, -0.0], [-0.0, 0.0]])
    np.testing.assert_array_equal(top_n_points(relevance, 4), [[0, 0], [1, 0], [0, 1], [1, 1]])


def test_top_n_points_accept_any_numeric_map() -> None:
    relevance = np.array([[1, 5], [3, 5]], dtype=np.int32)
    np.testing.assert_array_equal(top_n_points(relevance, 3), [[1, 0], [1, 1], [0, 1]])


def test_top_n_points_refuse_more_points_than_pixels() -> None:
    with pytest.raises(ValueError, match="must not exceed the number of pixels"):
        top_n_points(np.zeros((2, 3)), 7)


@pytest.mark.parametrize(("n", "error"), [(-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_top_n_points_refuse_bad_counts(n: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="n must"):
        top_n_points(np.zeros((3, 3)), n)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_top_n_points_refuse_non_finite_maps(bad: float) -> None:
    relevance = np.zeros((3, 3))
    relevance[1, 1] = bad
    with pytest.raises(ValueError, match="finite"):
        top_n_points(relevance, 1)


def test_relevance_heatmap_centres_on_the_most_relevant_pixels() -> None:
    relevance = np.zeros((30, 30))
    relevance[5, 7] = 3.0
    relevance[20, 22] = 2.0
    relevance[0, 0] = -1.0
    heat = relevance_heatmap(relevance, 2, 1.5, radius=4.0)
    expected = gaze_heatmap([[7.0, 5.0], [22.0, 20.0]], (30, 30), 1.5, radius=4.0)
    np.testing.assert_array_equal(heat, expected)
    assert heat[5, 7] == pytest.approx(1.0) and heat[0, 0] == 0.0 and heat[12, 12] == 0.0
    assert not relevance_heatmap(relevance, 0, 1.5).any()


@pytest.mark.parametrize("n", [1, 15, 231, 2000, 4608, 9000])
def test_top_n_points_on_large_maps_equal_a_full_sort(n: int, rng: np.random.Generator) -> None:
    """Large maps choose among candidates read off a strided sample; a full sort is the oracle,
    also on maps whose largest values all lie on the sample grid or all off it."""
    flat = np.arange(96 * 96)
    candidates = [
        rng.normal(size=(96, 96)),
        np.round(rng.normal(size=(96, 96)), 1),
        np.where(flat % 16 == 0, 10.0 + flat / flat.size, -flat / flat.size).reshape(96, 96),
        np.where(flat % 16 == 7, 5.0, 0.0).reshape(96, 96),
        np.zeros((96, 96)),
    ]
    for relevance in candidates:
        order = sorted(range(flat.size), key=lambda i: (-relevance.ravel()[i], i))[:n]
        rows, cols = np.divmod(np.array(order), 96)
        np.testing.assert_array_equal(top_n_points(relevance, n), np.column_stack([cols, rows]))
