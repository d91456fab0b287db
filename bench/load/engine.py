"""The load-engine seam: one interface for "drive this target with this scenario at this load model".

    engine.warm_up(seconds)
    engine.closed(concurrency, seconds) -> EngineRun     closed model: `concurrency` requests in flight
    engine.open(rate, seconds) -> EngineRun              open model: `rate` requests per second, on schedule

Two engines: `python` (bench.load.python_engine: the locust users and the gevent open loop - what a Python
caller experiences) and `native` (bench.load.native.engine: wrk, h2load and gload - what the server can
do). Both report the same `EngineRun`, so cells, tables and report treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from hdrh.histogram import HdrHistogram

from bench.load.recorder import OpStats

__all__ = ["ENGINES", "EngineRun", "LoadEngine"]

ENGINES = ("native", "python")


@dataclass
class EngineRun:
    """What an engine measured in one window."""

    engine: str  # native | python
    tool: str  # wrk | h2load | gload | locust | openloop
    version: str
    command: list[str] | None
    model: str  # closed | open
    wall_s: float
    generator_cpu_s: float | None  # None: the caller measures the generator's processes itself
    requests: int  # completed in the window, as the engine counts them
    failures: int
    ops: dict[str, OpStats]  # latency from the actual send, per operation ("*": all operations together)
    sent: dict[str, int]  # requests sent per operation while the server's counters were read around it
    in_flight: int  # at most this many requests can straddle the window's edges
    # The load keeps running outside the window (locust users between windows): calls made between a
    # counter scrape and the window's edge are the server's but not the window's.
    continuous: bool = False
    corrected: dict[str, OpStats] = field(default_factory=dict)  # open model: from the intended send time
    lateness: HdrHistogram | None = None  # open model: µs from the intended to the actual dispatch
    offered_rate: float | None = None
    scheduled: int = 0
    late_dispatches: int = 0
    # Open model, computed exactly from per-request records where the tool keeps them: how much the
    # schedule's slip moves each corrected percentile, (corrected - from dispatch) / corrected.
    pacing_distortion: dict[str, float] | None = None

    @property
    def generator_cpu_pct(self) -> float | None:
        if self.generator_cpu_s is None or self.wall_s <= 0:
            return None
        return 100.0 * self.generator_cpu_s / self.wall_s


class LoadEngine(Protocol):
    name: str
    generator_pids: tuple[int, ...]  # processes whose CPU time is the generator's (empty: runs report it)

    def warm_up(self, seconds: float) -> None: ...
    def closed(self, concurrency: int, seconds: float) -> EngineRun: ...
    def open(self, rate: float, seconds: float) -> EngineRun: ...
    def close(self) -> None: ...
