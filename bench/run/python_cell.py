"""A python-engine cell: one client kind against its target - wire bytes, closed-model ramp, open model.

Import this module first in a cell process (bench.load.python_engine patches the process for gevent).
"""

from __future__ import annotations

from bench.load.python_engine import PythonEngine  # isort: skip  (gevent patching first)

import contextlib
import csv
import gzip
import io
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from bench.clients import make_client
from bench.clients.measure import Measurement
from bench.load.recorder import Recorder
from bench.load.scenarios import load_scenarios
from bench.load.wiretap import Wiretap
from bench.load.workload import Workload
from bench.run.faults import inject_fault
from bench.run.plan import CellSpec
from bench.run.target import cell_target, check_alive
from bench.run.windows import measure_window

__all__ = ["CellFailed", "PythonCell"]


class CellFailed(RuntimeError):
    """The cell could not be measured (target died, nothing succeeded, …); the reason goes in cell.json."""


class _Raw:
    """Every client measurement of the cell, tagged with its phase (written once, gzipped, at the end)."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.records: list[dict[str, Any]] = []

    def add(self, m: Measurement) -> None:
        record = m.record()
        record["phase"] = self.phase
        self.records.append(record)

    def gzipped(self) -> bytes:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
            for record in self.records:
                f.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        return buffer.getvalue()


class PythonCell:
    """Wire bytes through a counting relay, a closed-model ramp of locust users, then open-model windows at
    fractions of the closed maximum (rates in workload steps, converted from the scenario's calls)."""

    def __init__(self, spec: CellSpec, out: Path) -> None:
        self.spec = spec
        self.out = out
        self.settings = spec.settings
        self.scenario = load_scenarios()[spec.scenario]
        self.raw = _Raw()
        self.windows: list[dict[str, Any]] = []
        self.ops: dict[str, Any] = {"wire": {}, "closed": {}, "open": {}}
        self.target: Any = None  # bench.run.target.cell_target: a process, an external target, a split one
        self.hops: dict[str, Any] = {}
        self.engine: PythonEngine | None = None

    def run(self) -> dict[str, Any]:
        spec = self.spec
        self.target = cell_target(spec, dataset=self.scenario.dataset, out=self.out)
        settings = self.settings
        self.engine = PythonEngine(
            spec.client,
            self.target.address,
            self.scenario,
            seed=spec.seed,
            timeout_s=settings.request_timeout_s,
            hook=self.raw.add,
            log_dir=self.out,
            # One locust worker per generator CPU when there are several (`--generator-cpus`).
            locust_workers=settings.locust_workers
            or (len(spec.generators) if len(spec.generators) > 1 else 0),
            remote_workers=settings.remote_workers,
            master_bind=settings.master_bind,
            master_port=settings.master_port,
            open_connections=settings.open_connections,
        )
        self._wire_bytes()
        if spec.backend:
            self._hops()
        fault = inject_fault("closed", self.target)
        max_rps = self._closed()
        self._open(max_rps)
        extra = {"hops": self.hops} if spec.backend else {}
        return {"max_closed_rps": max_rps, **extra, **({"fault": fault} if fault else {})}

    def _check_target(self) -> None:
        try:
            check_alive(self.spec, self.target)
        except RuntimeError as exc:
            raise CellFailed(str(exc)) from None

    def _wire_bytes(self) -> None:
        """Sequential calls of every operation through a counting relay: bytes as they cross the socket."""
        assert self.target is not None
        self.raw.phase = "wire"
        recorder = Recorder()

        def both(m: Measurement) -> None:
            self.raw.add(m)
            recorder.add(m)

        host, _, port = self.target.address.rpartition(":")
        with Wiretap((host.strip("[]"), int(port))) as tap:
            client = make_client(
                self.spec.client,
                tap.address,
                hook=both,
                byte_counter=tap.counts,
                timeout_s=self.settings.request_timeout_s,
            )
            workload = Workload(client, self.scenario, seed=self.spec.seed, slot=8)
            try:
                # A first sweep, not counted: it carries the connection's one-time bytes (HTTP/2 preface and
                # settings, the first HPACK header entries), which are not what a call costs in steady state.
                for sweep, calls in (("setup", 1), ("count", self.settings.wire_calls)):
                    recorder.enabled = sweep == "count"
                    for operation in self.scenario.operations:
                        for _ in range(calls):
                            with contextlib.suppress(Exception):  # recorded by the hook; the cell goes on
                                workload.run(operation)
            finally:
                client.close()
        self.ops["wire"] = Recorder.dump(recorder.reset())
        self._check_target()

    def _hops(self) -> None:
        """Split topology: the services' own timings of each operation (sequential calls, the gateway's
        Server-Timing: its own time, its waits on books and circulation, theirs), then the bytes on each
        inter-service hop per call, counted by relays on a second topology of their own (relays add latency,
        so they never sit on the measured one)."""
        from topology.launch import start_split

        spec, calls = self.spec, max(5, 3 * self.settings.wire_calls)
        self.raw.phase = "hops"
        timings: dict[str, list[dict[str, float]]] = {}
        elapsed: dict[str, list[float]] = {}

        def keep(m: Measurement) -> None:
            self.raw.add(m)
            if m.error is None and m.server_timing:
                timings.setdefault(m.operation, []).append(m.server_timing)
                elapsed.setdefault(m.operation, []).append(m.latency_s)

        def sweep(address: str, hook: Any, each: Any = None) -> None:
            client = make_client(spec.client, address, hook=hook, server_timing=True,
                                 timeout_s=self.settings.request_timeout_s)  # fmt: skip
            workload = Workload(client, self.scenario, seed=spec.seed, slot=8)
            try:
                for operation in self.scenario.operations:
                    before = each() if each else {}
                    for _ in range(calls):
                        with contextlib.suppress(Exception):
                            workload.run(operation)
                    if each:
                        after = each()
                        self.hops["bytes"][operation] = {
                            hop: [(after[hop][i] - before[hop][i]) / calls for i in (0, 1)] for hop in after
                        }
            finally:
                client.close()

        self.hops = {"timing": {}, "bytes": {}, "calls": calls}
        sweep(self.target.address, keep)
        for operation, entries in timings.items():
            keys = sorted({k for e in entries for k in e})
            self.hops["timing"][operation] = {
                "client": 1e6 * statistics.median(elapsed[operation]),
                **{k: 1e6 * statistics.median(e[k] for e in entries if k in e) for k in keys},
                "samples": len(entries),
            }
        tapped = start_split(spec.backend, dataset=self.scenario.dataset, seed=spec.seed % 1000,
                             cpu=spec.target_cpu, wiretap=True)  # fmt: skip
        try:
            sweep(tapped.address, self.raw.add, tapped.hop_bytes)
        finally:
            tapped.stop()
        self._check_target()

    def _window(self, phase: str, label: str, run: Any, **extra: Any) -> dict[str, Any]:
        assert self.target is not None and self.engine is not None
        measured = measure_window(
            run,
            begin=self.engine.begin_window if phase == "closed" else None,
            phase=phase,
            label=label,
            target=self.target,
            target_cpu=self.spec.target_cpu,
            generator_cpu=self.spec.generators or None,
            generator_pids=self.engine.generator_pids,
            steal_threshold_pct=100.0,  # the runner judges steal per cell, with its own threshold
            **extra,
        )
        self.windows.append(measured.record)
        if phase == "closed":
            self.ops["closed"][label] = measured.ops["ops"]
        else:
            self.ops["open"][label] = measured.ops
        self._check_target()
        return measured.record

    def _closed(self) -> float:
        assert self.engine is not None
        settings = self.settings
        max_rps = 0.0
        try:
            # Warm-up at the top of the ramp: JIT-free Python still warms caches, connections and the dataset.
            self.raw.phase = "warmup"
            self.engine.warm_up(settings.warmup_s, max(settings.closed_users))
            self._check_target()
            for users in settings.closed_users:
                self.raw.phase = "closed-setup"
                self.engine.ramp(users)  # before the window: its counters are read around the steady state
                self.raw.phase = f"closed-u{users}"
                record = self._window(
                    "closed",
                    f"u{users}",
                    lambda users=users: self.engine.closed(users, settings.level_s),
                    users=users,
                )
                max_rps = max(max_rps, record["ok_rps"])
        finally:
            self.engine.stop_users()
        if max_rps <= 0:
            failures = self.windows[-1].get("failures", 0) if self.windows else 0
            kinds: Counter[str] = Counter()
            for per_op in self.ops["closed"].values():
                for stats in per_op.values():
                    kinds.update(stats.get("errors", {}))
            seen = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()) or "no answer"
            raise CellFailed(
                f"no request completed successfully in the closed model ({failures} failures: {seen})"
            )
        return max_rps

    def _open(self, max_rps: float) -> None:
        assert self.engine is not None
        settings = self.settings
        if not settings.open_fractions:
            return
        self.raw.phase = "open-setup"
        calls_per_step = self.engine.calls_per_step()
        for fraction in settings.open_fractions:
            rate = fraction * max_rps / calls_per_step
            label = f"f{round(fraction * 100)}"
            self.raw.phase = f"open-{label}"
            self._window(
                "open",
                label,
                lambda rate=rate: self.engine.open(rate, settings.open_s),
                fraction=fraction,
                target_call_rate=rate * calls_per_step,
            )

    def stats_csv(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["level", "type", "name", "requests", "failures", "p50_ms", "p99_ms", "avg_ms", "min_ms",
             "max_ms", "rps"]
        )  # fmt: skip
        writer.writerows(self.engine.stats_rows if self.engine is not None else [])
        return buffer.getvalue().encode()

    def raw_files(self) -> dict[str, bytes]:
        return {
            "ops.json": json.dumps(self.ops, separators=(",", ":")).encode(),
            "locust_stats.csv": self.stats_csv(),
            "measurements.jsonl.gz": self.raw.gzipped(),
        }

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.target is not None:
            self.target.stop()
