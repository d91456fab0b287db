"""The workload's lines from both ends of a migration, on the host's clock, and what they show of the pause.

Each line the guest writes (see `_load.py`) reaches a file on the host side that runs the guest at that
moment, and is stamped there with the host's time.monotonic() when it appears (`SerialTail`). Ordered by
the guest's own line counter, the two files become one series. The gap seen from outside is the silence
between the last line the source delivered and the first one the destination delivered, on the host's
clock. The guest's own clock cannot measure it: it stops with the guest and catches up in jumps after.
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.vm.serial import SerialLine

__all__ = [
    "START_MARKER",
    "LoadEvent",
    "Pause",
    "latency_summary",
    "line_interval_s",
    "merge",
    "parse_lines",
    "switchover_gap",
    "write_csv",
]

START_MARKER = "BENCH-LOAD-START"
Side = Literal["source", "destination"]
CSV_COLUMNS = ("host_s", "side", "kind", "seq", "guest_s", "latency_ms", "error")


@dataclass(frozen=True)
class LoadEvent:
    host_t: float  # host time.monotonic() when the line appeared
    side: Side
    kind: str  # R: request ok, E: request failed, H: heartbeat
    seq: int
    guest_us: int  # the guest's CLOCK_MONOTONIC when written
    latency_us: int | None = None
    error: str | None = None


def parse_lines(lines: Iterable[SerialLine], side: Side) -> tuple[list[LoadEvent], int]:
    """Events after the start marker, and the number of malformed lines (a line cut by the switchover)."""
    events: list[LoadEvent] = []
    malformed = 0
    started = side == "destination"  # the destination only ever sees lines after the start
    for line in lines:
        text = line.text.strip()
        if text.startswith(START_MARKER):
            started = True
            continue
        if not started or not text:
            continue
        fields = text.split()
        try:
            kind, seq, guest_us = fields[0], int(fields[1]), int(fields[2])
            if kind == "H" and len(fields) == 3:
                events.append(LoadEvent(line.t, side, kind, seq, guest_us))
            elif kind == "R" and len(fields) == 4:
                events.append(LoadEvent(line.t, side, kind, seq, guest_us, int(fields[3])))
            elif kind == "E" and len(fields) == 5:
                events.append(LoadEvent(line.t, side, kind, seq, guest_us, int(fields[3]), fields[4]))
            else:
                malformed += 1
        except (IndexError, ValueError):
            malformed += 1
    return events, malformed


def merge(*sides: list[LoadEvent]) -> tuple[list[LoadEvent], int]:
    """One series in the guest's order, and how many lines are missing from it (counter gaps)."""
    events = sorted((event for side in sides for event in side), key=lambda e: e.seq)
    lost = sum(max(0, b.seq - a.seq - 1) for a, b in itertools.pairwise(events))
    return events, lost


@dataclass(frozen=True)
class Pause:
    """The silence between two consecutive lines, on the host's clock."""

    before: LoadEvent
    after: LoadEvent

    @property
    def host_s(self) -> float:
        return self.after.host_t - self.before.host_t


def switchover_gap(events: list[LoadEvent]) -> Pause | None:
    """The last line the source delivered and the first the destination delivered (None: no such pair)."""
    for before, after in itertools.pairwise(events):
        if before.side == "source" and after.side == "destination":
            return Pause(before, after)
    return None


def line_interval_s(events: list[LoadEvent], start_t: float, end_t: float) -> float | None:
    """Median host time between consecutive lines that arrived in a window: the resolution of the gap."""
    times = [e.host_t for e in events if start_t <= e.host_t < end_t]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None


def latency_summary(events: list[LoadEvent], start_t: float, end_t: float) -> dict[str, float | int | None]:
    """Requests that ended between two host times: count, rate, and latency median / p99 / max in ms."""
    inside = [e for e in events if e.kind in ("R", "E") and start_t <= e.host_t < end_t]
    latencies = sorted((e.latency_us or 0) / 1000 for e in inside if e.kind == "R")
    span = end_t - start_t

    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "requests": len(inside),
        "errors": sum(1 for e in inside if e.kind == "E"),
        "rate_per_s": round(len(inside) / span, 2) if span > 0 else None,
        "median_ms": round(statistics.median(latencies), 3) if latencies else None,
        "p99_ms": quantile(0.99),
        "max_ms": latencies[-1] if latencies else None,
    }


def write_csv(path: Path, events: list[LoadEvent], zero_t: float) -> None:
    """The merged series, host times in seconds since `zero_t` (the migration call)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for e in events:
            latency = "" if e.latency_us is None else f"{e.latency_us / 1000:.3f}"
            writer.writerow(
                [f"{e.host_t - zero_t:.4f}", e.side, e.kind, e.seq, f"{e.guest_us / 1e6:.6f}", latency,
                 e.error or ""]
            )  # fmt: skip
