"""Fault injection for tests/faults and demonstrations, asked for with $BENCH_FAULT=<action>:<phase>:

kill-target:<phase>   SIGKILL the target (a split topology: its gateway)
stop-target:<phase>   SIGSTOP the target: it hangs (calls time out)
kill-books:<phase>    split topology: SIGKILL the books service, restart it on its port
                      after BENCH_FAULT_OUTAGE_S (default 1 s); the cell records when, and what failed
kill-circulation:<phase>  the same for the circulation service
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

__all__ = ["inject_fault"]


def inject_fault(phase: str, target: Any) -> dict[str, Any] | None:
    """At `phase` of a cell, do what $BENCH_FAULT asks to `target`; returns the fault's record (or None)."""
    fault = os.environ.get("BENCH_FAULT", "")
    action, _, where = fault.partition(":")
    if not fault or where != phase or target is None or not target.cpu_pids:
        return None
    if action in ("kill-target", "stop-target"):
        process = getattr(target, "gateway", target)  # a split topology's public face is its gateway
        os.kill(process.pid, signal.SIGKILL if action == "kill-target" else signal.SIGSTOP)
        if action == "kill-target":
            process.process.wait()
        return {"action": action, "at": time.time()}
    role = action.removeprefix("kill-")
    if role not in ("books", "circulation") or not hasattr(target, "restart"):
        raise ValueError(f"BENCH_FAULT={fault!r}: unknown fault (or not a split topology)")
    record: dict[str, Any] = {"action": action, "process": role}
    process = getattr(target, role)
    target.outage = role  # a planned outage: the cell's liveness checks wait for the restart
    os.kill(process.pid, signal.SIGKILL)
    process.process.wait()
    record["killed_at"] = time.time()
    outage_s = float(os.environ.get("BENCH_FAULT_OUTAGE_S", "1"))

    def restart() -> None:
        time.sleep(outage_s)
        started = time.time()
        try:
            target.restart(role)  # same port: the gateway reconnects by itself
            record.update(restarted_at=started, ready_at=time.time())
        finally:
            target.outage = None

    threading.Thread(target=restart, name=f"restart-{role}", daemon=True).start()
    return record
