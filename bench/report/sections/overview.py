"""The report's header (run facts, a banner of what to read with care) and footer."""

from __future__ import annotations

from typing import Any

from bench.report.data import RunData
from bench.report.html import (
    Html,
    badge,
    esc,
    facts,
    fmt,
    join,
    tag,
)
from bench.report.sections.common import when
from bench.thresholds import GENERATOR_LIMIT_PCT


def _placement(data: RunData) -> str:
    placement = data.options.get("placement", {})
    parts = []
    for profile in data.profiles:
        p = placement.get(profile, {}) if isinstance(placement, dict) else {}
        target, generator = p.get("target_cpu"), p.get("generator_cpu")
        parts.append(
            f"{profile}: target CPU {'-' if target is None else target} / "
            f"generator CPU {'-' if generator is None else generator}"
        )
    return "; ".join(parts) or "not recorded"


def _repetitions(data: RunData) -> str:
    by_profile = data.options.get("repeats_by_profile")
    if isinstance(by_profile, dict) and len(by_profile) > 1:
        return ", ".join(f"{p}: {n}" for p, n in by_profile.items())
    if "python_repeats" in data.options:
        return f"native {data.options.get('repeats', '?')}, python {data.options['python_repeats']}"
    return str(data.options.get("repeats", "?"))


def _engines(data: RunData) -> list[tuple[str, object]]:
    """One line per engine: its arms, scenarios and tools (old runs: the Python clients only)."""
    scenarios = data.options.get("engine_scenarios", {})
    tools = data.manifest.get("native_tools", {})
    lines: list[tuple[str, object]] = []
    if data.native_arms:
        used = ", ".join(f"{name} ({version})" for name, version in sorted(tools.items()))
        lines.append(
            (
                "Native engine",
                f"arms {', '.join(data.native_arms)} · scenarios "
                f"{', '.join(scenarios.get('native', [])) or '?'} · tools {used or 'not recorded'}",
            )
        )
    if data.clients:
        where = scenarios.get("python") if isinstance(scenarios, dict) else None
        lines.append(
            (
                "Python engine",
                f"arms {', '.join(data.clients)} · scenarios "
                f"{', '.join(where or data.scenarios_of('python'))}",
            )
        )
    return lines or [("Arms", "none")]


def _duration(manifest: dict[str, Any]) -> str:
    start, end = manifest.get("started_at"), manifest.get("ended_at")
    if isinstance(start, int | float) and isinstance(end, int | float):
        return fmt((end - start) / 60, "min")
    return "–"


def _implementations(data: RunData) -> str:
    """Each arm that is not the Python reference: its implementation, how it was verified, and what the
    harness could not control (recorded by `bench run`; runs made before it have no such record)."""
    recorded = data.options.get("implementations")
    if not isinstance(recorded, dict):
        return "python (every arm)"
    parts = []
    for arm, info in recorded.items():
        if not isinstance(info, dict) or info.get("impl", "python") == "python":
            continue
        where = f" at {info['address']}" if info.get("address") else ""
        text = f"{arm}: {info.get('impl')}{where}, verified by {info.get('verified', 'nothing recorded')}"
        uncontrolled = info.get("uncontrolled") or []
        if uncontrolled:
            text += "; not controlled by the harness: " + "; ".join(str(u) for u in uncontrolled)
        parts.append(text)
    return " · ".join(["python for every other arm", *parts]) if parts else "python (every arm)"


def skipped_profiles(data: RunData) -> list[tuple[str, str]]:
    """(profile, reason) for guest blocks that never started (skipped profile, no libvirt, ...)."""
    return [(g.profile, g.error) for g in data.guests if g.error]


def _banner(data: RunData) -> Html:
    cells = list(data.cells.values())
    total = len(data.plan) or len(cells)
    failed = [c for c in cells if not c.ok]
    unfinished = sorted({str(s.get("cell_id")) for s in data.plan} - set(data.cells))
    items: list[Html] = []

    def item(kind: str, count: int, text: str) -> None:
        if count:
            items.append(tag("li", join([badge(kind, f"{count}") if kind else tag("b", count), " ", text])))

    item("failed", len(failed), f"of {total} cells failed (see Failures)")
    item("", len(unfinished), f"of {total} planned cells never finished (interrupted run?)")
    item(
        "tcg",
        sum(c.emulated for c in cells),
        "cells ran in software-emulated (TCG) guests: their figures are emulated, not virtualized",
    )
    item(
        "gl",
        sum(c.generator_limited and c.ok for c in cells),
        "cells were generator-limited in at least one window (the load generator fell behind or used "
        f"≥ {GENERATOR_LIMIT_PCT:.0f} % of its CPU): there the client, not the server, set the pace",
    )
    item(
        "steal",
        sum(c.flagged for c in cells),
        "cells stayed noisy after their re-runs (CPU steal or other processes on the pinned CPUs): their "
        "windows cannot back a verdict",
    )
    item("", len(skipped_profiles(data)), "guest blocks did not start (skipped or failed profiles)")
    if not items:
        return tag(
            "div",
            join(
                [
                    tag("strong", "Clean run"),
                    f"All {total} cells measured; none failed, emulated, generator-limited or noisy.",
                ]
            ),
            class_="banner ok",
        )
    severe = bool(failed or unfinished)
    return tag(
        "div",
        join([tag("strong", "Read with care"), tag("ul", join(items))]),
        class_="banner bad" if severe else "banner",
    )


def header(data: RunData) -> Html:
    m = data.manifest
    host = m.get("host", {}) if isinstance(m.get("host"), dict) else {}
    commit = m.get("git_commit") or "unknown (no git checkout)"
    if m.get("git_dirty"):
        commit = f"{commit} (working tree had uncommitted changes)"
    items: list[tuple[str, object]] = [
        ("Run", Html(tag("code", data.run_id))),
        ("Status", m.get("status", "unknown")),
        ("Started", when(m.get("started_at"))),
        ("Duration", _duration(m)),
        ("Git commit", commit),
        ("Host CPU", f"{host.get('cpu_model', '?')} · {host.get('cores', '?')} cores"),
        ("Kernel", host.get("kernel", "?")),
        ("Memory", fmt(host.get("memory_mib"), "MiB")),
        (
            "Python",
            f"{m.get('python', '?')} ({m.get('python_implementation', '?')}), "
            f"protobuf {m.get('protobuf_backend', '?')}",
        ),
        *_engines(data),
        ("Implementations", _implementations(data)),
        ("Profiles", ", ".join(data.profiles) or "none"),
        ("Repetitions", _repetitions(data)),
        ("Placement", _placement(data)),
        ("Seed", data.options.get("seed", "?")),
        ("Steal threshold", fmt(data.options.get("steal_threshold_pct"), "%", digits=2)),
    ]
    title = tag("h1", "gRPC vs REST vs SOAP — benchmark report")
    subtitle = tag("p", f"Run {data.run_id} · {when(m.get('started_at'))}", class_="subtitle")
    return tag("header", join([title, subtitle, facts(items), _banner(data)]), id="overview")


def footer(data: RunData) -> Html:
    return tag(
        "footer",
        join(
            [
                "Built by ",
                tag("code", "bench report " + data.run_id),
                " from the raw files of ",
                tag("code", f"results/{data.run_id}/"),
                " only: manifest.json, plan.json, cells.jsonl, "
                "cells/*/attempt-*/{cell.json, ops.json}, guests/*.json. The tidy table behind every number "
                "is next to "
                "this file (tidy.csv, tidy.parquet). Rebuilding gives the same bytes.",
                " ",
                esc(""),
            ]
        ),
    )
