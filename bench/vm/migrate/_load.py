"""Runs inside a migratable guest: serves one target, offers load to it, one line per event on a virtio port.

Started by the guest's init as `python -m bench.vm.migrate._load` in a chroot of the guest image; the
parameters come from the kernel command line (`bench_load=…` tokens, written by `repeat.py`). Every line
goes to the virtio-serial port named `LOAD_PORT`, which the host tails on each side of the migration and
stamps with its own clock. Lines (times in microseconds of the guest's CLOCK_MONOTONIC):

    BENCH-LOAD-START level=<level> protocol=<protocol> t=<us>
    R <seq> <t_us> <latency_us>            a request that succeeded, t = when it ended
    E <seq> <t_us> <latency_us> <error>    a request that failed
    H <seq> <t_us>                         heartbeat, whenever HEARTBEAT_S passed without a line

`seq` counts every line, so the host can tell a lost line from a quiet guest. The guest's clock stops while
the guest is paused (the switchover) and catches up in jumps afterwards, so times taken inside cannot
measure the pause; the host sees it as a gap between lines.

`python -m bench.vm.migrate._load --probe <protocol>` runs on the host instead: it imports what the guest
will import and prints the module files as JSON, which is how the guest image knows what to hold.
`--dirty <MiB/s>` is the memory writer of the `dirty` level, a child of the load process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

__all__ = ["HEARTBEAT_S", "IDLE_INTERVAL_S", "LEVELS", "LOAD_PORT", "PROTOCOL_IMPORTS", "main"]

LOAD_PORT = "org.library-bench.load"
LEVELS = ("idle", "busy", "dirty")
HEARTBEAT_S = 0.005  # host-side resolution of the gap seen from outside
IDLE_INTERVAL_S = 0.1  # idle: one probe request every 100 ms (the service is there but barely used)
# dirty: the busy load plus a writer that dirties this much guest memory per second, cycling through a
# buffer of DIRTY_BUFFER_MIB (one byte per 4 KiB page is enough: migration copies whole pages).
DEFAULT_DIRTY_MIB_S = 64
DIRTY_BUFFER_MIB = 256
DIRTY_TICK_S = 0.01
BOOK_ID = 1  # every dataset has book 1

# Modules the guest imports for each protocol: the target's server, the client of the load, and modules
# the servers load only once they run (uvicorn's event loop and parser). The image holds every top-level
# package these pull in, so lazy imports inside those packages are covered too.
PROTOCOL_IMPORTS = {
    "grpc": ["targets.cli", "targets.grpc.server", "bench.clients.grpc_client", "grpc.aio"],
    "rest": ["targets.cli", "targets.rest.server", "bench.clients.rest_client", "uvloop", "httptools"],
    "soap": ["targets.cli", "targets.soap.server", "bench.clients.soap_client"],
}
CLIENT_KIND = {"grpc": "grpc", "rest": "rest-lean", "soap": "soap-lean"}


def _probe(protocol: str) -> int:
    import importlib

    for name in PROTOCOL_IMPORTS[protocol]:
        importlib.import_module(name)
    modules = list(sys.modules.values())
    files = sorted({str(module.__file__) for module in modules if getattr(module, "__file__", None)})
    print(json.dumps({"executable": sys.executable, "modules": files}))
    return 0


def _parameters(cmdline: str) -> dict[str, str]:
    words = dict(word.partition("=")[::2] for word in cmdline.split() if word.startswith("bench_"))
    level = words.get("bench_load", "idle")
    protocol = words.get("bench_protocol", "grpc")
    if level not in LEVELS or protocol not in PROTOCOL_IMPORTS:
        raise SystemExit(f"bench load: bad parameters on the kernel command line: {words}")
    return {
        "level": level,
        "protocol": protocol,
        "target_cpu": words.get("bench_target_cpu", "0"),
        "generator_cpu": words.get("bench_generator_cpu", "0"),
        "dirty_mib_s": words.get("bench_dirty_mib_s", str(DEFAULT_DIRTY_MIB_S)),
    }


def _dirty(rate_mib_s: float) -> int:
    """Dirty `rate_mib_s` MiB of guest memory per second, for ever: one byte per page, page after page."""
    page = 4096
    buffer = bytearray(DIRTY_BUFFER_MIB << 20)
    pages = len(buffer) // page
    per_tick = max(1, round(rate_mib_s * (1 << 20) / page * DIRTY_TICK_S))
    index, value = 0, 0
    next_tick = time.monotonic()
    while True:
        value = value % 255 + 1  # a new value on every pass, so every write changes the page
        for _ in range(per_tick):
            buffer[index * page] = value
            index = (index + 1) % pages
        next_tick += DIRTY_TICK_S
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()  # behind (the guest was slow or paused): do not catch up


def _open_port(name: str) -> IO[str]:
    """The virtio-serial port with this name (/sys tells which /dev/vportNpM it is; there is no udev)."""
    for entry in sorted(Path("/sys/class/virtio-ports").glob("*")):
        try:
            if (entry / "name").read_text().strip() == name:
                return open(f"/dev/{entry.name}", "w", buffering=1)  # line-buffered: one write per line
        except OSError:
            continue
    raise SystemExit(f"bench load: no virtio-serial port named {name!r} in /sys/class/virtio-ports")


def _start_target(protocol: str, cpu: str) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-m", "targets", "serve", protocol, "--port", "0", "--dataset", "tiny"]
    argv += ["--cpu", cpu]
    target = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert target.stdout is not None
    line = target.stdout.readline()  # "READY <protocol> 127.0.0.1:<port>"
    if not line.startswith("READY "):
        raise SystemExit(f"bench load: the {protocol} target did not start (printed {line!r})")
    return target, int(line.rsplit(":", 1)[1])


def _now_us() -> int:
    return time.monotonic_ns() // 1000


class _Lines:
    """The port, shared by the load (main thread) and the heartbeat thread: one numbered line per write."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.seq = 0
        self.last_write = time.monotonic()
        self.lock = threading.Lock()

    def emit(self, kind: str, *fields: object) -> None:
        with self.lock:
            self.seq += 1
            self.out.write(" ".join([kind, str(self.seq), *map(str, fields)]) + "\n")
            self.last_write = time.monotonic()

    def heartbeat(self) -> None:
        """A line whenever HEARTBEAT_S passed without one, also while a request is in flight: the host
        then sees the pause itself, not the pause plus the rest of a slow request."""
        while True:
            quiet = time.monotonic() - self.last_write
            if quiet >= HEARTBEAT_S:
                self.emit("H", _now_us())
            else:
                time.sleep(HEARTBEAT_S - quiet)


def run(params: dict[str, str]) -> int:
    from bench.clients import make_client
    from bench.clients.measure import Measurement

    os.sched_setaffinity(0, {int(params["generator_cpu"])})
    out = _open_port(LOAD_PORT)
    target, port = _start_target(params["protocol"], params["target_cpu"])
    children = [target]
    if params["level"] == "dirty":
        writer = [sys.executable, "-m", "bench.vm.migrate._load", "--dirty", params["dirty_mib_s"]]
        children.append(subprocess.Popen(writer, text=True))
    lines = _Lines(out)
    started = False

    def on_call(m: Measurement) -> None:
        if not started:
            return
        latency_us = round(m.latency_s * 1e6)
        if m.error is None:
            lines.emit("R", _now_us(), latency_us)
        else:
            lines.emit("E", _now_us(), latency_us, m.error.replace(" ", "_"))

    client = make_client(CLIENT_KIND[params["protocol"]], f"127.0.0.1:{port}", hook=on_call, timeout_s=60)
    client.get_book(BOOK_ID)  # the first call opens the connection: not part of the series
    print(f"BENCH-LOAD-START level={params['level']}", flush=True)  # on the console, for the boot log
    out.write(f"BENCH-LOAD-START level={params['level']} protocol={params['protocol']} t={_now_us()}\n")
    started = True
    threading.Thread(target=lines.heartbeat, name="heartbeat", daemon=True).start()
    busy = params["level"] in ("busy", "dirty")
    next_request = time.monotonic()
    try:
        while True:
            with contextlib.suppress(Exception):  # recorded through the hook; the load goes on
                client.get_book(BOOK_ID)
            if not busy:
                next_request = max(next_request + IDLE_INTERVAL_S, time.monotonic())
                time.sleep(max(0.0, next_request - time.monotonic()))
    finally:
        for child in children:
            child.terminate()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"] and len(argv) == 2:
        return _probe(argv[1])
    if argv[:1] == ["--dirty"] and len(argv) == 2:
        return _dirty(float(argv[1]))
    return run(_parameters(Path("/proc/cmdline").read_text()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
