"""What the report sections share: names, colours, units, tidy-table slices, the per-scenario layout."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from bench.analysis.stats import HEADLINES, Comparison, Headline
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
    try:
        return level[:1], float(level[1:])
    except ValueError:
        return level[:1], 0.0


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


BY_KEY = {h.key: h for h in HEADLINES}


def headline_unit(key: str) -> tuple[float, str]:
    """(divisor, unit) to show a headline metric: latencies (µs in the tidy table) shown in ms."""
    if key == "throughput":
        return 1.0, "req/s"
    if key == "cpu":
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


def min_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p two arms of these sizes can reach (complete separation)."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a)) if n_a and n_b else 1.0


Block = Callable[[RunData, str, str], tuple[Html, list[str]]]


def per_scenario(
    data: RunData, profile: str, block: Block, *, empty: str | None = "No load cells."
) -> tuple[list[Html], list[str]]:
    """The layout of a per-scenario section: for every scenario its title (when there are several) and the
    block for it; the figure ids of all blocks; `empty` as a note when the run has no scenario."""
    parts: list[Html] = []
    figures: list[str] = []
    for scenario in data.scenarios:
        html, ids = block(data, scenario, profile)
        parts += [scenario_title(data, scenario), html]
        figures += ids
    if not data.scenarios and empty is not None:
        parts.append(no_data(empty))
    return parts, figures


def comparison_side(row: Comparison, client: str, headline: Headline) -> str:
    """better | worse | ns from `client`'s point of view (the row compares a with b)."""
    if row.verdict == "no significant difference":
        return "ns"
    a_better = row.verdict.endswith(headline.words[0])
    return "better" if a_better == (row.a == client) else "worse"
