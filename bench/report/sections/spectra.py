"""Report section: latency spectra (open model, corrected and uncorrected HdrHistograms)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bench.report.data import CellInfo, RunData
from bench.report.figures import (
    figure_html,
    spectrum_figure,
)
from bench.report.hdr import EMPTY, Dist, merge, spectrum
from bench.report.html import (
    Html,
    Row,
    Section,
    join,
    no_data,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import (
    ALL_OPERATIONS,
    client_names,
    level_sort_key,
    ms,
    per_scenario,
    slug,
)


def _open_level(data: RunData, cells: Sequence[CellInfo]) -> str | None:
    """The level the spectra show: the highest equal-load level (native), else 50 % (python)."""
    levels = sorted({lv for c in cells for lv in data.ops(c.cell_id).get("open", {})}, key=level_sort_key)
    if not levels:
        return None
    equal = [lv for lv in levels if lv.startswith("eq")]
    if equal:
        return str(equal[-1])
    return "f50" if "f50" in levels else levels[len(levels) // 2]


def _spectra_block(data: RunData, scenario: str, profile: str, engine: str) -> tuple[Html, list[str]]:
    cells = data.load_cells(scenario=scenario, profile=profile, engine=engine)
    level = _open_level(data, cells)
    if level is None:
        return no_data(
            f"No open-model windows of the {engine} engine for scenario {scenario} on {profile}."
        ), []
    arms = data.native_arms if engine == "native" else data.clients
    per_op: dict[str, dict[str, dict[str, Dist]]] = {}  # operation -> arm -> variant -> merged
    for client in arms:
        mine = [c for c in cells if c.arm == client]
        for variant in ("corrected", "uncorrected"):
            ops = sorted({op for c in mine for op in data.op_stats(c.cell_id, "open", level, variant)})
            for op in ops:
                merged = merge(data.dist(c.cell_id, "open", level, op, variant) for c in mine)
                per_op.setdefault(op, {}).setdefault(client, {})[variant] = merged
    if not per_op:
        return no_data(f"No open-model histograms for scenario {scenario} on {profile}."), []
    everything: dict[str, dict[str, Dist]] = {}
    for client in arms:
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
    names = client_names(data, profile) if engine == "python" else {a: a for a in arms}
    for client in arms:
        limited = sum(
            bool(c.windows("open").get(level, {}).get("generator_limited")) for c in cells if c.arm == client
        )
        if limited:
            names[client] += f" (generator-limited {limited}/{sum(c.arm == client for c in cells)})"
    div = f"fig-spectrum-{slug(scenario)}" if engine == "python" else f"fig-spectrum-native-{slug(scenario)}"
    fig = spectrum_figure(curves, arms, names=names)
    where = (
        f"at {level} (the same offered rate for every arm: a fraction of the slowest arm's capacity), gload"
        if engine == "native"
        else f"at {level} of the closed-model maximum (each client's own rate), the Python open loop"
    )
    caption = (
        f"Open model {where}; every operation of the scenario merged over all repetitions (menu: one "
        "operation). Solid: latency from the intended send time (coordinated omission corrected); dotted: "
        "from the actual send time. Steps drawn at 1 % value resolution; the curve ends at 1 − 1/N. Source: "
        f"cells/*/attempt-*/ops.json → open.{level}.{{corrected,uncorrected}}.*.latency_hdr."
    )
    rows = []
    for client in arms:
        pair = everything.get(client)
        if not pair:
            continue
        for variant in ("corrected", "uncorrected"):
            d = pair.get(variant)
            if d is None:
                continue
            rows.append(
                Row([client, variant, f"{d.total:,}"] + [ms(d.percentile(q)) for q in (50, 90, 99, 99.9)])
            )
    summary = table(
        ["arm", "latency from", "calls", "p50", "p90", "p99", "p99.9"],
        rows,
        numeric=(2, 3, 4, 5, 6),
        caption=f"All operations, open model at {level}, merged over repetitions (HdrHistogram "
        "percentiles, 3 significant digits).",
    )
    return join([figure_html(fig, div, caption), summary]), [div]


def _block_of(engine: str, data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    return _spectra_block(data, scenario, profile, engine)


def spectra_section(data: RunData) -> Section:
    profile = data.main_profile
    figures: list[str] = []
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
    for engine, title in (("native", "Native engine (servers at equal offered load)"),
                          ("python", "Python engine (the client experience)")):  # fmt: skip
        if not data.scenarios_of(engine):
            continue
        parts.append(tag("h3", title))
        blocks, ids = per_scenario(data, profile, functools.partial(_block_of, engine), engine=engine)
        parts += blocks
        figures += ids
    if not figures and not data.scenarios_of("native") and not data.scenarios_of("python"):
        parts.append(no_data("No open-model windows: no load cells."))
    return Section("spectra", "Latency spectra", join(parts), figures)
