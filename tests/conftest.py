"""Shared fixtures: targets started as real processes on loopback, stopped by pid when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.load.processes import TargetProcess, start_target

FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"


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
