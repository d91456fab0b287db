"""Open-model load in Python: steps at a constant rate, latency measured from each step's *intended* start.

Like wrk2: a step that had to wait for a free connection because earlier ones were slow is charged that wait
(coordinated omission corrected); the uncorrected latency (from the call's actual start) is kept beside it.
A step is one operation of the scenario, chosen by weight; some need setup calls first (a ReturnLoan first
creates the loan it returns). Every call of a step is timed from the step's intended start, and only the
step's own operation enters the histograms: a setup call never does (its time is part of the step's).
Each window also records when steps really started against their schedule (the send lateness), and how
many steps the generator itself dispatched late (then the generator, not the server, set the pace).
Runs on gevent (the locust process model): one greenlet per in-flight step, a fixed pool of connections.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import gevent.queue
from hdrh.histogram import HdrHistogram

from bench.clients import ClientError, LibraryClient
from bench.clients.measure import Measurement
from bench.load.recorder import OpStats, Recorder, new_histogram
from bench.load.workload import Workload

__all__ = ["OpenLoopResult", "Slot", "run_open_loop"]

_LATE_S = 0.001  # a step that starts or is dispatched more than this after its intended time is "late"


class Slot:
    """One connection (client + workload) and the step it is running."""

    def __init__(
        self, make: Callable[[Callable[[Measurement], None]], tuple[LibraryClient, Workload]]
    ) -> None:
        self.corrected: dict[str, OpStats] = {}
        self.uncorrected: dict[str, OpStats] = {}
        self.calls: Counter[str] = (
            Counter()
        )  # every call while recording, setup calls too (what the server saw)
        self.recording = False
        self.operation: str | None = None  # the operation of the step in progress
        self.intended = 0.0  # perf_counter() instant the step was meant to start
        self.client, self.workload = make(self._hook)

    def _hook(self, m: Measurement) -> None:
        if self.recording:
            self.calls[m.operation] += 1
        if not self.recording or m.operation != self.operation:
            return  # outside a window, or a setup call of the step (its time is in the step's own call)
        self.uncorrected.setdefault(m.operation, OpStats()).add(m)
        # The hook runs as the call ends: from the step's intended start to now is the corrected latency.
        self.corrected.setdefault(m.operation, OpStats()).add(
            m, latency_s=time.perf_counter() - self.intended
        )

    def run_step(self, intended: float) -> None:
        self.operation = self.workload.next_operation()
        self.intended = intended
        try:
            self.workload.run(self.operation)
        finally:
            self.operation = None


@dataclass
class OpenLoopResult:
    target_rate: float
    scheduled: int
    completed: int
    late_starts: int  # steps that started more than 1 ms after their intended time (any reason)
    late_dispatches: int  # ... because the generator itself was late to dispatch them (generator-limited)
    wall_s: float
    corrected: dict[str, OpStats]
    uncorrected: dict[str, OpStats]
    lateness: HdrHistogram  # µs from each step's intended start to its dispatch (the generator's pacing)
    calls: dict[str, int]  # every call made, setup calls included

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
        slot.corrected, slot.uncorrected, slot.calls, slot.recording = {}, {}, Counter(), True
        free.put(slot)
    interval = 1.0 / rate
    total = max(1, int(rate * duration_s))
    done = {"completed": 0, "late": 0, "late_dispatch": 0}
    lateness = new_histogram()

    def one(intended: float) -> None:
        # The generator's pacing: how late this step was dispatched (waiting for a slot comes after).
        lateness.record_value(max(1, round((time.perf_counter() - intended) * 1e6)))
        slot = free.get()  # waits while every connection is busy: that wait is part of the latency
        started = time.perf_counter()
        if started - intended > _LATE_S:
            done["late"] += 1
        try:
            slot.run_step(intended)
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
        if time.perf_counter() - intended > _LATE_S:
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
        lateness=lateness,
        calls=dict(sum((s.calls for s in slots), Counter())),
    )
