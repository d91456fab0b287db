"""`bench report <run_id>`: rebuild a run's tables and report.html from its raw files."""

from __future__ import annotations

import argparse

from bench.options import add_results_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="run id (directory name under the results dir) or a run directory")
    add_results_dir(parser)


def run(args: argparse.Namespace) -> int:
    from bench.errors import UsageError
    from bench.paths import run_dir
    from bench.report.build import build_report

    try:
        directory = run_dir(args.run_id, args.results_dir)
        path = build_report(directory)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(path)
    return 0
