"""Per-operation aggregates of client measurements: HdrHistograms (µs), counts, errors, bytes, stream timing.

Histograms keep full latency resolution (locust's own stats round to whole milliseconds, too coarse for
sub-millisecond gRPC calls), merge across processes, and are stored encoded in the raw files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.clients.measure import Measurement

__all__ = ["OpStats", "Recorder", "new_histogram"]

# 1 µs .. 100 s at 3 significant digits: enough for a loopback call and for a stalled one.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 100_000_000, 3


SUMMARY_PERCENTILES = {"50": 50.0, "90": 90.0, "99": 99.0, "999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def _us(seconds: float) -> int:
    return min(_HIGHEST_US, max(_LOWEST_US, round(seconds * 1e6)))


@dataclass
class OpStats:
    latency: HdrHistogram = field(default_factory=new_histogram)
    ttfi: HdrHistogram = field(default_factory=new_histogram)
    requests: int = 0
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    request_bytes: int = 0
    response_bytes: int = 0
    bytes_samples: int = 0
    items: int = 0
    max_gap_s: float = 0.0

    def add(self, m: Measurement, latency_s: float | None = None) -> None:
        self.requests += 1
        self.latency.record_value(_us(m.latency_s if latency_s is None else latency_s))
        if m.error is not None:
            self.failures += 1
            self.errors[m.error] += 1
        if m.request_bytes is not None and m.response_bytes is not None:
            self.request_bytes += m.request_bytes
            self.response_bytes += m.response_bytes
            self.bytes_samples += 1
        if m.items is not None:
            self.items += m.items
        if m.ttfi_s is not None:
            self.ttfi.record_value(_us(m.ttfi_s))
        if m.max_gap_s is not None:
            self.max_gap_s = max(self.max_gap_s, m.max_gap_s)

    def merge(self, other: OpStats) -> None:
        self.latency.add(other.latency)
        self.ttfi.add(other.ttfi)
        self.requests += other.requests
        self.failures += other.failures
        self.errors.update(other.errors)
        self.request_bytes += other.request_bytes
        self.response_bytes += other.response_bytes
        self.bytes_samples += other.bytes_samples
        self.items += other.items
        self.max_gap_s = max(self.max_gap_s, other.max_gap_s)

    def summary(self) -> dict[str, float | None]:
        """Percentiles computed once when the raw file is written (decoding histograms later is slow)."""
        latency, ttfi = self.latency, self.ttfi
        has_ttfi = ttfi.get_total_count() > 0
        out: dict[str, float | None] = {
            f"p{name}": float(latency.get_value_at_percentile(q)) for name, q in SUMMARY_PERCENTILES.items()
        }
        out["mean"] = float(latency.get_mean_value())
        out["max"] = float(latency.get_max_value())
        out["ttfi_p50"] = float(ttfi.get_value_at_percentile(50)) if has_ttfi else None
        out["ttfi_p99"] = float(ttfi.get_value_at_percentile(99)) if has_ttfi else None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "latency_hdr": self.latency.encode().decode(),
            "ttfi_hdr": self.ttfi.encode().decode() if self.ttfi.get_total_count() else None,
            "requests": self.requests,
            "failures": self.failures,
            "errors": dict(self.errors),
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "bytes_samples": self.bytes_samples,
            "items": self.items,
            "max_gap_s": self.max_gap_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpStats:
        stats = cls(
            requests=data["requests"],
            failures=data["failures"],
            errors=Counter(data["errors"]),
            request_bytes=data["request_bytes"],
            response_bytes=data["response_bytes"],
            bytes_samples=data["bytes_samples"],
            items=data["items"],
            max_gap_s=data["max_gap_s"],
        )
        stats.latency = HdrHistogram.decode(data["latency_hdr"].encode())
        if data.get("ttfi_hdr"):
            stats.ttfi = HdrHistogram.decode(data["ttfi_hdr"].encode())
        return stats


class Recorder:
    """A hook target: `recorder.add(m)`; `reset()` returns {operation: OpStats} since the last reset."""

    def __init__(self) -> None:
        self.ops: dict[str, OpStats] = {}
        self.enabled = True

    def add(self, m: Measurement) -> None:
        if self.enabled:
            stats = self.ops.get(m.operation)
            if stats is None:
                stats = self.ops[m.operation] = OpStats()
            stats.add(m)

    def listen(self, environment: Any) -> None:
        """Record every call of a locust environment's users (the measurement travels in the request
        event's context; the first-item events carry none)."""

        def on_request(context: dict[str, Any] | None = None, **_: Any) -> None:
            measurement = (context or {}).get("measurement")
            if measurement is not None:
                self.add(measurement)

        environment.events.request.add_listener(on_request)

    def reset(self) -> dict[str, OpStats]:
        ops, self.ops = self.ops, {}
        return ops

    @staticmethod
    def dump(ops: dict[str, OpStats]) -> dict[str, Any]:
        return {op: stats.to_json() for op, stats in sorted(ops.items())}

    @staticmethod
    def load(data: dict[str, Any]) -> dict[str, OpStats]:
        return {op: OpStats.from_json(stats) for op, stats in data.items()}

    @staticmethod
    def merge(parts: list[dict[str, OpStats]]) -> dict[str, OpStats]:
        merged: dict[str, OpStats] = {}
        for part in parts:
            for op, stats in part.items():
                merged.setdefault(op, OpStats()).merge(stats)
        return merged
