"""Report section: every comparison with its verdict, and how to read them."""

from __future__ import annotations

import math
from collections import Counter

from bench.analysis.stats import ALPHA, HEADLINES, Comparison
from bench.report.data import RunData
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
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
from bench.report.sections.common import BY_KEY, comparison_side, headline_format, min_p


def _verdict_cell(row: Comparison) -> Html:
    headline = BY_KEY.get(row.headline)
    side = "ns" if headline is None else comparison_side(row, row.a, headline)
    return tag("span", row.verdict, class_=f"verdict-{side}")


def _how_to_read(data: RunData) -> Html:
    sizes = sorted({(r.n_a, r.n_b) for r in data.comparisons})
    if sizes:
        n_a, n_b = min(sizes)
        floor = min_p(n_a, n_b)
        run_note = (
            f"In this run the smallest arms have n = {n_a} and {n_b} repetitions, so the smallest "
            f"possible p is {fmt_p(floor)}"
            + (
                " — below 0.05, so verdicts are possible."
                if floor < ALPHA
                else " — not below 0.05: no comparison in this run can reach a verdict."
            )
        )
    else:
        run_note = "This run has no pair of arms to compare."
    return tag(
        "div",
        join(
            [
                paragraph(
                    tag("b", "How to read the verdicts. "),
                    "Each row compares arm A with arm B over the "
                    "repetitions of the run (one value per repetition). A verdict other than “no significant "
                    "difference” needs both: a two-sided Mann-Whitney U test with p < 0.05 and a 95 % "
                    "percentile-bootstrap CI of the median difference (A − B, 2,000 resamples, fixed seed) "
                    "that excludes 0. The difference is shown relative to B’s median.",
                ),
                paragraph(
                    "With 5 repetitions per arm the smallest possible p is 0.008; with 4 it is 0.029; with 3 "
                    "or fewer it is at least 0.1, so fewer than 4 repetitions per arm can never give a "
                    "verdict. ",
                    run_note,
                ),
                paragraph(
                    "Marks: ",
                    badge("gl"),
                    " a window in one of the arms was generator-limited; ",
                    badge("steal"),
                    " a cell stayed above the CPU-steal threshold; ",
                    badge("tcg"),
                    " a guest ran under software emulation. A marked row may measure the client or the "
                    "hypervisor rather than the protocol.",
                ),
            ]
        ),
        class_="howto",
    )


def _scoreboard(cmp: list[Comparison]) -> Html:
    groups: dict[tuple[str, str, str, str, str], list[Comparison]] = {}
    for r in cmp:
        if r.profile_a == r.profile_b:
            groups.setdefault((r.headline, r.scenario, r.profile_a, r.a, r.b), []).append(r)
    rows = []
    for (key, scenario, profile, a, b), group in groups.items():
        headline = BY_KEY[key]
        sides = Counter(comparison_side(r, a, headline) for r in group)
        cells = [headline.label, f"{scenario} · {profile}", f"{a} vs {b}", sides["better"], sides["worse"]]
        rows.append(Row([*cells, sides["ns"], len(group)]))
    if not rows:
        return Html("")
    head = [
        "metric",
        "scenario · profile",
        "A vs B",
        "A better",
        "A worse",
        "no sig. difference",
        "comparisons",
    ]
    return table(
        head,
        rows,
        numeric=(3, 4, 5, 6),
        caption="Scoreboard: per metric and pair, how many operation "
        "comparisons went which way (“better” = faster, higher throughput or cheaper).",
    )


def _comparison_rows(cmp: list[Comparison], *, context: bool) -> list[Row]:
    rows: list[Row] = []
    for key in [h.key for h in HEADLINES]:
        group = [r for r in cmp if r.headline == key]
        if not group:
            continue
        rows.append(Row([BY_KEY[key].label], "group"))
        for r in group:
            base = r.median_b
            low = 100 * r.ci_low / base if base else math.nan
            high = 100 * r.ci_high / base if base else math.nan
            where = f"{r.scenario} · {r.profile_a}" + (
                "" if r.profile_a == r.profile_b else f" vs {r.profile_b}"
            )
            flags = marks(gl=bool(r.generator_limited), steal=bool(r.flagged), tcg=bool(r.emulated))
            cells = [
                r.operation,
                f"{r.a} vs {r.b}",
                headline_format(key, r.median_a),
                headline_format(key, r.median_b),
                fmt_pct(r.rel_diff_pct),
                fmt_ci(low, high, pct=True),
                fmt_p(r.p_value),
                f"{r.n_a} / {r.n_b}",
                _verdict_cell(r),
                flags,
            ]
            marked = bool(r.generator_limited or r.flagged or r.emulated)
            rows.append(Row([where, *cells] if context else cells, "marked" if marked else ""))
    return rows


def verdicts_section(data: RunData) -> Section:
    cmp = data.comparisons
    parts: list[Html] = [_how_to_read(data)]
    if not cmp:
        parts.append(
            no_data(
                "No comparisons: a comparison needs two clients (or a VM profile and the host) with "
                "measured cells of the same scenario."
            )
        )
        return Section("verdicts", "Verdicts", join(parts))
    parts.append(_scoreboard(cmp))
    context = len({(r.scenario, r.profile_a, r.profile_b) for r in cmp}) > 1
    head = [
        "operation",
        "A vs B",
        "median A",
        "median B",
        "A vs B",
        "95 % CI",
        "p",
        "n (A / B)",
        "verdict",
        "marks",
    ]
    numeric: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    if context:
        head, numeric = ["scenario · profile", *head], tuple(i + 1 for i in numeric)
    parts.append(tag("h3", "All comparisons"))
    parts.append(
        table(
            head,
            _comparison_rows(cmp, context=context),
            numeric=numeric,
            caption="Medians over repetitions; A vs B = (median A − median B) / median B; the CI is the "
            "bootstrap CI of the median difference, relative to median B. Source: tidy table (cells/*/"
            "attempt-*/cell.json windows and ops.json summaries).",
        )
    )
    return Section("verdicts", "Verdicts", join(parts))
