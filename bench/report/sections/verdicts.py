"""Report section: every comparison with its verdict, how to read them, and what could not be assessed."""

from __future__ import annotations

from collections import Counter

from bench.analysis.stats import ALPHA
from bench.analysis.verdicts import BY_KEY, HEADLINES, MIN_REPETITIONS, Comparison
from bench.report.data import RunData
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
    fmt,
    fmt_ci,
    fmt_p,
    fmt_pct,
    join,
    marks,
    no_data,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import comparison_side, headline_format
from bench.thresholds import GENERATOR_HEADROOM_PCT, PACING_DISTORTION_LIMIT, TARGET_BOUND_PCT, min_samples

__all__ = ["how_to_read", "verdict_cell", "verdicts_section"]


def verdict_cell(row: Comparison) -> Html:
    headline = BY_KEY.get(row.headline)
    side = "ns" if headline is None else comparison_side(row, row.a, headline)
    text = row.verdict.split(":")[0] if not row.assessable else row.verdict
    return tag("span", text, class_=f"verdict-{side}")


def how_to_read(data: RunData) -> Html:
    family = [c for c in data.comparisons if c.assessable]
    return tag(
        "div",
        join(
            [
                paragraph(
                    tag("b", "How to read the verdicts. "),
                    "Each row compares arm A with arm B over the repetitions of the run (one value per "
                    "repetition and arm). The estimate is the Hodges–Lehmann shift A − B (the median of all "
                    "pairwise differences) with its distribution-free 95 % CI, beside a two-sided "
                    "Mann-Whitney U test; both are shown relative to B’s median. The p-values of all ",
                    tag("b", f"{len(family)}"),
                    " assessable comparisons of this report (protocol, A/A and profile comparisons) are "
                    f"one family under Benjamini–Hochberg false-discovery control: a difference needs q < "
                    f"{ALPHA:g} and a CI that excludes 0. It is called meaningful only when it is also at "
                    "least the A/A spread of the same metric (see A/A arm); a significant but smaller one "
                    "reads “no meaningful difference”.",
                ),
                paragraph(
                    tag("b", "Not assessable. "),
                    "A repetition counts only from a window that can back a verdict: capacity only from "
                    f"server-bound windows (target ≥ {TARGET_BOUND_PCT:.0f} % of its CPU, generator ≤ "
                    f"{GENERATOR_HEADROOM_PCT:.0f} % of its CPU), open-model latency only where the "
                    "generator kept its schedule (its pacing moves no percentile by more than "
                    f"{PACING_DISTORTION_LIMIT:.0%}), and everywhere only where the server’s counters agree "
                    "with the load tool, no CPU steal or busy host disturbed the window, the percentile has "
                    f"enough samples (p99 ≥ {min_samples(99):,}, p99.9 ≥ {min_samples(99.9):,}) and no "
                    f"emulator ran it. An arm with fewer than {MIN_REPETITIONS} such repetitions, or arms "
                    f"too small to ever reach p < {ALPHA:g}, "
                    "give “not assessable” with the reasons, never a verdict.",
                ),
                paragraph(
                    "Marks: ",
                    badge("gl"),
                    " a window in one of the arms was generator-limited; ",
                    badge("steal"),
                    " a cell stayed above the CPU-steal threshold; ",
                    badge("tcg"),
                    " a guest ran under software emulation.",
                ),
            ]
        ),
        class_="howto",
    )


def _scoreboard(cmp: list[Comparison]) -> Html:
    groups: dict[tuple[str, str, str, str, str], list[Comparison]] = {}
    for r in cmp:
        if r.kind == "protocol":
            groups.setdefault((r.headline, r.scenario, r.profile_a, r.a, r.b), []).append(r)
    rows = []
    for (key, scenario, profile, a, b), group in groups.items():
        headline = BY_KEY[key]
        sides = Counter(comparison_side(r, a, headline) for r in group)
        cells = [headline.label, f"{scenario} · {profile}", f"{a} vs {b}", sides["better"], sides["worse"]]
        rows.append(Row([*cells, sides["ns"], sides["na"], len(group)]))
    if not rows:
        return Html("")
    head = ["metric", "scenario · profile", "A vs B", "A better", "A worse", "no (meaningful) difference",
            "not assessable", "comparisons"]  # fmt: skip
    return table(
        head,
        rows,
        numeric=(3, 4, 5, 6, 7),
        caption="Scoreboard: per metric and pair of arms, how many comparisons went which way (“better” = "
        "faster, higher capacity or cheaper).",
    )


def comparison_rows(cmp: list[Comparison], *, context: bool) -> list[Row]:
    rows: list[Row] = []
    for headline in HEADLINES:
        group = [r for r in cmp if r.headline == headline.key]
        if not group:
            continue
        rows.append(Row([headline.label], "group"))
        for r in group:
            where = f"{r.scenario} · {r.profile_a}" + (
                "" if r.profile_a == r.profile_b else f" vs {r.profile_b}"
            )
            what = r.operation if r.operation != "*" else "–"
            cells = [
                f"{what} {r.level}".strip(),
                f"{r.a} vs {r.b}",
                headline_format(headline.key, r.median_a),
                headline_format(headline.key, r.median_b),
                fmt_pct(r.rel_diff_pct),
                fmt_ci(r.rel_ci_low_pct, r.rel_ci_high_pct, pct=True),
                fmt_p(r.p_value),
                fmt_p(r.q_value),
                fmt(r.min_effect_pct, "%") if r.kind != "aa" else "(A/A)",
                f"{r.n_a} / {r.n_b}",
                verdict_cell(r),
                marks(gl=r.generator_limited, steal=r.flagged, tcg=r.emulated),
            ]
            row_class = "marked" if not r.assessable else ""
            rows.append(Row([where, *cells] if context else cells, row_class))
    return rows


def _not_assessable(cmp: list[Comparison]) -> Html:
    rows = [
        Row(
            [
                r.label,
                f"{r.scenario} · {r.profile_a}",
                f"{r.operation} {r.level}".strip(),
                f"{r.a} vs {r.b}",
                r.reason,
            ]
        )
        for r in cmp
        if not r.assessable
    ]
    if not rows:
        return Html("")
    return join(
        [
            tag("h3", f"Not assessable ({len(rows)})"),
            table(["metric", "scenario · profile", "what", "A vs B", "why"], rows, wrap=(4,)),
        ]
    )


def verdicts_section(data: RunData) -> Section:
    cmp = data.comparisons
    parts: list[Html] = [how_to_read(data)]
    if not cmp:
        parts.append(
            no_data(
                "No comparisons: a comparison needs two arms (or a VM profile and the host) with measured "
                "cells of the same scenario."
            )
        )
        return Section("verdicts", "Verdicts", join(parts))
    parts.append(_scoreboard(cmp))
    context = len({(r.scenario, r.profile_a, r.profile_b) for r in cmp}) > 1
    head = ["what", "A vs B", "median A", "median B", "shift A − B", "95 % CI", "p", "q (BH)", "A/A spread",
            "n (A / B)", "verdict", "marks"]  # fmt: skip
    numeric: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8, 9)
    if context:
        head, numeric = ["scenario · profile", *head], tuple(i + 1 for i in numeric)
    parts.append(tag("h3", "All comparisons"))
    parts.append(
        table(
            head,
            comparison_rows(cmp, context=context),
            numeric=numeric,
            caption="Medians over the assessable repetitions; shift = Hodges–Lehmann estimate of A − B and "
            "its 95 % CI, relative to median B; q = Benjamini–Hochberg adjusted p over the report's family. "
            "Source: tidy table (cells/*/attempt-*/cell.json windows and ops.json summaries).",
        )
    )
    parts.append(_not_assessable(cmp))
    return Section("verdicts", "Verdicts", join(parts))
