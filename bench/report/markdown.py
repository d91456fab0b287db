"""`bench report --markdown`: a run's summary tables and claim verdicts as Markdown, for quoting (README,
issues, pull requests) instead of typing numbers by hand. Same data and rules as report.html."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bench.analysis.verdicts import NO_DIFFERENCE, NOT_ASSESSABLE, NOT_MEANINGFUL
from bench.report.data import RunData
from bench.report.html import fmt
from bench.report.sections.capacity import capacity_rows, counter_checks, load_rows
from bench.report.sections.claims import claims
from bench.report.sections.common import headline_format

__all__ = ["SUMMARY_NAME", "markdown_summary"]

SUMMARY_NAME = "summary.md"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return fmt(None if value is None else value / 1000, "ms")


def _capacity(data: RunData, profile: str) -> list[str]:
    out = []
    for scenario in data.scenarios_of("native"):
        rows = capacity_rows(data, scenario, profile)
        if not rows:
            continue
        out.append(f"**Capacity, scenario {scenario}** (server-bound closed-model windows, native engine)")
        out.append("")
        out.append(
            _table(
                [
                    "arm",
                    "capacity",
                    "95 % CI",
                    "all repetitions",
                    "server-bound",
                    "target CPU",
                    "generator CPU",
                    "tool",
                ],
                [
                    [
                        r.arm,
                        fmt(r.capacity.median if r.capacity else None, "req/s"),
                        f"[{fmt(r.capacity.ci_low)}, {fmt(r.capacity.ci_high)}]"
                        if r.capacity and r.capacity.n > 1
                        else "–",
                        fmt(r.everything.median, "req/s"),
                        f"{r.server_bound} of {r.repetitions}",
                        fmt(r.target_cpu_pct, "%"),
                        fmt(r.generator_cpu_pct, "%"),
                        r.tool,
                    ]
                    for r in rows
                ],
            )
        )
        load = [r for r in load_rows(data, scenario, profile) if r.level.startswith("eq")]
        if load:
            out.append(f"\n**Latency at equal offered load, scenario {scenario}** (open model, corrected)\n")
            out.append(
                _table(
                    ["arm", "level", "offered", "p50", "p99", "assessable repetitions"],
                    [
                        [
                            r.series,
                            r.level,
                            fmt(r.offered_rps, "req/s"),
                            _ms(r.corrected["p50"].median if "p50" in r.corrected else None),
                            _ms(r.corrected["p99"].median if "p99" in r.corrected else None),
                            f"{r.assessable} of {r.repetitions}",
                        ]
                        for r in load
                    ],
                )
            )
        out.append("")
    return out


def _verdicts(data: RunData) -> list[str]:
    rows = [c for c in data.comparisons if c.kind != "aa"]
    if not rows:
        return ["No comparisons in this run."]
    kinds = Counter(
        "not assessable"
        if c.verdict.startswith(NOT_ASSESSABLE)
        else c.verdict
        if c.verdict in (NO_DIFFERENCE, NOT_MEANINGFUL)
        else "difference"
        for c in rows
    )
    aa = data.aa
    aa_fired = sum(1 for c in aa if c.assessable and c.verdict not in (NO_DIFFERENCE, NOT_MEANINGFUL))
    lines = [
        f"{len(rows)} comparisons (one family, Benjamini–Hochberg): {kinds['difference']} differences, "
        f"{kinds[NOT_MEANINGFUL]} {NOT_MEANINGFUL}, {kinds[NO_DIFFERENCE]} {NO_DIFFERENCE}, "
        f"{kinds['not assessable']} not assessable. A/A: {aa_fired} of "
        f"{sum(c.assessable for c in aa)} assessable A/A comparisons significant (expected 0, rarely 1: the "
        "false-discovery control lets up to 5 % of a run's verdicts be false).",
        "",
    ]
    shown = [c for c in rows if c.assessable and c.engine == "native"]
    if shown:
        lines.append(
            _table(
                ["metric", "what", "A vs B", "median A", "median B", "shift", "95 % CI", "q", "verdict"],
                [
                    [
                        c.label,
                        f"{c.operation if c.operation != '*' else ''} {c.level}".strip() or "–",
                        f"{c.a} vs {c.b}",
                        headline_format(c.headline, c.median_a),
                        headline_format(c.headline, c.median_b),
                        f"{c.rel_diff_pct:+.1f} %",
                        f"[{c.rel_ci_low_pct:+.1f}, {c.rel_ci_high_pct:+.1f}] %",
                        f"{c.q_value:.3f}",
                        c.verdict,
                    ]
                    for c in shown
                ],
            )
        )
        lines.append("")
    return lines


def markdown_summary(data: RunData) -> str:
    """The summary of a run: what it measured, the native engine's capacity and equal-load latency, the
    verdicts (native engine rows in full), the server-counter check and every claim's verdict."""
    m = data.manifest
    host = m.get("host", {}) if isinstance(m.get("host"), dict) else {}
    checked, disagree = counter_checks(data)
    commit = str(m.get("git_commit") or "unknown")[:12] + (" (dirty)" if m.get("git_dirty") else "")
    parts = [
        f"Generated by `bench report --markdown {data.run_id}` from the raw files of run `{data.run_id}` "
        f"(commit {commit}; {host.get('cpu_model', '?')}, {host.get('cores', '?')} cores; "
        f"{sum(c.ok for c in data.cells.values())} of {len(data.cells)} cells measured).",
        "",
    ]
    parts += _capacity(data, data.main_profile)
    parts += ["**Verdicts**", "", *_verdicts(data)]
    if checked:
        parts += [
            f"Server counters agree with the load tools in {checked - len(disagree)} of {checked} windows.",
            "",
        ]
    parts += ["**Claims**", ""]
    parts.append(
        _table(["claim", "this run", "evidence"], [[c.claim, c.verdict, c.evidence] for c in claims(data)])
    )
    return "\n".join(parts).rstrip() + "\n"
