"""`bench compare`: the headline metrics of two runs, configuration by configuration, under the same rule as
a run's own verdicts (assessable repetitions, Mann-Whitney + Hodges-Lehmann, Benjamini-Hochberg across all
comparisons, the larger of the two runs' A/A spreads as the smallest meaningful difference)."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from bench.analysis.tidy import load
from bench.analysis.verdicts import (
    HEADLINES,
    Comparison,
    Where,
    compare_groups,
    comparisons,
    headline_values,
    judge,
)

__all__ = ["FORMATS", "compare_runs", "host_speed", "regressions", "render", "worse"]

FORMATS = ("table", "markdown", "csv", "json")
_KEY = ["arm", "scenario", "profile", "level", "operation"]


def compare_runs(run_a: Path, run_b: Path) -> list[Comparison]:
    """Per headline metric and configuration: run B against baseline run A over their repetitions."""
    tidy_a, tidy_b = load(run_a), load(run_b)
    rows: list[Comparison] = []
    for headline in HEADLINES:
        values_a, values_b = headline_values(tidy_a, headline), headline_values(tidy_b, headline)
        if values_a.empty or values_b.empty:
            continue
        groups_b = dict(iter(values_b.groupby(_KEY, sort=True)))
        for key, group_a in values_a.groupby(_KEY, sort=True):
            group_b = groups_b.get(key)
            if group_b is None:
                continue
            arm, scenario, profile, level, operation = (str(k) for k in key)
            rows.append(
                compare_groups(
                    headline,
                    "runs",
                    group_b,
                    group_a,
                    name_a="B",
                    name_b="A",
                    where=Where(
                        scenario, profile, profile, level, arm if operation == "*" else f"{arm}: {operation}"
                    ),
                )
            )
    aa = [c for tidy in (tidy_a, tidy_b) for c in comparisons(tidy) if c.kind == "aa"]
    return judge(rows, aa=aa)


def worse(c: Comparison) -> bool:
    headline = next((h for h in HEADLINES if h.key == c.headline), None)
    return headline is not None and c.verdict == f"B {headline.words[1]}"


def regressions(rows: list[Comparison], fail_pct: float | None) -> list[str]:
    """Meaningfully worse in B by more than `fail_pct` % (none when no threshold is given)."""
    if fail_pct is None:
        return []
    return [
        f"{c.label} {c.scenario} {c.operation} {c.level}: {c.rel_diff_pct:+.1f} %"
        for c in rows
        if worse(c) and abs(c.rel_diff_pct) > fail_pct
    ]


def host_speed(run: Path) -> dict[str, float]:
    """Median CPU-probe time per side (µs) of a run's floor cells; empty for runs without probes."""
    tidy = load(run)
    probes = tidy[tidy["metric"].str.startswith("cpu_probe_")]
    return {
        str(k).removeprefix("cpu_probe_"): float(v)
        for k, v in probes.groupby("metric")["value"].median().items()
    }


def _fmt(value: float, spec: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _cells(c: Comparison) -> dict[str, str]:
    return {
        "metric": c.label,
        "scenario": c.scenario,
        "profile": c.profile_a,
        "level": c.level or "–",
        "arm / operation": c.operation,
        "A": _fmt(c.median_b, ".4g"),
        "B": _fmt(c.median_a, ".4g"),
        "B−A %": _fmt(c.rel_diff_pct, "+.1f"),
        "95 % CI %": f"[{_fmt(c.rel_ci_low_pct, '+.1f')}, {_fmt(c.rel_ci_high_pct, '+.1f')}]",
        "p": _fmt(c.p_value, ".3f"),
        "q (BH)": _fmt(c.q_value, ".3f"),
        "A/A %": _fmt(c.min_effect_pct, ".1f"),
        "verdict": c.verdict,
    }


def render(
    rows: list[Comparison],
    name_a: str,
    name_b: str,
    *,
    fmt: str,
    out: TextIO = sys.stdout,
    fail_pct: float | None,
) -> None:
    """Print the comparison as `fmt`: table (rich, for a terminal), markdown, csv or json (pipes, CI)."""
    if fmt == "json":
        json.dump(
            {"a": name_a, "b": name_b, "comparisons": [_clean(c.record()) for c in rows]}, out, indent=1
        )
        out.write("\n")
        return
    records = [_cells(c) for c in rows]
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["metric"])
        writer.writeheader()
        writer.writerows(records)
        return
    summary = _summary(rows, fail_pct)
    if fmt == "markdown":
        out.write(f"B = {name_b} vs A = {name_a} (Hodges-Lehmann shift of B − A over repetitions, ")
        out.write("95 % CI, Mann-Whitney p, Benjamini-Hochberg q)\n\n")
        if records:
            header = list(records[0])
            out.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
            for record in records:
                out.write("| " + " | ".join(v.replace("|", "\\|") for v in record.values()) + " |\n")
        out.write("\n" + summary + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out)
    view = Table(title=f"B = {name_b}  vs  A = {name_a}")
    for column in records[0] if records else ["metric"]:
        view.add_column(column, overflow="fold")
    for c, record in zip(rows, records, strict=True):
        style = "red" if worse(c) else ("dim" if not c.assessable else "")
        view.add_row(*record.values(), style=style)
    console.print(view)
    console.print(summary)


def _summary(rows: list[Comparison], fail_pct: float | None) -> str:
    if not rows:
        return "no common configurations between the two runs"
    counts = pd.Series([_bucket(c.verdict) for c in rows]).value_counts()
    parts = [f"{n} {bucket}" for bucket, n in counts.items()]
    line = f"{len(rows)} comparisons: " + ", ".join(parts)
    found = regressions(rows, fail_pct)
    if found:
        line += f"\n{len(found)} meaningful regression(s) beyond {fail_pct} %: " + "; ".join(found)
    return line


def _bucket(verdict: str) -> str:
    if verdict.startswith("not assessable"):
        return "not assessable"
    if verdict.startswith("B "):
        return f"B {verdict.split()[1]}"
    return verdict


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
