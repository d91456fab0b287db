"""Report section: bytes on the wire per call, counted at the socket."""

from __future__ import annotations

from bench.report.data import RunData, Summary, summarize
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
    join,
    no_data,
    paragraph,
    table,
)
from bench.report.sections.common import (
    client_colors,
    client_names,
    error_bar,
    per_scenario,
    slug,
    tidy_slice,
)


def _wire_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = tidy_slice(data, profile, scenario)
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
                    minus, plus = error_bar(s)
                    bars.append(
                        Bar(panel, op, client, s.median, minus, plus, hover=f"{s.median:,.0f} bytes/call")
                    )
    div = f"fig-wire-bytes-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=clients,
        series_names=client_names(data, profile),
        colors=client_colors(data),
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
    blocks, figures = per_scenario(data, data.main_profile, _wire_block)
    parts += blocks
    return Section("wire", "Bytes on the wire", join(parts), figures)
