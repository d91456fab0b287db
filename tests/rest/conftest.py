"""Fixtures for the REST target: a real `python -m targets serve rest` process, stopped by pid afterwards."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from targets.core import LibraryService, build_service, parse_clock

REPO = Path(__file__).resolve().parents[2]
FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"
READY_TIMEOUT_S = 10.0


@dataclass
class RestProcess:
    process: subprocess.Popen[bytes]
    url: str
    ready_after_s: float

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """Signal our own child by pid, wait, kill it if it does not exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_rest() -> RestProcess:
    """Start the target on a free port and wait for its READY line (at most READY_TIMEOUT_S)."""
    argv = [sys.executable, "-m", "targets", "serve", "rest", "--port", "0", "--dataset", "tiny"]
    argv += ["--clock", FIXED_CLOCK]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = _readline(process, READY_TIMEOUT_S).decode()
    ready_after_s = time.monotonic() - started
    target = RestProcess(process, "", ready_after_s)
    if not line.startswith("READY rest 127.0.0.1:"):
        target.stop()
        pytest.fail(f"no READY line within {READY_TIMEOUT_S} s (got {line!r})")
    target.url = "http://" + line.split()[2]
    return target


def _readline(process: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    # A blocking readline would hang forever on a target that never prints; wait on the pipe first.
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return b""
    return process.stdout.readline()


@pytest.fixture(scope="module")
def rest_target() -> Iterator[RestProcess]:
    target = start_rest()
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture
def client(rest_target: RestProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rest_target.url, timeout=10.0) as http:
        yield http


@pytest.fixture(scope="session")
def reference() -> LibraryService:
    """The same dataset, seed and clock in-process: what the target answers for records no test changes."""
    return build_service("tiny", clock=parse_clock(FIXED_CLOCK), seed=42)
