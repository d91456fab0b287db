"""Host counters read around every measured window: CPU steal and busy time (all CPUs and each pinned CPU),
and process CPU time by pid.

On a shared host two things take CPU from a pinned target or generator without showing in their own CPU
time: the hypervisor (steal) and other processes on the same CPU. Both are measured per window on the
target's and the generator's CPU, so a noisy window can be flagged instead of being mistaken for a slow
protocol.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from bench.thresholds import GENERATOR_LIMIT_PCT

__all__ = [
    "CpuSample",
    "HostBusy",
    "Window",
    "WindowResult",
    "other_cpu_pct",
    "process_cpu_seconds",
    "read_cpu",
    "read_cpus",
    "window_record",
]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Jiffies of one `cpu` line of /proc/stat (the aggregate line or one CPU)."""

    total: int
    steal: int
    idle: int

    @property
    def busy(self) -> int:
        return self.total - self.idle - self.steal


def _sample(fields: list[str]) -> CpuSample:
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user/nice.
    return CpuSample(
        total=sum(values[:8]), steal=values[7] if len(values) > 7 else 0, idle=values[3] + values[4]
    )


def read_cpus() -> dict[int | None, CpuSample]:
    """Every `cpu` line of /proc/stat: None -> all CPUs together, n -> CPU n."""
    samples: dict[int | None, CpuSample] = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            fields = line.split()
            key = None if fields[0] == "cpu" else int(fields[0][3:])
            samples[key] = _sample(fields)
    if None not in samples:
        raise RuntimeError("/proc/stat does not start with the aggregate 'cpu' line")
    return samples


def read_cpu() -> CpuSample:
    """The aggregate `cpu` line (all CPUs together)."""
    return read_cpus()[None]


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


def other_cpu_pct(busy_s: float, target_s: float, generator_s: float, wall_s: float) -> float:
    """CPU used by everything else during the window, in % of one CPU (clock ticks: ±10 ms per reading)."""
    if wall_s <= 0:
        return 0.0
    return max(0.0, 100.0 * (busy_s - target_s - generator_s) / wall_s)


@dataclass(frozen=True, slots=True)
class WindowResult:
    wall_s: float
    steal_pct: float  # share of all CPUs' time stolen by the hypervisor during the window
    target_cpu_s: float  # CPU time the target process used during the window
    generator_cpu_s: float  # CPU time of the load generator (processes given, or set by the caller)
    started_at: float  # time.time() at the start
    host_busy_s: float = 0.0  # busy (non-idle, non-steal) CPU seconds over all CPUs
    cpu_steal_pct: dict[int, float] = field(default_factory=dict)  # per watched CPU
    cpu_busy_s: dict[int, float] = field(default_factory=dict)  # per watched CPU
    target_cpu_by_pid: dict[int, float] = field(default_factory=dict)  # a target of several processes

    @property
    def generator_cpu_pct(self) -> float:
        return 100.0 * self.generator_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def target_cpu_pct(self) -> float:
        return 100.0 * self.target_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class Window:
    """`with Window(target_pid, cpus=(target_cpu, generator_cpu)) as w: ...` then `w.result`.

    The generator's CPU time is that of `generator_pids` (default: this process); a caller whose generator
    is a short-lived child (a native tool) passes `generator_cpu_s` to `finish` instead.
    """

    def __init__(
        self,
        target_pid: int | tuple[int, ...] | None,
        generator_pids: tuple[int, ...] = (),
        *,
        cpus: tuple[int | None, ...] = (),
    ) -> None:
        # A target may be several processes (a split topology): its CPU time is theirs together.
        self.target_pids: tuple[int, ...] = (
            () if target_pid is None else (target_pid,) if isinstance(target_pid, int) else target_pid
        )
        self.generator_pids = generator_pids or (os.getpid(),)
        self.cpus = tuple(c for c in cpus if c is not None)
        self.result: WindowResult | None = None
        self.generator_cpu_s: float | None = None

    def _generator_cpu(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.generator_pids)

    def __enter__(self) -> Window:
        self._wall = time.time()
        self._t0 = time.perf_counter()
        self._cpus0 = read_cpus()
        self._target0 = {pid: process_cpu_seconds(pid) for pid in self.target_pids}
        self._gen0 = self._generator_cpu()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._t0
        cpus1 = read_cpus()
        target = {pid: process_cpu_seconds(pid) - before for pid, before in self._target0.items()}
        all0, all1 = self._cpus0[None], cpus1[None]
        total = all1.total - all0.total
        steal: dict[int, float] = {}
        busy: dict[int, float] = {}
        for cpu in self.cpus:
            before, after = self._cpus0.get(cpu), cpus1.get(cpu)
            if before is None or after is None:
                continue
            jiffies = after.total - before.total
            steal[cpu] = 100.0 * (after.steal - before.steal) / jiffies if jiffies > 0 else 0.0
            busy[cpu] = (after.busy - before.busy) / _TICKS
        generator = self._generator_cpu() - self._gen0
        self.result = WindowResult(
            wall_s=wall,
            steal_pct=100.0 * (all1.steal - all0.steal) / total if total > 0 else 0.0,
            target_cpu_s=sum(target.values()),
            generator_cpu_s=generator if not math.isnan(generator) else 0.0,
            started_at=self._wall,
            host_busy_s=(all1.busy - all0.busy) / _TICKS,
            cpu_steal_pct=steal,
            cpu_busy_s=busy,
            target_cpu_by_pid=target,
        )


class HostBusy:
    """`with HostBusy() as busy: ...` then `busy.seconds`: non-idle, non-steal CPU seconds over all CPUs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: CpuSample | None = None

    def __enter__(self) -> HostBusy:
        self._start = read_cpu()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        end = read_cpu()
        assert self._start is not None
        self.seconds = max(0, end.busy - self._start.busy) / _TICKS


def window_record(
    *,
    wall_s: float,
    steal_pct: float,
    target_cpu_s: float,
    generator_cpu_s: float,
    started_at: float,
    requests: int,
    failures: int,
    generator_cpus: int = 1,
) -> dict[str, Any]:
    """The fields every measured window records (bench run's cells and calibrate's windows alike); CPU
    percentages are of one CPU, so a generator on `generator_cpus` CPUs is limited at that many times the
    limit."""
    generator_cpu_pct = 100.0 * generator_cpu_s / wall_s if wall_s > 0 else 0.0
    return {
        "started_at": started_at,
        "wall_s": wall_s,
        "steal_pct": steal_pct,
        "target_cpu_s": target_cpu_s,
        "generator_cpu_s": generator_cpu_s,
        "generator_cpu_pct": generator_cpu_pct,
        "target_cpu_pct": 100.0 * target_cpu_s / wall_s if wall_s > 0 else 0.0,
        "generator_limited": generator_cpu_pct >= GENERATOR_LIMIT_PCT * max(1, generator_cpus),
        "requests": requests,
        "failures": failures,
        "target_cpu_us_per_request": 1e6 * target_cpu_s / requests if requests else None,
    }
