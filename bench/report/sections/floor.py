"""Report section: the loopback floor and each client's latency as a multiple of it."""

from __future__ import annotations

from bench.report.data import STREAM_OPERATIONS, RunData, Summary, summarize
from bench.report.figures import (
    Bar,
    bars_figure,
    figure_html,
)
from bench.report.html import (
    Html,
    Row,
    Section,
    fmt,
    fmt_ci,
    join,
    no_data,
    note,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import (
    client_colors,
    client_names,
    ms,
    per_scenario,
    slug,
    tidy_slice,
)


def floor_summary(data: RunData, profile: str) -> tuple[Summary | None, Summary | None]:
    t = data.tidy
    if t.empty:
        return None, None
    sel = t[(t["kind"] == "floor") & (t["profile"] == profile) & (t["status"] == "ok")]
    return (
        summarize(sel[sel["metric"] == "floor_p50"]["value"].tolist()),
        summarize(sel[sel["metric"] == "floor_p99"]["value"].tolist()),
    )


def _floor_block(data: RunData, scenario: str, profile: str, floor: Summary) -> tuple[Html, list[str]]:
    t = tidy_slice(data, profile, scenario)
    sel = (
        t[(t["phase"] == "closed") & (t["level"] == "u1") & (t["metric"] == "latency_p50")]
        if not t.empty
        else t
    )
    sel = sel[sel["operation"] != "*"] if not sel.empty else sel
    if sel.empty:
        return no_data(f"No 1-user latencies for scenario {scenario} on {profile}."), []
    operations = sorted(set(sel["operation"]), key=lambda op: (op in STREAM_OPERATIONS, op))
    clients = [c for c in data.clients if c in set(sel["client"])]
    bars, rows = [], []
    for op in operations:
        cells: list[object] = [op]
        for client in clients:
            group = sel[(sel["client"] == client) & (sel["operation"] == op)]
            s = summarize(group["value"].tolist())
            if s is None:
                cells += ["–", "–"]
                continue
            multiple = s.median / floor.median
            limited = bool(group["generator_limited"].any())
            bars.append(
                Bar(
                    1,
                    op,
                    client,
                    multiple,
                    (s.median - s.low) / floor.median,
                    (s.high - s.median) / floor.median,
                    marked=limited,
                    hover=f"p50 {s.median / 1000:.3f} ms = {multiple:.1f}× floor",
                )
            )
            cells += [ms(s.median), f"{multiple:,.1f}×"]
        rows.append(Row(cells))
    div = f"fig-floor-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=clients,
        series_names=client_names(data, profile),
        colors=client_colors(data),
        panel_titles=("",),
        y_titles=("p50 at 1 user ÷ loopback floor p50 (log)",),
        log_y=True,
        reference=1.0,
        reference_label="loopback TCP floor",
        marked_label="generator-limited window",
    )
    caption = (
        "Each client's median call latency at one user, as a multiple of the TCP ping-pong floor measured "
        "in the same run with the same CPU placement (target CPU vs generator CPU). Error bars: range over "
        "repetitions. Source: tidy closed/u1 latency_p50 and floor cells' floor_hdr."
    )
    head = ["operation"] + [f"{c} {d}" for c in clients for d in ("p50", "× floor")]
    return join([figure_html(fig, div, caption), table(head, rows, numeric=range(1, len(head)))]), [div]


def _engine_floors(data: RunData, profile: str) -> Html:
    """Each native tool against a null server (an instant answer): the tool's own ceiling and latency."""
    cells = data.floor_cells(profile)
    families = sorted({f for c in cells for f in c.cell.get("engine_floors", {})})
    if not families:
        return Html("")
    rows = []
    for family in families:
        floors = [c.cell["engine_floors"][family] for c in cells if family in c.cell.get("engine_floors", {})]
        first = floors[0]
        max_rps = summarize([f["max_rps"] for f in floors if isinstance(f.get("max_rps"), int | float)])
        p50 = summarize([f["latency_p50_us"] for f in floors if f.get("latency_p50_us") is not None])
        p99 = summarize([f["latency_p99_us"] for f in floors if f.get("latency_p99_us") is not None])
        rows.append(
            Row(
                [
                    "HTTP/1.1 (REST, SOAP)" if family == "http1" else "gRPC (HTTP/2)",
                    str(first.get("closed_tool", "–")),
                    fmt(max_rps.median if max_rps else None, "req/s"),
                    str(first.get("open_tool", "–")),
                    fmt(first.get("open_rate"), "req/s"),
                    ms(p50.median if p50 else None),
                    ms(p99.median if p99 else None),
                    len(floors),
                ]
            )
        )
    head = ["protocol family", "closed-model tool", "its ceiling", "open-model tool", "at", "p50", "p99",
            "repetitions"]  # fmt: skip
    caption = (
        "The load tools against a null server that answers every request at once, pinned as in the load "
        "cells. “its ceiling”: the highest rate the closed-model tool reached (a target's capacity near it "
        "would measure the tool). p50/p99: the open-model generator's own latency at a fixed rate — the "
        "smallest latency it can report. Source: floor cells' engine_floors."
    )
    return join([tag("h3", "Load tools against a null server"), table(head, rows, numeric=(2, 4, 5, 6, 7),
                                                                      caption=caption)])  # fmt: skip


def floor_section(data: RunData) -> Section:
    profile = data.main_profile
    p50, p99 = floor_summary(data, profile)
    parts: list[Html] = [
        paragraph(
            "The loopback floor is a 64-byte TCP ping-pong between the generator CPU and the target CPU, "
            "measured "
            "in the same run: no protocol can answer faster than this. On these machines cross-CPU wake-up "
            "dominates "
            "small-request latency, so protocol latencies are best read as multiples of it."
        )
    ]
    if p50 is None or p99 is None:
        parts.append(no_data(f"No floor cells measured on {profile}."))
        return Section("floor", "Loopback floor", join(parts))
    ci = fmt_ci(p50.ci_low, p50.ci_high, "µs")
    parts.append(
        table(
            ["profile", "p50", "95 % CI", "p99", "repetitions"],
            [Row([profile, fmt(p50.median, "µs"), ci, fmt(p99.median, "µs"), p50.n])],
            numeric=(1, 2, 3, 4),
            caption="Floor round trip, median over repetitions",
        )
    )
    parts.append(_engine_floors(data, profile))
    if p50.median <= 0:
        parts.append(note("The floor p50 is 0 µs; multiples are undefined."))
        return Section("floor", "Loopback floor", join(parts))
    blocks, figures = per_scenario(
        data, profile, lambda d, scenario, where: _floor_block(d, scenario, where, p50), empty=None
    )
    parts += blocks
    return Section("floor", "Loopback floor", join(parts), figures)
