"""Report sections of the native engine: capacity (server-bound closed model) and latency under load (open
model at absolute offered rates), and the check of every window against the server's own counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report.data import CellInfo, RunData, Summary, summarize
from bench.report.figures import Bar, LoadPoint, bars_figure, color, figure_html, load_latency_figure
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
    fmt,
    fmt_ci,
    join,
    no_data,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import level_sort_key, per_scenario, slug, tidy_slice
from bench.thresholds import GENERATOR_HEADROOM_PCT, TARGET_BOUND_PCT

__all__ = [
    "CapacityRow",
    "LoadRow",
    "capacity_rows",
    "capacity_section",
    "counter_checks",
    "counters_section",
    "load_latency_section",
    "load_rows",
]


def _native(data: RunData, scenario: str, profile: str) -> pd.DataFrame:
    t = tidy_slice(data, profile, scenario)
    return t[t["engine"] == "native"] if not t.empty else t


def _median(rows: pd.DataFrame) -> float | None:
    s = summarize(rows["value"].tolist()) if not rows.empty else None
    return None if s is None else s.median


def _tool(cells: list[CellInfo], phase: str) -> str:
    tools = sorted({str(w.get("tool")) for c in cells for w in c.windows(phase).values() if w.get("tool")})
    return ", ".join(tools) or "–"


@dataclass(frozen=True)
class CapacityRow:
    """One native arm's capacity over its repetitions (assessable ones, and all)."""

    arm: str
    capacity: Summary | None  # repetitions that may back a verdict
    everything: Summary  # all repetitions
    server_bound: int
    repetitions: int
    connections: str
    target_cpu_pct: float | None
    generator_cpu_pct: float | None
    tool: str
    why_not: str


def capacity_rows(data: RunData, scenario: str, profile: str) -> list[CapacityRow]:
    t = _native(data, scenario, profile)
    sel = t[t["metric"] == "capacity_rps"] if not t.empty else t
    rows: list[CapacityRow] = []
    for arm in data.native_arms:
        group = sel[sel["arm"] == arm] if not sel.empty else sel
        everything = summarize(group["value"].tolist()) if not group.empty else None
        if everything is None:
            continue
        cells = [
            c for c in data.load_cells(scenario=scenario, profile=profile, engine="native") if c.arm == arm
        ]
        statuses = [str(c.cell.get("capacity", {}).get("status", "?")) for c in cells]
        concurrency = sorted({c.cell.get("capacity", {}).get("concurrency") for c in cells} - {None})
        closed = t[(t["arm"] == arm) & (t["phase"] == "closed")]
        rows.append(
            CapacityRow(
                arm=arm,
                capacity=summarize(group[group["not_assessable"] == ""]["value"].tolist()),
                everything=everything,
                server_bound=sum(status == "server-bound" for status in statuses),
                repetitions=len(statuses),
                connections=", ".join(str(c) for c in concurrency) or "–",
                target_cpu_pct=_median(closed[closed["metric"] == "target_cpu_pct"]),
                generator_cpu_pct=_median(closed[closed["metric"] == "generator_cpu_pct"]),
                tool=_tool(cells, "closed"),
                why_not="; ".join(sorted({s for s in statuses if s != "server-bound"})),
            )
        )
    return rows


def _capacity_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    found = capacity_rows(data, scenario, profile)
    if not found:
        return no_data(f"No native-engine capacity for scenario {scenario} on {profile}."), []
    rows, bars = [], []
    for r in found:
        s, good = r.everything, r.capacity
        complete = r.server_bound == r.repetitions
        rows.append(
            Row(
                [
                    r.arm,
                    fmt(good.median if good else None, "req/s"),
                    fmt_ci(good.ci_low, good.ci_high, "req/s") if good and good.n > 1 else "–",
                    fmt(s.median, "req/s"),
                    f"{r.server_bound} of {r.repetitions}",
                    r.connections,
                    fmt(r.target_cpu_pct, "%"),
                    fmt(r.generator_cpu_pct, "%"),
                    r.tool,
                    r.why_not,
                ],
                "" if complete else "marked",
            )
        )
        bars.append(
            Bar(
                1,
                r.arm,
                r.arm,
                s.median,
                s.median - s.low,
                s.high - s.median,
                marked=not complete,
                hover=f"{r.server_bound}/{r.repetitions} repetitions server-bound",
            )
        )
    head = ["arm", "capacity", "95 % CI", "all repetitions", "server-bound", "connections", "target CPU",
            "generator CPU", "tool", "why not server-bound"]  # fmt: skip
    caption = (
        "Capacity = the highest throughput of a closed-model window in which the server was the bottleneck "
        f"(target ≥ {TARGET_BOUND_PCT:.0f} % of its CPU, generator ≤ {GENERATOR_HEADROOM_PCT:.0f} % of its "
        "CPU, the server's counters agree with the tool). “capacity” and its 95 % bootstrap CI are over "
        "the repetitions that may back a verdict; “all repetitions” includes the rest. CPU columns: median "
        "over the closed-model windows. Source: cell.json capacity and windows."
    )
    div = f"fig-capacity-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=[b.series for b in bars],
        series_names={b.series: b.series for b in bars},
        colors={b.series: color(b.series, data.native_arms) for b in bars},
        panel_titles=("",),
        y_titles=("capacity (req/s)",),
        marked_label="not server-bound in every repetition",
    )
    fig_caption = "Capacity per arm, median over all repetitions; error bars: range over repetitions."
    return join(
        [
            table(head, rows, numeric=range(1, 8), wrap=(9,), caption=caption),
            figure_html(fig, div, fig_caption),
        ]
    ), [div]


def capacity_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "How many requests per second each protocol's server answers when the server, not the load "
            "generator, is the bottleneck. The native engine (wrk for HTTP/1.1, h2load for gRPC, gload "
            "otherwise) drives each target at rising connection counts; the target runs pinned to its CPU "
            "and the generator to the other, so a window counts only when the target's CPU was full and the "
            "generator had headroom."
        )
    ]
    blocks, figures = per_scenario(
        data, data.main_profile, _capacity_block, engine="native", empty="No native-engine cells in this run."
    )
    parts += blocks
    return Section("capacity", "Capacity", join(parts), figures)


_PERCENTILES = (("p50", "corrected_p50"), ("p99", "corrected_p99"), ("p999", "corrected_p999"))


@dataclass(frozen=True)
class LoadRow:
    """One open-model level of one arm (and operation, in a scenario of several), over repetitions."""

    series: str  # the arm, or "<arm> <operation>"
    level: str
    offered_rps: float
    achieved_rps: float | None
    corrected: dict[str, Summary]  # p50 | p99 | p999 -> corrected latency (µs)
    assessable_by_percentile: dict[str, int]
    uncorrected_p99: float | None
    pacing_p99: float | None
    assessable: int
    repetitions: int
    why_not: str


def load_rows(data: RunData, scenario: str, profile: str) -> list[LoadRow]:
    whole = _native(data, scenario, profile)
    t = whole[(whole["phase"] == "open") & (whole["operation"] != "*")] if not whole.empty else whole
    rows: list[LoadRow] = []
    for arm in [a for a in data.native_arms if not t.empty and a in set(t["arm"])]:
        mine = t[t["arm"] == arm]
        operations = sorted(set(mine["operation"]))
        keys = sorted({(lv, op) for lv, op in zip(mine["level"], mine["operation"], strict=True)},
                      key=lambda k: (level_sort_key(k[0]), k[1]))  # fmt: skip
        for level, operation in keys:
            at = mine[(mine["level"] == level) & (mine["operation"] == operation)]
            offered = summarize(at["offered_rate"].dropna().tolist())
            if offered is None:
                continue
            corrected, assessable = {}, {}
            for percentile, metric in _PERCENTILES:
                values = at[at["metric"] == metric]
                s = summarize(values["value"].tolist())
                if s is not None:
                    corrected[percentile] = s
                    assessable[percentile] = int((values["not_assessable"] == "").sum())
            reps = at[at["metric"] == "corrected_p50"]
            pacing = whole[
                (whole["arm"] == arm) & (whole["level"] == level) & (whole["metric"] == "pacing_p99")
            ]
            rows.append(
                LoadRow(
                    # Several operations in the scenario: a curve each (the offered rate is the mix's).
                    series=arm if len(operations) == 1 else f"{arm} {operation}",
                    level=level,
                    offered_rps=offered.median,
                    achieved_rps=_median(at[at["metric"] == "throughput_rps"]),
                    corrected=corrected,
                    assessable_by_percentile=assessable,
                    uncorrected_p99=_median(at[at["metric"] == "uncorrected_p99"]),
                    pacing_p99=_median(pacing),
                    assessable=int((reps["not_assessable"] == "").sum()),
                    repetitions=len(reps),
                    why_not="; ".join(sorted({r for r in reps["not_assessable"] if r})),
                )
            )
    return rows


def _ms(value: float | None) -> str:
    return fmt(None if value is None else value / 1000, "ms")


def _load_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    found = load_rows(data, scenario, profile)
    if not found:
        return no_data(f"No open-model windows for scenario {scenario} on {profile}."), []
    points = [
        LoadPoint(r.series, r.level, r.offered_rps, p, s, r.assessable_by_percentile[p], s.n)
        for r in found
        for p, s in r.corrected.items()
    ]
    rows = [
        Row(
            [
                r.series,
                r.level,
                fmt(r.offered_rps, "req/s"),
                fmt(r.achieved_rps, "req/s"),
                *(_ms(r.corrected[p].median if p in r.corrected else None) for p, _ in _PERCENTILES),
                _ms(r.uncorrected_p99),
                _ms(r.pacing_p99),
                f"{r.assessable} of {r.repetitions}",
                r.why_not,
            ],
            "" if r.assessable == r.repetitions else "marked",
        )
        for r in found
    ]
    div = f"fig-load-latency-{slug(scenario)}"
    series_names = list(dict.fromkeys(p.arm for p in points))
    fig = load_latency_figure(points, series_names, names={a: a for a in series_names})
    fig_caption = (
        "Corrected latency (from each request's intended send time, so a stall counts for every request it "
        "delayed) against the absolute offered rate; median over repetitions, error bars the range. “eq” "
        "levels are the same rates for every arm (fractions of the slowest arm's capacity), “own” levels a "
        "fraction of the arm's own capacity. Hollow markers: no repetition may back a verdict."
    )
    head = ["arm", "level", "offered", "achieved", "p50", "p99", "p99.9", "p99 uncorrected",
            "generator pacing p99", "assessable", "why not"]  # fmt: skip
    caption = (
        "Open model (gload): requests leave on a fixed schedule whatever the server does. Latencies "
        "are corrected medians over repetitions. Source: ops.json open.<level>.corrected and "
        "cell.json open windows."
    )
    return join(
        [
            figure_html(fig, div, fig_caption),
            table(head, rows, numeric=range(2, 10), wrap=(10,), caption=caption),
        ]
    ), [div]


def load_latency_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "Latency at the same absolute offered load for every arm, so the comparison is between servers "
            "doing the same work. Each curve stays flat while the server keeps up and turns upward where "
            "requests start to queue. A level backs a verdict only where the generator kept its schedule."
        )
    ]
    blocks, figures = per_scenario(
        data, data.main_profile, _load_block, engine="native", empty="No native-engine cells in this run."
    )
    parts += blocks
    return Section("load-latency", "Latency under load", join(parts), figures)


def counter_checks(data: RunData) -> tuple[int, list[tuple[CellInfo, dict[str, Any]]]]:
    """(windows checked against the server's counters, the (cell, window) pairs that disagreed)."""
    checked, disagree = 0, []
    for cell in data.cells.values():
        for window in cell.cell.get("windows", []):
            if "counters_ok" not in window:
                continue
            checked += 1
            if not window["counters_ok"]:
                disagree.append((cell, window))
    return checked, disagree


def counters_section(data: RunData) -> Section:
    """Every measured window against the server's own counters (calls served, errors returned)."""
    checked, disagree = counter_checks(data)
    if not checked:
        body = no_data("No window of this run was checked against server counters (older run?).")
        return Section("counters", "Server counters", body)
    intro = paragraph(
        "Every target counts the calls it served and the errors it answered, per operation (Prometheus "
        "/metrics). Each window compares them with what the load tool says it sent: a tool that drops, "
        "retries or miscounts requests, or a server that answers them with errors, shows up here and the "
        "window cannot back a verdict. ",
        tag("b", f"The counts agree in {checked - len(disagree)} of {checked} windows."),
    )
    if not disagree:
        return Section("counters", "Server counters", intro)
    rows = [
        Row(
            [
                c.cell_id,
                f"{w.get('phase')} {w.get('label')}",
                w.get("tool", c.engine),
                w.get("counter_reason"),
            ]
        )
        for c, w in disagree
    ]
    body = table(["cell", "window", "tool", "disagreement"], rows, wrap=(3,))
    return Section("counters", "Server counters", join([intro, badge("failed", "disagree"), body]))
