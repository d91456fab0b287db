"""Host CPU time spent busy during a window: how much of it was neither the target nor the generator.

CPU steal shows the hypervisor's share; on a shared machine other processes (other benchmarks, builds) take
CPU time the same way without showing up as steal. `other_cpu_pct` is that foreign share, in % of one CPU.
"""

from __future__ import annotations

import os
from types import TracebackType

from bench.load.sysmetrics import CpuSample, read_cpu

__all__ = ["HostBusy", "other_cpu_pct"]

_TICKS = os.sysconf("SC_CLK_TCK")


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
        total = end.total - self._start.total
        idle = end.idle - self._start.idle
        steal = end.steal - self._start.steal
        self.seconds = max(0, total - idle - steal) / _TICKS


def other_cpu_pct(busy_s: float, target_s: float, generator_s: float, wall_s: float) -> float:
    """CPU used by everything else during the window, in % of one CPU (clock ticks: ±10 ms per reading)."""
    if wall_s <= 0:
        return 0.0
    return max(0.0, 100.0 * (busy_s - target_s - generator_s) / wall_s)
