"""One benchmark cell: start the target, warm up, measure, write raw files, stop (`run_cell`).

The runner starts each cell as its own process (`python -m bench.run._cell --spec … --out …`).

The same program runs on the host and inside a guest (bench/vm), so the runner only sees "a place where cells
run". Load runs on gevent (locust's model); the target is a separate process pinned to its own CPU.
Outputs in <dir> (written atomically, never rewritten): cell.json (spec, windows, status), ops.json
(per-operation HdrHistograms per phase), locust_stats.csv, measurements.jsonl.gz, target.stderr.
"""

from __future__ import annotations

# locust (imported by the locustfile) monkey-patches for gevent, and the locustfile puts gRPC on gevent:
# both must happen before anything else opens a socket.
from bench.load import locustfile as lf  # isort: skip

import contextlib
import csv
import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment

from bench.clients import make_client
from bench.clients.measure import Measurement
from bench.load.floor import cpu_probe, measure_floor
from bench.load.openloop import Slot, run_open_loop
from bench.load.processes import TargetProcess, start_target
from bench.load.recorder import OpStats, Recorder
from bench.load.scenarios import load_scenarios
from bench.load.sysmetrics import Window, WindowResult, window_record
from bench.load.wiretap import Wiretap
from bench.load.workload import Workload
from bench.rawfiles import write_atomic
from bench.run.plan import CellSpec
from bench.thresholds import OPEN_LATE_DISPATCH_LIMIT
from targets.lifetime import child_env

__all__ = ["CellFailed", "LoadCell", "run_cell"]


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


def _window_record(
    phase: str, label: str, w: WindowResult, ops: dict[str, OpStats], *, external: bool = False, **extra: Any
) -> dict[str, Any]:
    requests = sum(s.requests for s in ops.values())
    failures = sum(s.failures for s in ops.values())
    record = window_record(
        wall_s=w.wall_s,
        steal_pct=w.steal_pct,
        target_cpu_s=w.target_cpu_s,
        generator_cpu_s=w.generator_cpu_s,
        started_at=w.started_at,
        requests=requests,
        failures=failures,
    )
    if external:
        # The harness did not start the target, so it has no pid whose CPU time it could read.
        for key in ("target_cpu_s", "target_cpu_pct", "target_cpu_us_per_request"):
            record[key] = None
    return {
        "phase": phase,
        "label": label,
        **record,
        "throughput_rps": requests / w.wall_s if w.wall_s > 0 else 0.0,
        "ok_rps": (requests - failures) / w.wall_s if w.wall_s > 0 else 0.0,
        **extra,
    }


class LoadCell:
    """Closed model (locust) over a ramp of users, then open model at fractions of the closed maximum."""

    def __init__(self, spec: CellSpec, out: Path) -> None:
        self.spec = spec
        self.out = out
        self.settings = spec.settings
        self.scenario = load_scenarios()[spec.scenario]
        self.raw = _Raw()
        self.windows: list[dict[str, Any]] = []
        self.ops: dict[str, Any] = {"wire": {}, "closed": {}, "open": {}}
        self.stats_rows: list[list[Any]] = []
        self.target: TargetProcess | None = None  # None for an external target (spec.address)
        self.address = spec.address  # host:port the clients use
        self.workers: list[subprocess.Popen[bytes]] = []
        self.recorder = Recorder()  # this process's locust users (the closed model without workers)

    def hook(self, m: Measurement) -> None:
        self.raw.add(m)

    # ---- phases -----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        spec = self.spec
        if not spec.address:
            self.target = start_target(
                spec.protocol,
                dataset=self.scenario.dataset,
                seed=spec.seed % 1000,
                cpu=spec.target_cpu,
                stderr_path=self.out / "target.stderr",
                impl=spec.impl,
            )
            self.address = self.target.address
        env = Environment(user_classes=[lf.USER_CLASSES[spec.client]], host=self.address)
        lf.use_context(
            env,
            lf.LoadContext(
                scenario=self.scenario, timeout_s=self.settings.request_timeout_s, seed=spec.seed, slot=0
            ),
        )
        self.recorder.listen(env)

        def tag_phase(context: dict[str, Any] | None = None, **_: Any) -> None:
            measurement = (context or {}).get("measurement")
            if measurement is not None:
                self.hook(measurement)  # every measurement of the locust users, tagged with the phase

        env.events.request.add_listener(tag_phase)
        self._wire_bytes()
        _inject_fault("closed", self.target)
        max_rps = self._closed(env)
        self._open(max_rps)
        return {"max_closed_rps": max_rps}

    @property
    def target_pid(self) -> int | None:
        """The target's pid, whose CPU time each window reads; None when the harness did not start it."""
        return self.target.pid if self.target is not None else None

    def _check_target(self) -> None:
        if self.target is None:
            return  # an external target: the calls themselves show whether it still answers
        if not self.target.alive():
            raise CellFailed(
                f"{self.spec.protocol} target exited with code {self.target.process.returncode}: "
                f"{self.target.stderr_tail(800).strip()[-400:]}"
            )

    def _wire_bytes(self) -> None:
        """Sequential calls of every operation through a counting relay: bytes as they cross the socket."""
        self.raw.phase = "wire"
        recorder = Recorder()

        def both(m: Measurement) -> None:
            self.hook(m)
            recorder.add(m)

        host, _, port = self.address.rpartition(":")
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

    def _closed(self, env: Environment) -> float:
        settings = self.settings
        self.recorder.reset()
        master = settings.locust_workers + settings.remote_workers > 0
        runner = self._start_master(env) if master else env.create_local_runner()
        generator_pids = (os.getpid(), *(w.pid for w in self.workers))
        max_rps = 0.0
        errors: Counter[str] = Counter()
        try:
            # Warm-up at the top of the ramp: JIT-free Python still warms caches, connections and the dataset.
            self.raw.phase = "warmup"
            self._set_users(runner, max(settings.closed_users))
            gevent.sleep(settings.warmup_s)
            self._check_target()
            for users in settings.closed_users:
                self.raw.phase = "closed-setup"
                self._set_users(runner, users)
                gevent.sleep(0.2)  # let the new users finish their first (setup) calls
                self._collect(runner, master, reset=True)
                env.stats.reset_all()
                self.raw.phase = f"closed-u{users}"
                with Window(self.target_pid, generator_pids) as window:
                    gevent.sleep(settings.level_s)
                    ops = self._collect(runner, master, reset=False)
                assert window.result is not None
                label = f"u{users}"
                self.ops["closed"][label] = Recorder.dump(ops)
                external = self.target is None
                record = _window_record("closed", label, window.result, ops, users=users, external=external)
                self.windows.append(record)
                self._stats_rows(env, label)
                max_rps = max(max_rps, record["ok_rps"])
                errors.update(e for stats in ops.values() for e in stats.errors.elements())
                self._check_target()
        finally:
            runner.quit()
            self._stop_workers()
        if max_rps <= 0:
            seen = ", ".join(f"{name} x{count}" for name, count in errors.most_common(3)) or "no calls at all"
            raise CellFailed(f"no request completed successfully in the closed model ({seen})")
        return max_rps

    def _open(self, max_rps: float) -> None:
        settings = self.settings
        self.raw.phase = "open-setup"

        def make(hook: Any) -> tuple[Any, Workload]:
            def both(m: Measurement) -> None:
                self.hook(m)
                hook(m)

            address = self.address
            client = make_client(self.spec.client, address, hook=both, timeout_s=settings.request_timeout_s)
            return client, Workload(client, self.scenario, seed=self.spec.seed, slot=7)

        slots = [Slot(make) for _ in range(settings.open_connections)]
        try:
            # Calls per step (setup calls included), so the step rate gives the intended call rate.
            calls = 0

            def count(m: Measurement) -> None:
                nonlocal calls
                calls += 1

            probe = slots[0]
            probe.client.meter.hook, saved = (lambda m: count(m)), probe.client.meter.hook  # type: ignore[attr-defined]
            for _ in range(30):
                with contextlib.suppress(Exception):  # a failed step counts its calls all the same
                    probe.workload.step()
            probe.client.meter.hook = saved  # type: ignore[attr-defined]
            calls_per_step = max(1.0, calls / 30)
            for fraction in settings.open_fractions:
                rate = fraction * max_rps / calls_per_step
                self.raw.phase = f"open-f{round(fraction * 100)}"
                with Window(self.target_pid, (os.getpid(),)) as window:
                    result = run_open_loop(slots, rate, settings.open_s)
                assert window.result is not None
                label = f"f{round(fraction * 100)}"
                self.ops["open"][label] = {
                    "corrected": Recorder.dump(result.corrected),
                    "uncorrected": Recorder.dump(result.uncorrected),
                    "target_step_rate": rate,
                    "target_call_rate": rate * calls_per_step,
                    "scheduled_steps": result.scheduled,
                    "late_starts": result.late_starts,
                }
                record = _window_record(
                    "open",
                    label,
                    window.result,
                    result.uncorrected,
                    external=self.target is None,
                    fraction=fraction,
                    target_call_rate=rate * calls_per_step,
                    late_starts=result.late_starts,
                    late_dispatches=result.late_dispatches,
                )
                # The scheduler spins between requests for sub-millisecond timing, so its CPU share is always
                # high; what shows a generator that cannot keep up is dispatching requests late.
                record["generator_limited"] = (
                    result.late_dispatches > OPEN_LATE_DISPATCH_LIMIT * result.scheduled
                )
                self.windows.append(record)
                self._check_target()
        finally:
            for slot in slots:
                slot.client.close()

    # ---- locust plumbing ----------------------------------------------------------------------------------
    def _set_users(self, runner: Any, users: int) -> None:
        runner.start(users, spawn_rate=100)
        deadline = time.monotonic() + 15
        while runner.user_count < users and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def _start_master(self, env: Environment) -> Any:
        """A locust master; `locust_workers` local worker processes plus `remote_workers` that connect to
        `master_bind:master_port` from other machines (they run the same locustfile with --worker)."""
        settings = self.settings
        local, remote = settings.locust_workers, settings.remote_workers
        port = settings.master_port or _free_port()
        runner = env.create_master_runner(master_bind_host=settings.master_bind, master_bind_port=port)
        self._replies: list[dict[str, Any]] = []
        runner.register_message(lf.DUMP_REPLY, lambda msg, **_: self._replies.append(msg.data))
        locustfile = Path(lf.__file__).resolve()
        for i in range(local):
            argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker"]
            argv += ["--master-host", "127.0.0.1", "--master-port", str(port)]
            argv += [
                "--scenario",
                self.spec.scenario,
                "--protocol",
                self.spec.client,
                "--loglevel",
                "WARNING",
            ]
            argv += ["--request-timeout", str(settings.request_timeout_s)]
            env_vars = child_env({**os.environ, "PYTHONUNBUFFERED": "1"})
            log = open(self.out / f"locust-worker-{i}.log", "ab")  # noqa: SIM115 - owned by the child
            self.workers.append(subprocess.Popen(argv, stdout=log, stderr=log, env=env_vars))
            log.close()
        expected = local + remote
        if remote:
            print(
                f"waiting for {remote} remote locust worker(s) on {settings.master_bind}:{port}", flush=True
            )
        deadline = time.monotonic() + (30 if not remote else 300)
        while runner.worker_count < expected:
            if time.monotonic() > deadline:
                raise CellFailed(f"only {runner.worker_count} of {expected} locust workers connected in time")
            gevent.sleep(0.1)
        return runner

    def _collect(self, runner: Any, master: bool, *, reset: bool) -> dict[str, OpStats]:
        """This window's histograms: from this process, or from every locust worker (custom messages)."""
        if not master:
            return self.recorder.reset()
        self._replies = []
        runner.send_message(lf.DUMP_REQUEST, "reset" if reset else "dump")
        if reset:
            return {}
        deadline = time.monotonic() + 10
        expected = len(self.workers) + self.settings.remote_workers
        while len(self._replies) < expected and time.monotonic() < deadline:
            gevent.sleep(0.02)
        return Recorder.merge([Recorder.load(reply["ops"]) for reply in self._replies])

    def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.workers = []

    def _stats_rows(self, env: Environment, label: str) -> None:
        for entry in [*env.stats.entries.values(), env.stats.total]:
            self.stats_rows.append(
                [
                    label,
                    entry.method or "",
                    entry.name,
                    entry.num_requests,
                    entry.num_failures,
                    entry.get_response_time_percentile(0.5),
                    entry.get_response_time_percentile(0.99),
                    round(entry.avg_response_time, 3),
                    round(entry.min_response_time or 0, 3),
                    round(entry.max_response_time, 3),
                    round(entry.total_rps, 3),
                ]
            )

    def stats_csv(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "level",
                "type",
                "name",
                "requests",
                "failures",
                "p50_ms",
                "p99_ms",
                "avg_ms",
                "min_ms",
                "max_ms",
                "rps",
            ]
        )
        writer.writerows(self.stats_rows)
        return buffer.getvalue().encode()

    def close(self) -> None:
        self._stop_workers()
        if self.target is not None:
            self.target.stop()


def _inject_fault(phase: str, target: TargetProcess | None) -> None:
    """Fault-suite hook: BENCH_FAULT=kill-target:<phase> or stop-target:<phase> (SIGSTOP = a hang)."""
    fault = os.environ.get("BENCH_FAULT", "")
    if not fault or target is None:
        return
    action, _, where = fault.partition(":")
    if where != phase:
        return
    if action == "kill-target":
        os.kill(target.pid, signal.SIGKILL)
        target.process.wait()
    elif action == "stop-target":
        os.kill(target.pid, signal.SIGSTOP)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_floor(spec: CellSpec) -> dict[str, Any]:
    with Window(None) as window:
        histogram = measure_floor(round_trips=spec.settings.floor_round_trips, target_cpu=spec.target_cpu)
        probes = {"target": cpu_probe(spec.target_cpu), "generator": cpu_probe(spec.generator_cpu)}
    assert window.result is not None
    return {
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


def run_cell(spec: CellSpec, out: Path) -> int:
    """Measure one cell into `out`; returns 0 when measured, 1 when the cell failed (reason recorded)."""
    out.mkdir(parents=True, exist_ok=True)
    if spec.generator_cpu is not None:
        os.sched_setaffinity(0, {spec.generator_cpu})
    started = time.time()
    result: dict[str, Any] = {"spec": spec.to_json(), "started_at": started, "pid": os.getpid()}
    cell: LoadCell | None = None
    try:
        if spec.kind == "floor":
            result.update(run_floor(spec))
        else:
            cell = LoadCell(spec, out)
            result.update(cell.run())
            result["windows"] = cell.windows
        result["status"] = "ok"
    except Exception as exc:
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
        if cell is not None:
            result["windows"] = cell.windows
    finally:
        if cell is not None:
            cell.close()
            write_atomic(out / "ops.json", json.dumps(cell.ops, separators=(",", ":")).encode())
            write_atomic(out / "locust_stats.csv", cell.stats_csv())
            write_atomic(out / "measurements.jsonl.gz", cell.raw.gzipped())
    windows = result.get("windows", [])
    result["ended_at"] = time.time()
    result["max_steal_pct"] = max((w["steal_pct"] for w in windows), default=0.0)
    result["generator_limited"] = any(w.get("generator_limited") for w in windows)
    write_atomic(out / "cell.json", json.dumps(result, indent=1, default=str).encode())
    return 0 if result["status"] == "ok" else 1
