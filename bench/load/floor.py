"""The loopback floor: a 64-byte TCP ping-pong between the generator CPU and the target CPU.

Every protocol's latency is reported as a multiple of this floor, measured in the same run with the same CPU
placement (cross-CPU wake-up dominates small-request latency on these machines; docs/ARCHITECTURE.md).
The echo side is `python -m bench.load._echo_server [--cpu N]` (prints `READY floor 127.0.0.1:<port>`).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time

from hdrh.histogram import HdrHistogram

from bench.load.recorder import new_histogram
from targets.lifetime import child_env

__all__ = ["cpu_probe", "measure_floor"]

PAYLOAD = b"x" * 64


def _probe_work() -> None:
    records = [{"id": i, "title": "Silent River Night", "year": 1900 + i % 120} for i in range(200)]
    json.loads(json.dumps({"books": records}))
    sum(i * i for i in range(3000))


def cpu_probe(cpu: int | None, *, rounds: int = 200) -> float:
    """µs of a fixed pure-Python workload on `cpu` (25th percentile of `rounds`): how fast this host runs
    Python right now. A low percentile, not the median: interruptions only ever add time.

    Hosts drift between runs (other tenants, frequency) without showing CPU steal; comparing this probe
    across runs tells whether a run-to-run difference may be the host rather than the code.
    """
    saved = os.sched_getaffinity(0)
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        for _ in range(5):
            _probe_work()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            _probe_work()
            times.append(time.perf_counter() - start)
    finally:
        os.sched_setaffinity(0, saved)
    return statistics.quantiles(times, n=4)[0] * 1e6


def measure_floor(*, round_trips: int, target_cpu: int | None, warmup: int = 200) -> HdrHistogram:
    """Round-trip times (µs) of `round_trips` 64-byte ping-pongs against an echo process on `target_cpu`."""
    argv = [sys.executable, "-m", "bench.load._echo_server"] + (
        [] if target_cpu is None else ["--cpu", str(target_cpu)]
    )
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if len(line) != 3 or line[0] != "READY":
            raise RuntimeError(f"floor echo server did not start: {line!r}")
        host, port = line[2].rsplit(":", 1)
        histogram = new_histogram()
        with socket.create_connection((host, int(port))) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(warmup + round_trips):
                start = time.perf_counter()
                sock.sendall(PAYLOAD)
                received = 0
                while received < len(PAYLOAD):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError("floor echo server closed the connection")
                    received += len(chunk)
                if i >= warmup:
                    histogram.record_value(max(1, round((time.perf_counter() - start) * 1e6)))
        return histogram
    finally:
        server.terminate()
        server.wait(5)
