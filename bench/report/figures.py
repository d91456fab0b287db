"""Plotly figures of the report, built from already-aggregated numbers; rendered with fixed div ids."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.report.data import Summary
from bench.report.hdr import Spectrum
from bench.report.html import Html, esc, tag

__all__ = [
    "Bar",
    "BootBar",
    "LevelPoint",
    "LoadPoint",
    "Stack",
    "bars_figure",
    "boot_figure",
    "color",
    "figure_html",
    "load_latency_figure",
    "spectrum_figure",
    "stacked_figure",
    "throughput_latency_figure",
]

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
_COLORS = {
    "grpc": "#2f5fa7",
    "rest-lean": "#2e9457",
    "rest": "#86c99a",
    "soap-lean": "#c0502e",
    "soap": "#eba17f",
}
_FALLBACK = ("#7b4fa8", "#8c6d1f", "#1f8c8c", "#a8326e", "#4d4d4d")
GL_COLOR = "#d98a00"
NINES_TICKS = (0, 1, 2, 3, 4, 5)
NINES_TEXT = ("0", "90", "99", "99.9", "99.99", "99.999")
# Plotly's toolbar: keep the useful zoom/export tools, drop the logo (a link to plotly.com).
CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}


def color(client: str, clients: Sequence[str]) -> str:
    if client in _COLORS:
        return _COLORS[client]
    others = [c for c in clients if c not in _COLORS]
    return _FALLBACK[others.index(client) % len(_FALLBACK)] if client in others else _FALLBACK[0]


def _style(fig: go.Figure, *, height: int) -> go.Figure:
    # The "none" template keeps each figure's JSON small; the look is set here once for all figures.
    fig.update_layout(
        template="none",
        height=height,
        font={"family": FONT, "size": 12, "color": "#1d2330"},
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        margin={"l": 70, "r": 24, "t": 56, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 11.5}},
        hovermode="closest",
        bargap=0.22,
    )
    axis = {
        "showgrid": True,
        "gridcolor": "#e7e9ee",
        "linecolor": "#9aa1ad",
        "ticks": "outside",
        "tickcolor": "#9aa1ad",
        "zeroline": False,
        "automargin": True,
    }
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    return fig


def figure_html(fig: go.Figure, div_id: str, caption: Html | str) -> Html:
    """The figure as a div with a fixed id (no random uid) and its caption; plotly.js is on the page once."""
    height = int(fig.layout.height or 420)
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=CONFIG,
        default_height=f"{height}px",
        default_width="100%",
    )
    return tag(
        "figure",
        Html(tag("div", Html(body), class_="plot") + tag("figcaption", caption)),
        id=f"{div_id}-figure",
    )


def _ms(summary: Summary | None) -> tuple[float | None, float | None, float | None]:
    """(median, minus, plus) in ms for an error bar spanning the repetitions' range."""
    if summary is None:
        return None, None, None
    return (
        summary.median / 1000,
        (summary.median - summary.low) / 1000,
        (summary.high - summary.median) / 1000,
    )


# ---- latency spectrum ------------------------------------------------------------------------------------
def spectrum_figure(
    curves: dict[str, dict[str, tuple[Spectrum, Spectrum]]], clients: Sequence[str], *, names: dict[str, str]
) -> go.Figure:
    """Percentile spectra, corrected (solid) and uncorrected (dashed); a menu picks the operation."""
    fig = go.Figure()
    selections = list(curves)
    visible_by: dict[str, list[bool]] = {s: [] for s in selections}
    max_nines = 2.0
    for selection in selections:
        for client in clients:
            pair = curves[selection].get(client)
            if pair is None:
                continue
            for variant, spec, dash in (("corrected", pair[0], "solid"), ("uncorrected", pair[1], "dot")):
                if not spec.samples:
                    continue
                max_nines = max(max_nines, spec.nines[-1])
                fig.add_trace(
                    go.Scatter(
                        x=spec.nines,
                        y=spec.latency_ms,
                        customdata=spec.percentiles,
                        mode="lines",
                        line={"shape": "hv", "color": color(client, clients), "dash": dash, "width": 2},
                        name=f"{names.get(client, client)} — {variant}",
                        legendgroup=client,
                        visible=selection == selections[0],
                        hovertemplate=f"{esc(client)} {variant}<br>p%{{customdata:.3f}}: %{{y:.3f}} ms"
                        f"<br>{spec.samples:,} calls<extra></extra>",
                    )
                )
                for s in selections:
                    visible_by[s].append(s == selection)
    buttons = [{"label": s, "method": "update", "args": [{"visible": visible_by[s]}]} for s in selections]
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "direction": "down",
                "x": 0.09,
                "xanchor": "left",
                "y": 1.2,
                "yanchor": "bottom",
                "showactive": True,
                "font": {"size": 12},
            }
        ]
        if len(selections) > 1
        else [],
    )
    if len(selections) > 1:
        fig.add_annotation(
            text="operation:",
            xref="paper",
            yref="paper",
            x=0,
            xanchor="left",
            y=1.2,
            yanchor="bottom",
            yshift=4,
            showarrow=False,
        )
    fig.update_xaxes(
        title_text="percentile (log scale of nines)",
        tickvals=list(NINES_TICKS),
        ticktext=list(NINES_TEXT),
        range=[0, math.ceil(max_nines * 2) / 2],
    )
    fig.update_yaxes(title_text="latency (ms, log)", type="log", dtick=1)
    _style(fig, height=520)
    fig.update_layout(margin={"t": 110})
    return fig


# ---- throughput vs latency -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LevelPoint:
    """One load level of one client, over repetitions: achieved throughput and latency percentiles (µs)."""

    client: str
    model: str  # closed | open
    level: str  # u<users> | f<percent>
    throughput: Summary
    p50: Summary | None
    p99: Summary | None
    generator_limited: int  # repetitions whose window was generator-limited
    n: int


def throughput_latency_figure(
    points: Sequence[LevelPoint], clients: Sequence[str], *, names: dict[str, str]
) -> go.Figure:
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("p50 latency", "p99 latency"), horizontal_spacing=0.09
    )
    for col, attr in ((1, "p50"), (2, "p99")):
        for client in clients:
            for model, dash, symbol in (("closed", "solid", "circle"), ("open", "dash", "diamond")):
                pts = [p for p in points if p.client == client and p.model == model and getattr(p, attr)]
                if not pts:
                    continue
                ys = [_ms(getattr(p, attr)) for p in pts]
                label = "closed ramp" if model == "closed" else "open (corrected)"
                fig.add_trace(
                    go.Scatter(
                        x=[p.throughput.median for p in pts],
                        y=[y[0] for y in ys],
                        error_x={
                            "type": "data",
                            "symmetric": False,
                            "thickness": 1,
                            "width": 0,
                            "array": [p.throughput.high - p.throughput.median for p in pts],
                            "arrayminus": [p.throughput.median - p.throughput.low for p in pts],
                        },
                        error_y={
                            "type": "data",
                            "symmetric": False,
                            "thickness": 1,
                            "width": 0,
                            "array": [y[2] for y in ys],
                            "arrayminus": [y[1] for y in ys],
                        },
                        mode="lines+markers+text",
                        text=[p.level for p in pts],
                        textposition="top center",
                        textfont={"size": 10},
                        marker={"symbol": symbol, "size": 8, "color": color(client, clients)},
                        line={"dash": dash, "color": color(client, clients), "width": 1.6},
                        name=f"{names.get(client, client)} — {label}",
                        legendgroup=f"{client}-{model}",
                        showlegend=col == 1,
                        hovertemplate=f"{esc(client)} %{{text}}<br>%{{x:,.0f}} req/s<br>{attr} %{{y:.3f}} ms"
                        "<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
        limited = [p for p in points if p.generator_limited and getattr(p, attr)]
        if limited:
            fig.add_trace(
                go.Scatter(
                    x=[p.throughput.median for p in limited],
                    y=[_ms(getattr(p, attr))[0] for p in limited],
                    mode="markers",
                    marker={"symbol": "circle-open", "size": 17, "color": GL_COLOR, "line": {"width": 2.2}},
                    name="generator-limited (≥ 1 repetition)",
                    legendgroup="generator-limited",
                    showlegend=col == 1,
                    text=[f"{p.client} {p.level}: {p.generator_limited}/{p.n} repetitions" for p in limited],
                    hovertemplate="generator-limited<br>%{text}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="achieved throughput (req/s, log)", type="log")
    fig.update_yaxes(title_text="latency (ms, log)", type="log", dtick=1)
    _style(fig, height=600)
    fig.update_layout(margin={"t": 130}, legend={"y": 1.12})
    return fig


@dataclass(frozen=True)
class LoadPoint:
    """One open-model level of one arm: the offered rate and a corrected percentile over repetitions."""

    arm: str
    level: str
    offered_rps: float
    percentile: str  # p50 | p99 | p999
    latency: Summary  # µs
    assessable: int  # repetitions that may back a verdict
    n: int


def load_latency_figure(
    points: Sequence[LoadPoint], arms: Sequence[str], *, names: dict[str, str]
) -> go.Figure:
    """Latency against absolute offered rate, one panel per percentile: where each arm's curve turns up
    (the "hockey stick") is where queueing starts. Hollow markers: no repetition could back a verdict."""
    order = [p for p in ("p50", "p99", "p999") if any(pt.percentile == p for pt in points)]
    titles = {"p50": "p50", "p99": "p99", "p999": "p99.9"}
    fig = make_subplots(
        rows=1, cols=max(1, len(order)), subplot_titles=[f"{titles[p]} (corrected)" for p in order],
        horizontal_spacing=0.07,
    )  # fmt: skip
    for col, percentile in enumerate(order, start=1):
        for arm in arms:
            pts = sorted((p for p in points if p.arm == arm and p.percentile == percentile),
                         key=lambda p: p.offered_rps)  # fmt: skip
            if not pts:
                continue
            ys = [_ms(p.latency) for p in pts]
            fig.add_trace(
                go.Scatter(
                    x=[p.offered_rps for p in pts],
                    y=[y[0] for y in ys],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "thickness": 1,
                        "width": 0,
                        "array": [y[2] for y in ys],
                        "arrayminus": [y[1] for y in ys],
                    },
                    mode="lines+markers",
                    marker={
                        "size": 8,
                        "color": color(arm, arms),
                        "symbol": ["circle" if p.assessable else "circle-open" for p in pts],
                    },
                    line={"color": color(arm, arms), "width": 1.6},
                    name=names.get(arm, arm),
                    legendgroup=arm,
                    showlegend=col == 1,
                    text=[f"{p.level}: {p.assessable}/{p.n} assessable" for p in pts],
                    hovertemplate=f"{esc(arm)} %{{text}}<br>%{{x:,.0f}} req/s offered<br>"
                    f"{titles[percentile]} %{{y:.3f}} ms<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="offered rate (req/s)", rangemode="tozero")
    fig.update_yaxes(title_text="latency from intended send (ms, log)", type="log", dtick=1)
    _style(fig, height=460)
    fig.update_layout(margin={"t": 100}, legend={"y": 0.985, "yanchor": "top", "yref": "container"})
    return fig


@dataclass(frozen=True)
class Stack:
    """One stacked bar: a category, the series it belongs to, and its parts (name, value) bottom to top."""

    category: str
    series: str
    parts: tuple[tuple[str, float], ...]


def stacked_figure(stacks: Sequence[Stack], *, y_title: str) -> go.Figure:
    """Stacked bars: x = category, one bar per series side by side (offset groups), parts stacked."""
    names = list(dict.fromkeys(name for s in stacks for name, _ in s.parts))
    series = list(dict.fromkeys(s.series for s in stacks))
    palette = ("#2f5fa7", "#c0502e", "#2e9457", "#9aa5b8", "#7b4fa8", "#8c6d1f")
    fig = go.Figure()
    for i, name in enumerate(names):
        for j, group in enumerate(series):
            mine = [s for s in stacks if s.series == group]
            fig.add_trace(
                go.Bar(
                    x=[[s.category for s in mine], [group] * len(mine)],
                    y=[dict(s.parts).get(name, 0.0) for s in mine],
                    name=name,
                    legendgroup=name,
                    showlegend=j == 0,
                    marker={"color": palette[i % len(palette)], "line": {"width": 0}},
                    hovertemplate=f"%{{x}}<br>{esc(name)}: %{{y:.3f}}<extra></extra>",
                )
            )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text=y_title)
    _style(fig, height=460)
    return fig


def _axis_value(value: float, log: bool) -> float:
    """Annotations on a log axis take log10 of the data value (plotly's convention; shapes take the value)."""
    return math.log10(value) if log and value > 0 else value


# ---- grouped bars (bytes, CPU, streaming, floor, VM) -------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    """One bar: category on the x axis, series (usually a client), value with its error bar (range or CI)."""

    panel: int  # subplot column, from 1
    category: str
    series: str
    value: float
    minus: float = 0.0
    plus: float = 0.0
    marked: bool = False  # hatched: generator-limited / emulated
    hover: str = ""


def bars_figure(
    bars: Sequence[Bar],
    *,
    series: Sequence[str],
    series_names: dict[str, str],
    colors: dict[str, str],
    panel_titles: Sequence[str],
    y_titles: Sequence[str],
    log_y: bool = False,
    marked_label: str = "",
    reference: float | None = None,
    reference_label: str = "",
    height: int = 440,
    stacked: bool = False,
) -> go.Figure:
    """Grouped bars in 1..n panels (side by side, or one above the other when `stacked`); `marked` bars get a
    hatch pattern explained in the legend."""
    panels = max(1, len(panel_titles))
    if stacked:
        fig = make_subplots(rows=panels, cols=1, subplot_titles=list(panel_titles), vertical_spacing=0.16)
    else:
        fig = make_subplots(rows=1, cols=panels, subplot_titles=list(panel_titles), horizontal_spacing=0.08)
    for panel in range(1, panels + 1):
        row, col = (panel, 1) if stacked else (1, panel)
        for name in series:
            group = [b for b in bars if b.panel == panel and b.series == name]
            if not group:
                continue
            fig.add_trace(
                go.Bar(
                    x=[b.category for b in group],
                    y=[b.value for b in group],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [b.plus for b in group],
                        "arrayminus": [b.minus for b in group],
                        "thickness": 1.2,
                        "width": 3,
                    },
                    marker={
                        "color": colors.get(name, "#777777"),
                        "line": {"width": 0},
                        "pattern": {"shape": ["/" if b.marked else "" for b in group], "solidity": 0.35},
                    },
                    name=series_names.get(name, name),
                    legendgroup=name,
                    showlegend=panel == 1,
                    customdata=[b.hover for b in group],
                    hovertemplate="%{x}<br>%{fullData.name}: %{y:,.4g}<br>%{customdata}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        if reference is not None:
            fig.add_hline(
                y=reference, line={"dash": "dash", "color": "#555555", "width": 1}, row=row, col=col
            )
    if marked_label and any(b.marked for b in bars):
        fig.add_trace(
            go.Bar(
                x=[None],
                y=[None],
                name=marked_label,
                marker={
                    "color": "#ffffff",
                    "line": {"color": "#555555", "width": 1},
                    "pattern": {"shape": "/"},
                },
                showlegend=True,
            )
        )
    if reference is not None and reference_label:
        fig.add_annotation(
            text=esc(reference_label),
            xref="paper",
            x=1,
            xanchor="right",
            yref="y",
            y=_axis_value(reference, log_y),
            yanchor="bottom",
            showarrow=False,
            font={"size": 11, "color": "#555555"},
        )
    for panel, title in enumerate(y_titles, start=1):
        fig.update_yaxes(title_text=title, row=panel if stacked else 1, col=1 if stacked else panel)
    if log_y:
        fig.update_yaxes(type="log", dtick=1)
    fig.update_layout(barmode="group")
    _style(fig, height=height)
    if any(panel_titles):  # room for the legend above the subplot titles
        fig.update_layout(margin={"t": 100}, legend={"y": 0.985, "yanchor": "top", "yref": "container"})
    return fig


# ---- boot phases -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BootBar:
    profile: str
    segments: tuple[tuple[str, float], ...]  # (phase, median seconds), in boot order
    emulated: bool
    n: int


def boot_figure(bars: Sequence[BootBar], phase_order: Sequence[str]) -> go.Figure:
    palette = ("#9aa5b8", "#c0502e", "#2f5fa7", "#2e9457", "#7b4fa8", "#8c6d1f")
    labels = [f"{b.profile}{' (emulated)' if b.emulated else ''} · n={b.n}" for b in bars]
    fig = go.Figure()
    for i, phase in enumerate(phase_order):
        values = [dict(b.segments).get(phase) for b in bars]
        if all(v is None for v in values):
            continue
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[v if v is not None else 0 for v in values],
                orientation="h",
                name=phase,
                marker={"color": palette[i % len(palette)]},
                hovertemplate=f"{esc(phase)}: %{{x:.3f}} s<extra>%{{y}}</extra>",
            )
        )
    fig.update_layout(barmode="stack", legend={"y": 1.04})
    fig.update_xaxes(title_text="seconds since the start request (median phase durations, host clock)")
    fig.update_yaxes(autorange="reversed")
    return _style(fig, height=max(260, 120 + 60 * len(bars)))
