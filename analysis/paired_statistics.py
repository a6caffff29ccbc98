"""Statistics over seeds: confidence intervals, paired differences to a baseline, Holm's correction, verdicts.

An experiment trains every variant once per seed, and each seed gives all variants the same initial weights
and batch order (:mod:`analysis.experiment`), so a variant's score and the baseline's score of one seed form
a pair. This module turns the per-seed numbers into the answer a researcher asks for — does a variant
differ from the baseline, by how much, and how sure are we:

- :func:`mean_ci`: mean and two-sided Student-t confidence interval over seeds;
- :func:`paired_difference`: mean of the paired differences (variant − baseline), its t interval and the
  two-sided **paired t-test** p-value. The t-test, not Wilcoxon's signed-rank test: with 5 seeds the
  signed-rank test's smallest possible two-sided p is 2/2⁵ = 0.0625, so it could never reject at 0.05;
- :func:`holm`: Holm's step-down adjustment of the p-values of several variants against one baseline;
- :func:`verdict`: the plain-words reading ("accelerates learning: AULC +0.04 [0.02, 0.06], p = 0.01",
  "no detectable difference …", "slower: …").

Pure numpy and scipy.stats; arrays in, records out.

References
----------
.. [1] Student (1908), The probable error of a mean, Biometrika 6(1) — t interval and paired t-test.
.. [2] Holm, S. (1979), A simple sequentially rejective multiple test procedure, Scand. J. Statist. 6(2).
.. [3] Schiller et al. (2020), Relevance-Based Data Masking, §6 (accelerated training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "PAIRED_TEST",
    "MeanCI",
    "PairedDifference",
    "holm",
    "mean_ci",
    "paired_difference",
    "verdict",
]

#: Confidence level of every interval.
CONFIDENCE: Final = 0.95
#: Family-wise error rate of the Holm-corrected tests.
ALPHA: Final = 0.05
#: The test :func:`paired_difference` runs, as named in reports.
PAIRED_TEST: Final = "two-sided paired t-test"


@dataclass(frozen=True, slots=True)
class MeanCI:
    """Mean over seeds and its confidence interval (``low``, ``high``; NaN with fewer than 2 values).

    Parameters
    ----------
    mean, low, high : float
    n : int
        Number of values (seeds).
    """

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """The paired difference variant − baseline over seeds.

    Parameters
    ----------
    mean, low, high : float
        Mean difference and its confidence interval.
    p : float
        Two-sided paired t-test p-value (1 when every difference is 0; NaN with fewer than 2 pairs).
    n : int
        Number of pairs.
    """

    mean: float
    low: float
    high: float
    p: float
    n: int


def _values(values: ArrayLike, *, name: str) -> NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence (one value per seed); got shape {x.shape!r}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"{name} must be finite; got {int(np.sum(~np.isfinite(x)))} non-finite values. Replace 'never' "
            "by the step budget (a censored value) before averaging."
        )
    return x


def mean_ci(values: ArrayLike, *, confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and Student-t confidence interval ``mean ± t_{1-α/2, n-1} · s / √n`` (s: sample SD, ddof 1).

    Parameters
    ----------
    values : array_like, shape (n,)
        One value per seed.
    confidence : float
        Level of the two-sided interval (default 0.95).

    Returns
    -------
    MeanCI
        With ``low == high == mean`` when all values are equal, NaN bounds for a single value.

    References
    ----------
    .. [1] Student (1908), Biometrika 6(1).
    """
    from scipy import stats

    x = _values(values, name="values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}.")
    mean = float(x.mean())
    if len(x) < 2:
        return MeanCI(mean, math.nan, math.nan, 1)
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        return MeanCI(mean, mean, mean, len(x))
    half = float(stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return MeanCI(mean, mean - half, mean + half, len(x))


def paired_difference(
    variant: ArrayLike, baseline: ArrayLike, *, confidence: float = CONFIDENCE
) -> PairedDifference:
    """Mean paired difference ``variant − baseline``, its t interval and the paired t-test's p-value.

    Parameters
    ----------
    variant, baseline : array_like, shape (n,)
        The same measure per seed, in the same seed order.
    confidence : float
        Level of the interval.

    Returns
    -------
    PairedDifference
        ``p`` is the two-sided p of t = mean(d) / (sd(d) / √n) with n − 1 degrees of freedom; 1 when all
        differences are 0 (nothing differs), 0 when they are equal but not 0 (a constant shift).

    Raises
    ------
    ValueError
        When the two do not have one value per seed each.

    References
    ----------
    .. [1] Student (1908), Biometrika 6(1) (paired t-test).
    """
    from scipy import stats

    a = _values(variant, name="variant")
    b = _values(baseline, name="baseline")
    if a.shape != b.shape:
        raise ValueError(
            "variant and baseline need one value per seed each, in the same order; got "
            f"{len(a)} and {len(b)}."
        )
    d = a - b
    ci = mean_ci(d, confidence=confidence)
    if len(d) < 2:
        return PairedDifference(ci.mean, ci.low, ci.high, math.nan, len(d))
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))):  # equal up to rounding: t undefined
        shift = abs(ci.mean) > 1e-12
        return PairedDifference(0.0 if not shift else ci.mean, ci.low, ci.high, 0.0 if shift else 1.0, len(d))
    p = float(stats.ttest_rel(a, b).pvalue)
    return PairedDifference(ci.mean, ci.low, ci.high, p, len(d))


def holm(p_values: ArrayLike) -> NDArray[np.float64]:
    """Holm's step-down adjusted p-values (reject where adjusted p ≤ α keeps the family-wise rate at α).

    Sorted ascending, the i-th smallest (0-based) p becomes ``max_{j ≤ i} min(1, (m − j) · p_(j))``; NaN
    p-values (untestable comparisons) stay NaN and do not count in m.

    References
    ----------
    .. [1] Holm (1979), Scand. J. Statist. 6(2).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D; got shape {p.shape!r}.")
    finite = np.flatnonzero(np.isfinite(p))
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p.tolist()!r}.")
    adjusted = np.full_like(p, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[index])))
        adjusted[index] = running
    return adjusted


def verdict(
    difference: PairedDifference,
    adjusted_p: float,
    *,
    measure: str = "AULC",
    higher_is_better: bool = True,
    alpha: float = ALPHA,
) -> str:
    """A plain-words reading of a paired difference in a learning-speed measure.

    ``"accelerates learning: AULC +0.040 [0.020, 0.060], p = 0.01"`` when the Holm-adjusted p is at most
    ``alpha`` and the difference points the good way, ``"slower: …"`` when it points the other way, and
    ``"no detectable difference (…)"`` otherwise (including untestable comparisons with one seed).

    Parameters
    ----------
    difference : PairedDifference
        Variant − baseline.
    adjusted_p : float
        Its Holm-adjusted p-value (:func:`holm`).
    measure : str
        The measure's name in the text.
    higher_is_better : bool
        True for areas and scores, False for steps to a threshold.
    alpha : float
        Family-wise error rate.
    """
    d = 3 if abs(difference.mean) < 10 else 0
    numbers = (
        f"{measure} {difference.mean:+.{d}f} [{difference.low:.{d}f}, {difference.high:.{d}f}], "
        f"p {_format_p(adjusted_p)}"
    )
    if not (np.isfinite(adjusted_p) and adjusted_p <= alpha) or difference.mean == 0:
        return f"no detectable difference ({numbers})"
    better = (difference.mean > 0) == higher_is_better
    return f"{'accelerates learning' if better else 'slower'}: {numbers}"


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "= n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"
