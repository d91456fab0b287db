"""What the report sections share: names, colours, units, tidy-table slices, the per-scenario layout."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from bench.analysis.stats import min_possible_p
from bench.analysis.verdicts import NO_DIFFERENCE, NOT_MEANINGFUL, Comparison, Headline
from bench.report.data import RunData, Summary
from bench.report.figures import (
    color,
)
from bench.report.html import (
    Html,
    fmt,
    fmt_ci,
    no_data,
    tag,
)

ALL_OPERATIONS = "all operations"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def level_sort_key(level: str) -> tuple[str, float]:
    """ "u4" < "u16", "eq50" < "eq75" < "own90": by prefix, then by the number after it."""
    match = re.fullmatch(r"([a-z]*)(\d+(?:\.\d+)?)", level)
    return (match[1], float(match[2])) if match else (level, 0.0)


def scenario_title(data: RunData, scenario: str) -> Html:
    if len(data.scenarios) <= 1:
        return Html("")
    return tag("h3", f"Scenario {scenario}")


def client_names(data: RunData, profile: str) -> dict[str, str]:
    suffix = " [emulated]" if data.emulated_profile(profile) else ""
    return {c: f"{c}{suffix}" for c in data.clients}


def client_colors(data: RunData) -> dict[str, str]:
    return {c: color(c, data.clients) for c in data.clients}


def ms(value: float | None) -> str:
    return fmt(None if value is None else value / 1000, "ms")


def median_ms(s: Summary | None) -> str:
    return "–" if s is None else ms(s.median)


def range_ms(s: Summary | None) -> str:
    return "–" if s is None or s.n < 2 else fmt_ci(s.low / 1000, s.high / 1000, "ms")


def error_bar(s: Summary, scale: float = 1.0, *, ci: bool = False) -> tuple[float, float]:
    low, high = (s.ci_low, s.ci_high) if ci and s.n >= 2 else (s.low, s.high)
    return (s.median - low) * scale, (high - s.median) * scale


def tidy_slice(data: RunData, profile: str, scenario: str) -> pd.DataFrame:
    t = data.tidy
    if t.empty:
        return t
    return t[
        (t["status"] == "ok")
        & (t["kind"] == "load")
        & (t["profile"] == profile)
        & (t["scenario"] == scenario)
    ]


def headline_unit(key: str) -> tuple[float, str]:
    """(divisor, unit) to show a headline metric: latencies (µs in the tidy table) shown in ms."""
    if key in ("capacity", "throughput", "throughput_python"):
        return 1.0, "req/s"
    if key.startswith("cpu"):
        return 1.0, "µs/req"
    return 1000.0, "ms"


def headline_format(key: str, value: float | None) -> str:
    """A headline value with its unit."""
    divisor, unit = headline_unit(key)
    return fmt(None if value is None else value / divisor, unit)


def when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "unknown"
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


min_p = min_possible_p  # the smallest two-sided Mann-Whitney p of arms of two sizes


Block = Callable[[RunData, str, str], tuple[Html, list[str]]]


def per_scenario(
    data: RunData,
    profile: str,
    block: Block,
    *,
    empty: str | None = "No load cells.",
    engine: str = "python",
) -> tuple[list[Html], list[str]]:
    """The layout of a per-scenario section: for every scenario the engine ran, its title (when there are
    several) and the block for it; the figure ids of all blocks; `empty` as a note when there is none."""
    parts: list[Html] = []
    figures: list[str] = []
    scenarios = data.scenarios_of(engine)
    for scenario in scenarios:
        html, ids = block(data, scenario, profile)
        if len(scenarios) > 1:
            parts.append(tag("h3", f"Scenario {scenario}"))
        parts.append(html)
        figures += ids
    if not scenarios and empty is not None:
        parts.append(no_data(empty))
    return parts, figures


def comparison_side(row: Comparison, arm: str, headline: Headline) -> str:
    """better | worse | ns (no significant or no meaningful difference) | na (not assessable), from `arm`'s
    point of view (the row compares a with b)."""
    if not row.assessable:
        return "na"
    if row.verdict in (NO_DIFFERENCE, NOT_MEANINGFUL):
        return "ns"
    a_better = row.verdict.endswith(headline.words[0])
    return "better" if a_better == (row.a == arm) else "worse"
