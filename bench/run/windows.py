"""One measured window of a cell: the engine's run, wrapped in everything that decides whether it counts.

Around each window: the server's counters (scraped before and after, checked against what the engine sent),
CPU time of the target and of the generator, CPU steal and other processes' CPU on both pinned CPUs. The
window record says, as data, whether the window may back a verdict:

    server_bound      closed model: target >= TARGET_BOUND_PCT of its CPU, generator <= GENERATOR_HEADROOM_PCT
    generator_limited closed: the generator at GENERATOR_LIMIT_PCT of its CPU; open: it dispatched too many
                      requests late
    pacing_distorted  open: the generator's pacing error moves a reported percentile by > the limit
    counters_ok       the server served what the engine sent, with no error
    noisy / host_busy steal / other processes above their thresholds on the target's or generator's CPU
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from bench.load.counters import CounterSnapshot, ScrapeError, check_counts, scrape
from bench.load.engine import EngineRun
from bench.load.processes import MeasuredTarget
from bench.load.recorder import OpStats, Recorder
from bench.load.sysmetrics import Window, other_cpu_pct, window_record
from bench.thresholds import (
    BUSY_HOST_PCT,
    GENERATOR_HEADROOM_PCT,
    OPEN_LATE_DISPATCH_LIMIT,
    PACING_DISTORTION_LIMIT,
    TARGET_BOUND_PCT,
)
from targets.core import INTERNAL_OPERATIONS

__all__ = ["WindowMeasurement", "measure_window", "pacing_distortion"]


class WindowMeasurement:
    """A window's record (flat JSON for cell.json) and its histograms (for ops.json)."""

    def __init__(self, record: dict[str, Any], ops: dict[str, Any]) -> None:
        self.record = record
        self.ops = ops


def _scrape_all(addresses: list[str]) -> CounterSnapshot | ScrapeError | None:
    """The calls the target's processes served, together; internal calls between them (a split topology's
    ReserveCopy) are not requests of any load tool and are left out. A process whose counters cannot be read
    (it died, or is being restarted) leaves the window unchecked: the error says why."""
    if not addresses:
        return None
    total = CounterSnapshot()
    try:
        for address in addresses:
            total = total + scrape(address)
    except ScrapeError as exc:
        return exc
    return total.without(INTERNAL_OPERATIONS)


def pacing_distortion(run: EngineRun) -> dict[str, float]:
    """How much the generator's own lateness moves the corrected p50 and p99 (relative, all operations).

    The corrected latency runs from the intended send time; the generator's lateness (intended -> actual
    dispatch) is in it. With per-request records (gload) the engine computes it exactly; otherwise the
    lateness distribution's percentile over the latency's at the same percentile bounds what the generator,
    not the server, contributed there (an upper bound: percentiles of a sum are not additive).
    """
    if run.pacing_distortion is not None:
        return run.pacing_distortion  # the tool's per-request records gave it exactly
    if run.lateness is None or not run.corrected:
        return {}
    merged = Recorder.merge([run.corrected])
    combined = OpStats()
    for stats in merged.values():
        combined.merge(stats)
    out = {}
    for name, q in (("p50", 50.0), ("p99", 99.0)):
        latency = combined.latency.get_value_at_percentile(q)
        late = run.lateness.get_value_at_percentile(q)
        out[name] = float(late / latency) if latency else 0.0
    return out


def measure_window(
    run: Callable[[], EngineRun],
    *,
    phase: str,
    label: str,
    target: MeasuredTarget,
    target_cpu: int | None,
    generator_cpu: int | tuple[int, ...] | None,
    generator_pids: tuple[int, ...] = (),
    steal_threshold_pct: float,
    begin: Callable[[], None] | None = None,
    **extra: Any,
) -> WindowMeasurement:
    """Run one window and judge it; `begin` runs right after the counters are read (an engine that runs
    between windows starts recording there); `extra` fields go into the record (e.g. users=16)."""
    counters = target.counter_addresses
    before = _scrape_all(counters)
    scraped = time.perf_counter()
    if begin is not None:
        begin()
    begun = time.perf_counter()
    pids = target.cpu_pids
    generator_cpus = (
        () if generator_cpu is None else (generator_cpu,) if isinstance(generator_cpu, int) else generator_cpu
    )
    with Window(tuple(pids.values()), generator_pids, cpus=(target_cpu, *generator_cpus)) as window:
        result = run()
    ended = time.perf_counter()
    after = _scrape_all(counters)
    edges_s = (begun - scraped) + (time.perf_counter() - ended)
    w = window.result
    assert w is not None
    generator_cpu_s = result.generator_cpu_s if result.generator_cpu_s is not None else w.generator_cpu_s
    wall = result.wall_s or w.wall_s
    record: dict[str, Any] = {
        "phase": phase,
        "label": label,
        "engine": result.engine,
        "tool": result.tool,
        "tool_version": result.version,
        "command": result.command,
        "model": result.model,
        **window_record(
            wall_s=wall,
            steal_pct=w.steal_pct,
            target_cpu_s=w.target_cpu_s * wall / w.wall_s if w.wall_s > 0 else w.target_cpu_s,
            generator_cpu_s=generator_cpu_s,
            started_at=w.started_at,
            requests=result.requests,
            failures=result.failures,
            generator_cpus=len(generator_cpus),
        ),
        "throughput_rps": result.requests / wall if wall > 0 else 0.0,
        "ok_rps": (result.requests - result.failures) / wall if wall > 0 else 0.0,
        **extra,
    }
    # The target's CPU share is over the engine's own window when it reports one (a tool's start and exit
    # are outside it): scaled above from the Window's measurement around the whole run.
    _noise(record, w, target_cpu, generator_cpus, steal_threshold_pct, generator_cpu_s)
    if len(generator_cpus) > 1:
        record["generator_cpus"] = list(generator_cpus)
    if not pids:
        # A target the harness did not start: no process whose CPU time it could read.
        record.update(target_cpu_s=None, target_cpu_pct=None, target_cpu_us_per_request=None)
    elif len(pids) > 1:
        # Several processes (a split topology): each one's CPU time, beside their sum.
        record["process_cpu_s"] = {name: w.target_cpu_by_pid.get(pid) for name, pid in pids.items()}
    if result.model == "closed":
        record["server_bound"] = (
            None
            if record["target_cpu_pct"] is None
            else record["target_cpu_pct"] >= TARGET_BOUND_PCT
            and record["generator_cpu_pct"] <= GENERATOR_HEADROOM_PCT * max(1, len(generator_cpus))
        )
        # generator_limited (window_record): the generator at GENERATOR_LIMIT_PCT of its CPU set the pace.
    else:
        distortion = pacing_distortion(result)
        late = result.late_dispatches > OPEN_LATE_DISPATCH_LIMIT * max(1, result.scheduled)
        record.update(
            offered_rate=result.offered_rate,
            achieved_rate=record["throughput_rps"],
            scheduled=result.scheduled,
            late_dispatches=result.late_dispatches,
            pacing_p50_us=_percentile(result, 50.0),
            pacing_p99_us=_percentile(result, 99.0),
            pacing_distortion=distortion,
            pacing_distorted=any(v > PACING_DISTORTION_LIMIT for v in distortion.values()),
            generator_limited=late,
        )
    unread = next((x for x in (before, after) if isinstance(x, ScrapeError)), None)
    if unread is not None:
        record.update(counters_ok=False, counter_reason=str(unread))
    elif before is not None and after is not None:
        assert isinstance(before, CounterSnapshot) and isinstance(after, CounterSnapshot)
        in_flight = result.in_flight
        if result.continuous and wall > 0:
            # Calls the running load made between the scrapes and the window's edges (at the window's rate).
            in_flight += math.ceil(2.0 * result.requests / wall * edges_s)
        check = check_counts(after - before, result.sent, in_flight=in_flight)
        record.update(counters=check.record(), counters_ok=check.ok, counter_reason=check.reason)
    ops: dict[str, Any] = {"ops": Recorder.dump(result.ops)}
    if result.corrected:
        ops = {
            "corrected": Recorder.dump(result.corrected),
            "uncorrected": Recorder.dump(result.ops),
            "lateness_hdr": result.lateness.encode().decode() if result.lateness is not None else None,
            "target_call_rate": result.offered_rate,
        }
    return WindowMeasurement(record, ops)


def _percentile(run: EngineRun, q: float) -> float | None:
    if run.lateness is None or run.lateness.get_total_count() == 0:
        return None
    return float(run.lateness.get_value_at_percentile(q))


def _noise(
    record: dict[str, Any],
    w: Any,
    target_cpu: int | None,
    generator_cpus: tuple[int, ...],
    steal_threshold_pct: float,
    generator_cpu_s: float,
) -> None:
    """Steal and other processes' CPU on the target's and the generator's CPU(s), and the flags they raise
    (other processes' CPU in % of one CPU, summed over the generator's CPUs)."""
    generator_steals = [w.cpu_steal_pct[c] for c in generator_cpus if c in w.cpu_steal_pct]
    steal: dict[str, float | None] = {
        "steal_target_cpu_pct": w.cpu_steal_pct.get(target_cpu) if target_cpu is not None else None,
        "steal_generator_cpu_pct": max(generator_steals) if generator_steals else None,
    }
    other: dict[str, float | None] = {"other_target_cpu_pct": None, "other_generator_cpu_pct": None}
    if target_cpu is not None and target_cpu in w.cpu_busy_s:
        other["other_target_cpu_pct"] = other_cpu_pct(w.cpu_busy_s[target_cpu], w.target_cpu_s, 0.0, w.wall_s)
    if generator_cpus and all(c in w.cpu_busy_s for c in generator_cpus):
        busy = sum(w.cpu_busy_s[c] for c in generator_cpus)
        other["other_generator_cpu_pct"] = other_cpu_pct(busy, 0.0, generator_cpu_s, w.wall_s)
    record.update(steal, **other)
    steals = [v for v in (record["steal_pct"], *steal.values()) if v is not None]
    others = [v for v in other.values() if v is not None]
    record["noisy"] = bool(steals) and max(steals) > steal_threshold_pct
    record["host_busy"] = bool(others) and max(others) > BUSY_HOST_PCT
