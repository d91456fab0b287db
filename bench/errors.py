"""The exception tree of `bench`; `bench.cli` turns each into one message and an exit code.

    BenchError                 exit 1: something failed; the message says what, where and what to do
    ├── UsageError             exit 2: a bad option or input (names the option or file and the allowed values)
    ├── MissingTool            exit 2: a program the command needs is not installed (says how to install it)
    ├── RunDirectoryError      exit 1: a results directory cannot be created, read or locked
    └── bench.vm.errors.VmError  exit 2: the virtualization layer (its own branch, bench/vm/errors.py)

Library code raises these; only `bench.cli` prints them and picks the exit code.
"""

from __future__ import annotations

__all__ = ["BenchError", "MissingTool", "RunDirectoryError", "UsageError"]


class BenchError(Exception):
    """Base of every error the `bench` command reports as a message instead of a traceback."""

    exit_code = 1


class UsageError(BenchError):
    """An option or input file is invalid."""

    exit_code = 2


class MissingTool(BenchError):
    """An external program (wrk, h2load, taskset, ...) is not installed."""

    exit_code = 2


class RunDirectoryError(BenchError):
    """A run directory cannot be created, read or locked (missing, not a run, held by another runner)."""
