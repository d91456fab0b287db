"""Report section: the A/A arm - one configuration scheduled twice as two independent arms."""

from __future__ import annotations

import math

from bench.analysis.verdicts import BY_KEY, NO_DIFFERENCE, NOT_MEANINGFUL
from bench.report.data import RunData
from bench.report.html import (
    Row,
    Section,
    cards,
    fmt,
    fmt_ci,
    fmt_p,
    fmt_pct,
    join,
    no_data,
    paragraph,
    table,
)
from bench.report.sections.verdicts import verdict_cell

__all__ = ["noise_section"]


def noise_section(data: RunData) -> Section:
    aa = data.aa
    twins = sorted({c.a for c in aa})
    intro = paragraph(
        "The A/A arm: one configuration of the run is scheduled twice, as two independent arms interleaved "
        "with every other cell (",
        ", ".join(twins) or "none in this run",
        "). Whatever separates the twins is noise: the host, the order, the process start. Its comparisons "
        "go through exactly the rule of every other verdict (the same family, the same false-discovery "
        "control), so the count of “significant” A/A rows checks the rule itself (it should be 0), and "
        "the spread of each A/A comparison - the largest relative shift its CI cannot exclude - is the "
        "smallest difference this run calls meaningful for that metric.",
    )
    if not aa:
        text = (
            "No A/A comparison: the run had no A/A twin (bench run --aa-arm none), or the twin or its "
            "original has no measured cells."
        )
        return Section("noise", "A/A arm", join([intro, no_data(text)]))
    assessable = [c for c in aa if c.assessable]
    significant = [c for c in assessable if c.verdict not in (NO_DIFFERENCE, NOT_MEANINGFUL)]
    spreads = [
        max(abs(c.rel_ci_low_pct), abs(c.rel_ci_high_pct), abs(c.rel_diff_pct))
        for c in assessable
        if not math.isnan(c.rel_ci_low_pct)
    ]
    items: list[tuple[object, object]] = [
        (
            f"{len(significant)} of {len(assessable)}",
            "A/A comparisons with a verdict (expected: 0, rarely 1: the false-discovery control lets up to "
            "5 % of a run's verdicts be false)",
        ),
        (f"{len(aa) - len(assessable)}", "A/A comparisons not assessable"),
    ]
    if spreads:
        items.append((fmt(max(spreads), "%"), "largest A/A spread (the strictest minimum effect)"))
    rows = [
        Row(
            [
                BY_KEY[c.headline].label if c.headline in BY_KEY else c.label,
                f"{c.scenario} · {c.profile_a}",
                f"{c.operation if c.operation != '*' else '–'} {c.level}".strip(),
                f"{c.a} vs {c.b}",
                fmt_pct(c.rel_diff_pct),
                fmt_ci(c.rel_ci_low_pct, c.rel_ci_high_pct, pct=True),
                fmt_p(c.p_value),
                fmt_p(c.q_value),
                f"{c.n_a} / {c.n_b}",
                verdict_cell(c),
            ],
            "marked" if c in significant else "",
        )
        for c in aa
    ]
    head = ["metric", "scenario · profile", "what", "twin vs original", "shift", "95 % CI", "p", "q (BH)",
            "n", "verdict"]  # fmt: skip
    body = table(
        head,
        rows,
        numeric=(4, 5, 6, 7, 8),
        caption="Every A/A comparison. The spread (max of |shift| and the CI's |bounds|) of a row is "
        "the minimum effect for the same metric, scenario, level and operation in Verdicts; metrics without "
        "their own A/A row use the largest spread of the same metric.",
    )
    return Section("noise", "A/A arm", join([intro, cards(items), body]))
