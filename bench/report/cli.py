"""`bench report <run_id>`: rebuild a run's tables and report.html from its raw files."""

from __future__ import annotations

import argparse

from bench.options import add_results_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="run id (directory name under the results dir) or a run directory")
    add_results_dir(parser)
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="also write <run>/summary.md (summary tables and claim verdicts, for quoting) and print it",
    )


def run(args: argparse.Namespace) -> int:
    from bench.errors import UsageError
    from bench.paths import run_dir
    from bench.report.build import build_report

    try:
        directory = run_dir(args.run_id, args.results_dir)
        path = build_report(directory)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    if args.markdown:
        from bench.analysis.tidy import load
        from bench.rawfiles import write_atomic
        from bench.report.data import load_run
        from bench.report.markdown import SUMMARY_NAME, markdown_summary

        text = markdown_summary(load_run(directory, load(directory)))
        write_atomic(directory / SUMMARY_NAME, text.encode())
        print(text, end="")
        print(f"\n<!-- written to {directory / SUMMARY_NAME}; report: {path} -->")
        return 0
    print(path)
    return 0
