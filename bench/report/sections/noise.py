"""Report section: the A/A noise floor."""

from __future__ import annotations

import statistics

from bench.report.data import AARow, RunData
from bench.report.html import (
    Row,
    Section,
    cards,
    details,
    fmt_ci,
    fmt_p,
    fmt_pct,
    join,
    no_data,
    paragraph,
    table,
)
from bench.report.sections.common import BY_KEY, min_p


def _abs_median(rows: list[AARow]) -> float:
    return statistics.median(abs(r.rel_diff_pct) for r in rows)


def noise_section(data: RunData) -> Section:
    aa = data.aa
    intro = paragraph(
        "A/A check: each client's repetitions are split into odd and even ones (interleaved in run order, so "
        "exchangeable) and compared like two different arms. Any difference is noise. The median "
        "|difference| "
        "is this run's noise floor: a protocol difference smaller than it deserves little trust, even when "
        "significant."
    )
    if not aa:
        text = "No A/A check: it needs at least 4 repetitions (2 odd and 2 even) of a configuration."
        return Section("noise", "A/A noise floor", join([intro, no_data(text)]))
    items: list[tuple[object, object]] = [
        (fmt_pct(_abs_median(aa), signed=False), "run noise floor: median |A/A difference|, all rows")
    ]
    for key in ("throughput", "p50_1user"):
        sel = [r for r in aa if r.headline == key]
        if sel:
            label = f"{BY_KEY[key].label}: median |A/A difference|"
            items.append((fmt_pct(_abs_median(sel), signed=False), label))
    groups: dict[tuple[str, str, str, str], list[AARow]] = {}
    for r in aa:
        groups.setdefault((r.client, r.scenario, r.profile, r.headline), []).append(r)
    rows = []
    for (client, scenario, profile, key), group in sorted(groups.items()):
        significant = sum(r.significant for r in group)
        sizes = f"{group[0].n_odd} / {group[0].n_even}"
        spread = [
            fmt_pct(_abs_median(group), signed=False),
            fmt_pct(max(abs(r.rel_diff_pct) for r in group), signed=False),
        ]
        cells = [
            client,
            f"{scenario} · {profile}",
            BY_KEY[key].label,
            len(group),
            sizes,
            *spread,
            significant,
        ]
        rows.append(Row(cells, "marked" if significant else ""))
    n_odd, n_even = min((r.n_odd, r.n_even) for r in aa)
    head = [
        "client",
        "scenario · profile",
        "metric",
        "rows",
        "n (odd / even)",
        "median |Δ|",
        "max |Δ|",
        "significant",
    ]
    caption = (
        "Per client: A/A differences over operations (p50) or for the whole cell (throughput). “significant” "
        f"counts A/A rows with a verdict; with {n_odd} vs {n_even} repetitions the smallest possible p is "
        f"{fmt_p(min_p(n_odd, n_even))}."
    )
    per_client = table(head, rows, numeric=(3, 4, 5, 6, 7), caption=caption)
    detail_rows = [
        Row(
            [
                r.client,
                r.label,
                r.operation,
                fmt_pct(r.rel_diff_pct),
                fmt_ci(r.ci_low_pct, r.ci_high_pct, pct=True),
                fmt_p(r.p_value),
            ]
        )
        for r in aa
    ]
    head = ["client", "metric", "operation", "odd vs even", "95 % CI", "p"]
    detail = details("Every A/A row", table(head, detail_rows, numeric=(3, 4, 5)))
    return Section("noise", "A/A noise floor", join([intro, cards(items), per_client, detail]))
