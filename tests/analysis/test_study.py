"""Tests for analysis.study: the study-level Table 1, per-stimulus CSV rows, images at the model's input."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from analysis.metrics import ComparisonRow, ComparisonTable, mean_table
from analysis.study import model_input_image, stimulus_rows_csv, study_table

METRICS = ("zero_measure", "spearman", "nss")
PAIRS = (("U1", "U2"), ("U1", "model"), ("U2", "model"))


def _table(
    values: dict[tuple[str, str], tuple[float, ...]], metrics: tuple[str, ...] = METRICS
) -> ComparisonTable:
    return ComparisonTable(
        metrics=metrics, rows=tuple(ComparisonRow(a, b, v) for (a, b), v in values.items())
    )


def _study_table_reference(tables: list[ComparisonTable]) -> dict[tuple[str, str], list[float]]:
    """Literal definition: for each pair and metric, the mean of the numbers over the tables holding it."""
    result: dict[tuple[str, str], list[float]] = {}
    for table in tables:
        for pair in table.pairs:
            if pair in result:
                continue
            means = []
            for metric in table.metrics:
                numbers = [t.value(*pair, metric) for t in tables if pair in t.pairs]
                numbers = [v for v in numbers if not math.isnan(v)]
                means.append(sum(numbers) / len(numbers) if numbers else math.nan)
            result[pair] = means
    return result


value = st.one_of(st.floats(-1.0, 1.0, allow_nan=False), st.just(math.nan))
tables_strategy = st.lists(
    st.dictionaries(st.sampled_from(PAIRS), st.tuples(value, value, value), min_size=0, max_size=3),
    min_size=1,
    max_size=6,
)


@given(tables_strategy)
def test_study_table_is_the_mean_over_the_defined_values_of_each_pair(raw: list[dict]) -> None:  # type: ignore[type-arg]
    tables = [_table(values) for values in raw]
    table = study_table(tables)
    expected = _study_table_reference(tables)
    assert table.metrics == METRICS
    assert list(table.pairs) == list(expected)
    for pair, means in expected.items():
        for metric, mean in zip(METRICS, means, strict=True):
            got = table.value(*pair, metric)
            assert (math.isnan(got) and math.isnan(mean)) or got == pytest.approx(mean, rel=1e-12, abs=1e-15)


@given(st.lists(st.tuples(*(st.tuples(*[st.floats(0.0, 1.0)] * 3),) * 3), min_size=1, max_size=5))
def test_study_table_equals_mean_table_for_complete_tables(raw: list[tuple[tuple[float, ...], ...]]) -> None:
    tables = [_table(dict(zip(PAIRS, rows, strict=True))) for rows in raw]
    ours, theirs = study_table(tables), mean_table(tables)
    assert ours.pairs == theirs.pairs
    for row, other in zip(ours.rows, theirs.rows, strict=True):
        np.testing.assert_allclose(row.values, other.values, rtol=1e-12, atol=1e-15)


def test_study_table_of_nothing_is_empty_and_refuses_mixed_metrics() -> None:
    assert study_table([]).rows == () and study_table([]).metrics == ()
    assert study_table([_table({})]).rows == ()
    with pytest.raises(ValueError, match="same metrics"):
        study_table([_table({}), _table({}, metrics=("cc",))])


def test_stimulus_rows_csv_writes_one_exact_line_per_stimulus_and_pair() -> None:
    first = _table({("U1", "U2"): (0.25, 1 / 3, math.nan)})
    second = _table({("U1", "U2"): (0.5, -0.125, 2.0), ("U1", "model"): (0.1, 0.2, 0.3)})
    text = stimulus_rows_csv({"a/1.png": first, "b,2.png": second, "c": _table({})})
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["stimulus", "ID_1", "ID_2", *METRICS]
    assert [line[:3] for line in lines[1:]] == [
        ["a/1.png", "U1", "U2"],
        ["b,2.png", "U1", "U2"],
        ["b,2.png", "U1", "model"],
    ]
    assert float(lines[1][4]) == 1 / 3 and math.isnan(float(lines[1][5]))
    assert stimulus_rows_csv({}) == "stimulus,ID_1,ID_2\n"
    with pytest.raises(ValueError, match="same metrics"):
        stimulus_rows_csv({"a": first, "b": _table({}, metrics=("cc",))})


def test_model_input_image_keeps_an_image_of_the_input_size(rng: np.random.Generator) -> None:
    grey = rng.random((48, 48))
    np.testing.assert_allclose(model_input_image(grey, (48, 48, 1)), grey, atol=1e-7)
    rgb = rng.random((48, 48, 3))
    out = model_input_image(rgb, (48, 48, 3))
    assert out.dtype == np.float32 and out.shape == (48, 48, 3)
    np.testing.assert_allclose(out, rgb, atol=1e-7)


def test_grey_input_is_the_luma_of_the_colour_image(rng: np.random.Generator) -> None:
    rgb = rng.random((16, 16, 3))
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(model_input_image(rgb, (16, 16, 1)), expected, atol=1e-6)
    # ... which is Pillow's own "L" conversion, up to its 8-bit rounding.
    as_8bit = Image.fromarray(np.round(rgb * 255).astype(np.uint8)).convert("L")
    np.testing.assert_allclose(
        model_input_image(rgb, (16, 16, 1)), np.asarray(as_8bit) / 255.0, atol=1.5 / 255
    )


def test_shrinking_keeps_a_linear_ramp_away_from_the_border() -> None:
    """A symmetric resampling filter reproduces linear functions: the ramp's value at each output
    pixel centre, (j + 0.5) · 512 / 48 - 0.5 in source pixels (to Pillow's precision of its filter
    weights, under 1 % of one source pixel's step)."""
    ramp = np.tile(np.arange(512, dtype=np.float64) / 511.0, (512, 1))
    out = model_input_image(ramp, (48, 48, 1))
    centres = ((np.arange(48) + 0.5) * 512 / 48 - 0.5) / 511.0
    np.testing.assert_allclose(out[5:-5, 5:-5], np.tile(centres, (48, 1))[5:-5, 5:-5], atol=2e-5)


@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from([1, 3]),
    st.booleans(),
    st.floats(0.0, 1.0),
)
def test_model_input_image_has_the_input_shape_and_keeps_constants(
    height: int, width: int, channels: int, colour: bool, level: float
) -> None:
    image = np.full((13, 29, 3) if colour else (13, 29), level)
    out = model_input_image(image, (height, width, channels))
    assert out.shape == ((height, width) if channels == 1 else (height, width, 3))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, level, atol=2e-6)


@pytest.mark.parametrize(
    ("image", "shape", "match"),
    [
        (np.zeros((4, 4, 2)), (4, 4, 1), "grey"),
        (np.zeros(4), (4, 4, 1), "grey"),
        (np.full((4, 4), 2.0), (4, 4, 1), r"\[0, 1\]"),
        (np.full((4, 4), np.nan), (4, 4, 1), "NaN"),
        (np.zeros((4, 4)), (4, 4, 2), "1 or 3 channels"),
        (np.zeros((4, 4)), (0, 4, 1), "positive"),
        (np.zeros((4, 4)), (4, 4), "height_px, width_px, channels"),
    ],
)
def test_model_input_image_refuses_bad_arguments(image: np.ndarray, shape: tuple, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=match):
        model_input_image(image, shape)
