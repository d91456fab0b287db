"""The report of `bench vm migrate`: one self-contained page built from the raw files of a migrate run.

Reads only what the run wrote (manifest.json, migrations.jsonl, <level>/rep-NNN/timeline.csv), so the page
can be rebuilt from those files at any time.
"""

from __future__ import annotations

import csv
import itertools
import json
import statistics
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from bench.report.figures import figure_html
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
    facts,
    fmt,
    join,
    no_data,
    note,
    page,
    paragraph,
    table,
    tag,
)

__all__ = ["build_migration_report", "render_migration_report"]

REPORT_NAME = "report.html"
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
SIDE_COLORS = {"source": "#2f5fa7", "destination": "#2e9457"}

# (record key, heading, unit) of the figures summarised per load level.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("total_ms", "total migration time (QEMU)", "ms"),
    ("downtime_ms", "downtime (QEMU's figure)", "ms"),
    ("gap_ms", "gap seen from outside (host clock)", "ms"),
    ("pause_events_ms", "… of which paused → resumed (libvirt events)", "ms"),
    ("resume_to_line_ms", "… of which resumed → the guest's first line", "ms"),
    ("api_wall_s", "migrateToURI3 wall time", "s"),
    ("transferred_mb", "memory transferred", "MB"),
    ("iterations", "pre-copy iterations", ""),
    ("dirty_rate_max_mb_s", "dirty-page rate (highest sampled)", "MB/s"),
    ("bandwidth_mb_s", "migration stream (QEMU's estimate)", "MB/s"),
    ("before_median_ms", "in-guest latency before (median)", "ms"),
    ("during_median_ms", "in-guest latency during (median)", "ms"),
    ("after_median_ms", "in-guest latency after (median)", "ms"),
    ("during_max_ms", "in-guest latency during (max)", "ms"),
)


def _records(out: Path) -> list[dict[str, Any]]:
    path = out / "migrations.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _quartiles(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def _stat(records: list[dict[str, Any]], key: str, unit: str) -> str:
    values = [float(r[key]) for r in records if r.get(key) is not None]
    quartiles = _quartiles(values)
    if quartiles is None:
        return "–"
    q1, median, q3 = quartiles
    if all(value.is_integer() for value in quartiles):  # counts (iterations): no decimals to invent
        return f"{median:.0f}{' ' + unit if unit else ''} [{q1:.0f}–{q3:.0f}]"
    return f"{fmt(median, unit)} [{fmt(q1)}–{fmt(q3)}]"


def _levels(manifest: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    levels = list(manifest.get("levels") or [])
    return levels + sorted({str(r["level"]) for r in records} - set(levels))


def _emulated(manifest: dict[str, Any]) -> bool:
    return bool(manifest.get("accel", {}).get("emulated"))


def _overview(manifest: dict[str, Any], records: list[dict[str, Any]]) -> Section:
    profile = manifest.get("profile", {})
    accel = manifest.get("accel", {})
    image = manifest.get("image", {})
    versions = manifest.get("versions", {})
    pins = ", ".join(profile.get("vcpu_pins") or []) or "none"
    accel_text = join([accel.get("accel", "?"), " ", badge("tcg") if _emulated(manifest) else ""])
    downtime = manifest.get("max_downtime_ms")
    bandwidth = manifest.get("bandwidth_mib_s")
    items: list[tuple[str, object]] = [
        ("profile", f"{profile.get('name')} ({profile.get('firmware')}, {profile.get('vcpus')} vCPUs, "
                    f"{profile.get('memory_mib')} MiB, pins {pins})"),
        ("accelerator", accel_text),
        ("libvirt / QEMU", f"{versions.get('libvirt', '?')} / {versions.get('qemu', '?')}"),
        ("source", manifest.get("source", {}).get("uri", "?")),
        ("destination", manifest.get("destination", {}).get("uri", "?")),
        ("daemon account", manifest.get("daemon_account") or "–"),
        ("transport", manifest.get("transport", "?")),
        ("flags", " | ".join(manifest.get("flags", []))),
        ("max downtime", f"{downtime} ms" if downtime else "QEMU's default (300 ms)"),
        ("bandwidth cap", f"{bandwidth} MiB/s" if bandwidth else "none"),
        ("timeout", f"{manifest.get('timeout_s')} s"),
        ("window", f"{manifest.get('window_s')} s of load before and after"),
        ("target", manifest.get("protocol", "?")),
        ("repeats", f"{manifest.get('repeats')} per level, interleaved (seed {manifest.get('seed')})"),
        ("guest image", f"{fmt((image.get('size_bytes') or 0) / 1e6, 'MB')} squashfs, "
                        f"{image.get('files')} files, sha256 {str(image.get('sha256', ''))[:12]}…"),
        ("host", f"{manifest.get('host')} ({manifest.get('host_cpus')} CPUs), {manifest.get('created_utc')}"),
        ("status", manifest.get("status", "?")),
    ]  # fmt: skip
    load = manifest.get("load", {})
    level_rows = [(level, load.get(level, "")) for level in _levels(manifest, records)]
    body = join(
        [
            facts(items),
            tag("h3", "What moves, what is shared"),
            paragraph(tag("strong", "Moves: "), manifest.get("moves", "")),
            paragraph(tag("strong", "Shared: "), manifest.get("shared", "")),
            tag("h3", "Load levels inside the guest"),
            table(["level", "what the guest's load generator does"], level_rows, wrap=[1]),
            note(
                f"Every level also writes a heartbeat line every {load.get('heartbeat_ms', '?')} ms, so the "
                "host sees the guest's pause even when no request ends during it."
            ),
        ]
    )
    return Section("overview", "Run", body)


def _summary(manifest: dict[str, Any], records: list[dict[str, Any]]) -> Section:
    levels = _levels(manifest, records)
    ok = {level: [r for r in records if r["level"] == level and r.get("outcome") == "ok"] for level in levels}
    rows: list[Row | list[object]] = [
        [
            "completed / repeats",
            *(f"{len(ok[lv])} / {sum(r['level'] == lv for r in records)}" for lv in levels),
        ]
    ]
    for key, heading, unit in FIGURES:
        rows.append([heading, *(_stat(ok[level], key, unit) for level in levels)])
    emulated = " (emulated)" if _emulated(manifest) else ""
    body = join(
        [
            table(
                ["figure", *(f"{level}{emulated}" for level in levels)],
                rows,
                numeric=range(1, len(levels) + 1),
                caption="median [interquartile range] over the completed repeats of each load level",
            ),
            note(
                "One shared 2-CPU host with other work running: figures move with the host's load. Compare "
                "the load levels within this run, not with runs made at other times."
            ),
        ]
    )
    return Section("summary", "Summary", body)


def _timeline(out: Path, record: dict[str, Any]) -> list[dict[str, str]]:
    path = out / str(record["level"]) / f"rep-{int(record['repeat']):03d}" / "timeline.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _timeline_figure(rows: list[dict[str, str]], record: dict[str, Any], emulated: bool) -> go.Figure:
    fig = go.Figure()
    for side, colour in SIDE_COLORS.items():
        requests = [r for r in rows if r["kind"] == "R" and r["side"] == side]
        fig.add_trace(
            go.Scatter(
                x=[float(r["host_s"]) for r in requests],
                y=[float(r["latency_ms"]) for r in requests],
                mode="markers",
                marker={"size": 4, "color": colour},
                name=f"request latency, guest on the {side}",
                hovertemplate="%{x:.3f} s: %{y:.2f} ms<extra></extra>",
            )
        )
    errors = [r for r in rows if r["kind"] == "E"]
    if errors:
        fig.add_trace(
            go.Scatter(
                x=[float(r["host_s"]) for r in errors],
                y=[float(r["latency_ms"] or 0) for r in errors],
                mode="markers",
                marker={"size": 7, "color": "#b3401f", "symbol": "x"},
                name="failed request",
            )
        )
    times = [float(r["host_s"]) for r in rows]
    fig.add_trace(
        go.Scatter(
            x=times[1:],
            y=[(b - a) * 1000 for a, b in itertools.pairwise(times)],
            mode="lines",
            line={"width": 1, "color": "#9aa1ad"},
            name="silence between two lines, host clock",
            hovertemplate="%{x:.3f} s: %{y:.1f} ms since the previous line<extra></extra>",
        )
    )
    marks = record.get("marks") or {}
    paused, resumed = marks.get("source_paused_s"), marks.get("destination_resumed_s")
    if paused is not None:
        fig.add_vrect(x0=0, x1=paused, fillcolor="#2f5fa7", opacity=0.08, line_width=0,
                      annotation_text="pre-copy", annotation_position="top left")  # fmt: skip
    if paused is not None and resumed is not None:
        fig.add_vrect(x0=paused, x1=resumed, fillcolor="#b3401f", opacity=0.25, line_width=0,
                      annotation_text="paused", annotation_position="top right")  # fmt: skip
    first = marks.get("first_destination_line_s")
    if resumed is not None and first is not None and first > resumed:
        fig.add_vrect(x0=resumed, x1=first, fillcolor="#d98a00", opacity=0.2, line_width=0)
    for seconds, iteration in marks.get("iterations_s") or []:
        fig.add_vline(x=seconds, line_width=1, line_dash="dot", line_color="#7b4fa8",
                      annotation_text=f"it {iteration}", annotation_position="bottom right")  # fmt: skip
    if marks.get("api_return_s") is not None:
        fig.add_vline(x=marks["api_return_s"], line_width=1, line_color="#1d2330",
                      annotation_text="API returned", annotation_position="top right")  # fmt: skip
    title = f"{record['level']}, repeat {record['repeat']}{' (emulated)' if emulated else ''}"
    fig.update_layout(
        template="none",
        height=380,
        title={"text": title, "font": {"size": 13}},
        font={"family": FONT, "size": 12, "color": "#1d2330"},
        margin={"l": 70, "r": 24, "t": 70, "b": 56},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 11}},
    )
    fig.update_xaxes(title_text="host seconds since the migration call", gridcolor="#e7e9ee", zeroline=False)
    fig.update_yaxes(title_text="ms (log)", type="log", gridcolor="#e7e9ee")
    return fig


def _typical(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed repeat with the median total time: the one shown open."""
    done = sorted((r for r in records if r.get("total_ms") is not None), key=lambda r: float(r["total_ms"]))
    return done[(len(done) - 1) // 2] if done else None


def _timelines(out: Path, manifest: dict[str, Any], records: list[dict[str, Any]]) -> Section:
    emulated = _emulated(manifest)
    parts: list[object] = [
        paragraph(
            "Each point is one request of the load inside the guest, placed at the host time its line "
            "reached the host and measured by the guest's own clock. The grey line is the silence between "
            "two consecutive lines as the host saw it: its spike at the switchover is the gap seen from "
            "outside. Shaded: pre-copy (the guest runs while its memory is copied; dotted lines mark the "
            "iterations the sampler saw begin), the pause (red: from the source's suspended to the "
            "destination's resumed event) and the resumed guest's silence until its first line (orange)."
        )
    ]
    figures: list[str] = []
    for level in _levels(manifest, records):
        level_records = [r for r in records if r["level"] == level]
        typical = _typical(level_records)
        parts.append(tag("h3", f"Load level: {level}"))
        if typical is None:
            parts.append(no_data(f"No completed migration at level {level}."))
            continue
        others = []
        for record in sorted(level_records, key=lambda r: int(r["repeat"])):
            rows = _timeline(out, record)
            if not rows:
                continue
            div = f"migration-{level}-{int(record['repeat'])}"
            figures.append(div)
            caption = (
                f"{level}, repeat {record['repeat']}: total {fmt(record.get('total_ms'), 'ms')}, QEMU "
                f"downtime {fmt(record.get('downtime_ms'), 'ms')}, gap seen from outside "
                f"{fmt(record.get('gap_ms'), 'ms')}"
            )
            html = figure_html(_timeline_figure(rows, record, emulated), div, caption)
            if record is typical:
                parts.append(html)
            else:
                others.append(html)
        if others:
            parts.append(tag("details", join([tag("summary", f"the other repeats at {level}"), *others])))
    return Section("timelines", "Latency over time", join(parts), figures)


def _repeats(records: list[dict[str, Any]]) -> Section:
    headers = ["level", "repeat", "outcome", "total ms", "downtime ms", "gap seen ms", "paused→resumed ms",
               "resumed→line ms", "API s", "transferred MB", "iterations", "dirty MB/s",
               "latency before / during / after ms", "lost lines", "host busy %", "reason"]  # fmt: skip
    rows: list[Row] = []
    for r in records:
        outcome: object = (
            r.get("outcome", "?") if r.get("outcome") == "ok" else badge("failed", r.get("outcome"))
        )
        latency = " / ".join(fmt(r.get(f"{phase}_median_ms")) for phase in ("before", "during", "after"))
        cells = [
            r["level"], r["repeat"], outcome, fmt(r.get("total_ms")), fmt(r.get("downtime_ms")),
            fmt(r.get("gap_ms")), fmt(r.get("pause_events_ms")), fmt(r.get("resume_to_line_ms")),
            fmt(r.get("api_wall_s")), fmt(r.get("transferred_mb")), fmt(r.get("iterations")),
            fmt(r.get("dirty_rate_max_mb_s")),
            latency, fmt(r.get("lost_lines")), fmt(r.get("host_busy_pct")), r.get("reason") or "",
        ]  # fmt: skip
        rows.append(Row(cells, "" if r.get("outcome") == "ok" else "failed"))
    body = table(headers, rows, numeric=range(3, 15), wrap=[15], caption="every repeat, in run order")
    return Section("repeats", "Every migration", body if rows else no_data("No migration was recorded."))


def _method(manifest: dict[str, Any]) -> Section:
    items = [
        ("Total time, downtime, memory transferred, iterations",
         "libvirt's completed job statistics, read on the destination: time_elapsed, downtime (QEMU's "
         "own estimate of the pause), memory_processed, memory_iteration."),
        ("Dirty-page rate", "the highest memory_dirty_rate × page size among the job statistics sampled "
                            "every 50 ms on the source while the migration ran."),
        ("Gap seen from outside", "the host-clock time between the last line of the guest's load that "
                                  "reached the host from the source and the first that came from the "
                                  "destination (a heartbeat thread writes a line at least every 5 ms, also "
                                  "while a request is in flight). It splits into the pause (from the "
                                  "source's suspended to the destination's resumed lifecycle event) and the "
                                  "time the resumed guest takes to write again: under TCG the destination "
                                  "QEMU starts with an empty translation cache and re-translates the code "
                                  "it runs first. The guest's own clock cannot measure the gap: it stops "
                                  "with the guest and catches up in jumps afterwards."),
        ("Source paused → destination resumed", "the host times at which libvirt's lifecycle events "
                                                 "arrived from each daemon."),
        ("In-guest latency", "measured by the load generator inside the guest with the guest's clock, "
                             "which stops during the pause and catches up in jumps afterwards: around the "
                             "switchover it is not a measure of the pause. Under TCG the destination QEMU "
                             "starts with an empty translation cache, so the first requests after the "
                             "switchover are slower for a while; KVM has no such cost."),
    ]  # fmt: skip
    body = join([tag("dl", join(join([tag("dt", k), tag("dd", v)]) for k, v in items)), note(
        "Emulated figures (TCG) are software emulation and say nothing about a KVM host's numbers; "
        "they compare load levels and settings on this machine."
    ) if _emulated(manifest) else Html("")])  # fmt: skip
    return Section("method", "How each figure is measured", body)


def render_migration_report(out: Path) -> str:
    from plotly.offline import get_plotlyjs

    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    records = _records(out)
    emulated = _emulated(manifest)
    profile = manifest.get("profile", {}).get("name", "?")
    reason = manifest.get("accel", {}).get("reason", "")
    banner = (
        tag(
            "div",
            join(
                [
                    tag("strong", "Emulated (TCG)"),
                    f"{reason}. Every figure here is software emulation: "
                    "slower and noisier than on KVM, and labelled emulated.",
                ]
            ),
            class_="banner",
        )
        if emulated
        else Html("")
    )
    header = join(
        [
            tag("h1", f"Live migration: {profile}"),
            tag("p", f"bench vm migrate · {out.name}", class_="subtitle"),
            banner,
        ]
    )
    sections = [
        _overview(manifest, records),
        _summary(manifest, records),
        _timelines(out, manifest, records),
        _repeats(records),
        _method(manifest),
    ]
    footer = tag("footer", f"Built from {out} by bench.report.migration; rebuilt from the raw files alone.")
    return page(
        title=f"Live migration {profile} {out.name}",
        brand="Live migration",
        subtitle=out.name,
        plotly_js=get_plotlyjs(),
        header=header,
        sections=sections,
        footer=footer,
    )


def build_migration_report(out: Path) -> Path:
    """Write `out/report.html` from the run's raw files; returns its path."""
    path = out / REPORT_NAME
    tmp = out / f".{REPORT_NAME}.tmp"
    tmp.write_text(render_migration_report(out))
    tmp.rename(path)
    return path
