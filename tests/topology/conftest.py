"""Fixtures for the split topology: three real processes on loopback, stopped by pid when the test ends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from topology.launch import SplitTopology, start_split

FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"
BACKEND_PROTOCOLS = ("grpc", "rest", "soap")

StartTopology = Callable[..., SplitTopology]


@pytest.fixture
def start_topology() -> Iterator[StartTopology]:
    """Factory: `start_topology("grpc", backend_timeout_s=1.0)`; tiny dataset and a fixed clock by default."""
    started: list[SplitTopology] = []

    def _start(backend_protocol: str, **kwargs: object) -> SplitTopology:
        kwargs.setdefault("dataset", "tiny")
        kwargs.setdefault("clock", FIXED_CLOCK)
        topology = start_split(backend_protocol, **kwargs)  # type: ignore[arg-type]
        started.append(topology)
        return topology

    yield _start
    for topology in started:
        topology.stop()
        assert_gone(topology)


def assert_gone(topology: SplitTopology) -> None:
    """None of the three processes is left (each was stopped by its pid)."""
    for role, process in topology.processes().items():
        assert process.process.poll() is not None, f"{role} still running"
        assert not os.path.exists(f"/proc/{process.pid}") or _zombie_or_other(process.pid), f"{role} left"


def _zombie_or_other(pid: int) -> bool:
    # A pid reused by another process, or a zombie awaiting its reaper, is not our server still running.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
