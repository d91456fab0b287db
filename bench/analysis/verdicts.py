"""Every comparison of a run, with its verdict: which arm is faster, cheaper, bigger - or why no one can say.

The rule, in order:
1. Only assessable rows count (tidy column `not_assessable` empty: server-bound, counters agree, no steal,
   no busy host, enough samples, not emulated, ...). An arm with fewer than MIN_REPETITIONS assessable
   repetitions, or arms too small for any p below ALPHA, give "not assessable" with the reasons.
2. One value per repetition per arm; Mann-Whitney U (two-sided) and the Hodges-Lehmann shift with its
   distribution-free 95 % CI (bench.analysis.stats).
3. False-discovery control across the whole family of the report (protocol, A/A and profile comparisons):
   Benjamini-Hochberg in its form for discrete tests (stats.adjust), so arms of few repetitions, whose exact
   test cannot reach small p-values, do not dilute the family for the others.
4. A difference is reported when its q < ALPHA and its CI excludes 0; it is called meaningful only when it
   is also at least the run's A/A spread for that metric (the largest relative shift the A/A comparison of
   the same metric could not exclude). Significant but smaller: "no meaningful difference".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.stats import ALPHA, adjust, hodges_lehmann, is_exact, mann_whitney, min_possible_p

__all__ = [
    "BY_KEY",
    "HEADLINES",
    "MIN_REPETITIONS",
    "NOT_ASSESSABLE",
    "NOT_MEANINGFUL",
    "NO_DIFFERENCE",
    "Comparison",
    "Headline",
    "Where",
    "compare_groups",
    "compare_values",
    "comparison_of",
    "comparisons",
    "headline_values",
    "judge",
]

MIN_REPETITIONS = 3
NO_DIFFERENCE = "no significant difference"
NOT_MEANINGFUL = "no meaningful difference"
NOT_ASSESSABLE = "not assessable"


@dataclass(frozen=True)
class Headline:
    """A metric the verdicts compare: where it is read from and which direction is better."""

    key: str
    label: str
    engine: str  # native | python
    phase: str
    level: str  # exact level, a prefix ending in "*" ("eq*": every equal-load rate), or "" (any)
    metric: str
    lower_is_better: bool
    per_operation: bool
    words: tuple[str, str] = ("faster", "slower")


HEADLINES: tuple[Headline, ...] = (
    Headline("capacity", "capacity (server-bound closed model)", "native", "cell", "", "capacity_rps", False,
             False, ("higher", "lower")),
    Headline("p50_eq", "p50 latency at equal offered load (open model, corrected)", "native", "open", "eq*",
             "corrected_p50", True, True),
    Headline("p99_eq", "p99 latency at equal offered load (open model, corrected)", "native", "open", "eq*",
             "corrected_p99", True, True),
    Headline("cpu", "server CPU per request (capacity window)", "native", "cell", "",
             "capacity_cpu_us_per_request", True, False, ("cheaper", "costlier")),
    Headline("p50_1user", "p50 latency, 1 user (Python client)", "python", "closed", "u1", "latency_p50",
             True, True),
    Headline("ttfi", "time to first item, 1 user (Python client)", "python", "closed", "u1", "ttfi_p50",
             True, True),
    Headline("cpu_1user", "server CPU per request, 1 user (Python client)", "python", "closed", "u1",
             "target_cpu_us_per_request", True, False, ("cheaper", "costlier")),
)  # fmt: skip
BY_KEY = {h.key: h for h in HEADLINES}


@dataclass
class Comparison:
    headline: str
    label: str
    engine: str
    kind: str  # protocol | aa | profile | runs
    scenario: str
    profile_a: str
    profile_b: str
    level: str
    operation: str
    a: str
    b: str
    n_a: int  # assessable repetitions
    n_b: int
    median_a: float
    median_b: float
    diff: float  # Hodges-Lehmann shift a - b
    ci_low: float
    ci_high: float
    rel_diff_pct: float  # shift / median(b)
    rel_ci_low_pct: float
    rel_ci_high_pct: float
    p_value: float
    q_value: float  # Benjamini-Hochberg across the report's family
    min_effect_pct: float  # the A/A spread for this metric (NaN: no A/A comparison of it)
    verdict: str
    reason: str  # why not assessable ("" otherwise)
    causes: tuple[str, ...]  # the distinct short causes behind `reason` (for summaries)
    exact: (
        bool  # the exact Mann-Whitney test (its p takes known discrete values: the family control uses them)
    )
    flagged: bool  # a noisy (steal) cell is involved
    generator_limited: bool
    emulated: bool

    @property
    def assessable(self) -> bool:
        return not self.reason

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _level_matches(level: str, wanted: str) -> bool:
    if not wanted:
        return True
    if wanted.endswith("*"):
        return level.startswith(wanted[:-1])
    return level == wanted


def headline_values(tidy: pd.DataFrame, headline: Headline) -> pd.DataFrame:
    """One row per (arm, scenario, profile, level, operation, repetition) with the headline's value."""
    if tidy.empty:
        return tidy
    sel = tidy[
        (tidy["kind"] == "load")
        & (tidy["engine"] == headline.engine)
        & (tidy["phase"] == headline.phase)
        & (tidy["metric"] == headline.metric)
    ]
    sel = sel[sel["level"].map(lambda level: _level_matches(str(level), headline.level)).astype(bool)]
    whole_cell = sel["operation"] == "*"
    return sel[~whole_cell] if headline.per_operation else sel[whole_cell]


def _excluded(rows: pd.DataFrame) -> str:
    """'3 of 5 repetitions: not server-bound (3)' for the rows that cannot back a verdict."""
    bad = rows[rows["not_assessable"] != ""]
    if bad.empty:
        return ""
    counts: Counter[str] = Counter()
    for reasons in bad["not_assessable"]:
        for reason in str(reasons).split("; "):
            counts[reason.split(" (")[0] if reason.startswith("insufficient") else reason] += 1
    listed = ", ".join(f"{reason} ({n})" for reason, n in counts.most_common())
    return f"{len(bad)} of {len(rows)} repetitions excluded: {listed}"


def compare_values(a: Iterable[float], b: Iterable[float]) -> tuple[float, float, float, float, float, float]:
    """(median a, median b, HL shift, CI low, CI high, Mann-Whitney p) of two arms' repetitions."""
    xa, xb = [float(v) for v in a], [float(v) for v in b]
    shift, low, high = hodges_lehmann(xa, xb)
    return float(np.median(xa)), float(np.median(xb)), shift, low, high, mann_whitney(xa, xb)


@dataclass(frozen=True)
class Where:
    """What a comparison is about (beside its two arms)."""

    scenario: str
    profile_a: str
    profile_b: str
    level: str
    operation: str


def comparison_of(
    headline: Headline,
    kind: str,
    good_a: list[float],
    good_b: list[float],
    *,
    name_a: str,
    name_b: str,
    where: Where,
    reasons: Iterable[str] = (),
    causes: Iterable[str] = (),
    shown_a: list[float] | None = None,
    shown_b: list[float] | None = None,
    flagged: bool = False,
    generator_limited: bool = False,
    emulated: bool = False,
) -> Comparison:
    """A comparison (not yet judged) of two arms' assessable repetitions; `reasons` make it not assessable,
    `shown_*` are the values its medians show then (default: the assessable ones)."""
    reasons, found = list(reasons), dict.fromkeys(causes)
    for name, good in ((name_a, good_a), (name_b, good_b)):
        if len(good) < MIN_REPETITIONS and not any(r.startswith(f"{name}:") for r in reasons):
            reasons.append(f"{name}: {len(good)} assessable repetitions")
        if len(good) < MIN_REPETITIONS and not found:
            found[f"fewer than {MIN_REPETITIONS} repetitions"] = None
    if not reasons and min_possible_p(len(good_a), len(good_b)) >= ALPHA:
        reasons.append(
            f"{len(good_a)} vs {len(good_b)} repetitions cannot reach p < {ALPHA} "
            f"(smallest possible p {min_possible_p(len(good_a), len(good_b)):.3f})"
        )
        found[f"{len(good_a)} vs {len(good_b)} repetitions cannot reach p < {ALPHA}"] = None
    median_a, median_b, shift, low, high, p = compare_values(shown_a or good_a, shown_b or good_b)
    base = median_b if median_b else math.nan

    def rel(value: float) -> float:
        return 100.0 * value / base if base and not math.isnan(value) else math.nan

    return Comparison(
        headline=headline.key,
        label=headline.label,
        engine=headline.engine,
        kind=kind,
        scenario=where.scenario,
        profile_a=where.profile_a,
        profile_b=where.profile_b,
        level=where.level,
        operation=where.operation,
        a=name_a,
        b=name_b,
        n_a=len(good_a),
        n_b=len(good_b),
        median_a=median_a,
        median_b=median_b,
        diff=shift,
        ci_low=low,
        ci_high=high,
        rel_diff_pct=rel(shift),
        rel_ci_low_pct=rel(low),
        rel_ci_high_pct=rel(high),
        p_value=p if not reasons else math.nan,
        q_value=math.nan,
        min_effect_pct=math.nan,
        verdict=NOT_ASSESSABLE,
        reason="; ".join(reasons),
        causes=tuple(found) if reasons else (),
        exact=not reasons and is_exact(good_a, good_b),
        flagged=flagged,
        generator_limited=generator_limited,
        emulated=emulated,
    )


def compare_groups(
    headline: Headline,
    kind: str,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    *,
    name_a: str,
    name_b: str,
    where: Where,
) -> Comparison:
    """The comparison of two arms' tidy rows (one per repetition): only assessable rows count."""
    good_a = rows_a[rows_a["not_assessable"] == ""]["value"].tolist()
    good_b = rows_b[rows_b["not_assessable"] == ""]["value"].tolist()
    reasons = []
    causes = [
        cause.split(" (")[0] if cause.startswith("insufficient") else cause
        for text in pd.concat([rows_a, rows_b])["not_assessable"]
        if text
        for cause in str(text).split("; ")
    ]
    for name, rows, good in ((name_a, rows_a, good_a), (name_b, rows_b, good_b)):
        excluded = _excluded(rows)
        if len(good) < MIN_REPETITIONS:
            reasons.append(
                f"{name}: {len(good)} assessable repetitions" + (f" ({excluded})" if excluded else "")
            )
    both = pd.concat([rows_a, rows_b])
    return comparison_of(
        headline,
        kind,
        good_a,
        good_b,
        name_a=name_a,
        name_b=name_b,
        where=where,
        reasons=reasons,
        causes=sorted(set(causes)),
        shown_a=good_a or rows_a["value"].tolist(),
        shown_b=good_b or rows_b["value"].tolist(),
        flagged=bool(both["flagged"].any()),
        generator_limited=bool(both["generator_limited"].any()),
        emulated=bool(both["emulated"].any()),
    )


def _pairs(tidy: pd.DataFrame, headline: Headline) -> list[Comparison]:
    values = headline_values(tidy, headline)
    if values.empty:
        return []
    out: list[Comparison] = []
    keys = ["scenario", "profile", "level", "operation"]
    for (scenario, profile, level, operation), group in values.groupby(keys, sort=True):
        arms = sorted(group["arm"].unique())
        twins = dict(group[["arm", "twin_of"]].drop_duplicates().itertuples(index=False, name=None))
        for i, first in enumerate(arms):
            for second in arms[i + 1 :]:
                twin_a, twin_b = twins.get(first, ""), twins.get(second, "")
                if twin_a or twin_b:
                    # A twin is compared with its original only (the A/A comparison), never with others.
                    if twin_a != second and twin_b != first:
                        continue
                    kind = "aa"
                    a, b = (first, second) if twin_a == second else (second, first)
                else:
                    kind, a, b = "protocol", first, second
                out.append(
                    compare_groups(
                        headline,
                        kind,
                        group[group["arm"] == a],
                        group[group["arm"] == b],
                        name_a=a,
                        name_b=b,
                        where=Where(str(scenario), str(profile), str(profile), str(level), str(operation)),
                    )
                )
    profiles = sorted(values["profile"].unique(), key=lambda p: (p != "local", p))
    for (scenario, arm, level, operation), group in values.groupby(
        ["scenario", "arm", "level", "operation"], sort=True
    ):
        for other in profiles[1:]:
            rows_a, rows_b = group[group["profile"] == other], group[group["profile"] == profiles[0]]
            if rows_a.empty or rows_b.empty:
                continue
            out.append(
                compare_groups(
                    headline,
                    "profile",
                    rows_a,
                    rows_b,
                    name_a=str(other),
                    name_b=str(profiles[0]),
                    where=Where(
                        str(scenario),
                        str(other),
                        str(profiles[0]),
                        str(level),
                        f"{operation}" if arm == "" else f"{arm}: {operation}",
                    ),
                )
            )
    return out


def _aa_spread(rows: list[Comparison]) -> dict[tuple[str, str, str, str, str], float]:
    """(headline, scenario, profile, level, operation) -> the A/A comparison's spread, in %."""
    spread = {}
    for c in rows:
        if c.kind == "aa" and c.assessable and not math.isnan(c.rel_ci_low_pct):
            spread[(c.headline, c.scenario, c.profile_a, c.level, c.operation)] = max(
                abs(c.rel_ci_low_pct), abs(c.rel_ci_high_pct), abs(c.rel_diff_pct)
            )
    return spread


def _min_effect(c: Comparison, spread: dict[tuple[str, str, str, str, str], float]) -> float:
    exact = spread.get((c.headline, c.scenario, c.profile_a, c.level, c.operation))
    if exact is not None:
        return exact
    same_metric = [v for k, v in spread.items() if k[0] == c.headline]
    return max(same_metric) if same_metric else math.nan


def judge(rows: list[Comparison], *, aa: list[Comparison] | None = None) -> list[Comparison]:
    """False-discovery control across `rows`, the A/A spreads (from `aa`, default: the A/A rows among
    `rows`), and each row's verdict (in place)."""
    assessable = [c for c in rows if c.assessable]
    sizes = [(c.n_a, c.n_b) if c.exact else None for c in assessable]
    for c, q in zip(assessable, adjust([c.p_value for c in assessable], sizes), strict=True):
        c.q_value = q
    spread = _aa_spread(rows if aa is None else aa)
    for c in rows:
        if not c.assessable:
            c.verdict = f"{NOT_ASSESSABLE}: {c.reason}"
            continue
        headline = BY_KEY.get(c.headline)
        significant = c.q_value < ALPHA and not math.isnan(c.ci_low) and (c.ci_low > 0 or c.ci_high < 0)
        if c.kind != "aa":
            c.min_effect_pct = _min_effect(c, spread)
        if not significant:
            c.verdict = NO_DIFFERENCE
        elif not math.isnan(c.min_effect_pct) and abs(c.rel_diff_pct) < c.min_effect_pct:
            c.verdict = NOT_MEANINGFUL
        else:
            better, worse = headline.words if headline else ("lower", "higher")
            a_lower = c.ci_high < 0
            lower_is_better = headline.lower_is_better if headline else True
            c.verdict = f"{c.a} {better if a_lower == lower_is_better else worse}"
    return rows


def comparisons(tidy: pd.DataFrame) -> list[Comparison]:
    """Every headline's protocol, A/A and profile comparisons of a run, judged as one family."""
    rows = [c for headline in HEADLINES for c in _pairs(tidy, headline)]
    return judge(rows)
