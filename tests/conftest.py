"""Shared fixtures: targets started as real processes on loopback, stopped by pid when the test ends."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest

from bench.load.processes import TargetProcess, start_target

FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"

# A suite started in the background by a shell without job control (`make test &` in a script) inherits
# SIGINT ignored, and so would every process it starts: the Ctrl-C tests could not deliver one, and the
# commands would run to their end. A handler here makes the processes the tests start get the default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def start() -> Iterator[Callable[..., TargetProcess]]:
    """Factory: `start("grpc", dataset="tiny")`; every target started through it is stopped afterwards."""
    started: list[TargetProcess] = []

    def _start(protocol: str, **kwargs: object) -> TargetProcess:
        kwargs.setdefault("dataset", "tiny")
        kwargs.setdefault("clock", FIXED_CLOCK)
        target = start_target(protocol, **kwargs)  # type: ignore[arg-type]
        started.append(target)
        return target

    yield _start
    for target in started:
        target.stop()
