"""The python engine: locust users for the closed model, the gevent open loop for the open model.

It measures what a Python caller experiences (client library + protocol + server), stream by stream: time
to the first item, every operation of every scenario, the measurement hook's full records. It cannot tell a
server's capacity when the Python client saturates first; windows say so (generator CPU, late dispatches).

Import this module first in a process (it imports the locustfile, which patches the process for gevent).
"""

from __future__ import annotations

# locust (imported by the locustfile) monkey-patches for gevent, and the locustfile puts gRPC on gevent:
# both must happen before anything else opens a socket.
from bench.load import locustfile as lf  # isort: skip

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment

from bench.clients import make_client
from bench.clients.measure import Measurement
from bench.load.engine import EngineRun
from bench.load.openloop import Slot, run_open_loop
from bench.load.recorder import OpStats, Recorder
from bench.load.scenarios import Scenario
from bench.load.workload import Workload
from targets.lifetime import child_env

__all__ = ["PythonEngine", "PythonEngineError"]


class PythonEngineError(RuntimeError):
    """The engine could not run (workers did not connect, ...); the cell records the message."""


class PythonEngine:
    """Locust users of one client kind against one target (closed model) and an open-loop pool of clients.

    `hook` receives every measurement (the cell tags it with the window and keeps it in the raw files).
    """

    name = "python"

    def __init__(
        self,
        client: str,
        address: str,
        scenario: Scenario,
        *,
        seed: int,
        timeout_s: float,
        hook: Callable[[Measurement], None],
        log_dir: Path,
        locust_workers: int = 0,
        remote_workers: int = 0,
        master_bind: str = "127.0.0.1",
        master_port: int = 0,
        open_connections: int = 32,
    ) -> None:
        self.client = client
        self.address = address
        self.scenario = scenario
        self.seed = seed
        self.timeout_s = timeout_s
        self.hook = hook
        self.log_dir = log_dir
        self.open_connections = open_connections
        self.env = Environment(user_classes=[lf.USER_CLASSES[client]], host=address)
        lf.use_context(self.env, lf.LoadContext(scenario=scenario, timeout_s=timeout_s, seed=seed, slot=0))
        self.recorder = Recorder()  # this process's locust users (the closed model without workers)
        self.recorder.listen(self.env)

        def raw(context: dict[str, Any] | None = None, **_: Any) -> None:
            measurement = (context or {}).get("measurement")
            if measurement is not None:
                hook(measurement)

        self.env.events.request.add_listener(raw)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.remote_workers = remote_workers
        self.master = locust_workers + remote_workers > 0
        self.runner = (
            self._start_master(locust_workers, remote_workers, master_bind, master_port)
            if self.master
            else self.env.create_local_runner()
        )
        self.generator_pids: tuple[int, ...] = (os.getpid(), *(w.pid for w in self.workers))
        self._slots: list[Slot] | None = None
        self.stats_rows: list[list[Any]] = []

    # ---- closed model ---------------------------------------------------------------------------------
    def warm_up(self, seconds: float, users: int = 16) -> None:
        self._set_users(users)
        gevent.sleep(seconds)

    def ramp(self, concurrency: int) -> None:
        """Bring the user count to `concurrency` before a closed window (outside it: the new users' first
        calls set up their own records)."""
        self._set_users(concurrency)
        gevent.sleep(0.2)

    def begin_window(self) -> None:
        """Forget what was recorded so far: called right after the server's counters are read."""
        self._collect(reset=True)
        self.env.stats.reset_all()

    def closed(self, concurrency: int, seconds: float) -> EngineRun:
        if self.runner.user_count != concurrency:
            self.ramp(concurrency)
            self.begin_window()
        started = time.perf_counter()
        gevent.sleep(seconds)
        ops = self._collect(reset=False)
        wall = time.perf_counter() - started
        self._stats_rows(f"u{concurrency}")
        requests = sum(s.requests for s in ops.values())
        return EngineRun(
            engine="python",
            tool="locust",
            version=_locust_version(),
            command=None,
            model="closed",
            wall_s=wall,
            generator_cpu_s=None,  # the cell's own process (and locust workers): measured by pid
            requests=requests,
            failures=sum(s.failures for s in ops.values()),
            ops=ops,
            sent={op: s.requests for op, s in ops.items()},
            # The server counts a call when it starts, the users when it ends; calls started while the
            # counters were read and the window's recording began may also fall between the two.
            in_flight=2 * concurrency + 2,
            continuous=True,
        )

    def stop_users(self) -> None:
        self.runner.stop()

    # ---- open model -----------------------------------------------------------------------------------
    def _open_slots(self) -> list[Slot]:
        if self._slots is None:

            def make(slot_hook: Callable[[Measurement], None]) -> tuple[Any, Workload]:
                def both(m: Measurement) -> None:
                    self.hook(m)
                    slot_hook(m)

                client = make_client(self.client, self.address, hook=both, timeout_s=self.timeout_s)
                return client, Workload(client, self.scenario, seed=self.seed, slot=7)

            self._slots = [Slot(make) for _ in range(self.open_connections)]
        return self._slots

    def calls_per_step(self) -> float:
        """Calls one workload step makes on average (setup calls included): step rate -> call rate."""
        probe = self._open_slots()[0]
        calls = 0

        def count(m: Measurement) -> None:
            nonlocal calls
            calls += 1

        meter = probe.client.meter  # type: ignore[attr-defined]
        meter.hook, saved = count, meter.hook
        try:
            for _ in range(30):
                try:
                    probe.workload.step()
                except Exception:
                    continue
        finally:
            meter.hook = saved
        return max(1.0, calls / 30)

    def open(self, rate: float, seconds: float) -> EngineRun:
        """`rate` workload steps per second (the cell converts a call rate with `calls_per_step`)."""
        result = run_open_loop(self._open_slots(), rate, seconds)
        return EngineRun(
            engine="python",
            tool="openloop",
            version=_locust_version(),
            command=None,
            model="open",
            wall_s=result.wall_s,
            generator_cpu_s=None,
            requests=sum(s.requests for s in result.uncorrected.values()),
            failures=sum(s.failures for s in result.uncorrected.values()),
            ops=result.uncorrected,
            sent=result.calls,
            in_flight=self.open_connections,
            corrected=result.corrected,
            lateness=result.lateness,
            offered_rate=rate,
            scheduled=result.scheduled,
            late_dispatches=result.late_dispatches,
        )

    # ---- locust plumbing ------------------------------------------------------------------------------
    def _set_users(self, users: int) -> None:
        self.runner.start(users, spawn_rate=100)
        deadline = time.monotonic() + 15
        while self.runner.user_count < users and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def _start_master(self, local: int, remote: int, bind: str, port: int) -> Any:
        """A locust master; `local` worker processes plus `remote` workers that connect to `bind:port`
        from other machines (they run the same locustfile with --worker)."""
        port = port or _free_port()
        runner = self.env.create_master_runner(master_bind_host=bind, master_bind_port=port)
        self._replies: list[dict[str, Any]] = []
        runner.register_message(lf.DUMP_REPLY, lambda msg, **_: self._replies.append(msg.data))
        locustfile = Path(lf.__file__).resolve()
        for i in range(local):
            argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker"]
            argv += ["--master-host", "127.0.0.1", "--master-port", str(port)]
            argv += ["--scenario", self.scenario.name, "--protocol", self.client, "--loglevel", "WARNING"]
            argv += ["--request-timeout", str(self.timeout_s)]
            env_vars = child_env({**os.environ, "PYTHONUNBUFFERED": "1"})
            log = open(self.log_dir / f"locust-worker-{i}.log", "ab")  # noqa: SIM115 - owned by the child
            self.workers.append(subprocess.Popen(argv, stdout=log, stderr=log, env=env_vars))
            log.close()
        expected = local + remote
        if remote:
            print(f"waiting for {remote} remote locust worker(s) on {bind}:{port}", flush=True)
        deadline = time.monotonic() + (30 if not remote else 300)
        while runner.worker_count < expected:
            if time.monotonic() > deadline:
                raise PythonEngineError(
                    f"only {runner.worker_count} of {expected} locust workers connected in time"
                )
            gevent.sleep(0.1)
        return runner

    def _collect(self, *, reset: bool) -> dict[str, OpStats]:
        """This window's histograms: from this process, or from every locust worker (custom messages)."""
        if not self.master:
            return self.recorder.reset()
        self._replies = []
        self.runner.send_message(lf.DUMP_REQUEST, "reset" if reset else "dump")
        if reset:
            return {}
        deadline = time.monotonic() + 10
        expected = len(self.workers) + self.remote_workers
        while len(self._replies) < expected and time.monotonic() < deadline:
            gevent.sleep(0.02)
        return Recorder.merge([Recorder.load(reply["ops"]) for reply in self._replies])

    def _stats_rows(self, label: str) -> None:
        for entry in [*self.env.stats.entries.values(), self.env.stats.total]:
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

    def close(self) -> None:
        self.runner.quit()
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
        for slot in self._slots or []:
            slot.client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _locust_version() -> str:
    import locust

    return f"locust {locust.__version__}"
