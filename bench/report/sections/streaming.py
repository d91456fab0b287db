"""Report section: streams, time to the first item against the whole call."""

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
    marks,
    no_data,
    paragraph,
    table,
)
from bench.report.sections.common import (
    client_colors,
    error_bar,
    median_ms,
    per_scenario,
    slug,
    tidy_slice,
)


def _stream_label(data: RunData, client: str) -> str:
    protocol = next((c.protocol for c in data.cells.values() if c.client == client), "")
    return f"{client} (stream)" if protocol == "grpc" else f"{client} (batch equivalent)"


def _streaming_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = tidy_slice(data, profile, scenario)
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
                    minus, plus = error_bar(s, 1 / 1000, ci=True)
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
                        median_ms(ttfi),
                        fmt_ci(*_ci_ms(ttfi), "ms"),
                        median_ms(latency),
                        share,
                        fmt(items.median if items else None, "items"),
                        median_ms(gap),
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
        colors=client_colors(data),
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
    blocks, figures = per_scenario(data, data.main_profile, _streaming_block)
    parts += blocks
    return Section("streaming", "Streaming", join(parts), figures)
