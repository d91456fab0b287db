"""Report section: failed, unfinished and re-run cells, and every cell's final attempt."""

from __future__ import annotations

from bench.report.data import RunData
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
    details,
    fmt,
    join,
    marks,
    no_data,
    paragraph,
    table,
    tag,
)
from bench.report.sections.overview import skipped_profiles


def failures_section(data: RunData) -> Section:
    parts: list[Html] = []
    failed = [c for c in data.cells.values() if not c.ok]
    if failed:
        rows = [
            Row(
                [
                    c.cell_id,
                    c.profile,
                    c.arm or c.kind,
                    c.repetition,
                    c.attempt,
                    c.reason or "no reason recorded",
                    f"cells/{c.cell_id}/attempt-{c.attempt}/",
                ],
                "failed",
            )
            for c in failed
        ]
        parts.append(
            table(
                ["cell", "profile", "arm", "rep.", "attempt", "reason", "raw files"],
                rows,
                numeric=(3, 4),
                wrap=(5,),
                caption=f"{len(failed)} failed cells",
            )
        )
    else:
        parts.append(no_data("No failed cells."))
    unfinished = sorted({str(s.get("cell_id")) for s in data.plan} - set(data.cells))
    if unfinished:
        parts.append(
            paragraph(
                tag("b", f"{len(unfinished)} planned cells never finished"),
                " (the run was interrupted; `bench run --resume ",
                data.run_id,
                "` completes it): ",
                ", ".join(unfinished),
            )
        )
    skipped = skipped_profiles(data)
    if skipped:
        parts.append(tag("h3", "Skipped or failed profiles"))
        parts.append(table(["profile", "reason"], [Row([p, r]) for p, r in skipped], wrap=(1,)))
    reruns = [a for a in data.attempts if not a.get("final")]
    if reruns:
        rows = [
            Row([a["cell_id"], a.get("attempt"), fmt(a.get("max_steal_pct"), "%"),
                 fmt(a.get("max_other_cpu_pct"), "%"), a.get("status", "?")])
            for a in sorted(reruns, key=lambda a: (a["cell_id"], a.get("attempt", 0)))
        ]  # fmt: skip
        parts.append(tag("h3", "Attempts re-run because the host was noisy"))
        head = ["cell", "attempt", "max steal", "other processes (max, % of a CPU)", "status"]
        parts.append(table(head, rows, numeric=(1, 2, 3)))
    parts.append(details(f"All {len(data.cells)} cells (final attempts)", _all_cells(data)))
    return Section("failures", "Failures and cells", join(parts))


def _all_cells(data: RunData) -> Html:
    rows = []
    for c in data.cells.values():
        flags = join(
            [
                badge("failed") if not c.ok else "",
                " ",
                marks(gl=c.generator_limited, steal=c.flagged, tcg=c.emulated),
            ]
        )
        rows.append(
            Row(
                [
                    c.cell_id,
                    c.kind,
                    c.arm or "–",
                    c.scenario,
                    c.profile,
                    c.repetition,
                    c.attempt,
                    fmt(c.max_steal_pct, "%"),
                    fmt(c.wall_s, "s"),
                    flags,
                ]
            )
        )
    head = ["cell", "kind", "arm", "scenario", "profile", "rep.", "attempt", "max steal", "wall", "marks"]
    return table(head, rows, numeric=(5, 6, 7, 8), caption="Raw files of each: cells/<cell>/attempt-<n>/")
