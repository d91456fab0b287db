"""`bench run` entry point (the runner lives in bench.runner)."""

from __future__ import annotations

import argparse
import signal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.runner import add_arguments as runner_arguments

    runner_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bench.runner import run as run_matrix

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: finished cells stay, the run can resume

    signal.signal(signal.SIGTERM, terminate)
    return run_matrix(args)
