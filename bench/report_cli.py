"""`bench report <run_id>` rebuilds outputs from raw files; `bench compare <run_a> <run_b>` compares runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_compare_arguments", "add_report_arguments", "compare", "report"]


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.runner import RESULTS_DIR

    parser.add_argument("run_id", help="run id (directory name under the results dir) or a run directory")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)


def report(args: argparse.Namespace) -> int:
    from bench.report import build_report
    from bench.results import run_dir

    try:
        directory = run_dir(args.run_id, args.results_dir)
    except FileNotFoundError as exc:
        print(f"bench report: {exc}", file=sys.stderr)
        return 2
    print(build_report(directory))
    return 0


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.runner import RESULTS_DIR

    parser.add_argument("run_a", help="baseline run")
    parser.add_argument("run_b", help="run compared with the baseline")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 when a headline metric is significantly worse than the baseline by more than PCT %%",
    )


def compare(args: argparse.Namespace) -> int:
    from bench.compare import compare_runs, print_comparison, print_host_speed
    from bench.results import run_dir

    try:
        a, b = run_dir(args.run_a, args.results_dir), run_dir(args.run_b, args.results_dir)
    except FileNotFoundError as exc:
        print(f"bench compare: {exc}", file=sys.stderr)
        return 2
    table = compare_runs(a, b)
    print_host_speed(a, b)
    regressions = print_comparison(table, a.name, b.name, fail_pct=args.fail_on_regression)
    return 1 if regressions else 0
