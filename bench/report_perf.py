"""Report sections with figures: latency spectra, throughput vs latency, bytes, CPU, streams, floor."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from bench.report_data import STREAM_OPERATIONS, CellInfo, RunData, Summary, summarize
from bench.report_figures import (
    Bar,
    LevelPoint,
    bars_figure,
    color,
    figure_html,
    spectrum_figure,
    throughput_latency_figure,
)
from bench.report_hdr import EMPTY, Dist, merge, spectrum
from bench.report_html import (
    Html,
    Row,
    Section,
    fmt,
    fmt_ci,
    join,
    marks,
    no_data,
    note,
    paragraph,
    table,
    tag,
)

__all__ = [
    "cpu_section",
    "floor_section",
    "floor_summary",
    "level_sort_key",
    "slug",
    "spectra_section",
    "streaming_section",
    "throughput_section",
    "wire_section",
]

ALL_OPERATIONS = "all operations"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def level_sort_key(level: str) -> tuple[str, float]:
    try:
        return level[:1], float(level[1:])
    except ValueError:
        return level[:1], 0.0


def _scenario_title(data: RunData, scenario: str) -> Html:
    if len(data.scenarios) <= 1:
        return Html("")
    return tag("h3", f"Scenario {scenario}")


def _names(data: RunData, profile: str) -> dict[str, str]:
    suffix = " [emulated]" if data.emulated_profile(profile) else ""
    return {c: f"{c}{suffix}" for c in data.clients}


def _colors(data: RunData) -> dict[str, str]:
    return {c: color(c, data.clients) for c in data.clients}


def _ms(value: float | None) -> str:
    return fmt(None if value is None else value / 1000, "ms")


def _sum_ms(s: Summary | None) -> str:
    return "–" if s is None else _ms(s.median)


def _range_ms(s: Summary | None) -> str:
    return "–" if s is None or s.n < 2 else fmt_ci(s.low / 1000, s.high / 1000, "ms")


def _err(s: Summary, scale: float = 1.0, *, ci: bool = False) -> tuple[float, float]:
    low, high = (s.ci_low, s.ci_high) if ci and s.n >= 2 else (s.low, s.high)
    return (s.median - low) * scale, (high - s.median) * scale


def _tidy(data: RunData, profile: str, scenario: str) -> pd.DataFrame:
    t = data.tidy
    if t.empty:
        return t
    return t[
        (t["status"] == "ok")
        & (t["kind"] == "load")
        & (t["profile"] == profile)
        & (t["scenario"] == scenario)
    ]


# ---- latency spectra -----------------------------------------------------------------------------------
def _open_level(data: RunData, cells: Sequence[CellInfo]) -> str | None:
    levels = sorted({lv for c in cells for lv in data.ops(c.cell_id).get("open", {})}, key=level_sort_key)
    if not levels:
        return None
    return "f50" if "f50" in levels else levels[len(levels) // 2]


def _spectra_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    cells = data.load_cells(scenario=scenario, profile=profile)
    level = _open_level(data, cells)
    if level is None:
        return no_data(f"No open-model windows for scenario {scenario} on {profile}."), []
    per_op: dict[str, dict[str, dict[str, Dist]]] = {}  # operation -> client -> variant -> merged
    for client in data.clients:
        mine = [c for c in cells if c.client == client]
        for variant in ("corrected", "uncorrected"):
            ops = sorted({op for c in mine for op in data.op_stats(c.cell_id, "open", level, variant)})
            for op in ops:
                merged = merge(data.dist(c.cell_id, "open", level, op, variant) for c in mine)
                per_op.setdefault(op, {}).setdefault(client, {})[variant] = merged
    if not per_op:
        return no_data(f"No open-model histograms for scenario {scenario} on {profile}."), []
    everything: dict[str, dict[str, Dist]] = {}
    for client in data.clients:
        for variant in ("corrected", "uncorrected"):
            merged = merge(per_op[op].get(client, {}).get(variant, EMPTY) for op in sorted(per_op))
            if merged.total:
                everything.setdefault(client, {})[variant] = merged
    selections = {ALL_OPERATIONS: everything, **{op: per_op[op] for op in sorted(per_op)}}
    curves = {
        sel: {
            c: (spectrum(v.get("corrected", EMPTY)), spectrum(v.get("uncorrected", EMPTY)))
            for c, v in by_client.items()
        }
        for sel, by_client in selections.items()
    }
    names = _names(data, profile)
    for client in data.clients:
        limited = sum(
            bool(c.windows("open").get(level, {}).get("generator_limited"))
            for c in cells
            if c.client == client
        )
        if limited:
            names[client] += f" (generator-limited {limited}/{sum(c.client == client for c in cells)})"
    div = f"fig-spectrum-{slug(scenario)}"
    fig = spectrum_figure(curves, data.clients, names=names)
    caption = join(
        [
            f"Open model at {level} of the closed-model maximum, every operation of the scenario merged over "
            "all "
            "repetitions (menu: one operation). Solid: latency from the intended send time (coordinated "
            "omission "
            "corrected); dotted: from the actual send time. Steps drawn at 1 % value resolution; the curve "
            "ends at "
            "1 − 1/N. Source: cells/*/attempt-*/ops.json → "
            f"open.{level}.{{corrected,uncorrected}}.*.latency_hdr.",
        ]
    )
    rows = []
    for client in data.clients:
        pair = everything.get(client)
        if not pair:
            continue
        for variant in ("corrected", "uncorrected"):
            d = pair.get(variant)
            if d is None:
                continue
            rows.append(
                Row([client, variant, f"{d.total:,}"] + [_ms(d.percentile(q)) for q in (50, 90, 99, 99.9)])
            )
    summary = table(
        ["client", "latency from", "calls", "p50", "p90", "p99", "p99.9"],
        rows,
        numeric=(2, 3, 4, 5, 6),
        caption=f"All operations, open model at {level}, merged over repetitions (HdrHistogram "
        "percentiles, 3 significant digits).",
    )
    return join([figure_html(fig, div, caption), summary]), [div]


def spectra_section(data: RunData) -> Section:
    profile = data.main_profile
    parts: list[Html] = [
        paragraph(
            "Where the latency distribution's tail starts, per protocol. The open model sends at a fixed "
            "rate whatever "
            "the responses do; measured from the intended send time, a stall counts for every call it "
            "delayed "
            "(coordinated omission corrected), so the corrected curve is the one a user would see. The gap "
            "between "
            "solid and dotted curves is the queueing the uncorrected numbers hide."
        )
    ]
    figures: list[str] = []
    for scenario in data.scenarios:
        block, ids = _spectra_block(data, scenario, profile)
        parts += [_scenario_title(data, scenario), block]
        figures += ids
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    return Section("spectra", "Latency spectra", join(parts), figures)


# ---- throughput vs latency -----------------------------------------------------------------------------
def level_points(data: RunData, scenario: str, profile: str) -> list[LevelPoint]:
    points: list[LevelPoint] = []
    cells = data.load_cells(scenario=scenario, profile=profile)
    for client in data.clients:
        mine = [c for c in cells if c.client == client]
        for model, variant in (("closed", ""), ("open", "corrected")):
            levels = sorted({lv for c in mine for lv in c.windows(model)}, key=level_sort_key)
            for level in levels:
                windows = [(c, c.windows(model)[level]) for c in mine if level in c.windows(model)]
                throughput = summarize([float(w.get("throughput_rps", 0.0)) for _, w in windows])
                dists = [data.window_dist(c.cell_id, model, level, variant) for c, _ in windows]
                p50 = summarize([v for d in dists if (v := d.percentile(50)) is not None])
                p99 = summarize([v for d in dists if (v := d.percentile(99)) is not None])
                if throughput is None:
                    continue
                limited = sum(bool(w.get("generator_limited")) for _, w in windows)
                points.append(LevelPoint(client, model, level, throughput, p50, p99, limited, len(windows)))
    return points


def _points_table(points: list[LevelPoint]) -> Html:
    rows = []
    for p in points:
        rows.append(
            Row(
                [
                    p.client,
                    p.model,
                    p.level,
                    fmt(p.throughput.median, "req/s"),
                    "–" if p.throughput.n < 2 else fmt_ci(p.throughput.low, p.throughput.high, "req/s"),
                    _sum_ms(p.p50),
                    _range_ms(p.p50),
                    _sum_ms(p.p99),
                    _range_ms(p.p99),
                    f"{p.n}",
                    marks(gl=bool(p.generator_limited)) if p.generator_limited else "",
                ],
                "marked" if p.generator_limited else "",
            )
        )
    head = [
        "client",
        "model",
        "level",
        "throughput",
        "range",
        "p50",
        "p50 range",
        "p99",
        "p99 range",
        "reps",
        "marks",
    ]
    return table(
        head,
        rows,
        numeric=(3, 4, 5, 6, 7, 8, 9),
        caption="Medians over repetitions with the range (min–max) over repetitions; latencies from all "
        "operations of the window merged (open: corrected).",
    )


def throughput_section(data: RunData) -> Section:
    profile = data.main_profile
    parts: list[Html] = [
        paragraph(
            "Closed model (locust users, each waiting for its response): the ramp u1 → u4 → u16 shows how "
            "far "
            "throughput grows before latency climbs. Open model (fixed arrival rate at fractions of the "
            "closed "
            "maximum): achieved rate against corrected latency. Error bars span the repetitions (min–max)."
        )
    ]
    figures: list[str] = []
    for scenario in data.scenarios:
        points = level_points(data, scenario, profile)
        parts.append(_scenario_title(data, scenario))
        if not points:
            parts.append(no_data(f"No closed- or open-model windows for scenario {scenario} on {profile}."))
            continue
        div = f"fig-throughput-latency-{slug(scenario)}"
        caption = (
            "Each point: one load level, median over repetitions. Ringed points were generator-limited "
            "(load generator ≥ 90 % of its CPU) in at least one repetition — there the client library, "
            "not the server, limited throughput. Source: cell.json windows (throughput) and ops.json "
            "closed.<level>.*.latency_hdr / open.<level>.corrected.*.latency_hdr."
        )
        fig = throughput_latency_figure(points, data.clients, names=_names(data, profile))
        parts += [figure_html(fig, div, caption), _points_table(points)]
        figures.append(div)
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    return Section("throughput", "Throughput vs latency", join(parts), figures)


# ---- bytes on the wire ---------------------------------------------------------------------------------
def _wire_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = _tidy(data, profile, scenario)
    sel = t[t["phase"] == "wire"] if not t.empty else t
    if sel.empty:
        return no_data(f"No wire-bytes measurements for scenario {scenario} on {profile}."), []
    stats: dict[tuple[str, str, str], Summary] = {}
    for (client, op, metric), group in sel.groupby(["client", "operation", "metric"], sort=True):
        s = summarize(group["value"].tolist())
        if s is not None:
            stats[(str(client), str(op), str(metric))] = s
    operations = sorted({op for _, op, _ in stats})
    clients = [c for c in data.clients if any(k[0] == c for k in stats)]
    bars = []
    for panel, metric in ((1, "request_bytes"), (2, "response_bytes")):
        for client in clients:
            for op in operations:
                s = stats.get((client, op, metric))
                if s is not None:
                    minus, plus = _err(s)
                    bars.append(
                        Bar(panel, op, client, s.median, minus, plus, hover=f"{s.median:,.0f} bytes/call")
                    )
    div = f"fig-wire-bytes-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=clients,
        series_names=_names(data, profile),
        colors=_colors(data),
        panel_titles=("request bytes per call", "response bytes per call"),
        y_titles=("bytes (log)", "bytes (log)"),
        log_y=True,
        height=720,
        stacked=True,
    )
    caption = (
        "Bytes crossing the socket per call (headers, framing and body; HTTP/2 and TCP payload, not TCP/IP "
        "headers), counted by a relay during sequential calls before the load phases. Error bars: range "
        "over repetitions. Source: ops.json → wire.<operation>.{request,response}_bytes / bytes_samples."
    )
    head = ["operation"] + [f"{c} {d}" for c in clients for d in ("request", "response")]
    rows = []
    for op in operations:
        cells: list[object] = [op]
        for client in clients:
            for metric in ("request_bytes", "response_bytes"):
                s = stats.get((client, op, metric))
                cells.append(fmt(s.median if s else None, "B", digits=4))
        rows.append(Row(cells))
    numeric = range(1, len(head))
    return join(
        [
            figure_html(fig, div, caption),
            table(head, rows, numeric=numeric, caption="Median bytes per call over repetitions (B = bytes)."),
        ]
    ), [div]


def wire_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "What each protocol puts on the wire for the same operation: protobuf over "
            "HTTP/2 (gRPC), JSON over HTTP/1.1 (REST), XML envelopes over HTTP/1.1 (SOAP)."
        )
    ]
    figures: list[str] = []
    for scenario in data.scenarios:
        block, ids = _wire_block(data, scenario, data.main_profile)
        parts += [_scenario_title(data, scenario), block]
        figures += ids
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    return Section("wire", "Bytes on the wire", join(parts), figures)


# ---- server CPU ----------------------------------------------------------------------------------------
def _cpu_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = _tidy(data, profile, scenario)
    sel = t[(t["metric"] == "target_cpu_us_per_request") & (t["operation"] == "*")] if not t.empty else t
    if sel.empty:
        return no_data(f"No server CPU measurements for scenario {scenario} on {profile}."), []
    levels = sorted(
        {(str(p), str(lv)) for p, lv in zip(sel["phase"], sel["level"], strict=True)},
        key=lambda pl: (pl[0] != "closed", level_sort_key(pl[1])),
    )
    bars, rows = [], []
    for client in data.clients:
        for phase, level in levels:
            group = sel[(sel["client"] == client) & (sel["phase"] == phase) & (sel["level"] == level)]
            s = summarize(group["value"].tolist())
            if s is None:
                continue
            limited = int(group["generator_limited"].sum())
            minus, plus = _err(s, ci=True)
            label = f"{phase} {level}"
            bars.append(
                Bar(
                    1,
                    label,
                    client,
                    s.median,
                    minus,
                    plus,
                    marked=limited > 0,
                    hover=f"{s.median:,.0f} µs/req; generator-limited in {limited}/{s.n}",
                )
            )
            rows.append(
                Row(
                    [
                        client,
                        label,
                        fmt(s.median, "µs"),
                        fmt_ci(s.ci_low, s.ci_high, "µs"),
                        fmt_ci(s.low, s.high, "µs") if s.n > 1 else "–",
                        s.n,
                        marks(gl=True) if limited else "",
                    ],
                    "marked" if limited else "",
                )
            )
    div = f"fig-cpu-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=[c for c in data.clients if any(b.series == c for b in bars)],
        series_names=_names(data, profile),
        colors=_colors(data),
        panel_titles=("",),
        y_titles=("server CPU per request (µs)",),
        marked_label="generator-limited in ≥ 1 repetition",
    )
    caption = (
        "Target process CPU time (user + system, from /proc) during the window divided by the calls "
        "completed in it — a whole-cell figure over the scenario's mix of operations (CPU is not split by "
        "operation). Bars: median over repetitions; error bars: 95 % bootstrap CI of the median. Hatched: "
        "generator-limited windows, where the server was not saturated. Source: cell.json windows → "
        "target_cpu_s / requests."
    )
    head = ["client", "window", "median", "95 % CI", "range", "reps", "marks"]
    return join([figure_html(fig, div, caption), table(head, rows, numeric=(2, 3, 4, 5))]), [div]


def cpu_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "How much server CPU one request costs, per client and load level. Lower is "
            "cheaper; the number shrinks with load when fixed per-wake-up costs are shared "
            "by more requests."
        )
    ]
    figures: list[str] = []
    for scenario in data.scenarios:
        block, ids = _cpu_block(data, scenario, data.main_profile)
        parts += [_scenario_title(data, scenario), block]
        figures += ids
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    return Section("cpu", "Server CPU per request", join(parts), figures)


# ---- streaming -----------------------------------------------------------------------------------------
def _stream_label(data: RunData, client: str) -> str:
    protocol = next((c.protocol for c in data.cells.values() if c.client == client), "")
    return f"{client} (stream)" if protocol == "grpc" else f"{client} (batch equivalent)"


def _streaming_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = _tidy(data, profile, scenario)
    sel = t[(t["phase"] == "closed") & (t["level"] == "u1")] if not t.empty else t
    with_ttfi = set(sel.loc[sel["metric"] == "ttfi_p50", "operation"]) if not sel.empty else set()
    operations = [op for op in STREAM_OPERATIONS if op in with_ttfi] + sorted(
        with_ttfi - set(STREAM_OPERATIONS)
    )
    if not operations:
        return no_data(
            f"No streamed operations with a time to first item for scenario {scenario} on {profile}."
        ), []
    bars, rows = [], []
    clients = [c for c in data.clients if c in set(sel["client"])]
    for op in operations:
        for client in clients:
            values = {
                m: summarize(
                    sel[(sel["client"] == client) & (sel["operation"] == op) & (sel["metric"] == m)][
                        "value"
                    ].tolist()
                )
                for m in ("ttfi_p50", "latency_p50", "items_per_call", "max_gap")
            }
            limited = bool(
                sel[(sel["client"] == client) & (sel["operation"] == op)]["generator_limited"].any()
            )
            for panel, metric in ((1, "ttfi_p50"), (2, "latency_p50")):
                s = values[metric]
                if s is not None:
                    minus, plus = _err(s, 1 / 1000, ci=True)
                    bars.append(
                        Bar(
                            panel,
                            op,
                            client,
                            s.median / 1000,
                            minus,
                            plus,
                            marked=limited,
                            hover=f"{s.median / 1000:.3f} ms (n={s.n})",
                        )
                    )
            ttfi, latency, items, gap = (
                values[m] for m in ("ttfi_p50", "latency_p50", "items_per_call", "max_gap")
            )
            share = (
                f"{100 * ttfi.median / latency.median:.0f} %" if ttfi and latency and latency.median else "–"
            )
            rows.append(
                Row(
                    [
                        op,
                        _stream_label(data, client),
                        _sum_ms(ttfi),
                        fmt_ci(*_ci_ms(ttfi), "ms"),
                        _sum_ms(latency),
                        share,
                        fmt(items.median if items else None, "items"),
                        _sum_ms(gap),
                        marks(gl=limited),
                    ],
                    "marked" if limited else "",
                )
            )
    div = f"fig-streaming-{slug(scenario)}"
    names = {c: _stream_label(data, c) for c in clients}
    fig = bars_figure(
        bars,
        series=clients,
        series_names=names,
        colors=_colors(data),
        panel_titles=("time to first item, p50", "whole call, p50"),
        y_titles=("ms (log)", "ms (log)"),
        log_y=True,
        marked_label="generator-limited window",
    )
    caption = (
        "One user (closed model, u1). gRPC streams items as they are produced; the REST counterpart "
        "returns NDJSON and SOAP one array in one response — their “first item” is when the client could "
        "first decode one, so they are labelled batch equivalents. Error bars: 95 % bootstrap CI of the "
        "median over repetitions. Source: ops.json → closed.u1.<operation>.ttfi_hdr / summary."
    )
    head = [
        "operation",
        "client",
        "first item p50",
        "95 % CI",
        "whole call p50",
        "first item / call",
        "items/call",
        "largest gap",
        "marks",
    ]
    return join([figure_html(fig, div, caption), table(head, rows, numeric=(2, 3, 4, 5, 6, 7))]), [div]


def _ci_ms(s: Summary | None) -> tuple[float | None, float | None]:
    if s is None or s.n < 2:
        return None, None
    return s.ci_low / 1000, s.ci_high / 1000


def streaming_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "Streaming operations (gRPC server streaming ListBooksByCategory and GetOverdueLoans, "
            "bidirectional "
            "UpdateLoanStatus): how soon the first item arrives and how long the whole call takes. "
            "BulkAddBooks "
            "(client streaming) has no first item to wait for and appears in the latency figures only."
        )
    ]
    figures: list[str] = []
    for scenario in data.scenarios:
        block, ids = _streaming_block(data, scenario, data.main_profile)
        parts += [_scenario_title(data, scenario), block]
        figures += ids
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    return Section("streaming", "Streaming", join(parts), figures)


# ---- loopback floor ------------------------------------------------------------------------------------
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
    t = _tidy(data, profile, scenario)
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
            cells += [_ms(s.median), f"{multiple:,.1f}×"]
        rows.append(Row(cells))
    div = f"fig-floor-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=clients,
        series_names=_names(data, profile),
        colors=_colors(data),
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
    figures: list[str] = []
    if p50.median <= 0:
        parts.append(note("The floor p50 is 0 µs; multiples are undefined."))
        return Section("floor", "Loopback floor", join(parts))
    for scenario in data.scenarios:
        block, ids = _floor_block(data, scenario, profile, p50)
        parts += [_scenario_title(data, scenario), block]
        figures += ids
    return Section("floor", "Loopback floor", join(parts), figures)
