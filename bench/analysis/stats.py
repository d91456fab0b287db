"""The statistics of every comparison, as pure functions on one value per repetition per arm.

    mann_whitney(a, b)          two-sided Mann-Whitney U p-value (exact when it can be: small, no ties)
    hodges_lehmann(a, b)        the shift a - b (median of all pairwise differences) with its
                                distribution-free confidence interval: the order statistics of the pairwise
                                differences that the exact U distribution puts at the 2.5 % / 97.5 % points
    min_possible_p(n_a, n_b)    the smallest two-sided p two arms of these sizes can reach
    adjust(p_values, sizes)     false-discovery control across a family: Benjamini-Hochberg (scipy), or its
                                discrete form (Heyse) when the exact tests' null distributions are known
    bootstrap_ci(values, ...)   a percentile-bootstrap CI (9,999 resamples, fixed seed): the one bootstrap

The Hodges-Lehmann shift is the estimator that matches the Mann-Whitney test (the test asks whether the
shift is 0; the CI is the set of shifts the test would not reject), so an estimate and its test never
disagree the way a difference of medians with a bootstrap CI could.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "adjust",
    "bootstrap_ci",
    "exact_p_values",
    "hodges_lehmann",
    "is_exact",
    "mann_whitney",
    "min_possible_p",
    "null_cdf",
]

ALPHA = 0.05  # after false-discovery control across the report's family of comparisons
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9_999
EXACT_MAX_PAIRS = 400  # arms up to 20 x 20 get the exact p-value from the U table


@functools.cache
def _u_distribution(n_a: int, n_b: int) -> tuple[int, ...]:
    """Counts of each value of U (0..n_a*n_b) over all arrangements: the exact null distribution."""
    # f(m, n)[u]: arrangements of m a's and n b's with u (a, b) pairs where the b comes first.
    table: dict[tuple[int, int], list[int]] = {}
    for m in range(n_a + 1):
        for n in range(n_b + 1):
            if m == 0 or n == 0:
                table[(m, n)] = [1]
                continue
            size = m * n + 1
            counts = [0] * size
            for u, c in enumerate(table[(m - 1, n)]):  # the largest value is an a: no new pairs
                counts[u] += c
            for u, c in enumerate(table[(m, n - 1)]):  # the largest value is a b: m new pairs
                counts[u + m] += c
            table[(m, n)] = counts
    return tuple(table[(n_a, n_b)])


def min_possible_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p of arms of these sizes (complete separation)."""
    if n_a == 0 or n_b == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


@functools.cache
def _u_cdf(n_a: int, n_b: int) -> np.ndarray:
    counts = np.asarray(_u_distribution(n_a, n_b), dtype=float)
    cdf: np.ndarray = np.cumsum(counts) / counts.sum()
    return cdf


def is_exact(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """Whether `mann_whitney(a, b)` is the exact test (no ties, small arms): its p-value then takes only the
    values of `exact_p_values(len(a), len(b))`, which the discrete false-discovery control uses."""
    both = np.concatenate([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    return (
        len(a) > 0 and len(b) > 0 and np.unique(both).size == both.size and len(a) * len(b) <= EXACT_MAX_PAIRS
    )


@functools.cache
def exact_p_values(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """(every two-sided p-value the exact test of arms of these sizes can give, sorted; the probability of
    each under no difference): the test's null distribution of p."""
    counts = np.asarray(_u_distribution(n_a, n_b), dtype=float)
    cdf = np.cumsum(counts) / counts.sum()
    upper = 1.0 - np.concatenate([[0.0], cdf[:-1]])
    p = np.minimum(1.0, 2.0 * np.minimum(cdf, upper))
    values, inverse = np.unique(np.round(p, 12), return_inverse=True)
    weights = np.bincount(inverse, weights=counts / counts.sum())
    return values, weights


def null_cdf(p: float, sizes: tuple[int, int] | None) -> float:
    """P(p-value <= `p`) under no difference: exact for an exact test of arms of `sizes`, else `p` (a
    continuous test's p-value is uniform)."""
    if sizes is None:
        return min(1.0, max(0.0, p))
    values, weights = exact_p_values(*sizes)
    return float(weights[values <= p + 1e-12].sum())


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when either arm is empty or every value is the same."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.concatenate([xa, xb])
    if xa.size == 0 or xb.size == 0 or np.ptp(both) == 0:
        return 1.0
    if is_exact(xa, xb):
        # No ties, small arms: the exact null distribution (what scipy's "exact" method computes), from the
        # table the Hodges-Lehmann CI uses - simulations call this hundreds of thousands of times.
        u = int((xa[:, None] > xb[None, :]).sum())
        cdf = _u_cdf(int(xa.size), int(xb.size))
        lower = cdf[u]
        upper = 1.0 - (cdf[u - 1] if u > 0 else 0.0)
        return float(min(1.0, 2.0 * min(lower, upper)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.mannwhitneyu(xa, xb, alternative="two-sided", method="auto").pvalue)


def _ci_rank(n_a: int, n_b: int, confidence: float) -> int | None:
    """k such that the k-th smallest and k-th largest pairwise difference bound the CI; None if too few."""
    counts = _u_distribution(n_a, n_b)
    total = sum(counts)
    tail = (1.0 - confidence) / 2.0
    cumulative = 0
    k = 0
    for count in counts:  # P(U <= k - 1) <= tail: the largest such k
        if (cumulative + count) / total > tail:
            break
        cumulative += count
        k += 1
    return k if k >= 1 else None


def hodges_lehmann(
    a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(shift a - b, CI low, CI high); the CI bounds are NaN when the arms are too small for it."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xb.size == 0:
        return math.nan, math.nan, math.nan
    differences = np.sort(np.subtract.outer(xa, xb).ravel())
    shift = float(np.median(differences))
    k = _ci_rank(int(xa.size), int(xb.size), confidence)
    if k is None:
        return shift, math.nan, math.nan
    return shift, float(differences[k - 1]), float(differences[-k])


def adjust(p_values: Sequence[float], sizes: Sequence[tuple[int, int] | None] | None = None) -> list[float]:
    """False-discovery-rate adjusted p-values (q-values) of a family, in the same order.

    Without `sizes`: Benjamini-Hochberg (scipy). With them (per test: the arm sizes of an exact test, or None
    for a continuous one): the same step-up rule for discrete tests (Heyse 2011): at a threshold t the
    expected number of false discoveries is the sum over the tests of P(p <= t | no difference) - exactly
    m·t for continuous tests (hence BH), but much less when some tests cannot even reach t (4 vs 4
    repetitions never give p < 0.029). So arms of few repetitions do not dilute the family for the others.
    """
    if not p_values:
        return []
    if sizes is None:
        return [
            float(q) for q in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
        ]
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    expected = np.array([sum(null_cdf(float(p[i]), size) for size in sizes) for i in order])
    raw = expected / np.arange(1, len(p) + 1)
    stepped = np.minimum(1.0, np.minimum.accumulate(raw[::-1])[::-1])
    q = np.empty(len(p))
    q[order] = stepped
    return [float(v) for v in q]


def bootstrap_ci(
    samples: Sequence[Sequence[float]],
    statistic: Callable[..., Any],
    *,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of `statistic(*samples, axis=-1)` (vectorized); NaNs with < 2 values."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if any(a.size < 2 for a in arrays):
        return math.nan, math.nan
    if all(np.ptp(a) == 0 for a in arrays):
        value = float(statistic(*arrays, axis=-1))
        return value, value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples of tiny samples warn; the CI is still valid
        result = stats.bootstrap(
            tuple(arrays),
            statistic,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=confidence,
            method="percentile",  # BCa needs more than a handful of repetitions to be defined
            vectorized=True,
            paired=False,
            rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
