"""`--generator-cpus`: the generator on several CPUs - tools with a thread per CPU, limits scaled to match."""

from __future__ import annotations

import os

import pytest

from bench.load.native.engine import preview
from bench.load.native.runs import threads_for
from bench.load.placement import choose_placement, parse_cpus
from bench.load.scenarios import load_scenarios
from bench.load.sysmetrics import window_record


def test_cpu_lists_parse_and_bad_ones_are_refused() -> None:
    assert parse_cpus("0") == (0,) and parse_cpus("0,2,3") == (0, 2, 3) and parse_cpus("0-3") == (0, 1, 2, 3)
    for bad in ("", "a", "1-", "0,,2"):
        with pytest.raises(ValueError, match="CPU numbers"):
            parse_cpus(bad)


def test_the_target_keeps_a_cpu_the_generator_does_not_use() -> None:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs two usable CPUs")
    placement = choose_placement(generator=str(usable[0]))
    assert placement.target_cpu == usable[-1] and placement.generators == (usable[0],)
    with pytest.raises(ValueError, match="not usable here"):
        choose_placement(generator=f"{usable[0]},{max(usable) + 64}")


def test_a_thread_per_generator_cpu_never_more_than_connections() -> None:
    assert threads_for(None, 16) == 1 and threads_for(0, 16) == 1
    assert threads_for((0, 2, 3), 16) == 3 and threads_for((0, 2, 3), 2) == 2
    closed, opened = preview("rest", load_scenarios()["getbook"], cpu=(0, 2, 3), seconds=2)
    assert "taskset -c 0,2,3 wrk -t3 " in closed and opened.startswith("open:   taskset -c 0,2,3 gload")
    closed, _ = preview("grpc", load_scenarios()["getbook"], cpu=(0, 2), seconds=2)
    assert "h2load -t2 -c2 " in closed


def test_limits_scale_with_the_generators_cpus() -> None:
    def limited(cpu_s: float, cpus: int) -> bool:
        record = window_record(wall_s=1.0, steal_pct=0.0, target_cpu_s=0.5, generator_cpu_s=cpu_s,
                               started_at=0.0, requests=10, failures=0, generator_cpus=cpus)  # fmt: skip
        return bool(record["generator_limited"])

    assert limited(0.95, 1) and not limited(0.95, 2) and limited(1.9, 2)
