"""`bench compare <run_a> <run_b>`: the headline metrics of two runs, configuration by configuration."""

from __future__ import annotations

import argparse

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
        help="exit 1 when a headline metric is significantly worse than the baseline by more than PCT %%",
    )


def run(args: argparse.Namespace) -> int:
    from bench.analysis.compare import compare_runs, print_comparison, print_host_speed
    from bench.errors import UsageError
    from bench.paths import run_dir

    try:
        a, b = run_dir(args.run_a, args.results_dir), run_dir(args.run_b, args.results_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    table = compare_runs(a, b)
    print_host_speed(a, b)
    regressions = print_comparison(table, a.name, b.name, fail_pct=args.fail_on_regression)
    return 1 if regressions else 0
