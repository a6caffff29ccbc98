"""Tests for analysis.metrics: each metric against a slow reference, invariants declared once."""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from analysis.metrics import (
    FIXATION_METRICS,
    KLD_EPSILON,
    METRICS,
    SYMMETRIC_METRICS,
    ComparisonRow,
    ComparisonTable,
    Metric,
    auc_judd,
    cc,
    compare,
    cosine_distance,
    fixation_map,
    kld,
    mean_table,
    nss,
    sim,
    spearman,
    zero_measure,
)

Map = NDArray[np.float64]

# ---------------------------------------------------------------------------------------------
# Slow, obvious reference implementations (plain loops over pixels).
# ---------------------------------------------------------------------------------------------


def _pixels(m: Map) -> list[float]:
    return [float(v) for v in np.asarray(m, dtype=float).ravel()]


def ref_zero_measure(a: Map, b: Map) -> float:
    both = either = 0
    for x, y in zip(_pixels(a), _pixels(b), strict=True):
        both += x > 0 and y > 0
        either += x > 0 or y > 0
    return both / either


def ref_ranks(values: list[float]) -> list[float]:
    """Average ranks: 1 + number smaller + half the number of other equal values."""
    return [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def ref_pearson(x: list[float], y: list[float]) -> float:
    mx, my = math.fsum(x) / len(x), math.fsum(y) / len(y)
    cov = math.fsum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    var_x = math.fsum((a - mx) ** 2 for a in x)
    var_y = math.fsum((b - my) ** 2 for b in y)
    return cov / math.sqrt(var_x * var_y)


def ref_spearman(a: Map, b: Map) -> float:
    return ref_pearson(ref_ranks(_pixels(a)), ref_ranks(_pixels(b)))


def ref_cosine_distance(a: Map, b: Map) -> float:
    x, y = _pixels(a), _pixels(b)
    dot = math.fsum(p * q for p, q in zip(x, y, strict=True))
    return 1 - dot / math.sqrt(math.fsum(p * p for p in x) * math.fsum(q * q for q in y))


def ref_nss(saliency: Map, fixations: Map) -> float:
    s = _pixels(saliency)
    mean = math.fsum(s) / len(s)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in s) / len(s))
    fixated = [(v - mean) / sd for v, f in zip(s, _pixels(fixations), strict=True) if f > 0]
    return math.fsum(fixated) / len(fixated)


def ref_density(m: Map) -> list[float]:
    values = _pixels(m)
    low = min(values)
    if low < 0:
        values = [v - low for v in values]
    total = math.fsum(values)
    return [1 / len(values)] * len(values) if total == 0 else [v / total for v in values]


def ref_sim(a: Map, b: Map) -> float:
    return math.fsum(min(p, q) for p, q in zip(ref_density(a), ref_density(b), strict=True))


def ref_kld(saliency: Map, reference: Map) -> float:
    eps = 2.220446049250313e-16
    p, q = ref_density(saliency), ref_density(reference)
    return math.fsum(qi * math.log(eps + qi / (pi + eps)) for pi, qi in zip(p, q, strict=True))


def ref_auc_judd(saliency: Map, fixations: Map) -> float:
    """The benchmark's loop (Judd 2009, MIT AUC_Judd.m without jitter), ties counted together."""
    s, f = _pixels(saliency), _pixels(fixations)
    fixated = [v for v, w in zip(s, f, strict=True) if w > 0]
    others = [v for v, w in zip(s, f, strict=True) if w <= 0]
    points = [(0.0, 0.0)]
    for t in sorted(set(fixated), reverse=True):
        tpr = sum(v >= t for v in fixated) / len(fixated)
        fpr = sum(v >= t for v in others) / len(others)
        points.append((fpr, tpr))
    points.append((1.0, 1.0))
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))


def ref_fixation_map(points: list[tuple[float, float]], shape: tuple[int, int]) -> Map:
    out = np.zeros(shape)
    for x, y in points:
        for row in range(shape[0]):
            for col in range(shape[1]):
                if col - 0.5 <= x < col + 0.5 and row - 0.5 <= y < row + 0.5:
                    out[row, col] += 1
    return out


# ---------------------------------------------------------------------------------------------
# Strategies and declared properties
# ---------------------------------------------------------------------------------------------

_values = st.one_of(
    st.sampled_from([0.0, 0.0, 1.0, -1.0]),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@st.composite
def map_pairs(draw: st.DrawFn, *, elements: st.SearchStrategy[float] = _values) -> tuple[Map, ...]:
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 6)))
    return draw(arrays(np.float64, shape, elements=elements)), draw(
        arrays(np.float64, shape, elements=elements)
    )


#: The closed range of every metric; a new metric must declare its range here.
RANGES = {
    "zero_measure": (0.0, 1.0),
    "spearman": (-1.0, 1.0),
    "cosine_distance": (0.0, 2.0),
    "nss": (-math.inf, math.inf),
    "cc": (-1.0, 1.0),
    "sim": (0.0, 1.0),
    "kld": (0.0, math.inf),
    "auc_judd": (0.0, 1.0),
}

#: metric(a, a) for any map a (the fixation metrics depend on the map and are left out).
IDENTICAL = {"zero_measure": 1.0, "spearman": 1.0, "cosine_distance": 0.0, "cc": 1.0, "sim": 1.0, "kld": 0.0}

REFERENCES = {
    "zero_measure": ref_zero_measure,
    "spearman": ref_spearman,
    "cosine_distance": ref_cosine_distance,
    "nss": ref_nss,
    "cc": lambda a, b: ref_pearson(_pixels(a), _pixels(b)),
    "sim": ref_sim,
    "kld": ref_kld,
    "auc_judd": ref_auc_judd,
}


def test_declarations_cover_every_metric() -> None:
    assert set(RANGES) == set(METRICS) == set(REFERENCES)
    assert SYMMETRIC_METRICS <= set(METRICS)
    assert FIXATION_METRICS <= set(METRICS) - SYMMETRIC_METRICS
    assert set(IDENTICAL) == set(METRICS) - FIXATION_METRICS
    assert list(METRICS)[:3] == ["zero_measure", "spearman", "cosine_distance"]  # RBDM Table 1 order


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_slow_reference(name: str, rng: np.random.Generator) -> None:
    for _ in range(5):
        a = rng.normal(size=(5, 7))
        a[a < -0.5] = 0.0
        b = a + rng.normal(scale=0.8, size=a.shape)
        if name in FIXATION_METRICS:
            b = (rng.random(a.shape) < 0.3).astype(float)
            b[0, 0] = 1.0
            b[-1, -1] = 0.0
        assert METRICS[name](a, b) == pytest.approx(REFERENCES[name](a, b), rel=1e-10, abs=1e-12)


def test_table1_metrics_match_scipy(rng: np.random.Generator) -> None:
    a = np.round(rng.random((6, 8)), 1)  # many ties
    b = a * rng.random(a.shape) + np.round(rng.random(a.shape), 1)
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert cosine_distance(a, b) == pytest.approx(
        scipy.spatial.distance.cosine(a.ravel(), b.ravel()), abs=1e-12
    )
    assert cc(a, b) == pytest.approx(scipy.stats.pearsonr(a.ravel(), b.ravel())[0], abs=1e-12)


@pytest.mark.parametrize("name", sorted(SYMMETRIC_METRICS))
@given(pair=map_pairs())
def test_symmetric_metrics_are_symmetric(name: str, pair: tuple[Map, Map]) -> None:
    a, b = pair
    assert METRICS[name](a, b) == pytest.approx(METRICS[name](b, a), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
@given(pair=map_pairs())
def test_metrics_stay_in_range(name: str, pair: tuple[Map, Map]) -> None:
    a, b = pair
    value = METRICS[name](a, b)
    if math.isnan(value):  # only the fixation metrics, only without anything to score
        assert name in FIXATION_METRICS
        assert not (b > 0).any() or (name == "auc_judd" and (b > 0).all())
        return
    low, high = RANGES[name]
    assert low <= value <= high


@pytest.mark.parametrize("name", sorted(IDENTICAL))
@given(pair=map_pairs())
def test_identical_maps_are_perfectly_similar(name: str, pair: tuple[Map, Map]) -> None:
    a, _ = pair
    assert METRICS[name](a, a.copy()) == pytest.approx(IDENTICAL[name], abs=1e-9)


@given(pair=map_pairs(elements=st.floats(0.0, 1e3)), data=st.data())
def test_disjoint_supports(pair: tuple[Map, Map], data: st.DataObject) -> None:
    a, b = pair
    split = data.draw(arrays(np.bool_, a.shape))
    a, b = np.where(split, a, 0.0), np.where(split, 0.0, b)
    if (a > 0).any() or (b > 0).any():
        assert zero_measure(a, b) == 0.0
    if (a > 0).any() and (b > 0).any():
        assert sim(a, b) == 0.0
        assert cosine_distance(a, b) == pytest.approx(1.0)


def test_zero_measure_of_overlapping_squares() -> None:
    a, b = np.zeros((6, 6)), np.zeros((6, 6))
    a[0:2, 0:2] = 0.5  # 4 pixels
    b[1:3, 1:3] = 2.0  # 4 pixels, 1 shared
    assert zero_measure(a, b) == pytest.approx(1 / 7)
    assert zero_measure(a, -a) == 0.0  # negative values are outside the area


# ---------------------------------------------------------------------------------------------
# Degenerate inputs: documented answers
# ---------------------------------------------------------------------------------------------


def test_empty_and_zero_maps() -> None:
    zero, spot = np.zeros((3, 4)), np.zeros((3, 4))
    spot[1, 2] = 1.0
    assert zero_measure(zero, zero) == 1.0
    assert zero_measure(zero, spot) == 0.0
    assert cosine_distance(zero, zero) == 0.0
    assert cosine_distance(zero, spot) == 1.0
    assert sim(zero, zero) == pytest.approx(1.0)  # both uniform
    assert sim(zero, spot) == pytest.approx(1 / 12)  # uniform against a point
    assert kld(zero, spot) == pytest.approx(math.log(12), rel=1e-9)  # saliency uniform


@pytest.mark.parametrize("metric", [spearman, cc])
def test_correlations_of_constant_maps(metric: Metric, rng: np.random.Generator) -> None:
    varying = rng.random((4, 4))
    assert metric(np.full((4, 4), 3.0), varying) == 0.0
    assert metric(varying, np.zeros((4, 4))) == 0.0
    assert metric(np.full((4, 4), 0.1), np.full((4, 4), 7.0)) == 1.0


def test_fixation_metrics_without_anything_to_score(rng: np.random.Generator) -> None:
    saliency = rng.random((4, 5))
    assert math.isnan(nss(saliency, np.zeros((4, 5))))
    assert math.isnan(auc_judd(saliency, np.zeros((4, 5))))
    assert math.isnan(auc_judd(saliency, np.ones((4, 5))))  # no unfixated pixel
    assert nss(np.full((4, 5), 2.5), np.eye(4, 5)) == 0.0  # constant saliency predicts nothing


def test_auc_judd_hand_example_and_extremes() -> None:
    saliency = np.array([[3.0, 2.0], [1.0, 0.0]])
    assert auc_judd(saliency, np.array([[1, 0], [1, 0]])) == pytest.approx(0.875)
    assert auc_judd(saliency, np.array([[1, 1], [0, 0]])) == pytest.approx(1.0)
    tied = np.ones((3, 3))
    assert auc_judd(tied, np.eye(3)) == pytest.approx(0.5)  # no preference: chance, deterministically


def test_nss_counts_each_fixated_pixel_once(rng: np.random.Generator) -> None:
    saliency = rng.random((5, 5))
    counts = np.zeros((5, 5))
    counts[1, 1], counts[3, 2] = 4.0, 1.0
    assert nss(saliency, counts) == pytest.approx(nss(saliency, counts > 0))


def test_sim_and_kld_shift_negative_maps(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(4, 4)), rng.random((4, 4))
    assert sim(a, b) == pytest.approx(sim(a - a.min(), b))
    assert kld(a, b) == pytest.approx(kld(a - a.min(), b))
    assert KLD_EPSILON == pytest.approx(2.2204e-16, rel=1e-4)


def test_kld_direction(rng: np.random.Generator) -> None:
    p = rng.random((4, 4))
    q = np.zeros((4, 4))
    q[0, 0] = 1.0
    # KL(Q‖P) with Q a point mass is −log P(0, 0); the other way round, P's mass off the point
    # is charged log(1/ε) ≈ 36 nats.
    assert kld(p, q) == pytest.approx(-math.log(p[0, 0] / p.sum()), rel=1e-9)
    assert kld(q, p) > 30.0 > kld(p, q)


def test_metrics_do_not_overflow_on_huge_values(rng: np.random.Generator) -> None:
    a, b = rng.random((5, 5)), rng.random((5, 5))
    fixations = (b > 0.5).astype(float)
    assert cc(a * 1e300, b * 1e300) == pytest.approx(cc(a, b))
    assert cosine_distance(a * 1e300, b) == pytest.approx(cosine_distance(a, b))
    assert nss(a * 1e300, fixations) == pytest.approx(nss(a, fixations))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_inputs_are_validated(name: str) -> None:
    metric = METRICS[name]
    first, second = list(inspect.signature(metric).parameters)
    good = np.ones((3, 3))
    bad = good.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=f"{first} must be finite; got 1 NaN"):
        metric(bad, good)
    with pytest.raises(ValueError, match=f"{second} must be finite"):
        metric(good, bad)
    with pytest.raises(ValueError, match="same shape"):
        metric(good, np.ones((3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        metric(np.ones(9), np.ones(9))


# ---------------------------------------------------------------------------------------------
# fixation_map
# ---------------------------------------------------------------------------------------------


def test_fixation_map_matches_reference(rng: np.random.Generator) -> None:
    points = [(float(x), float(y)) for x, y in rng.uniform(-2, 8, size=(40, 2))]
    assert np.array_equal(fixation_map(points, (5, 7)), ref_fixation_map(points, (5, 7)))


def test_fixation_map_rounding_dropping_and_counts() -> None:
    points = [(0.5, 0.0), (-0.5, 0.0), (-0.51, 0.0), (3.5, 0.0), (1.0, 1.49), (1.0, 1.49), (2, 5)]
    counts = fixation_map(points, (2, 4))
    expected = np.zeros((2, 4))
    expected[0, 1] = 1  # x 0.5 rounds up
    expected[0, 0] = 1  # x −0.5 belongs to column 0; −0.51 is dropped
    expected[1, 1] = 2  # duplicates count; x 3.5 → column 4 and y 5 are outside
    assert np.array_equal(counts, expected)
    assert counts.dtype == np.float64
    assert np.array_equal(fixation_map([], (2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="points"):
        fixation_map([(np.nan, 1.0)], (2, 3))
    with pytest.raises(ValueError, match="shape"):
        fixation_map([], (0, 3))


# ---------------------------------------------------------------------------------------------
# compare, ComparisonTable, mean_table
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def three_maps(rng: np.random.Generator) -> dict[str, Map]:
    maps = {key: rng.random((6, 6)) for key in ("U1", "U2", "IncV3")}
    for value in maps.values():
        value[value < 0.4] = 0.0
    return maps


def test_compare_three_maps_like_table1(three_maps: dict[str, Map]) -> None:
    table = compare(three_maps)
    assert table.pairs == (("U1", "U2"), ("U1", "IncV3"), ("U2", "IncV3"))
    assert table.metrics == tuple(METRICS)
    assert table.columns == ("ID_1", "ID_2", *METRICS)
    for id_1, id_2 in table.pairs:
        m1, m2 = three_maps[id_1], three_maps[id_2]
        for name in SYMMETRIC_METRICS:
            assert table.value(id_1, id_2, name) == METRICS[name](m1, m2)
        # asymmetric: the later map predicts the earlier one; its area stands in for fixations
        assert table.value(id_1, id_2, "kld") == kld(m2, m1)
        assert table.value(id_1, id_2, "nss") == nss(m2, m1 > 0)
        assert table.value(id_1, id_2, "auc_judd") == auc_judd(m2, m1 > 0)


def test_compare_uses_given_fixations(three_maps: dict[str, Map]) -> None:
    points = [(1.0, 2.0), (4.2, 3.9)]
    table = compare(three_maps, fixations={"U1": points}, metrics=["nss", "auc_judd", "zero_measure"])
    assert table.metrics == ("nss", "auc_judd", "zero_measure")
    fixated = fixation_map(points, (6, 6))
    assert table.value("U1", "IncV3", "nss") == nss(three_maps["IncV3"], fixated)
    assert table.value("U1", "IncV3", "auc_judd") == auc_judd(three_maps["IncV3"], fixated)
    assert table.value("U2", "IncV3", "nss") == nss(three_maps["IncV3"], three_maps["U2"] > 0)


def test_compare_degenerate_and_bad_input(three_maps: dict[str, Map]) -> None:
    assert compare({"U1": three_maps["U1"]}).rows == ()
    with pytest.raises(ValueError, match="metrics must be one or more of"):
        compare(three_maps, metrics=["zero_measure", "jaccard"])
    with pytest.raises(ValueError, match="unknown map IDs"):
        compare(three_maps, fixations={"U3": [(1.0, 1.0)]})
    bad = dict(three_maps, U2=np.full((6, 6), np.nan))
    with pytest.raises(ValueError, match=r"maps\['U2'\] must be finite"):
        compare(bad)
    with pytest.raises(ValueError, match="same shape"):
        compare(dict(three_maps, U2=np.ones((5, 6))))


def test_csv_round_trip(three_maps: dict[str, Map]) -> None:
    table = compare(three_maps)
    text = table.to_csv()
    assert text.splitlines()[0] == "ID_1,ID_2," + ",".join(METRICS)
    assert ComparisonTable.from_csv(text) == table
    odd = ComparisonTable(("x",), (ComparisonRow('a,"b"', "c", (0.1,)), ComparisonRow("c", "d", (math.nan,))))
    back = ComparisonTable.from_csv(odd.to_csv())
    assert back.pairs == odd.pairs
    assert back.rows[0].values == (0.1,)
    assert math.isnan(back.rows[1].values[0])
    with pytest.raises(ValueError, match="ID_1,ID_2"):
        ComparisonTable.from_csv("a,b,x\n")


def test_table_views(three_maps: dict[str, Map]) -> None:
    table = compare(three_maps, metrics=("zero_measure", "spearman", "cosine_distance"))
    dicts = table.as_dicts()
    assert [(d["ID_1"], d["ID_2"]) for d in dicts] == list(table.pairs)
    assert dicts[1]["spearman"] == table.value("U1", "IncV3", "spearman")
    lines = table.format().splitlines()
    assert lines[0].split() == ["ID_1", "ID_2", "zero_measure", "spearman", "cosine_distance"]
    assert lines[3].split()[:2] == ["U2", "IncV3"]
    assert lines[3].split()[2] == f"{table.value('U2', 'IncV3', 'zero_measure'):.3f}"
    with pytest.raises(KeyError):
        table.value("U2", "U1", "spearman")


def test_table_validates_itself() -> None:
    with pytest.raises(ValueError, match="values for"):
        ComparisonTable(("a", "b"), (ComparisonRow("x", "y", (1.0,)),))
    with pytest.raises(ValueError, match="once"):
        ComparisonTable(("a",), (ComparisonRow("x", "y", (1.0,)), ComparisonRow("x", "y", (2.0,))))
    with pytest.raises(ValueError, match="different maps"):
        ComparisonRow("x", "x", (1.0,))


def test_mean_table_averages_the_same_pairs() -> None:
    t1 = ComparisonTable(
        ("m", "n"), (ComparisonRow("a", "b", (1.0, 2.0)), ComparisonRow("a", "c", (0.0, 4.0)))
    )
    t2 = ComparisonTable(
        ("m", "n"), (ComparisonRow("a", "c", (1.0, 0.0)), ComparisonRow("a", "b", (3.0, 2.0)))
    )
    mean = mean_table([t1, t2])
    assert mean.pairs == t1.pairs
    assert mean.rows[0].values == (2.0, 2.0)
    assert mean.rows[1].values == (0.5, 2.0)
    assert mean_table([t1]) == t1
    with pytest.raises(ValueError, match="at least one"):
        mean_table([])
    with pytest.raises(ValueError, match=r"tables\[1\]"):
        mean_table([t1, ComparisonTable(("m", "n"), (ComparisonRow("a", "b", (1.0, 2.0)),))])
