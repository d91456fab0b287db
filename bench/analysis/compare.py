"""`bench compare`: the same headline metrics of two runs, cell configuration by cell configuration."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.stats import HEADLINES, compare_arms, headline_values, verdict
from bench.analysis.tidy import load

__all__ = ["compare_runs", "host_speed", "print_comparison", "print_host_speed"]

_KEY = ["client", "scenario", "profile", "operation"]


def compare_runs(run_a: Path, run_b: Path, *, seed: int = 0) -> pd.DataFrame:
    """Per headline metric and configuration: run B against baseline run A over their repetitions."""
    tidy_a, tidy_b = load(run_a), load(run_b)
    rows = []
    for headline in HEADLINES:
        values_a, values_b = headline_values(tidy_a, headline), headline_values(tidy_b, headline)
        if values_a.empty or values_b.empty:
            continue
        groups_b = dict(iter(values_b.groupby(_KEY, sort=True)))
        for key, group_a in values_a.groupby(_KEY, sort=True):
            group_b = groups_b.get(key)
            if group_b is None:
                continue
            b_vals, a_vals = list(group_b["value"]), list(group_a["value"])
            diff, low, high, p = compare_arms(b_vals, a_vals, seed=seed)
            base = float(group_a["value"].median())
            text = verdict("B", diff, low, high, p, headline)
            worse = text.endswith(headline.words[1])
            rows.append(
                {
                    "headline": headline.key,
                    "label": headline.label,
                    **dict(zip(_KEY, key, strict=True)),
                    "median_a": base,
                    "median_b": float(group_b["value"].median()),
                    "rel_diff_pct": 100.0 * diff / base if base else float("nan"),
                    "ci_low_pct": 100.0 * low / base if base else float("nan"),
                    "ci_high_pct": 100.0 * high / base if base else float("nan"),
                    "p_value": p,
                    "verdict": text,
                    "worse": worse,
                }
            )
    return pd.DataFrame(rows)


def host_speed(run: Path) -> dict[str, float]:
    """Median CPU-probe time per side (µs) of a run's floor cells; empty for runs without probes."""
    tidy = load(run)
    probes = tidy[tidy["metric"].str.startswith("cpu_probe_")]
    return {
        str(k).removeprefix("cpu_probe_"): float(v)
        for k, v in probes.groupby("metric")["value"].median().items()
    }


def print_comparison(table: pd.DataFrame, name_a: str, name_b: str, *, fail_pct: float | None) -> list[str]:
    """Print the table; return the regressions beyond `fail_pct` (significantly worse by more than PCT %)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if table.empty:
        console.print(f"[yellow]no common cells between {name_a} and {name_b}[/]")
        return []
    view = Table(title=f"B = {name_b}  vs  A = {name_a}  (median over repetitions, 95 % bootstrap CI)")
    for column in (
        "metric",
        "client",
        "scenario",
        "profile",
        "operation",
        "A",
        "B",
        "B−A %",
        "95 % CI %",
        "p",
        "verdict",
    ):
        view.add_column(column, overflow="fold")
    regressions: list[str] = []
    for row in table.itertuples():
        rel = float(row.rel_diff_pct)  # type: ignore[arg-type]
        regression = bool(row.worse) and fail_pct is not None and abs(rel) > fail_pct
        style = "red" if regression else ("yellow" if row.worse else "")
        view.add_row(
            str(row.label),
            str(row.client),
            str(row.scenario),
            str(row.profile),
            str(row.operation),
            f"{row.median_a:.4g}",
            f"{row.median_b:.4g}",
            f"{row.rel_diff_pct:+.1f}",
            f"[{row.ci_low_pct:+.1f}, {row.ci_high_pct:+.1f}]",
            f"{row.p_value:.3f}",
            str(row.verdict),
            style=style,
        )
        if regression:
            regressions.append(f"{row.label} {row.client} {row.operation}: {row.rel_diff_pct:+.1f} %")
    console.print(view)
    same = (table["verdict"] == "no significant difference").mean() * 100
    console.print(f"{same:.0f} % of {len(table)} comparisons: no significant difference")
    if regressions:
        console.print(f"[red]{len(regressions)} significant regression(s) beyond {fail_pct} %[/]")
    return regressions


def print_host_speed(run_a: Path, run_b: Path) -> None:
    """Warn when the host ran Python at a different speed in the two runs (CPU probe of the floor cells)."""
    speed_a, speed_b = host_speed(run_a), host_speed(run_b)
    for side in sorted(set(speed_a) & set(speed_b)):
        change = 100.0 * (speed_b[side] - speed_a[side]) / speed_a[side]
        note = "  <- differences of this size may be the host, not the code" if abs(change) >= 5 else ""
        a, b = speed_a[side], speed_b[side]
        print(f"host CPU probe ({side} CPU): A {a:.0f} µs, B {b:.0f} µs ({change:+.1f} %){note}")
