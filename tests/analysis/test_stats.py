"""The statistics of every verdict, against known truths: exact tables, closed forms and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.analysis.power import Design, false_verdict_rate, power
from bench.analysis.stats import adjust, bootstrap_ci, hodges_lehmann, mann_whitney, min_possible_p
from bench.analysis.verdicts import (
    BY_KEY,
    NO_DIFFERENCE,
    NOT_ASSESSABLE,
    NOT_MEANINGFUL,
    Where,
    comparison_of,
    judge,
)

WHERE = Where("getbook", "local", "local", "eq50", "GetBook")


def test_mann_whitney_is_scipys_exact_test() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n_a, n_b = (int(n) for n in rng.integers(2, 10, 2))
        a, b = rng.normal(0, 1, n_a), rng.normal(rng.normal(0, 1), 1, n_b)
        expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        assert mann_whitney(a.tolist(), b.tolist()) == pytest.approx(expected, abs=1e-12)


def test_smallest_possible_p_is_complete_separation() -> None:
    assert min_possible_p(5, 5) == pytest.approx(2 / 252)
    assert min_possible_p(3, 2) == pytest.approx(0.2)  # the old odd/even A/A split could never fire
    assert mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(min_possible_p(5, 5))
    assert min_possible_p(0, 4) == 1.0


def test_comparisons_that_cannot_reach_significance_are_not_assessable() -> None:
    row = comparison_of(BY_KEY["p50_eq"], "protocol", [1.0, 2.0, 3.0], [10.0, 11.0, 12.0],
                        name_a="grpc", name_b="rest", where=WHERE)  # fmt: skip
    judge([row])
    assert row.verdict.startswith(NOT_ASSESSABLE) and "cannot reach p < 0.05" in row.verdict
    assert math.isnan(row.p_value)  # a p-value that could never be small is not shown as evidence


def test_hodges_lehmann_shift_and_ci_on_a_known_shift() -> None:
    a = [11.0, 12.0, 13.0, 14.0, 15.0]
    shift, low, high = hodges_lehmann(a, [v - 10 for v in a])
    assert shift == 10.0 and low <= 10.0 <= high
    # 5 vs 5: the 95 % CI lies between the 3rd smallest and 3rd largest of the 25 pairwise differences
    # (P(U <= 2) = 4/252 <= 2.5 % < P(U <= 3) = 7/252).
    differences = sorted(x - y for x in a for y in [v - 10 for v in a])
    assert (low, high) == (differences[2], differences[-3])


def test_hodges_lehmann_ci_covers_the_true_shift_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    trials = 2000
    for _ in range(trials):
        a, b = rng.lognormal(0, 0.05, 6) + 0.3, rng.lognormal(0, 0.05, 6)
        _, low, high = hodges_lehmann(a.tolist(), b.tolist())
        covered += low <= 0.3 <= high
    # Distribution-free and conservative (the discrete U table): at least 95 %, within simulation error.
    assert covered / trials >= 0.94


def test_benjamini_hochberg_matches_the_step_up_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> p*m/rank 0.02, 0.02, 0.04, 0.04 (monotone from the top)
    assert adjust(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust([]) == []


def test_bootstrap_ci_is_seeded_and_brackets_the_median() -> None:
    values = [10.0, 11.0, 12.0, 13.0, 30.0]
    first = bootstrap_ci([values], np.median, seed=3)
    assert first == bootstrap_ci([values], np.median, seed=3)
    assert first[0] <= 12.0 <= first[1]
    assert all(math.isnan(v) for v in bootstrap_ci([[1.0]], np.median))


def _judged(a: list[float], b: list[float], aa: tuple[list[float], list[float]]) -> str:
    rows = [
        comparison_of(BY_KEY["p50_eq"], "protocol", a, b, name_a="grpc", name_b="rest", where=WHERE),
        comparison_of(BY_KEY["p50_eq"], "aa", *aa, name_a="grpc-aa", name_b="grpc", where=WHERE),
    ]
    return judge(rows)[0].verdict


def test_a_clear_difference_gets_a_verdict_with_the_right_sign() -> None:
    quiet_aa = ([100.0, 100.2, 99.9, 100.1, 100.05], [100.1, 99.95, 100.0, 100.15, 99.85])
    assert _judged([80.0, 81, 79, 80.5, 79.5], [100.0, 101, 99, 100.5, 99.5], quiet_aa) == "grpc faster"
    assert _judged([120.0, 121, 119, 120.5, 119.5], [100.0, 101, 99, 100.5, 99.5], quiet_aa) == "grpc slower"


def test_a_significant_difference_below_the_aa_spread_is_not_meaningful() -> None:
    noisy_aa = ([100.0, 104, 96, 108, 92], [101.0, 95, 105, 93, 107])  # a spread of several percent
    verdict = _judged([97.0, 97.1, 96.9, 97.05, 96.95], [100.0, 100.1, 99.9, 100.05, 99.95], noisy_aa)
    assert verdict == NOT_MEANINGFUL


def test_the_verdict_rule_gives_at_most_5_percent_false_verdicts_per_run() -> None:
    """Simulated runs with no real difference anywhere (24 comparisons + the A/A one, as in a default
    run's native family): the share of runs with any verdict stays within the 5 % the rule promises."""
    rate = false_verdict_rate(Design(repeats=5, cv_pct=3.0, comparisons=24), runs=600, seed=1)
    assert rate <= 0.05
    # Without the family control and the A/A minimum effect, the same runs would often have one:
    rng = np.random.default_rng(1)
    raw = 0
    for _ in range(300):
        p = [mann_whitney(rng.lognormal(0, 0.03, 5).tolist(), rng.lognormal(0, 0.03, 5).tolist())
             for _ in range(25)]  # fmt: skip
        raw += min(p) < 0.05
    assert raw / 300 > 0.3


def test_the_rule_finds_a_real_difference() -> None:
    """The rule is not vacuous: a 10 % shift among comparisons that differ (as protocols do) is found."""
    realistic = Design(repeats=5, cv_pct=3.0, comparisons=24, background_pct=(60.0, -45.0, 0.0, 150.0, 25.0))
    assert power(realistic, 10.0, runs=300, seed=2) >= 0.8
    assert power(realistic, -10.0, runs=300, seed=2) >= 0.8  # the other sign reads "faster"
    # ... and not when nothing else in the family differs and 5 repetitions cap p at 0.008 (> 0.05 / 25):
    assert power(Design(repeats=5, cv_pct=3.0, comparisons=24), 10.0, runs=100, seed=2) < 0.1


def test_identical_arms_say_no_significant_difference() -> None:
    same = [100.0, 101.0, 99.0, 100.5, 99.5]
    assert _judged(same, list(reversed(same)), (same, same)) == NO_DIFFERENCE
