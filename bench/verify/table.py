"""The verification table: one row per case, one PASS/FAIL column per target, then what failed and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table

from bench.verify.suite import TargetReport

__all__ = ["print_reports"]


def print_reports(reports: Sequence[TargetReport], out: TextIO) -> None:
    # Plain text, never wrapped: CI logs and terminals both read it; a long reason stays on its line.
    console = Console(file=out, width=200, no_color=True, soft_wrap=True, highlight=False)
    table = Table(title="bench verify: conformance", title_justify="left", show_lines=False)
    table.add_column("case")
    table.add_column("operation")
    table.add_column("needs")
    for report in reports:
        table.add_column(f"{report.label}\n({report.client})", justify="center")
    rows: dict[str, tuple[str, str, list[str]]] = {}
    for column, report in enumerate(reports):
        for result in report.results:
            needs = ",".join(sorted(result.needs)) or "-"
            _, _, cells = rows.setdefault(result.name, (result.operation, needs, ["-"] * len(reports)))
            cells[column] = "PASS" if result.passed else "FAIL"
    for name, (operation, needs, cells) in rows.items():
        table.add_row(name, operation, needs, *cells)
    console.print(table)
    for report in reports:
        if report.warning:
            console.print(f"{report.label}: warning: {report.warning}")
        for result in report.results:
            if not result.passed:
                console.print(f"{report.label}: FAIL {result.name}: {result.reason}")
    for report in reports:
        verdict = "PASS" if report.failed == 0 else "FAIL"
        console.print(
            f"{verdict} {report.label}: {report.passed} passed, {report.failed} failed "
            f"({len(report.results)} cases, client {report.client})"
        )
