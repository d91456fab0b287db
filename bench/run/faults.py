"""Fault injection for tests/faults: BENCH_FAULT=kill-target:<phase> or stop-target:<phase>."""

from __future__ import annotations

import os
import signal

from bench.load.processes import ExternalTarget, TargetProcess

__all__ = ["inject_fault"]


def inject_fault(phase: str, target: TargetProcess | ExternalTarget | None) -> None:
    """At `phase` of a cell, kill the target (SIGKILL) or make it hang (SIGSTOP), as $BENCH_FAULT asks."""
    fault = os.environ.get("BENCH_FAULT", "")
    if not fault or target is None or isinstance(target, ExternalTarget):
        return
    action, _, where = fault.partition(":")
    if where != phase:
        return
    if action == "kill-target":
        os.kill(target.pid, signal.SIGKILL)
        target.process.wait()
    elif action == "stop-target":
        os.kill(target.pid, signal.SIGSTOP)
