"""Report section of a split-topology run: where the time and the CPU of a call go between the gateway and
its two services, and what each inter-service hop carries, per backend protocol."""

from __future__ import annotations

import pandas as pd

from bench.analysis.tidy import SPLIT_PROCESSES
from bench.report.data import RunData, summarize
from bench.report.figures import Stack, figure_html, stacked_figure
from bench.report.html import Html, Row, Section, fmt, join, no_data, paragraph, table, tag
from bench.report.sections.common import slug

__all__ = ["has_split", "topology_section"]

HOPS = ("gateway->books", "gateway->circulation", "circulation->books")
# The gateway's Server-Timing parts, in the order a call spends them (µs, the services' own clocks).
_TIMING_COLUMNS = ("client", "total", "own", "books", "circulation", "books_total", "circulation_total")
_PARTS = (("own", "gateway's own"), ("books", "waiting on books"), ("circulation", "waiting on circulation"))


def has_split(data: RunData) -> bool:
    return any(c.cell.get("spec", {}).get("backend") for c in data.cells.values())


def _median(rows: pd.DataFrame) -> float | None:
    s = summarize(rows["value"].tolist()) if not rows.empty else None
    return None if s is None else s.median


def _arms(t: pd.DataFrame, engine: str) -> list[str]:
    return sorted(set(t[t["engine"] == engine]["arm"])) if not t.empty else []


def _cpu_block(t: pd.DataFrame) -> Html:
    closed = t[(t["engine"] == "native") & (t["phase"] == "closed")]
    rows = []
    for arm in _arms(t, "native"):
        mine = closed[closed["arm"] == arm]
        per = [_median(mine[mine["metric"] == f"cpu_us_per_request_{p}"]) for p in SPLIT_PROCESSES]
        if all(v is None for v in per):
            continue
        total = _median(mine[mine["metric"] == "target_cpu_us_per_request"])
        rows.append(Row([arm, *(fmt(v, "µs") for v in per), fmt(total, "µs")]))
    if not rows:
        return no_data("No native-engine windows of the split topology.")
    return table(
        ["arm (backend protocol)", *SPLIT_PROCESSES, "all three"],
        rows,
        numeric=range(1, 5),
        caption="CPU time of each process per completed call in the capacity window (native engine, closed "
        "model), median over repetitions. Source: cell.json windows → process_cpu_s / requests.",
    )


def _timing_block(t: pd.DataFrame, scenario: str) -> tuple[Html, list[str]]:
    hops = t[(t["phase"] == "hops") & (t["level"] == "timing") & (t["scenario"] == scenario)]
    if hops.empty:
        return no_data(
            f"No per-hop timings for scenario {scenario} (the python engine's cells record them)."
        ), []
    rows, stacks = [], []
    operations = sorted(set(hops["operation"]))
    for operation in operations:
        for arm in _arms(hops, "python"):
            mine = hops[(hops["arm"] == arm) & (hops["operation"] == operation)]
            values = {key: _median(mine[mine["metric"] == f"hop_{key}"]) for key in _TIMING_COLUMNS}
            if values["client"] is None:
                continue
            rows.append(
                Row([operation, arm, *(fmt(None if v is None else v / 1000, "ms") for v in values.values())])
            )
            parts = [(label, (values[key] or 0.0) / 1000) for key, label in _PARTS]
            outside = (values["client"] - (values["total"] or 0.0)) / 1000
            stacks.append(Stack(f"{operation}", arm, (*parts, ("client and network", max(0.0, outside)))))
    head = ["operation", "arm", "client end to end", "gateway total", "gateway own", "waiting on books",
            "waiting on circulation", "books' own", "circulation's own"]  # fmt: skip
    caption = (
        "Sequential calls through the python client (no load), medians over the calls of each repetition, "
        "then over repetitions. The gateway's parts come from its Server-Timing header; each service "
        "reports its own time the same way (gRPC: trailing metadata). A gRPC service's own time covers its "
        "handler only (protobuf coding and HTTP/2 are outside it): compare the gateway's waits across "
        "protocols. Source: cell.json hops.timing."
    )
    div = f"fig-hops-{slug(scenario)}"
    fig = stacked_figure(stacks, y_title="ms per call (median)")
    fig_caption = "Where a call's time goes, per operation and backend protocol (stacked: gateway's own, "
    fig_caption += "waiting on each service, and the rest: client and network)."
    return join(
        [figure_html(fig, div, fig_caption), table(head, rows, numeric=range(2, 9), caption=caption)]
    ), [div]


def _bytes_block(t: pd.DataFrame, scenario: str) -> Html:
    hops = t[(t["phase"] == "hops") & (t["level"].isin(HOPS)) & (t["scenario"] == scenario)]
    if hops.empty:
        return no_data(f"No bytes per hop for scenario {scenario}.")
    rows = []
    for operation in sorted(set(hops["operation"])):
        for arm in _arms(hops, "python"):
            mine = hops[(hops["arm"] == arm) & (hops["operation"] == operation)]
            cells: list[object] = [operation, arm]
            for hop in HOPS:
                at = mine[mine["level"] == hop]
                sent = _median(at[at["metric"] == "hop_request_bytes"])
                received = _median(at[at["metric"] == "hop_response_bytes"])
                cells.append("–" if sent is None else f"{sent:,.0f} / {received or 0:,.0f}")
            rows.append(Row(cells))
    return table(
        ["operation", "arm", *(f"{hop} (sent / answered)" for hop in HOPS)],
        rows,
        numeric=(2, 3, 4),
        caption="Bytes per call on each inter-service hop (HTTP/2 or HTTP/1.1 framing included, not TCP/IP), "
        "counted by relays on a second topology of their own during sequential calls. Source: cell.json "
        "hops.bytes.",
    )


def topology_section(data: RunData) -> Section:
    t = data.tidy
    topology = data.options.get("topology", {}) if isinstance(data.options.get("topology"), dict) else {}
    t = t[(t["status"] == "ok") & (t["profile"] == data.main_profile)] if not t.empty else t
    parts: list[Html] = [
        paragraph(
            "The split topology: a REST gateway (the public API) in front of a books service and a "
            "circulation service (users and loans), which talk to each other over the backend protocol of "
            "each arm (",
            ", ".join(str(b) for b in topology.get("backend_protocols", [])) or "see the cells",
            "). The three processes share the target CPU; the load generator keeps its own. The capacity, "
            "latency-under-load and verdict sections above compare the arms end to end; this section shows "
            "where the CPU and the time of a call go, and what each hop carries.",
        ),
        tag("h3", "CPU per call, by process"),
        _cpu_block(t),
    ]
    figures: list[str] = []
    for scenario in data.scenarios_of("python"):
        parts.append(tag("h3", f"Time per hop, scenario {scenario}"))
        block, ids = _timing_block(t, scenario)
        parts.append(block)
        figures += ids
        parts.append(tag("h3", f"Bytes per hop, scenario {scenario}"))
        parts.append(_bytes_block(t, scenario))
    return Section("topology", "Split topology", join(parts), figures)
