"""Open-model load: requests at a constant rate, latency measured from each request's *intended* send time.

Like wrk2: a request that had to wait for a free connection because earlier ones were slow is charged that
wait (coordinated omission corrected). The uncorrected latency (from the actual send) is kept beside it.
Runs on gevent (the locust process model): one greenlet per in-flight request, a fixed pool of connections.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import gevent.queue

from bench.clients import ClientError, LibraryClient
from bench.clients.measure import Measurement
from bench.load.recorder import OpStats, Recorder
from bench.load.workload import Workload

__all__ = ["OpenLoopResult", "Slot", "run_open_loop"]


class Slot:
    """One connection (client + workload); `pending_delay_s` is charged to the next call it makes."""

    def __init__(
        self, make: Callable[[Callable[[Measurement], None]], tuple[LibraryClient, Workload]]
    ) -> None:
        self.pending_delay_s = 0.0
        self.corrected: dict[str, OpStats] = {}
        self.uncorrected: dict[str, OpStats] = {}
        self.recording = False
        self.client, self.workload = make(self._hook)

    def _hook(self, m: Measurement) -> None:
        if not self.recording:
            self.pending_delay_s = 0.0
            return
        # Only the first call of a step waited for a slot; later calls of the same step start on time.
        delay, self.pending_delay_s = self.pending_delay_s, 0.0
        self.uncorrected.setdefault(m.operation, OpStats()).add(m)
        self.corrected.setdefault(m.operation, OpStats()).add(m, latency_s=m.latency_s + delay)


@dataclass
class OpenLoopResult:
    target_rate: float
    scheduled: int
    completed: int
    late_starts: int  # requests that started more than 1 ms after their intended time (any reason)
    late_dispatches: int  # ... because the generator itself was late to dispatch them (generator-limited)
    wall_s: float
    corrected: dict[str, OpStats]
    uncorrected: dict[str, OpStats]

    @property
    def achieved_rate(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0


def _wait_until(instant: float) -> None:
    """Sleep until `instant` with sub-millisecond precision.

    gevent's timers wake up on whole milliseconds (epoll's timeout unit), so a plain sleep would start
    requests up to ~1 ms late and the correction would charge that to the server. Sleep coarsely, then
    yield to other greenlets until the instant arrives.
    """
    while True:
        delay = instant - time.perf_counter()
        if delay <= 0:
            return
        if delay > 0.002:
            gevent.sleep(delay - 0.0015)
        else:
            gevent.idle()  # lets pending I/O run first; sleep(0) would starve it


def run_open_loop(slots: list[Slot], rate: float, duration_s: float) -> OpenLoopResult:
    """Schedule `rate` steps per second for `duration_s`; wait for stragglers (bounded by client timeouts)."""
    if rate <= 0:
        raise ValueError(f"open-model rate must be positive, got {rate}")
    free: gevent.queue.Queue[Slot] = gevent.queue.Queue()
    for slot in slots:
        slot.corrected, slot.uncorrected, slot.recording = {}, {}, True
        free.put(slot)
    interval = 1.0 / rate
    total = max(1, int(rate * duration_s))
    done = {"completed": 0, "late": 0, "late_dispatch": 0}

    def one(intended: float) -> None:
        slot = free.get()  # waits while every connection is busy: that wait is part of the latency
        started = time.perf_counter()
        slot.pending_delay_s = max(0.0, started - intended)
        if slot.pending_delay_s > 0.001:
            done["late"] += 1
        try:
            slot.workload.step()
        except ClientError:
            pass  # recorded by the hook
        finally:
            done["completed"] += 1
            free.put(slot)

    start = time.perf_counter()
    greenlets = []
    for i in range(total):
        intended = start + i * interval
        _wait_until(intended)
        if time.perf_counter() - intended > 0.001:
            done["late_dispatch"] += 1
        greenlets.append(gevent.spawn(one, intended))
    gevent.joinall(greenlets)
    wall = time.perf_counter() - start
    for slot in slots:
        slot.recording = False
    return OpenLoopResult(
        target_rate=rate,
        scheduled=total,
        completed=done["completed"],
        late_starts=done["late"],
        late_dispatches=done["late_dispatch"],
        wall_s=wall,
        corrected=Recorder.merge([s.corrected for s in slots]),
        uncorrected=Recorder.merge([s.uncorrected for s in slots]),
    )
