"""Tests for analysis.masking: the m_i definitions of RBDM §5.4 written out literally, and invariants."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from analysis.heatmap import gaze_heatmap
from analysis.masking import MASKS, apply_mask, mean_mask, negative_mask, perceptive_mask

Floats = NDArray[np.float64]

#: One set of options per mask, so that every mask is called the way the CLI calls it.
MASK_OPTIONS: dict[str, dict[str, Any]] = {
    "negative": {"fraction": 0.10},
    "mean": {},
    "perceptive": {"n_points": 3, "c": 1.0, "radius": 2.5},
}

maps = arrays(
    np.float64,
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    elements=st.floats(-1e3, 1e3, allow_subnormal=False),
)
any_finite_maps_early = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(1, 8)),
    elements=st.floats(allow_nan=False, allow_infinity=False),
)
tie_heavy_maps = arrays(
    np.float64,
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
)


# --- literal m_i definitions -------------------------------------------------------------------


def ranked_pixels(relevance: Floats) -> list[int]:
    """Row-major indices by relevance descending, ties by index ascending."""
    flat = relevance.ravel().tolist()
    return sorted(range(len(flat)), key=lambda i: (-flat[i], i))


def reference_negative(relevance: Floats, fraction: float) -> NDArray[np.bool_]:
    """m_i = 0 if R_i is among the top ⌈fraction · N⌉ of all R_i (ties in reading order), 1 if not."""
    mask = np.ones(relevance.size, dtype=bool)
    mask[ranked_pixels(relevance)[: math.ceil(fraction * relevance.size)]] = False
    return mask.reshape(relevance.shape)


def exact_mean(relevance: Floats) -> Fraction:
    """(Σ_i R_i) / N in exact rational arithmetic."""
    return sum((Fraction(v) for v in relevance.ravel().tolist()), Fraction(0)) / relevance.size


def reference_perceptive(relevance: Floats, n_points: int, radius: float) -> NDArray[np.bool_]:
    """m_i = 1 if I_i > 0, with I the heatmap of the n most relevant pixels cut at the radius."""
    height, width = relevance.shape
    centres = [divmod(i, width) for i in ranked_pixels(relevance)[:n_points]]
    mask = np.zeros(relevance.shape, dtype=bool)
    for row in range(height):
        for col in range(width):
            mask[row, col] = any((col - x) ** 2 + (row - y) ** 2 <= radius**2 for y, x in centres)
    return mask


# --- the implementation before issue 22, kept as the oracle of the vectorised masks -------------


def previous_top_indices(flat: Floats, k: int) -> NDArray[np.intp]:
    """The k largest by a full partition: value descending, index ascending."""
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    cut = flat.size - k
    threshold = np.partition(flat, cut)[cut]
    above = np.flatnonzero(flat > threshold)
    tied = np.flatnonzero(flat == threshold)[: k - above.size]
    chosen = np.concatenate([above, tied])
    ranked: NDArray[np.intp] = chosen[np.lexsort((chosen, -flat[chosen]))]
    return ranked


def previous_negative(relevance: Floats, fraction: float) -> NDArray[np.bool_]:
    mask = np.ones(relevance.size, dtype=bool)
    mask[previous_top_indices(relevance.ravel(), math.ceil(fraction * relevance.size))] = False
    return mask.reshape(relevance.shape)


def previous_mean(values: Floats) -> NDArray[np.bool_]:
    """Fast sum, its error bound from Σ|R_i|, and math.fsum for the pixels within the bound."""
    eps = float(np.finfo(np.float64).eps)
    magnitudes = np.abs(values)
    if float(magnitudes.max()) > 2.0**500:
        scale = -math.frexp(float(magnitudes.max()))[1]
        values, magnitudes = np.ldexp(values, scale), np.ldexp(magnitudes, scale)
    count = values.size
    scaled = values * count
    total = float(np.sum(values))
    bound = 2.0 * count * eps * float(np.sum(magnitudes)) + 4.0 * count * 2.0**-1074
    keep = scaled >= total
    unsure = np.abs(scaled - total) <= bound + eps * np.abs(scaled)
    if unsure.any():
        keep[unsure] = scaled[unsure] >= math.fsum(values.ravel().tolist())
    return keep


def previous_perceptive(relevance: Floats, n_points: int, c: float, radius: float) -> NDArray[np.bool_]:
    rows, cols = np.divmod(previous_top_indices(relevance.ravel(), n_points), relevance.shape[1])
    points = np.column_stack([cols, rows]).astype(np.float64)
    return gaze_heatmap(points, relevance.shape, c, radius=radius) > 0


def previous(name: str, relevance: Floats, options: dict[str, Any]) -> NDArray[np.bool_]:
    if name == "negative":
        return previous_negative(relevance, options.get("fraction", 0.10))
    if name == "mean":
        return previous_mean(relevance)
    return previous_perceptive(relevance, **options)


def smooth_maps(rng: np.random.Generator, count: int, size: int) -> Floats:
    """Relevance-like maps: a few blobs on a little noise, some rounded so that values tie."""
    rows, cols = np.mgrid[0:size, 0:size]
    maps = 0.05 * rng.normal(size=(count, size, size))
    for i in range(count):
        for _ in range(4):
            y, x, width = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1, max(2.0, size / 4))
            maps[i] += rng.normal() * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * width**2))
        if i % 3 == 0:
            maps[i] = np.round(maps[i], 1)
    return maps


def awkward_maps(size: int) -> Floats:
    """Maps that defeat a strided sample or tie everywhere: constant, zeros, stripes off the sample
    grid, the largest values all on it, a single spike, tiny and huge values."""
    flat = np.arange(size * size)
    off_grid = np.where(flat % 16 == 7, 5.0, 0.0).reshape(size, size)
    on_grid = np.where(flat % 16 == 0, 10.0 + flat / flat.size, -flat / flat.size).reshape(size, size)
    spike = np.zeros((size, size))
    spike[size // 2, size // 3] = 1.0
    return np.stack(
        [
            np.zeros((size, size)),
            np.full((size, size), 0.3),
            off_grid,
            -off_grid,
            on_grid,
            spike,
            np.ldexp(np.cos(flat).reshape(size, size), -1060),
            np.cos(flat).reshape(size, size) * 1e300,
            np.cos(flat).reshape(size, size) * 2.0**520,
        ]
    )


STACK_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "negative": [{"fraction": 0.10}, {"fraction": 0.003}, {"fraction": 0.6}],
    "mean": [{}],
    "perceptive": [
        {"n_points": 15, "c": 44.505 * 224 / 1200, "radius": 261.79 * 224 / 1200},
        {"n_points": 15, "c": 44.505 * 64 / 1200, "radius": 261.79 * 64 / 1200},
        {"n_points": 40, "c": 1.0, "radius": 3.3},
        {"n_points": 3, "c": 2.0, "radius": 40.0},  # radius / c = 20: Gaussians underflow float32
        {"n_points": 2, "c": 5.0, "radius": 500.0},
    ],
}


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("size", [7, 48, 96])
def test_masks_of_a_stack_equal_the_previous_implementation(
    name: str, size: int, rng: np.random.Generator
) -> None:
    stack = np.concatenate([smooth_maps(rng, 9, size), awkward_maps(size), rng.normal(size=(3, size, size))])
    for options in STACK_OPTIONS[name]:
        if name == "perceptive":
            options = options | {"n_points": min(options["n_points"], size * size)}
        masks = MASKS[name](stack, **options)
        assert masks.shape == stack.shape and masks.dtype == np.bool_
        for relevance, mask in zip(stack, masks, strict=True):
            expected = previous(name, relevance, options)
            np.testing.assert_array_equal(mask, expected)
            np.testing.assert_array_equal(MASKS[name](relevance, **options), expected)


@pytest.mark.parametrize("name", sorted(MASKS))
@given(relevance=maps | tie_heavy_maps | arrays(np.float64, (3, 5, 4), elements=st.floats(-1e3, 1e3)))
def test_masks_equal_the_previous_implementation(name: str, relevance: Floats) -> None:
    options = dict(MASK_OPTIONS[name])
    if name == "perceptive":
        options["n_points"] = min(options["n_points"], relevance.shape[-1] * relevance.shape[-2])
    stack = relevance if relevance.ndim == 3 else relevance[None]
    expected = np.stack([previous(name, r, options) for r in stack]).reshape(relevance.shape)
    np.testing.assert_array_equal(MASKS[name](relevance, **options), expected)


@given(relevance=any_finite_maps_early)
def test_mean_mask_equals_the_previous_implementation_on_any_finite_map(relevance: Floats) -> None:
    np.testing.assert_array_equal(mean_mask(relevance), previous_mean(relevance))
    np.testing.assert_array_equal(mean_mask(np.stack([relevance, relevance])), [previous_mean(relevance)] * 2)


def adversarial_stack(rng: np.random.Generator) -> Floats:
    """Maps (48 × 48) that need the exact check: pixels a few ulps around an exact mean, ties, constant,
    tiny (subnormal, or with squares that underflow), huge (> 2^500, or with squares that overflow) and
    extreme-but-finite maps, between plain random ones."""
    shape = (48, 48)
    maps = [rng.normal(size=shape) for _ in range(300)]
    near = rng.choice([-1.0, 1.0], size=shape)
    near[:, :8] = np.nextafter(0.0, rng.choice([-1.0, 1.0], size=(48, 8)))  # a few ulps around the mean 0
    near[0, 8:12] = [1.0, -1.0, np.nextafter(0.0, 1.0), -np.nextafter(0.0, 1.0)]
    ties = np.tile([-3.0, 0.0, 3.0], 48 * 16).reshape(shape)
    ramp = (np.arange(48 * 48, dtype=np.float64) % 7).reshape(shape)
    ulps = 1.0 + (rng.integers(-4, 5, size=shape) * np.finfo(np.float64).eps)
    extreme = rng.choice([np.finfo(np.float64).max, -np.finfo(np.float64).max, 0.0], size=shape)
    specials = [
        near,
        ties,
        ramp,
        ulps,
        np.full(shape, 0.1),
        np.zeros(shape),
        np.full(shape, 5e-324),
        rng.normal(size=shape) * 1e-310,
        rng.normal(size=shape) * 2.0**600,
        rng.normal(size=shape) * 2.0**499,  # Σ R_i² overflows the masks' bound; R_i and Σ R_i do not
        rng.normal(size=shape) * 2.0**-540,  # every R_i² underflows
        extreme,
    ]
    for position, special in zip(
        rng.choice(len(maps), size=len(specials), replace=False), specials, strict=True
    ):
        maps[position] = special
    return np.stack(maps)


def test_mean_mask_of_a_stack_over_several_chunks_equals_the_previous_implementation(
    rng: np.random.Generator,
) -> None:
    """Adversarial maps among random ones, a stack longer than one chunk: same masks as map by map."""
    stack = adversarial_stack(rng)
    expected = np.stack([previous_mean(r) for r in stack])
    np.testing.assert_array_equal(mean_mask(stack), expected)
    np.testing.assert_array_equal([mean_mask(r) for r in stack], expected)
    big = rng.normal(size=(11, 224, 224))
    big[5] = np.round(big[5]) + 0.5 - 0.5  # many ties
    np.testing.assert_array_equal(mean_mask(big), np.stack([previous_mean(r) for r in big]))


@pytest.mark.parametrize("name", sorted(MASKS))
def test_masks_of_an_empty_stack_are_an_empty_stack(name: str) -> None:
    masks = MASKS[name](np.zeros((0, 4, 5)), **MASK_OPTIONS[name])
    assert masks.shape == (0, 4, 5) and masks.dtype == np.bool_


@pytest.mark.parametrize("name", sorted(MASKS))
def test_masks_name_the_stack_map_that_is_not_finite(name: str) -> None:
    stack = np.zeros((3, 70, 70))
    stack[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        MASKS[name](stack, **MASK_OPTIONS[name])


# --- each mask against its definition ------------------------------------------------------------


@given(relevance=maps | tie_heavy_maps, fraction=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True))
def test_negative_mask_is_the_definition(relevance: Floats, fraction: float) -> None:
    np.testing.assert_array_equal(
        negative_mask(relevance, fraction=fraction), reference_negative(relevance, fraction)
    )


@given(relevance=maps | tie_heavy_maps, fraction=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True))
def test_negative_mask_zeroes_exactly_ceil_fraction_n_pixels(relevance: Floats, fraction: float) -> None:
    mask = negative_mask(relevance, fraction=fraction)
    assert int((~mask).sum()) == math.ceil(fraction * relevance.size)
    if mask.any() and (~mask).any():
        assert relevance[~mask].min() >= relevance[mask].max()


def test_negative_mask_defaults_to_the_papers_ten_percent(rng: np.random.Generator) -> None:
    relevance = rng.normal(size=(48, 48))
    mask = negative_mask(relevance)
    assert int((~mask).sum()) == math.ceil(0.1 * 48 * 48) == 231
    assert (relevance[~mask] >= np.quantile(relevance, 0.9)).all()


def test_ten_percent_of_thirty_pixels_are_three() -> None:
    assert int((~negative_mask(np.arange(30.0).reshape(5, 6))).sum()) == 3


any_finite_maps = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(1, 8)),
    elements=st.floats(allow_nan=False, allow_infinity=False),
)


@given(relevance=maps | tie_heavy_maps | any_finite_maps)
def test_mean_mask_is_the_definition(relevance: Floats) -> None:
    """Kept iff R_i >= mean, except within rounding of the mean (where keeping is allowed)."""
    mask = mean_mask(relevance)
    mean = exact_mean(relevance)
    at_least_mean = np.array([Fraction(v) >= mean for v in relevance.ravel().tolist()]).reshape(
        relevance.shape
    )
    assert mask[at_least_mean].all()
    tolerance = 1e-12 * float(np.abs(relevance).max(initial=0.0))
    assert not mask[relevance < float(mean) - tolerance].any()


def test_mean_mask_on_random_maps_equals_r_at_least_mean(rng: np.random.Generator) -> None:
    relevance = rng.normal(size=(64, 80))
    np.testing.assert_array_equal(mean_mask(relevance), relevance >= relevance.mean())


@pytest.mark.parametrize("value", [0.0, 0.1, -3.7, 1e-300, 1e300, 2.0**-1074])
def test_mean_mask_keeps_every_pixel_of_a_constant_map(value: float) -> None:
    assert mean_mask(np.full((48, 48), value)).all()


def test_mean_mask_keeps_ties_with_an_exact_mean() -> None:
    """{-v, 0, +v} in equal numbers: the mean is exactly 0, so the zeros stay (np.mean may say 1e-18)."""
    relevance = np.array([[0.1, -0.1, 0.0], [0.3, -0.3, 0.0], [0.7, -0.7, 0.0]])
    np.testing.assert_array_equal(mean_mask(relevance), relevance >= 0)


def test_mean_mask_survives_huge_values() -> None:
    relevance = np.array([[1.7e308, -1.7e308], [1.7e308, 1.0]])
    np.testing.assert_array_equal(mean_mask(relevance), [[True, False], [True, False]])


@given(
    relevance=maps | tie_heavy_maps,
    data=st.data(),
    ratio=st.floats(1.0, 6.0),
    radius=st.floats(0.3, 6.0),
)
def test_perceptive_mask_is_the_definition(
    relevance: Floats, data: st.DataObject, ratio: float, radius: float
) -> None:
    n_points = data.draw(st.integers(0, min(relevance.size, 20)))
    mask = perceptive_mask(relevance, n_points, radius / ratio, radius)
    np.testing.assert_array_equal(mask, reference_perceptive(relevance, n_points, radius))


def test_perceptive_mask_at_the_paper_scale(rng: np.random.Generator) -> None:
    """48 × 48 px shown at 1200 px (RBDM §5.3.1): c ≈ 1.78 px, span ≈ 10.5 px."""
    relevance = rng.normal(size=(48, 48))
    c, radius = 44.505 * 48 / 1200, 261.79 * 48 / 1200
    mask = perceptive_mask(relevance, 15, c, radius)
    np.testing.assert_array_equal(mask, reference_perceptive(relevance, 15, radius))
    assert 0 < mask.sum() < mask.size


def test_perceptive_mask_of_a_constant_map_surrounds_the_first_pixels() -> None:
    mask = perceptive_mask(np.zeros((6, 8)), 2, 0.5, 1.0)
    expected = np.zeros((6, 8), dtype=bool)
    expected[0, 0:3] = expected[1, 0:2] = True  # disks around (0, 0) and (1, 0)
    np.testing.assert_array_equal(mask, expected)


def test_perceptive_mask_without_points_zeroes_everything() -> None:
    assert not perceptive_mask(np.ones((5, 5)), 0, 1.0, 2.0).any()


# --- invariants declared once for all masks ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MASKS))
@given(relevance=maps | tie_heavy_maps)
def test_masks_are_boolean_and_shaped_like_the_relevance(name: str, relevance: Floats) -> None:
    options = dict(MASK_OPTIONS[name])
    if name == "perceptive":
        options["n_points"] = min(options["n_points"], relevance.size)
    mask = MASKS[name](relevance, **options)
    assert mask.dtype == np.bool_ and mask.shape == relevance.shape


@pytest.mark.parametrize("name", sorted(MASKS))
def test_masks_do_not_modify_the_relevance(name: str, rng: np.random.Generator) -> None:
    relevance = rng.normal(size=(9, 11))
    before = relevance.copy()
    MASKS[name](relevance, **MASK_OPTIONS[name])
    np.testing.assert_array_equal(relevance, before)


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_masks_refuse_non_finite_relevance(name: str, bad: float) -> None:
    relevance = np.zeros((4, 4))
    relevance[2, 1] = bad
    with pytest.raises(ValueError, match="finite"):
        MASKS[name](relevance, **MASK_OPTIONS[name])


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("shape", [(4,), (1, 2, 3, 4), (0, 3), (2, 0, 3)])
def test_masks_refuse_maps_that_are_neither_a_map_nor_a_stack(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="relevance must"):
        MASKS[name](np.zeros(shape), **MASK_OPTIONS[name])


def test_masks_are_the_three_of_the_paper() -> None:
    assert MASKS == {"negative": negative_mask, "mean": mean_mask, "perceptive": perceptive_mask}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, 10.0])
def test_negative_mask_refuses_fractions_outside_zero_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        negative_mask(np.zeros((3, 3)), fraction=fraction)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"n_points": 10}, ValueError, "n_points must not exceed"),
        ({"n_points": -1}, ValueError, "n_points"),
        ({"n_points": 1.5}, TypeError, "n_points"),
        ({"c": 0.0}, ValueError, "c must"),
        ({"radius": -2.0}, ValueError, "radius must"),
    ],
)
def test_perceptive_mask_refuses_bad_options(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments = {"n_points": 2, "c": 1.0, "radius": 2.0} | options
    with pytest.raises(error, match=match):
        perceptive_mask(np.zeros((3, 3)), **arguments)


# --- apply_mask ----------------------------------------------------------------------------------


def test_apply_mask_multiplies_grey_and_colour_images(rng: np.random.Generator) -> None:
    mask = rng.random((6, 7)) > 0.5
    grey = rng.random((6, 7), dtype=np.float32)
    colour = rng.random((6, 7, 3), dtype=np.float32)
    np.testing.assert_array_equal(apply_mask(grey, mask), grey * mask)
    np.testing.assert_array_equal(apply_mask(colour, mask), colour * mask[:, :, None])
    assert apply_mask(grey, mask).dtype == np.float32 and apply_mask(colour, mask).dtype == np.float32


def test_apply_mask_keeps_the_image_dtype_and_leaves_inputs_alone(rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
    mask = negative_mask(rng.normal(size=(5, 5)), fraction=0.3)
    image_before, mask_before = image.copy(), mask.copy()
    masked = apply_mask(image, mask)
    assert masked.dtype == np.uint8 and masked is not image
    assert not masked[~mask].any() and (masked[mask] == image[mask]).all()
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(mask, mask_before)


def test_apply_mask_accepts_zero_one_masks_and_zeroes_nan() -> None:
    image = np.array([[np.nan, 1.0], [2.0, np.inf]])
    np.testing.assert_array_equal(apply_mask(image, np.array([[0, 1], [1, 0]])), [[0.0, 1.0], [2.0, 0.0]])


@pytest.mark.parametrize(
    ("image_shape", "mask", "match"),
    [
        ((4, 5), np.ones((5, 4), dtype=bool), "same shape"),
        ((4, 5, 3), np.ones((4, 4), dtype=bool), "same shape"),
        ((4, 5, 3, 1), np.ones((4, 5), dtype=bool), "image must"),
        ((4, 5), np.ones((4, 5, 1), dtype=bool), "mask must"),
        ((4, 5), np.full((4, 5), 0.5), "0 and 1"),
    ],
)
def test_apply_mask_refuses_mismatches(image_shape: tuple[int, ...], mask: NDArray[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        apply_mask(np.zeros(image_shape, dtype=np.float32), mask)


def test_the_issue_signatures_accept_positional_options() -> None:
    """The foundation issue fixes these signatures; callers may pass the options by position."""
    from analysis.heatmap import gaze_heatmap
    from analysis.projection import top_x_relevance

    relevance = np.arange(100, dtype=float).reshape(10, 10)
    assert (~negative_mask(relevance, 0.2)).sum() == 20
    np.testing.assert_array_equal(top_x_relevance(relevance, 0.25), top_x_relevance(relevance, x=0.25))
    points = [[2.0, 3.0]]
    np.testing.assert_array_equal(
        gaze_heatmap(points, (10, 10), 1.0, None, 2.0), gaze_heatmap(points, (10, 10), 1.0, radius=2.0)
    )
