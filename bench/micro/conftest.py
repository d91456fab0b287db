"""Fixtures of the micro-benchmarks: CPU placement, real target processes, clients; benchmark defaults."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest

from bench.load.placement import Pinning, Placement, choose_placement
from bench.micro._support import Micro, ServerPool

# Targets are started with fork (targets_process passes a preexec_fn), and grpc's C-core fork handlers then
# restart its event-engine poller in the child, which aborts ("epoll_wait error: Bad file descriptor",
# SIGABRT) when the child closes its inherited descriptors before exec: seen here when a REST target was
# started after gRPC benchmarks. Read once, when gRPC initialises: set before any test imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# Applied only when the option was not given (command line, PYTEST_ADDOPTS or ini addopts): the full suite has
# ~110 benchmarks, and pytest-benchmark's 1 s per benchmark plus its calibration would take several minutes.
_DEFAULTS: dict[str, tuple[str, Any]] = {
    "--benchmark-max-time": ("benchmark_max_time", "0.5"),
    # Warm-up of the in-process (serialization) benchmarks; network benchmarks warm up themselves.
    "--benchmark-warmup": ("benchmark_warmup", True),
    "--benchmark-warmup-iterations": ("benchmark_warmup_iterations", 1000),
    # docs/ARCHITECTURE.md reports medians; sort the tables by them too.
    "--benchmark-sort": ("benchmark_sort", "median"),
}


def _given_flags(config: pytest.Config) -> set[str]:
    words = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    words += list(config.getini("addopts"))
    return {word.split("=", 1)[0] for word in words if word.startswith("--")}


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads the options into its session
def pytest_configure(config: pytest.Config) -> None:
    given = _given_flags(config)
    for flag, (dest, value) in _DEFAULTS.items():
        if flag not in given and hasattr(config.option, dest):
            setattr(config.option, dest, value)
    # pyproject's addopts disables benchmarks so that a normal run executes each one once as a test; asking
    # for `--benchmark-only` means "run them", which pytest-benchmark would otherwise refuse as contradictory.
    explicit = {word.split("=", 1)[0] for word in config.invocation_params.args}
    if (
        getattr(config.option, "benchmark_only", False)
        and getattr(config.option, "benchmark_disable", False)
        and "--benchmark-disable" not in explicit
    ):
        config.option.benchmark_enable = True


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Stack versions and the protobuf backend (docs/ARCHITECTURE.md: record them with every result)."""
    from google.protobuf.internal import api_implementation

    versions: dict[str, str | None] = {}
    for package in (
        "grpcio",
        "protobuf",
        "uvicorn",
        "starlette",
        "fastapi",
        "spyne",
        "cheroot",
        "zeep",
        "httpx",
        "orjson",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    machine_info["library_bench"] = {
        "protobuf_backend": api_implementation.Type(),
        "versions": versions,
        "affinity": sorted(os.sched_getaffinity(0)),
    }


@pytest.fixture(scope="package")
def placement() -> Iterator[Placement]:
    """Targets on one CPU, this (benchmark) process on another, for the duration of bench/micro only."""
    chosen = choose_placement()
    if chosen.generator_cpu is None:
        yield chosen
        return
    with Pinning({chosen.generator_cpu}):
        yield chosen


@pytest.fixture(scope="package")
def micro(placement: Placement, request: pytest.FixtureRequest) -> Iterator[Micro]:
    """Servers started on first use (so `-k grpc` starts only what it needs) and stopped by pid at the end."""
    from google.protobuf.internal import api_implementation

    config = request.config
    enabled = not config._benchmarksession.disabled  # type: ignore[attr-defined]
    if (
        enabled
        and api_implementation.Type() == "python"
        and not os.environ.get("BENCH_ALLOW_PYTHON_PROTOBUF")
    ):
        pytest.skip(
            "protobuf runs on its pure-Python backend; set BENCH_ALLOW_PYTHON_PROTOBUF=1 to measure anyway"
        )
    servers = ServerPool(placement)
    state = Micro(
        servers,
        max_time_s=float(config.getoption("benchmark_max_time")),
        min_rounds=int(config.getoption("benchmark_min_rounds")),
    )
    try:
        yield state
    finally:
        state.close()
        servers.stop_all()
