"""Compare two heatmaps: RBDM Table 1 metrics and the saliency-benchmark metrics.

RBDM §5.3.2 compares the gaze heatmaps of two annotators and the model's relevance heatmap with
three measures (Table 1): :func:`zero_measure`, :func:`spearman` and :func:`cosine_distance`.
The saliency benchmark (MIT/Tübingen; Bylinskii et al. 2019) adds :func:`nss`, :func:`cc`,
:func:`sim`, :func:`kld` and :func:`auc_judd`. Every metric is called ``metric(x, y)`` on two
``(H, W)`` maps of the same shape; :data:`METRICS` maps names to them.

Conventions shared by all metrics
---------------------------------
- Inputs pass :func:`analysis._validation.check_map`: 2-D, non-empty, finite (NaN raises a
  ``ValueError`` naming the argument), and :func:`~analysis._validation.check_same_shape`.
- The asymmetric metrics take the *prediction* (saliency) first and the *reference* (human data)
  second. :data:`SYMMETRIC_METRICS` names those for which the order does not matter.
- :data:`FIXATION_METRICS` (``nss``, ``auc_judd``) read their second argument as a fixation map:
  pixels with a value > 0 are fixated; counts are accepted, and a pixel fixated several times
  counts once, as in the MIT benchmark. :func:`fixation_map` rasterises fixation points.
- A map with zero variance (constant, e.g. all zero) has a defined answer everywhere: two maps
  that are equal are perfectly similar under every metric, and each function's ``Returns`` gives its
  degenerate cases. Only the fixation metrics return ``nan``, when there are no fixations (or, for
  AUC, no unfixated pixels) to score.
- :func:`compare` (RBDM Table 1) does not score a map that is zero everywhere: no gaze on the image
  is "not comparable" (``nan`` with a note), never perfect agreement.

:func:`compare` applies the metrics to every unordered pair of named maps, as in RBDM Table 1,
and :func:`mean_table` averages such tables over stimuli.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_map, check_points, check_same_shape, check_shape

__all__ = [
    "FIXATION_METRICS",
    "KLD_EPSILON",
    "METRICS",
    "SYMMETRIC_METRICS",
    "ComparisonRow",
    "ComparisonTable",
    "Metric",
    "auc_judd",
    "cc",
    "compare",
    "cosine_distance",
    "fixation_map",
    "kld",
    "mean_table",
    "nss",
    "sim",
    "spearman",
    "zero_measure",
]

#: A metric: two (H, W) maps in, one number out.
Metric: TypeAlias = Callable[[ArrayLike, ArrayLike], float]

#: ε of the benchmark's KL divergence (MATLAB ``eps``, as in the MIT benchmark's ``KLdiv.m``).
KLD_EPSILON = float(np.finfo(np.float64).eps)


def _check_pair(**kwargs: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    (name_a, a), (name_b, b) = kwargs.items()
    arr_a = check_map(**{name_a: a})
    arr_b = check_map(**{name_b: b})
    check_same_shape(**{name_a: arr_a, name_b: arr_b})
    return arr_a, arr_b


def _cosine_similarity(u: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    """u·v / (|u||v|) in [-1, 1]; two zero vectors give 1, one zero vector gives 0."""
    u_peak, v_peak = float(np.max(np.abs(u))), float(np.max(np.abs(v)))
    if u_peak == 0.0 or v_peak == 0.0:
        return 1.0 if u_peak == v_peak else 0.0
    u, v = u.ravel() / u_peak, v.ravel() / v_peak  # scaled so that the products cannot overflow
    value = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return min(1.0, max(-1.0, value))


def _correlation(u: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    """Pearson's r; two constant inputs give 1, one constant input gives 0."""
    u_constant, v_constant = bool(u.min() == u.max()), bool(v.min() == v.max())
    if u_constant or v_constant:
        return 1.0 if u_constant and v_constant else 0.0
    return _cosine_similarity(_centred(u), _centred(v))


def _centred(u: NDArray[np.float64]) -> NDArray[np.float64]:
    scaled: NDArray[np.float64] = u / np.max(np.abs(u))
    centred: NDArray[np.float64] = scaled - scaled.mean()
    return centred


def _average_ranks(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks of the flattened values; tied values share their average rank."""
    _, inverse, counts = np.unique(u.ravel(), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = (ends - counts + 1 + ends) / 2.0
    return np.asarray(average[inverse], dtype=np.float64)


def _density(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """The map as a probability distribution over pixels (Tübingen convention).

    Negative maps are first shifted so that their minimum is 0; a map summing to 0 becomes uniform.
    """
    peak = float(np.max(np.abs(u)))
    if peak == 0.0:
        return np.full(u.shape, 1.0 / u.size)
    scaled = u / peak  # the distribution is scale-free; scaling keeps the sum finite
    shifted = scaled - scaled.min() if scaled.min() < 0 else scaled
    total = float(shifted.sum())
    if total == 0.0:  # a constant negative map
        return np.full(u.shape, 1.0 / u.size)
    density: NDArray[np.float64] = shifted / total
    return density


def zero_measure(a: ArrayLike, b: ArrayLike) -> float:
    """Overlap of the two heatmaps' areas over their union (RBDM Table 1, "ZeroMeasure").

    A heatmap's area is the set of its pixels with a value > 0 (the contour of the heatmap).

    Parameters
    ----------
    a, b : array_like, shape (H, W)
        Heatmaps, e.g. a gaze heatmap and a relevance heatmap (RBDM §5.3.2).

    Returns
    -------
    float
        |{a > 0} ∩ {b > 0}| / |{a > 0} ∪ {b > 0}| in [0, 1]: 1 for identical areas, 0 for
        disjoint ones. Two maps without any area (both ≤ 0 everywhere) have identical, empty
        areas and give 1.

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1 (ratio of the
       overlapping area to the pixel-wise union of both areas).
    """
    area_a, area_b = (m > 0 for m in _check_pair(a=a, b=b))
    union = int(np.count_nonzero(area_a | area_b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(area_a & area_b)) / union


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation of the two maps' pixels (RBDM Table 1, "Spearman").

    Pearson's r of the pixels' ranks; tied values share their average rank, as in
    ``scipy.stats.spearmanr``.

    Parameters
    ----------
    a, b : array_like, shape (H, W)
        Heatmaps of the same shape.

    Returns
    -------
    float
        ρ in [-1, 1]. A constant map has no ranking: two constant maps give 1 (they are equally
        flat), a constant and a varying map give 0 (where scipy gives ``nan``).

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1 (Spearman).
    """
    arr_a, arr_b = _check_pair(a=a, b=b)
    return _correlation(_average_ranks(arr_a), _average_ranks(arr_b))


def cosine_distance(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine distance 1 − a·b / (|a| |b|) of the flattened maps (RBDM Table 1).

    Same as ``scipy.spatial.distance.cosine`` on the flattened maps, with zero maps defined.

    Parameters
    ----------
    a, b : array_like, shape (H, W)
        Heatmaps of the same shape.

    Returns
    -------
    float
        Distance in [0, 2]; 0 for maps that are positive multiples of each other. Two zero maps
        give 0 (identical); one zero map against a non-zero one gives 1 (no shared direction),
        where scipy gives ``nan``.

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1
       (Cosine distance).
    """
    arr_a, arr_b = _check_pair(a=a, b=b)
    return min(2.0, max(0.0, 1.0 - _cosine_similarity(arr_a, arr_b)))


def nss(saliency: ArrayLike, fixation_map: ArrayLike) -> float:
    """Normalized Scanpath Saliency: the mean z-scored saliency at the fixated pixels.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted map; it is standardised to mean 0 and (population, ddof=0) standard deviation 1.
    fixation_map : array_like, shape (H, W)
        Pixels with a value > 0 are fixated (binary map or counts, e.g. from :func:`fixation_map`);
        each fixated pixel counts once, as in the MIT benchmark.

    Returns
    -------
    float
        NSS (unbounded; 0 is chance, higher is better). A constant saliency map predicts nothing
        and gives 0. No fixated pixel gives ``nan`` (nothing to score).

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Bylinskii, Judd, Oliva, Torralba & Durand (2019), What do different evaluation metrics
       tell us about saliency models? IEEE TPAMI 41(3), §3.1 (NSS).
    .. [2] Peters, Iyer, Itti & Koch (2005), Components of bottom-up gaze allocation in natural
       images, Vision Research 45(18).
    """
    sal, fixations = _check_pair(saliency=saliency, fixation_map=fixation_map)
    fixated = fixations > 0
    if not fixated.any():
        return math.nan
    if sal.min() == sal.max():
        return 0.0
    scaled = sal / np.max(np.abs(sal))  # NSS is scale-free; scaling keeps the squares finite
    return float(np.mean((scaled[fixated] - scaled.mean()) / scaled.std()))


def cc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson's linear correlation coefficient of two maps standardised to mean 0, std 1.

    Parameters
    ----------
    a, b : array_like, shape (H, W)
        Saliency or heatmaps of the same shape.

    Returns
    -------
    float
        CC in [-1, 1]. Two constant maps give 1 (equally flat); a constant against a varying map
        gives 0 (pysaliency's answer; the correlation itself is undefined).

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Bylinskii et al. (2019), What do different evaluation metrics tell us about saliency
       models? IEEE TPAMI 41(3), §3.2 (CC).
    """
    arr_a, arr_b = _check_pair(a=a, b=b)
    return _correlation(arr_a, arr_b)


def sim(a: ArrayLike, b: ArrayLike) -> float:
    """Similarity (histogram intersection) Σ min(P, Q) of the maps as distributions.

    Each map becomes a distribution over pixels as in the Tübingen benchmark (pysaliency):
    a map with negative values is shifted so that its minimum is 0, then divided by its sum;
    a map that sums to 0 (all zero) becomes the uniform distribution.

    Parameters
    ----------
    a, b : array_like, shape (H, W)
        Saliency or heatmaps of the same shape.

    Returns
    -------
    float
        SIM in [0, 1]: 1 for maps with the same distribution, 0 for disjoint supports.

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Bylinskii et al. (2019), What do different evaluation metrics tell us about saliency
       models? IEEE TPAMI 41(3), §3.2 (SIM).
    .. [2] Kümmerer, Wallis & Bethge (2018), Saliency Benchmarking Made Easy: Separating Models,
       Maps and Metrics, ECCV (maps as distributions).
    """
    arr_a, arr_b = _check_pair(a=a, b=b)
    value = float(np.minimum(_density(arr_a), _density(arr_b)).sum())
    return min(1.0, max(0.0, value))


def kld(saliency: ArrayLike, reference: ArrayLike) -> float:
    """KL divergence KL(Q ‖ P) of the reference distribution Q from the saliency distribution P.

    ``Σ Q · log(ε + Q / (P + ε))`` with ε = :data:`KLD_EPSILON` (2.22e-16) in both places, as the
    MIT benchmark's ``KLdiv(saliencyMap, fixationMap)`` and pysaliency's ``MIT_KLDiv``. P and Q are
    the maps made distributions as in :func:`sim` (negative maps shifted to minimum 0, all-zero
    maps uniform). The ε terms can push a perfect match a few ε below 0; the result is clipped
    at 0.

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted map P (e.g. the model's relevance heatmap).
    reference : array_like, shape (H, W)
        Human map Q (e.g. a gaze heatmap, RBDM §5.3.2, or a fixation count map).

    Returns
    -------
    float
        KL divergence in nats, ≥ 0; 0 for identical distributions, lower is better. Not symmetric.

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Bylinskii et al. (2019), What do different evaluation metrics tell us about saliency
       models? IEEE TPAMI 41(3), §3.2 (KL, with ε regularisation).
    .. [2] Kümmerer, Wallis & Bethge (2018), Saliency Benchmarking Made Easy, ECCV.
    """
    sal, ref = _check_pair(saliency=saliency, reference=reference)
    p, q = _density(sal), _density(ref)
    value = float(np.sum(q * np.log(KLD_EPSILON + q / (p + KLD_EPSILON))))
    return max(0.0, value)


def auc_judd(saliency: ArrayLike, fixation_map: ArrayLike) -> float:
    """AUC-Judd: area under the ROC curve of the saliency map separating fixated pixels.

    The thresholds are the saliency values at the fixated pixels, from high to low. At each
    threshold t the true-positive rate is the share of fixated pixels with saliency ≥ t and the
    false-positive rate the share of the other pixels with saliency ≥ t; the curve runs from
    (0, 0) through these points to (1, 1) and is integrated with the trapezoid rule. Pixels with
    equal saliency enter the curve together, so the result is deterministic (the MIT benchmark
    instead jitters the map with random noise of about 1e-7 to break ties).

    Parameters
    ----------
    saliency : array_like, shape (H, W)
        Predicted map.
    fixation_map : array_like, shape (H, W)
        Pixels with a value > 0 are fixated (binary map or counts, e.g. from :func:`fixation_map`);
        each fixated pixel counts once.

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 is chance, 1 means every fixated pixel is more salient than every other
        pixel. ``nan`` when no pixel is fixated or every pixel is (no ROC curve exists).

    Raises
    ------
    ValueError
        If a map is not a finite 2-D array, or the shapes differ.

    References
    ----------
    .. [1] Judd, Ehinger, Durand & Torralba (2009), Learning to predict where humans look, ICCV.
    .. [2] Bylinskii et al. (2019), What do different evaluation metrics tell us about saliency
       models? IEEE TPAMI 41(3), §3.1 (AUC-Judd).
    """
    sal, fixations = _check_pair(saliency=saliency, fixation_map=fixation_map)
    fixated = fixations > 0
    n_fixated = int(np.count_nonzero(fixated))
    if n_fixated in (0, fixated.size):
        return math.nan
    positives, negatives = np.sort(sal[fixated]), np.sort(sal[~fixated])
    thresholds = np.unique(positives)[::-1]
    tpr = (positives.size - np.searchsorted(positives, thresholds, side="left")) / positives.size
    fpr = (negatives.size - np.searchsorted(negatives, thresholds, side="left")) / negatives.size
    tpr, fpr = np.concatenate(([0.0], tpr, [1.0])), np.concatenate(([0.0], fpr, [1.0]))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def fixation_map(points: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Rasterise fixation points into a count map for :func:`nss` and :func:`auc_judd`.

    Each point goes to its nearest pixel: pixel ``[row, col]`` covers ``col - 0.5 ≤ x < col + 0.5``
    and ``row - 0.5 ≤ y < row + 0.5`` (halves round up). Points that land outside the map are
    dropped.

    Parameters
    ----------
    points : array_like, shape (N, 2)
        Fixations as ``(x, y)`` in image pixels (x = column, y = row), e.g. from
        :func:`analysis.geometry.screen_to_image`. An empty sequence gives an all-zero map.
    shape : tuple of int
        ``(H, W)`` of the map, the shape of the saliency map to score.

    Returns
    -------
    ndarray of float64, shape (H, W)
        Number of fixations on each pixel.

    Raises
    ------
    ValueError
        If ``points`` is not a finite (N, 2) array or ``shape`` is not two positive integers.

    References
    ----------
    .. [1] Bylinskii et al. (2019), What do different evaluation metrics tell us about saliency
       models? IEEE TPAMI 41(3), §2 (fixation maps: fixation locations as a binary map).
    """
    height, width = check_shape(shape=shape)
    xy = check_points(points=points)
    cols = np.floor(xy[:, 0] + 0.5)
    rows = np.floor(xy[:, 1] + 0.5)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    counts = np.zeros((height, width), dtype=np.float64)
    np.add.at(counts, (rows[inside].astype(np.intp), cols[inside].astype(np.intp)), 1.0)
    return counts


#: Every metric by name; the CLI and the GUI offer these. Table 1's three come first.
METRICS: dict[str, Metric] = {
    "zero_measure": zero_measure,
    "spearman": spearman,
    "cosine_distance": cosine_distance,
    "nss": nss,
    "cc": cc,
    "sim": sim,
    "kld": kld,
    "auc_judd": auc_judd,
}

#: Metrics with metric(a, b) == metric(b, a).
SYMMETRIC_METRICS: frozenset[str] = frozenset({"zero_measure", "spearman", "cosine_distance", "cc", "sim"})

#: Metrics whose second argument is a fixation map (pixels > 0 are fixated).
FIXATION_METRICS: frozenset[str] = frozenset({"nss", "auc_judd"})

_ID_COLUMNS = ("ID_1", "ID_2")


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One pair of maps and its metric values, in the order of the table's ``metrics``.

    Parameters
    ----------
    id_1, id_2 : str
        Names of the two maps; for asymmetric metrics ``id_2``'s map is the prediction and
        ``id_1``'s the reference (see :func:`compare`).
    values : tuple of float
        One value per metric.
    note : str, optional
        Why values are ``nan`` or averaged over fewer stimuli (e.g. "not comparable: U2 is zero
        everywhere"); empty when every value is an ordinary number. Not part of equality or the CSV.
    """

    id_1: str
    id_2: str
    values: tuple[float, ...]
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.id_1, str) and isinstance(self.id_2, str)):
            raise TypeError(f"map IDs must be strings; got {self.id_1!r} and {self.id_2!r}.")
        if self.id_1 == self.id_2:
            raise ValueError(f"a row compares two different maps; got {self.id_1!r} twice.")
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))


@dataclass(frozen=True, slots=True)
class ComparisonTable:
    """Metric values for pairs of maps, one row per pair (RBDM Table 1).

    Parameters
    ----------
    metrics : tuple of str
        Metric names, the value columns after ``ID_1`` and ``ID_2``.
    rows : tuple of ComparisonRow
        One row per ordered pair ``(id_1, id_2)``; no pair appears twice.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """

    metrics: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "rows", tuple(self.rows))
        if len(set(self.metrics)) != len(self.metrics) or set(self.metrics) & set(_ID_COLUMNS):
            raise ValueError(f"metric names must be unique and not ID_1/ID_2; got {self.metrics!r}.")
        for row in self.rows:
            if len(row.values) != len(self.metrics):
                raise ValueError(
                    f"row ({row.id_1!r}, {row.id_2!r}) has {len(row.values)} values for "
                    f"{len(self.metrics)} metrics {self.metrics!r}."
                )
        if len(set(self.pairs)) != len(self.pairs):
            raise ValueError(f"each pair may appear once; got pairs {self.pairs!r}.")

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names: ``ID_1``, ``ID_2``, then the metric names."""
        return _ID_COLUMNS + self.metrics

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The ``(id_1, id_2)`` of each row, in row order."""
        return tuple((row.id_1, row.id_2) for row in self.rows)

    @property
    def notes(self) -> tuple[str, ...]:
        """``"ID_1–ID_2: note"`` for every row with a note (pairs not comparable, partial means)."""
        return tuple(f"{row.id_1}–{row.id_2}: {row.note}" for row in self.rows if row.note)

    def value(self, id_1: str, id_2: str, metric: str) -> float:
        """The value of ``metric`` for the pair ``(id_1, id_2)``; ``KeyError`` if absent."""
        if metric not in self.metrics:
            raise KeyError(f"no metric {metric!r} in this table; it has {self.metrics!r}.")
        for row in self.rows:
            if (row.id_1, row.id_2) == (id_1, id_2):
                return row.values[self.metrics.index(metric)]
        raise KeyError(f"no pair ({id_1!r}, {id_2!r}) in this table; it has {self.pairs!r}.")

    def as_dicts(self) -> list[dict[str, str | float]]:
        """One dict per row, keyed by :attr:`columns`."""
        return [
            {"ID_1": row.id_1, "ID_2": row.id_2, **dict(zip(self.metrics, row.values, strict=True))}
            for row in self.rows
        ]

    def to_csv(self) -> str:
        """The table as CSV text with a header; floats are written exactly (``repr``).

        Write it with ``pathlib.Path(path).write_text(table.to_csv())``; read it back with
        :meth:`from_csv`.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([row.id_1, row.id_2, *map(repr, row.values)] for row in self.rows)
        return buffer.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> ComparisonTable:
        """Parse the text written by :meth:`to_csv`; ``ValueError`` on another layout."""
        lines = list(csv.reader(io.StringIO(text)))
        if not lines or tuple(lines[0][:2]) != _ID_COLUMNS:
            found = lines[0][:2] if lines else "no header"
            raise ValueError(f"comparison CSV must start with the columns ID_1,ID_2; got {found!r}.")
        metrics = tuple(lines[0][2:])
        try:
            rows = tuple(ComparisonRow(r[0], r[1], tuple(float(v) for v in r[2:])) for r in lines[1:] if r)
        except (IndexError, ValueError) as err:
            raise ValueError(f"comparison CSV has a malformed row: {err}") from err
        return cls(metrics=metrics, rows=rows)

    def format(self, *, digits: int = 3) -> str:
        """The table as aligned plain text, values rounded to ``digits`` decimals, like Table 1."""
        cells = [list(self.columns)]
        cells += [[row.id_1, row.id_2, *(f"{v:.{digits}f}" for v in row.values)] for row in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.columns))]
        lines = []
        for line in cells:
            ids = [cell.ljust(w) for cell, w in zip(line[:2], widths[:2], strict=True)]
            values = [cell.rjust(w) for cell, w in zip(line[2:], widths[2:], strict=True)]
            lines.append("  ".join(ids + values).rstrip())
        return "\n".join(lines)


def _check_maps(maps: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    for key in maps:
        if not isinstance(key, str):
            raise TypeError(f"map IDs must be strings; got {key!r}.")
    checked = {key: check_map(**{f"maps[{key!r}]": value}) for key, value in maps.items()}
    check_same_shape(**{f"maps[{key!r}]": value for key, value in checked.items()})
    return checked


def _check_metric_names(metrics: Sequence[str]) -> tuple[str, ...]:
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics must be one or more of {sorted(METRICS)!r}; got {list(names)!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics must not repeat; got {list(names)!r}.")
    return names


def _fixation_maps(
    maps: Mapping[str, NDArray[np.float64]], fixations: Mapping[str, ArrayLike]
) -> dict[str, NDArray[np.float64]]:
    """Each map's fixation map: its rasterised fixations if given, else its area (> 0)."""
    unknown = sorted(set(fixations) - set(maps))
    if unknown:
        raise ValueError(f"fixations given for unknown map IDs {unknown!r}; the maps are {list(maps)!r}.")
    result = {}
    for key, heatmap in maps.items():
        if key in fixations:
            points = check_points(**{f"fixations[{key!r}]": fixations[key]})
            result[key] = fixation_map(points, (heatmap.shape[0], heatmap.shape[1]))
        else:
            result[key] = (heatmap > 0).astype(np.float64)
    return result


def compare(
    maps: Mapping[str, ArrayLike],
    *,
    fixations: Mapping[str, ArrayLike] | None = None,
    metrics: Sequence[str] = tuple(METRICS),
) -> ComparisonTable:
    """Compare every unordered pair of named maps with each metric, as in RBDM Table 1.

    Pairs are ``itertools.combinations`` of the maps in their given order, so ``{"U1": …,
    "U2": …, "IncV3": …}`` gives the rows (U1, U2), (U1, IncV3), (U2, IncV3) of Table 1.

    Symmetric metrics do not care about order. Asymmetric ones score the *later* map of a pair
    (``ID_2``) as the prediction of the *earlier* one (``ID_1``), the reference: ``kld`` gets
    ``(maps[ID_2], maps[ID_1])``; ``nss`` and ``auc_judd`` get ``maps[ID_2]`` and the fixation map
    of ``ID_1`` — ``fixation_map(fixations[ID_1], shape)`` if ``fixations`` has ``ID_1``, otherwise
    the area of ``maps[ID_1]`` (pixels > 0). List the humans first and the model last, as in
    Table 1, and the model is scored against each human.

    Parameters
    ----------
    maps : mapping of str to array_like, shape (H, W)
        Named heatmaps of one stimulus, all of the same shape. Fewer than two give no rows.
    fixations : mapping of str to array_like, shape (N, 2), optional
        Fixation points ``(x, y)`` in image pixels for some or all maps (the human ones).
    metrics : sequence of str, optional
        Names from :data:`METRICS`, the value columns in this order; all of them by default.

    Returns
    -------
    ComparisonTable
        One row per pair, one column per metric. A map that is zero everywhere (an annotator without a
        fixation on the image, a model whose relevance is all zero) holds nothing to compare: every
        value of its pairs is ``nan`` ("not comparable") and the row's ``note`` says why, instead of
        the perfect agreement two empty maps would otherwise score.

    Raises
    ------
    ValueError
        If a map is not finite 2-D, the shapes differ, a metric name is unknown, or
        ``fixations`` names a map that is not in ``maps``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """
    checked = _check_maps(maps)
    names = _check_metric_names(metrics)
    fixated = _fixation_maps(checked, fixations or {})
    blank = [key for key, heatmap in checked.items() if not np.any(heatmap)]
    rows = []
    for id_1, id_2 in combinations(checked, 2):
        empty = [key for key in (id_1, id_2) if key in blank]
        if empty:
            rows.append(ComparisonRow(id_1, id_2, (math.nan,) * len(names), _not_comparable(empty)))
            continue
        values = tuple(
            METRICS[name](checked[id_2], fixated[id_1] if name in FIXATION_METRICS else checked[id_1])
            for name in names
        )
        rows.append(ComparisonRow(id_1, id_2, values))
    return ComparisonTable(metrics=names, rows=tuple(rows))


def _not_comparable(empty: Sequence[str]) -> str:
    maps = " and ".join(empty)
    verb = "are" if len(empty) > 1 else "is"
    return f"not comparable: {maps} {verb} zero everywhere (no fixation on the image, or nothing relevant)"


def mean_table(tables: Sequence[ComparisonTable]) -> ComparisonTable:
    """Average tables of the same pairs and metrics over stimuli (the study-level RBDM Table 1).

    Parameters
    ----------
    tables : sequence of ComparisonTable
        One table per stimulus, e.g. from :func:`compare`, all with the same metrics and the same
        pairs (row order may differ; the first table's order is kept).

    Returns
    -------
    ComparisonTable
        The arithmetic mean of each value. A ``nan`` (a fixation metric with nothing to score)
        makes that mean ``nan``; drop such stimuli first to average the rest.

    Raises
    ------
    ValueError
        If ``tables`` is empty or the tables differ in metrics or pairs.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """
    if len(tables) == 0:
        raise ValueError("mean_table needs at least one table; got none.")
    first = tables[0]
    for index, table in enumerate(tables):
        if table.metrics != first.metrics or set(table.pairs) != set(first.pairs):
            raise ValueError(
                f"tables[{index}] has metrics {table.metrics!r} and pairs {sorted(table.pairs)!r}; "
                f"tables[0] has {first.metrics!r} and {sorted(first.pairs)!r}. Compare the same maps "
                "with the same metrics for every stimulus."
            )
    rows = []
    for pair in first.pairs:
        stacked = np.array([[table.value(*pair, metric) for metric in first.metrics] for table in tables])
        rows.append(ComparisonRow(pair[0], pair[1], tuple(float(v) for v in stacked.mean(axis=0))))
    return ComparisonTable(metrics=first.metrics, rows=tuple(rows))
