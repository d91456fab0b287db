"""Comparisons over repetitions: median difference with a bootstrap 95 % CI, Mann-Whitney U, and a verdict.

A verdict other than "no significant difference" needs both: p < 0.05 (two-sided Mann-Whitney U over the
repetitions) and a bootstrap 95 % CI of the median difference that excludes zero. With 5 repetitions per arm
the smallest possible p is 0.008; with 3 it is 0.1, so fewer than 4 repetitions can never show a difference.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "HEADLINES",
    "Comparison",
    "Headline",
    "aa_noise_floor",
    "compare_arms",
    "headline_values",
    "protocol_comparisons",
]

ALPHA = 0.05


@dataclass(frozen=True)
class Headline:
    """A metric the summary compares: where it is read from and which direction is better."""

    key: str
    label: str
    phase: str
    level: str  # "" = the cell's highest closed level / highest open fraction chosen at read time
    metric: str
    lower_is_better: bool
    per_operation: bool
    words: tuple[str, str] = ("faster", "slower")


HEADLINES: tuple[Headline, ...] = (
    Headline("throughput", "max throughput (closed model)", "cell", "", "max_closed_rps", False, False),
    Headline("p50_1user", "p50 latency, 1 user (closed)", "closed", "u1", "latency_p50", True, True),
    Headline("p99_open50", "p99 latency at 50 % load (open, corrected)", "open", "f50", "corrected_p99",
             True, True),
    Headline("cpu", "server CPU per request (top closed level)", "closed", "top", "target_cpu_us_per_request",
             True, False, ("cheaper", "costlier")),
    Headline("ttfi", "time to first item, 1 user", "closed", "u1", "ttfi_p50", True, True),
)  # fmt: skip


@dataclass
class Comparison:
    headline: str
    label: str
    scenario: str
    profile_a: str
    profile_b: str
    operation: str
    a: str
    b: str
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    diff: float  # median(a) - median(b)
    ci_low: float
    ci_high: float
    rel_diff_pct: float  # diff / median(b)
    p_value: float
    verdict: str  # "<a> faster" / "<a> slower" / "no significant difference" (or cheaper/costlier)
    flagged: bool  # a noisy (steal) cell is involved
    generator_limited: bool
    emulated: bool

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _median_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.median(x, axis=axis) - np.median(y, axis=axis))


def compare_arms(a: list[float], b: list[float], *, seed: int = 0) -> tuple[float, float, float, float]:
    """(median difference, CI low, CI high, Mann-Whitney p) for arm a minus arm b."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(np.median(xa) - np.median(xb))
    if len(xa) < 2 or len(xb) < 2:
        return diff, float("nan"), float("nan"), 1.0
    if np.ptp(np.concatenate([xa, xb])) == 0:
        return diff, diff, diff, 1.0  # identical values everywhere (e.g. bytes): no spread, nothing to test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples of tiny samples warn; the CI is still valid
        boot = stats.bootstrap(
            (xa, xb),
            _median_diff,
            n_resamples=2000,
            confidence_level=0.95,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        p = float(stats.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    return diff, float(boot.confidence_interval.low), float(boot.confidence_interval.high), p


def verdict(a: str, diff: float, low: float, high: float, p: float, headline: Headline) -> str:
    significant = p < ALPHA and not np.isnan(low) and (low > 0 or high < 0)
    if not significant:
        return "no significant difference"
    better, worse = headline.words
    a_lower = high < 0
    return f"{a} {better if a_lower == headline.lower_is_better else worse}"


def _top_level(frame: pd.DataFrame, phase: str) -> str:
    levels = frame.loc[frame["phase"] == phase, "level"].dropna().unique()
    if len(levels) == 0:
        return ""
    return str(max(levels, key=lambda level: float(str(level)[1:] or 0)))


def headline_values(tidy: pd.DataFrame, headline: Headline) -> pd.DataFrame:
    """One row per (client, scenario, profile, operation, repetition) with the headline's value."""
    ok = tidy[(tidy["status"] == "ok") & (tidy["kind"] == "load")]
    sel = ok[(ok["phase"] == headline.phase) & (ok["metric"] == headline.metric)]
    if headline.level == "top":
        # The highest ramp level each profile reached (guests ramp less far than the host).
        parts = [
            group[group["level"] == _top_level(group, headline.phase)] for _, group in sel.groupby("profile")
        ]
        sel = pd.concat(parts) if parts else sel
    elif headline.level:
        sel = sel[sel["level"] == headline.level]
    whole_cell = sel["operation"] == "*"
    return sel[~whole_cell] if headline.per_operation else sel[whole_cell]


def _arm_rows(
    values: pd.DataFrame,
    headline: Headline,
    key_a: dict[str, str],
    key_b: dict[str, str],
    operation: str,
    seed: int,
) -> Comparison | None:
    def pick(key: dict[str, str]) -> pd.DataFrame:
        sel = values[values["operation"] == operation]
        for column, value in key.items():
            sel = sel[sel[column] == value]
        return sel

    arm_a, arm_b = pick(key_a), pick(key_b)
    if arm_a.empty or arm_b.empty:
        return None
    diff, low, high, p = compare_arms(list(arm_a["value"]), list(arm_b["value"]), seed=seed)
    median_b = float(arm_b["value"].median())
    both = pd.concat([arm_a, arm_b])
    name_a = key_a["client"] if key_a["client"] != key_b["client"] else key_a["profile"]
    name_b = key_b["client"] if key_a["client"] != key_b["client"] else key_b["profile"]
    return Comparison(
        headline=headline.key,
        label=headline.label,
        scenario=key_a["scenario"],
        profile_a=key_a["profile"],
        profile_b=key_b["profile"],
        operation=operation,
        a=name_a,
        b=name_b,
        n_a=len(arm_a),
        n_b=len(arm_b),
        median_a=float(arm_a["value"].median()),
        median_b=median_b,
        diff=diff,
        ci_low=low,
        ci_high=high,
        rel_diff_pct=100.0 * diff / median_b if median_b else float("nan"),
        p_value=p,
        verdict=verdict(name_a, diff, low, high, p, headline),
        flagged=bool(both["flagged"].any()),
        generator_limited=bool(both["generator_limited"].any()),
        emulated=bool(both["emulated"].any()),
    )


def protocol_comparisons(tidy: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Per headline: every pair of clients in a scenario and profile, every profile against the first."""
    rows: list[Comparison] = []
    for headline in HEADLINES:
        values = headline_values(tidy, headline)
        if values.empty:
            continue
        for (scenario, profile), group in values.groupby(["scenario", "profile"], sort=True):
            clients = sorted(group["client"].unique())
            for i, a in enumerate(clients):
                for b in clients[i + 1 :]:
                    for operation in sorted(group["operation"].unique()):
                        key_a = {"client": a, "scenario": scenario, "profile": profile}
                        key_b = {"client": b, "scenario": scenario, "profile": profile}
                        comparison = _arm_rows(group, headline, key_a, key_b, operation, seed)
                        if comparison is not None:
                            rows.append(comparison)
        profiles = sorted(values["profile"].unique(), key=lambda p: (p != "local", p))
        for (scenario, client), group in values.groupby(["scenario", "client"], sort=True):
            for other in profiles[1:]:
                for operation in sorted(group["operation"].unique()):
                    key_a = {"client": client, "scenario": scenario, "profile": other}
                    key_b = {"client": client, "scenario": scenario, "profile": profiles[0]}
                    comparison = _arm_rows(group, headline, key_a, key_b, operation, seed)
                    if comparison is not None:
                        rows.append(comparison)
    return pd.DataFrame([r.record() for r in rows])


def aa_noise_floor(tidy: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """A/A check: the same cell configuration split into odd and even repetitions (interleaved, so they are
    exchangeable) and compared like two arms. |relative difference| is the run's noise floor for it."""
    rows: list[dict[str, Any]] = []
    for headline in (HEADLINES[0], HEADLINES[1]):
        values = headline_values(tidy, headline)
        for (client, scenario, profile, operation), group in values.groupby(
            ["client", "scenario", "profile", "operation"], sort=True
        ):
            odd = group[group["repetition"] % 2 == 1]["value"].tolist()
            even = group[group["repetition"] % 2 == 0]["value"].tolist()
            if len(odd) < 2 or len(even) < 2:
                continue
            diff, low, high, p = compare_arms(odd, even, seed=seed)
            base = float(np.median(even))
            rows.append(
                {
                    "headline": headline.key,
                    "label": headline.label,
                    "client": client,
                    "scenario": scenario,
                    "profile": profile,
                    "operation": operation,
                    "n_odd": len(odd),
                    "n_even": len(even),
                    "rel_diff_pct": 100.0 * diff / base if base else float("nan"),
                    "ci_low_pct": 100.0 * low / base if base else float("nan"),
                    "ci_high_pct": 100.0 * high / base if base else float("nan"),
                    "p_value": p,
                    "significant": p < ALPHA and (low > 0 or high < 0),
                }
            )
    return pd.DataFrame(rows)
