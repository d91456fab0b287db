"""Host counters read around every measured window: CPU steal (all CPUs), and process CPU time by pid."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench.thresholds import GENERATOR_LIMIT_PCT

__all__ = ["CpuSample", "Window", "WindowResult", "process_cpu_seconds", "read_cpu", "window_record"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Aggregate jiffies of the `cpu` line of /proc/stat (all CPUs together)."""

    total: int
    steal: int
    idle: int


def read_cpu() -> CpuSample:
    with open("/proc/stat") as f:
        fields = f.readline().split()
    if fields[0] != "cpu":
        raise RuntimeError("/proc/stat does not start with the aggregate 'cpu' line")
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user/nice.
    total = sum(values[:8])
    steal = values[7] if len(values) > 7 else 0
    return CpuSample(total=total, steal=steal, idle=values[3] + values[4])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds; NaN if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return float("nan")
    # The command name may contain spaces; fields after the closing parenthesis are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True, slots=True)
class WindowResult:
    wall_s: float
    steal_pct: float  # share of all CPUs' time stolen by the hypervisor during the window
    target_cpu_s: float  # CPU time the target process used during the window
    generator_cpu_s: float  # CPU time this (load generator) process used
    started_at: float  # time.time() at the start

    @property
    def generator_cpu_pct(self) -> float:
        return 100.0 * self.generator_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def target_cpu_pct(self) -> float:
        return 100.0 * self.target_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class Window:
    """`with Window(target_pid) as w: ...` then `w.result` (steal %, CPU seconds of target and generator)."""

    def __init__(self, target_pid: int | None, generator_pids: tuple[int, ...] = ()) -> None:
        self.target_pid = target_pid
        self.generator_pids = generator_pids or (os.getpid(),)
        self.result: WindowResult | None = None

    def _generator_cpu(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.generator_pids)

    def __enter__(self) -> Window:
        self._wall = time.time()
        self._t0 = time.perf_counter()
        self._cpu0 = read_cpu()
        self._target0 = process_cpu_seconds(self.target_pid) if self.target_pid else 0.0
        self._gen0 = self._generator_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        cpu1 = read_cpu()
        target1 = process_cpu_seconds(self.target_pid) if self.target_pid else 0.0
        total = cpu1.total - self._cpu0.total
        self.result = WindowResult(
            wall_s=wall,
            steal_pct=100.0 * (cpu1.steal - self._cpu0.steal) / total if total > 0 else 0.0,
            target_cpu_s=target1 - self._target0,
            generator_cpu_s=self._generator_cpu() - self._gen0,
            started_at=self._wall,
        )


def window_record(
    *,
    wall_s: float,
    steal_pct: float,
    target_cpu_s: float,
    generator_cpu_s: float,
    started_at: float,
    requests: int,
    failures: int,
) -> dict[str, Any]:
    """The fields every measured window records (bench run's cells and calibrate's windows alike)."""
    generator_cpu_pct = 100.0 * generator_cpu_s / wall_s if wall_s > 0 else 0.0
    return {
        "started_at": started_at,
        "wall_s": wall_s,
        "steal_pct": steal_pct,
        "target_cpu_s": target_cpu_s,
        "generator_cpu_s": generator_cpu_s,
        "generator_cpu_pct": generator_cpu_pct,
        "target_cpu_pct": 100.0 * target_cpu_s / wall_s if wall_s > 0 else 0.0,
        "generator_limited": generator_cpu_pct >= GENERATOR_LIMIT_PCT,
        "requests": requests,
        "failures": failures,
        "target_cpu_us_per_request": 1e6 * target_cpu_s / requests if requests else None,
    }
