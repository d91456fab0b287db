"""`bench compare <run_a> <run_b>`: the headline metrics of two runs, configuration by configuration."""

from __future__ import annotations

import argparse
import sys

from bench.options import add_results_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="baseline run")
    parser.add_argument("run_b", help="run compared with the baseline")
    add_results_dir(parser)
    parser.add_argument(
        "--fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 when a headline metric is meaningfully worse than the baseline by more than PCT %%",
    )
    parser.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "json"),
        default=None,
        help="output format (default: table on a terminal, markdown when piped or in CI)",
    )


def run(args: argparse.Namespace) -> int:
    from bench.analysis.compare import compare_runs, host_speed, regressions, render
    from bench.errors import UsageError
    from bench.paths import run_dir

    try:
        a, b = run_dir(args.run_a, args.results_dir), run_dir(args.run_b, args.results_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    fmt = args.format or ("table" if sys.stdout.isatty() else "markdown")
    rows = compare_runs(a, b)
    if fmt in ("table", "markdown"):
        speed_a, speed_b = host_speed(a), host_speed(b)
        for side in sorted(set(speed_a) & set(speed_b)):
            change = 100.0 * (speed_b[side] - speed_a[side]) / speed_a[side]
            note = "  <- differences of this size may be the host, not the code" if abs(change) >= 5 else ""
            print(
                f"host CPU probe ({side} CPU): A {speed_a[side]:.0f} µs, B {speed_b[side]:.0f} µs "
                f"({change:+.1f} %){note}"
            )
    render(rows, a.name, b.name, fmt=fmt, fail_pct=args.fail_on_regression)
    return 1 if regressions(rows, args.fail_on_regression) else 0
