"""Start a target (`python -m targets serve …`) as a child process, wait for READY, and stop it by pid."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from bench.paths import REPO
from targets.lifetime import child_env

__all__ = [
    "ExternalTarget",
    "MeasuredTarget",
    "TargetProcess",
    "TargetStartError",
    "start_ready_process",
    "start_target",
]


class MeasuredTarget(Protocol):
    """What a cell measures: one target process, a target someone else started, or a split topology's three
    processes (topology.launch.SplitTopology)."""

    @property
    def address(self) -> str: ...  # host:port the load goes to
    @property
    def cpu_pids(self) -> dict[str, int]: ...  # process name -> pid whose CPU time is the target's
    @property
    def counter_addresses(self) -> list[str]: ...  # host:port of each call-counter endpoint
    def alive(self) -> bool: ...
    def stderr_tail(self, limit: int = 4000) -> str: ...


class TargetStartError(RuntimeError):
    """The target did not print READY in time (its stderr tail is in the message)."""


@dataclass
class TargetProcess:
    protocol: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    argv: list[str] = field(default_factory=list)
    stderr_file: Path | None = None
    stderr_is_temp: bool = False
    ready_line: str = ""
    ready_after_s: float = 0.0
    stdout_after_ready: bytes = b""  # anything printed after READY (collected when the process stops)
    extras: dict[str, str] = field(default_factory=dict)  # key=value tokens after the address, e.g. metrics

    @property
    def metrics_address(self) -> str | None:
        """host:port of the target's call counters (`--metrics-port`), or None when it does not serve them."""
        return self.extras.get("metrics")

    @property
    def counter_addresses(self) -> list[str]:
        return [self.metrics_address] if self.metrics_address else []

    @property
    def cpu_pids(self) -> dict[str, int]:
        return {"target": self.pid}

    @property
    def address(self) -> str:
        """host:port as clients want it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """`sig` (SIGTERM), wait, SIGKILL if it lingers; returns the exit code. Only signals our own child."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.stdout_after_ready += self.process.stdout.read()  # the process is gone: reads to EOF
            self.process.stdout.close()
        if self.stderr_is_temp and self.stderr_file is not None:
            self.stderr_file.unlink(missing_ok=True)
        return self.process.returncode

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of what the target wrote to stderr (for error messages)."""
        if self.stderr_file is None or not self.stderr_file.exists():
            return ""
        return self.stderr_file.read_bytes()[-limit:].decode(errors="replace")

    def __enter__(self) -> TargetProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_target(
    protocol: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dataset: str = "small",
    clock: str = "system",
    seed: int = 42,
    cpu: int | None = None,
    ready_timeout_s: float = 20.0,
    stderr_path: Path | None = None,
    metrics: bool = False,
    inject_delay_us: float = 0.0,
    extra_args: list[str] | None = None,
    impl: str = "python",
) -> TargetProcess:
    """Start one target on loopback and return when it has printed `READY <protocol> <host>:<port>`.

    `impl`: the implementation (targets.implementations.IMPLEMENTATIONS: python, node, go);
    `metrics`: serve the call counters on a free side port (`TargetProcess.metrics_address`);
    `inject_delay_us`: a deliberately slowed target (every call busy-waits that long).
    """
    argv = [sys.executable, "-m", "targets", "serve", protocol, "--host", host, "--port", str(port)]
    argv += ["--dataset", dataset, "--clock", clock, "--seed", str(seed)]
    if impl != "python":
        argv += ["--impl", impl]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    if metrics:
        argv += ["--metrics-port", "0"]
    if inject_delay_us:
        argv += ["--inject-delay", str(inject_delay_us)]
    argv += extra_args or []
    return start_ready_process(argv, name=protocol, ready_timeout_s=ready_timeout_s, stderr_path=stderr_path)


def start_ready_process(
    argv: list[str], *, name: str, ready_timeout_s: float = 20.0, stderr_path: Path | None = None
) -> TargetProcess:
    """Start any server that prints `READY <name> <host>:<port> [key=value ...]` when it accepts
    connections (targets, the bare reference stacks); the child ends with this process (targets.lifetime)."""
    stderr_is_temp = stderr_path is None
    if stderr_path is None:
        # A file, not a pipe: nobody reads the pipe during a run, and a full pipe would stall the server.
        fd, temp_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".stderr")
        os.close(fd)
        stderr_path = Path(temp_name)
    started = time.monotonic()
    with open(stderr_path, "ab") as stderr_file:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            cwd=REPO,
            env=child_env({**os.environ, "PYTHONUNBUFFERED": "1"}),
        )
    try:
        line, rest = _read_ready_line(process, ready_timeout_s, stderr_path, " ".join(argv))
        parts = line.split()
        extras = dict(token.split("=", 1) for token in parts[3:] if "=" in token)
        if len(parts) < 3 or parts[0] != "READY" or parts[1] != name or len(extras) != len(parts) - 3:
            raise TargetStartError(f"{name} printed {line!r} instead of 'READY {name} host:port [key=value]'")
    except BaseException:
        process.kill()
        process.wait()
        if stderr_is_temp:
            stderr_path.unlink(missing_ok=True)
        raise
    shown_host, _, port_text = parts[2].rpartition(":")
    return TargetProcess(
        name,
        shown_host.strip("[]"),
        int(port_text),
        process,
        argv,
        stderr_path,
        stderr_is_temp,
        ready_line=line,
        ready_after_s=time.monotonic() - started,
        stdout_after_ready=rest,
        extras=extras,
    )


def _read_ready_line(
    process: subprocess.Popen[bytes], timeout_s: float, stderr_path: Path, command: str
) -> tuple[str, bytes]:
    """The first stdout line, and whatever followed it in the same read (kept: a server must print nothing
    else, and tests check that)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TargetStartError(f"no READY line within {timeout_s:.0f} s from {command}")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                process.wait()
                err = stderr_path.read_bytes()[-2000:].decode(errors="replace")
                raise TargetStartError(
                    f"{command} exited with code {process.returncode} before READY:\n{err}"
                )
            buffer += chunk
    finally:
        selector.close()
    line, rest = buffer.split(b"\n", 1)
    return line.decode(), rest


@dataclass
class ExternalTarget:
    """A target someone else started (`bench run --target`): the harness knows only where it listens, so it
    has no process to pin, read the CPU time of, restart or stop, and no counters to check."""

    protocol: str
    host: str
    port: int
    metrics_address: str | None = None
    pid: None = None

    @classmethod
    def at(cls, protocol: str, address: str) -> ExternalTarget:
        host, _, port = address.rpartition(":")
        return cls(protocol, host.strip("[]"), int(port))

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def counter_addresses(self) -> list[str]:
        return []

    @property
    def cpu_pids(self) -> dict[str, int]:
        return {}  # not a process of ours: its CPU time is not observable

    def alive(self) -> bool:
        return True  # the calls themselves show whether it still answers

    def stop(self) -> int:
        return 0  # not ours to stop

    def stderr_tail(self, limit: int = 4000) -> str:
        return ""
