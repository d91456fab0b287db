"""Fixtures for the REST target: a real `python -m targets serve rest` process, stopped by pid afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.load.processes import TargetProcess, start_target
from targets.core import LibraryService, build_service, parse_clock

REPO = Path(__file__).resolve().parents[2]
FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"
READY_TIMEOUT_S = 10.0


# The REST tests use the harness's own launcher: a real process, READY within the timeout, stopped by pid.
RestProcess = TargetProcess


def start_rest() -> TargetProcess:
    """Start the target on a free port and wait for its READY line (at most READY_TIMEOUT_S)."""
    target = start_target("rest", dataset="tiny", clock=FIXED_CLOCK, ready_timeout_s=READY_TIMEOUT_S)
    assert target.ready_line.startswith("READY rest 127.0.0.1:"), target.ready_line
    return target


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
