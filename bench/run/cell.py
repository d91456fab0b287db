"""One benchmark cell: start the target, warm up, measure, write raw files, stop (`run_cell`).

The runner starts each cell as its own process (`python -m bench.run._cell --spec … --out …`); guests run
blocks of cells in one process (bench.run._guest_batch). Kinds:

    pilot   native engine, closed model at each `capacity_levels` concurrency: which level saturates the
            target, and the capacity the open-model rates of the run are set from
    load    native: closed model at the pilot's level (capacity), open model at the resolved rates;
            python: bench.run.python_cell (wire bytes, locust ramp, open loop)
    floor   the loopback ping-pong, the CPU probe, and each native tool against a null server

Outputs in <out> (written atomically, never rewritten): cell.json (spec, windows, status), ops.json
(per-operation HdrHistograms per phase and window), target.stderr; python cells also locust_stats.csv and
measurements.jsonl.gz.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

from bench.rawfiles import write_atomic
from bench.run.plan import CellSpec

__all__ = ["run_cell"]


class _Cell(Protocol):
    windows: list[dict[str, Any]]

    def run(self) -> dict[str, Any]: ...
    def raw_files(self) -> dict[str, bytes]: ...
    def close(self) -> None: ...
    def _check_target(self) -> None: ...


class NativeCell:
    """A pilot or a native load cell: wrk / h2load / gload against one target, pinned, checked per window."""

    def __init__(self, spec: CellSpec, out: Path) -> None:
        from bench.load.scenarios import load_scenarios

        self.spec = spec
        self.out = out
        self.settings = spec.settings
        self.scenario = load_scenarios()[spec.scenario]
        self.windows: list[dict[str, Any]] = []
        self.ops: dict[str, Any] = {"closed": {}, "open": {}}
        self.target: Any = None

    def run(self) -> dict[str, Any]:
        from bench.load.native.engine import NativeEngine
        from bench.run.faults import inject_fault
        from bench.run.target import cell_target
        from bench.run.windows import measure_window

        spec, settings = self.spec, self.settings
        self.target = cell_target(spec, dataset=self.scenario.dataset, out=self.out)
        engine = NativeEngine(
            spec.protocol,
            self.target.address,
            self.scenario,
            cpu=spec.generators or None,
            seed=spec.seed,
            timeout_s=settings.request_timeout_s,
        )
        engine.preflight()  # a prepared request the target refuses fails the cell here, by name
        engine.warm_up(settings.native_warmup_s)
        fault = inject_fault("closed", self.target)
        levels = settings.capacity_levels if spec.kind == "pilot" else (spec.concurrency or 16,)
        window = settings.native_window_s

        def measure(phase: str, label: str, run: Any, **extra: Any) -> dict[str, Any]:
            measured = measure_window(
                run,
                phase=phase,
                label=label,
                target=self.target,
                target_cpu=spec.target_cpu,
                generator_cpu=spec.generators or None,
                steal_threshold_pct=100.0,  # the runner judges steal per cell, with its own threshold
                **extra,
            )
            record = measured.record
            self.windows.append(record)
            self.ops[phase][label] = measured.ops["ops"] if phase == "closed" else measured.ops
            self._check_target()
            if record["requests"] - record["failures"] <= 0:
                # Nothing answered: a hung or refusing target, not a measurement.
                why = f"; {record['counter_reason']}" if record.get("counter_reason") else ""
                raise RuntimeError(
                    f"no request completed successfully in window {phase} {label} ({record['tool']}, "
                    f"{record['failures']} failed){why}"
                )
            return record

        for level in levels:
            measure("closed", f"c{level}", lambda c=level: engine.closed(c, window), concurrency=level)
        for label, rate in spec.rates if spec.kind == "load" else ():
            measure("open", label, lambda r=rate: engine.open(r, window), target_call_rate=rate)
        return {"capacity": capacity(self.windows), **({"fault": fault} if fault else {})}

    def _check_target(self) -> None:
        from bench.run.target import check_alive

        check_alive(self.spec, self.target)

    def raw_files(self) -> dict[str, bytes]:
        return {"ops.json": json.dumps(self.ops, separators=(",", ":")).encode()}

    def close(self) -> None:
        if self.target is not None:
            self.target.stop()


def capacity(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The closed-model capacity of a cell's windows: the highest throughput of a server-bound window whose
    counters agree; or, when none qualifies, why ("generator-bound", "target not saturated")."""
    closed = [w for w in windows if w.get("phase") == "closed" and w.get("counters_ok", True) is not False]
    if closed and all(w.get("target_cpu_pct") is None for w in closed):
        best = max(closed, key=lambda w: w["ok_rps"])
        # A target the harness did not start: its CPU is not observable, so no window is known server-bound.
        return {"rps": best["ok_rps"], "concurrency": best.get("concurrency"),
                "status": "not measured: the target's CPU is not observable (external target)"}  # fmt: skip
    bound = [w for w in closed if w.get("server_bound")]
    if bound:
        best = max(bound, key=lambda w: w["ok_rps"])
        return {"rps": best["ok_rps"], "concurrency": best.get("concurrency"), "status": "server-bound"}
    if not closed:
        return {"rps": None, "concurrency": None, "status": "no closed-model window passed its counter check"}
    best = max(closed, key=lambda w: w["ok_rps"])
    reason = "generator-bound" if best.get("generator_limited") else "target not saturated"
    return {
        "rps": best["ok_rps"],
        "concurrency": best.get("concurrency"),
        "status": f"not measured: {reason}",
    }


def run_floor(spec: CellSpec) -> dict[str, Any]:
    """The loopback floor and CPU probe; then each native tool's floor against a null server."""
    from bench.load.floor import cpu_probe, measure_floor
    from bench.load.sysmetrics import Window

    with Window(None) as window:
        histogram = measure_floor(round_trips=spec.settings.floor_round_trips, target_cpu=spec.target_cpu)
        probes = {"target": cpu_probe(spec.target_cpu), "generator": cpu_probe(spec.generator_cpu)}
    assert window.result is not None
    result: dict[str, Any] = {
        "cpu_probe_us": probes,
        "floor_hdr": histogram.encode().decode(),
        "p50_us": histogram.get_value_at_percentile(50),
        "p99_us": histogram.get_value_at_percentile(99),
        # The ping-pong keeps the generator CPU busy by design: that is not a generator limiting a server.
        "windows": [
            {
                "phase": "floor",
                "label": "tcp",
                "started_at": window.result.started_at,
                "wall_s": window.result.wall_s,
                "steal_pct": window.result.steal_pct,
                "generator_cpu_pct": window.result.generator_cpu_pct,
                "generator_limited": False,
            }
        ],
    }
    if spec.engine == "" and spec.profile == "local":
        from bench.load.native.floor import measure_engine_floors

        result["engine_floors"] = measure_engine_floors(spec)
    return result


def run_cell(spec: CellSpec, out: Path) -> int:
    """Measure one cell into `out`; returns 0 when measured, 1 when the cell failed (reason recorded)."""
    out.mkdir(parents=True, exist_ok=True)
    if spec.generators:
        os.sched_setaffinity(0, set(spec.generators))
    started = time.time()
    result: dict[str, Any] = {"spec": spec.to_json(), "started_at": started, "pid": os.getpid()}
    cell: _Cell | None = None
    try:
        if spec.kind == "floor":
            result.update(run_floor(spec))
        else:
            if spec.engine == "native":
                cell = NativeCell(spec, out)
            else:
                from bench.run.python_cell import PythonCell  # the process was patched for gevent first

                cell = PythonCell(spec, out)
            result.update(cell.run())
            result["windows"] = cell.windows
        result["status"] = "ok"
    except Exception as exc:
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"
        if cell is not None:
            try:  # a tool that failed because the target died: the death is the reason to report
                cell._check_target()
            except Exception as died:
                if "target exited" in str(died):
                    result["reason"] = str(died)

        result["traceback"] = traceback.format_exc(limit=8)
        if cell is not None:
            result["windows"] = cell.windows
    finally:
        if cell is not None:
            cell.close()
            for name, data in cell.raw_files().items():
                write_atomic(out / name, data)
    windows = result.get("windows", [])
    result["ended_at"] = time.time()
    # The noisiest window decides whether the runner re-queues the cell: steal on any CPU (all CPUs together,
    # the target's, the generator's) and other processes' CPU on the pinned CPUs.
    steal_keys = ("steal_pct", "steal_target_cpu_pct", "steal_generator_cpu_pct")
    other_keys = ("other_target_cpu_pct", "other_generator_cpu_pct")
    result["max_steal_pct"] = max(
        (w[k] for w in windows for k in steal_keys if w.get(k) is not None), default=0.0
    )
    result["max_other_cpu_pct"] = max(
        (w[k] for w in windows for k in other_keys if w.get(k) is not None), default=0.0
    )
    limited = [str(w.get("label") or w.get("phase")) for w in windows if w.get("generator_limited")]
    result["generator_limited"] = bool(limited)
    result["generator_limited_windows"] = limited
    write_atomic(out / "cell.json", json.dumps(result, indent=1, default=str).encode())
    return 0 if result["status"] == "ok" else 1
