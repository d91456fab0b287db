"""One open-model window of the python engine against a real target, in its own (gevent) process.

    python -m tests.load._open_probe '{"protocol": "rest", "scenario": "write-heavy", "rate": 200, ...}'

Prints one JSON line: the window's record (bench.run.windows.measure_window) and, per operation, the
corrected / uncorrected sample counts and p50/p99, the calls the server saw per operation, and what the
disturbance did. Disturbances: "stall" (the target is stopped with SIGSTOP for `stall_s` mid-window),
"block" (the client blocks its own event loop for `block_s` every `block_every` calls).
"""

from __future__ import annotations

# The python engine patches this process for gevent first (as in a cell).
from bench.load.python_engine import PythonEngine  # isort: skip

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent

from bench.clients.measure import Measurement
from bench.load.processes import start_target
from bench.load.recorder import OpStats
from bench.load.scenarios import load_scenarios
from bench.run.windows import measure_window


def _summary(ops: dict[str, OpStats]) -> dict[str, Any]:
    return {
        op: {"n": s.requests, "p50_us": s.latency.get_value_at_percentile(50),
             "p99_us": s.latency.get_value_at_percentile(99)}
        for op, s in ops.items()
    }  # fmt: skip


def main(spec: dict[str, Any]) -> None:
    target = start_target(
        spec["protocol"], metrics=True, inject_delay_us=spec.get("delay_us", 0.0), cpu=spec.get("target_cpu")
    )
    calls = {"n": 0}

    def hook(m: Measurement) -> None:
        calls["n"] += 1
        if spec.get("block_s") and calls["n"] % spec["block_every"] == 0:
            end = time.perf_counter() + spec["block_s"]
            while time.perf_counter() < end:  # a client that hogs the event loop (CPU work, no yield)
                pass

    try:
        engine = PythonEngine(
            spec["client"], target.address, load_scenarios()[spec["scenario"]], seed=1, timeout_s=10.0,
            hook=hook, log_dir=Path(tempfile.mkdtemp()), open_connections=spec.get("connections", 8),
        )  # fmt: skip
        engine.open(spec["rate"], 0.5)  # warm-up: connections open, records exist
        captured: dict[str, Any] = {}

        def run() -> Any:
            if spec.get("stall_s"):

                def stall() -> None:
                    os.kill(target.pid, signal.SIGSTOP)
                    time.sleep(spec["stall_s"])  # real sleep: nothing else must run on the stall's behalf
                    os.kill(target.pid, signal.SIGCONT)

                gevent.spawn_later(spec["duration_s"] / 3, stall)
            result = engine.open(spec["rate"], spec["duration_s"])
            captured["run"] = result
            return result

        measured = measure_window(
            run, phase="open", label="probe", target=target, target_cpu=None, generator_cpu=None,
            generator_pids=engine.generator_pids, steal_threshold_pct=100.0, target_call_rate=spec["rate"],
        )  # fmt: skip
        result = captured["run"]
        print(json.dumps({
            "record": {k: v for k, v in measured.record.items() if k != "command"},
            "corrected": _summary(result.corrected),
            "uncorrected": _summary(result.ops),
            "sent": result.sent,
            "lateness_p99_us": result.lateness.get_value_at_percentile(99) if result.lateness else None,
        }), flush=True)  # fmt: skip
        engine.close()
    finally:
        target.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
