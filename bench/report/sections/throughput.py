"""Report section: throughput against latency, closed-model ramp and open-model rates."""

from __future__ import annotations

from bench.report.data import RunData, summarize
from bench.report.figures import (
    LevelPoint,
    figure_html,
    throughput_latency_figure,
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
    client_names,
    level_sort_key,
    median_ms,
    per_scenario,
    range_ms,
    slug,
)
from bench.thresholds import GENERATOR_LIMIT_PCT


def level_points(data: RunData, scenario: str, profile: str) -> list[LevelPoint]:
    points: list[LevelPoint] = []
    cells = data.load_cells(scenario=scenario, profile=profile)
    for client in data.clients:
        mine = [c for c in cells if c.client == client]
        for model, variant in (("closed", ""), ("open", "corrected")):
            levels = sorted({lv for c in mine for lv in c.windows(model)}, key=level_sort_key)
            for level in levels:
                windows = [(c, c.windows(model)[level]) for c in mine if level in c.windows(model)]
                throughput = summarize([float(w.get("throughput_rps", 0.0)) for _, w in windows])
                dists = [data.window_dist(c.cell_id, model, level, variant) for c, _ in windows]
                p50 = summarize([v for d in dists if (v := d.percentile(50)) is not None])
                p99 = summarize([v for d in dists if (v := d.percentile(99)) is not None])
                if throughput is None:
                    continue
                limited = sum(bool(w.get("generator_limited")) for _, w in windows)
                points.append(LevelPoint(client, model, level, throughput, p50, p99, limited, len(windows)))
    return points


def _points_table(points: list[LevelPoint]) -> Html:
    rows = []
    for p in points:
        rows.append(
            Row(
                [
                    p.client,
                    p.model,
                    p.level,
                    fmt(p.throughput.median, "req/s"),
                    "–" if p.throughput.n < 2 else fmt_ci(p.throughput.low, p.throughput.high, "req/s"),
                    median_ms(p.p50),
                    range_ms(p.p50),
                    median_ms(p.p99),
                    range_ms(p.p99),
                    f"{p.n}",
                    marks(gl=bool(p.generator_limited)) if p.generator_limited else "",
                ],
                "marked" if p.generator_limited else "",
            )
        )
    head = [
        "client",
        "model",
        "level",
        "throughput",
        "range",
        "p50",
        "p50 range",
        "p99",
        "p99 range",
        "reps",
        "marks",
    ]
    return table(
        head,
        rows,
        numeric=(3, 4, 5, 6, 7, 8, 9),
        caption="Medians over repetitions with the range (min–max) over repetitions; latencies from all "
        "operations of the window merged (open: corrected).",
    )


def _throughput_block(data: RunData, scenario: str, profile: str) -> tuple[Html, list[str]]:
    points = level_points(data, scenario, profile)
    if not points:
        return no_data(f"No closed- or open-model windows for scenario {scenario} on {profile}."), []
    div = f"fig-throughput-latency-{slug(scenario)}"
    caption = (
        "Each point: one load level, median over repetitions. Ringed points were generator-limited "
        f"(load generator ≥ {GENERATOR_LIMIT_PCT:.0f} % of its CPU) in at least one repetition — there the "
        "client library, not the server, limited throughput. Source: cell.json windows (throughput) and "
        "ops.json closed.<level>.*.latency_hdr / open.<level>.corrected.*.latency_hdr."
    )
    fig = throughput_latency_figure(points, data.clients, names=client_names(data, profile))
    return join([figure_html(fig, div, caption), _points_table(points)]), [div]


def throughput_section(data: RunData) -> Section:
    profile = data.main_profile
    parts: list[Html] = [
        paragraph(
            "Closed model (locust users, each waiting for its response): the ramp u1 → u4 → u16 shows how "
            "far "
            "throughput grows before latency climbs. Open model (fixed arrival rate at fractions of the "
            "closed "
            "maximum): achieved rate against corrected latency. Error bars span the repetitions (min–max)."
        )
    ]
    blocks, figures = per_scenario(data, profile, _throughput_block)
    parts += blocks
    return Section("throughput", "Throughput vs latency", join(parts), figures)
