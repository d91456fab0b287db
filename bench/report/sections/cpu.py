"""Report section: server CPU time per request."""

from __future__ import annotations

from bench.report.data import RunData, summarize
from bench.report.figures import (
    Bar,
    bars_figure,
    figure_html,
)
from bench.report.html import (
    Html,
    Row,
    Section,
    fmt,
    fmt_ci,
    join,
    marks,
    no_data,
    paragraph,
    table,
)
from bench.report.sections.common import (
    client_colors,
    client_names,
    error_bar,
    level_sort_key,
    per_scenario,
    slug,
    tidy_slice,
)


def _cpu_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    t = tidy_slice(data, profile, scenario)
    sel = t[(t["metric"] == "target_cpu_us_per_request") & (t["operation"] == "*")] if not t.empty else t
    if sel.empty:
        return no_data(f"No server CPU measurements for scenario {scenario} on {profile}."), []
    levels = sorted(
        {(str(p), str(lv)) for p, lv in zip(sel["phase"], sel["level"], strict=True)},
        key=lambda pl: (pl[0] != "closed", level_sort_key(pl[1])),
    )
    bars, rows = [], []
    for client in data.clients:
        for phase, level in levels:
            group = sel[(sel["client"] == client) & (sel["phase"] == phase) & (sel["level"] == level)]
            s = summarize(group["value"].tolist())
            if s is None:
                continue
            limited = int(group["generator_limited"].sum())
            minus, plus = error_bar(s, ci=True)
            label = f"{phase} {level}"
            bars.append(
                Bar(
                    1,
                    label,
                    client,
                    s.median,
                    minus,
                    plus,
                    marked=limited > 0,
                    hover=f"{s.median:,.0f} µs/req; generator-limited in {limited}/{s.n}",
                )
            )
            rows.append(
                Row(
                    [
                        client,
                        label,
                        fmt(s.median, "µs"),
                        fmt_ci(s.ci_low, s.ci_high, "µs"),
                        fmt_ci(s.low, s.high, "µs") if s.n > 1 else "–",
                        s.n,
                        marks(gl=True) if limited else "",
                    ],
                    "marked" if limited else "",
                )
            )
    div = f"fig-cpu-{slug(scenario)}"
    fig = bars_figure(
        bars,
        series=[c for c in data.clients if any(b.series == c for b in bars)],
        series_names=client_names(data, profile),
        colors=client_colors(data),
        panel_titles=("",),
        y_titles=("server CPU per request (µs)",),
        marked_label="generator-limited in ≥ 1 repetition",
    )
    caption = (
        "Target process CPU time (user + system, from /proc) during the window divided by the calls "
        "completed in it — a whole-cell figure over the scenario's mix of operations (CPU is not split by "
        "operation). Bars: median over repetitions; error bars: 95 % bootstrap CI of the median. Hatched: "
        "generator-limited windows, where the server was not saturated. Source: cell.json windows → "
        "target_cpu_s / requests."
    )
    head = ["client", "window", "median", "95 % CI", "range", "reps", "marks"]
    return join([figure_html(fig, div, caption), table(head, rows, numeric=(2, 3, 4, 5))]), [div]


def cpu_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "How much server CPU one request costs, per client and load level. Lower is "
            "cheaper; the number shrinks with load when fixed per-wake-up costs are shared "
            "by more requests."
        )
    ]
    blocks, figures = per_scenario(data, data.main_profile, _cpu_block)
    parts += blocks
    return Section("cpu", "Server CPU per request", join(parts), figures)
