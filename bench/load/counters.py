"""The server's own counts, scraped around a window and checked against what the load generator says it sent.

A target started with `--metrics-port` serves `library_calls_total{operation}` and
`library_errors_total{operation,kind}` (targets.metrics). The check is the ground truth of a window: a load
tool can miscount (h2load takes an HTTP 200 carrying a gRPC error for a success), a request can be refused
before it reaches an operation, a pool of unique requests can run out. A window fails the check when, for
any operation, the calls the server served differ from the requests the tool sent by more than could be in
flight at the window's edges, or when the server answered any call with an error.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["CounterCheck", "CounterSnapshot", "ScrapeError", "check_counts", "scrape"]


class ScrapeError(RuntimeError):
    """The target's metrics could not be read (it died, or it was started without --metrics-port)."""


@dataclass(frozen=True)
class CounterSnapshot:
    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)

    def __sub__(self, before: CounterSnapshot) -> CounterSnapshot:
        calls = {op: n - before.calls.get(op, 0) for op, n in self.calls.items()}
        errors = {key: n - before.errors.get(key, 0) for key, n in self.errors.items()}
        return CounterSnapshot(
            {op: n for op, n in calls.items() if n}, {key: n for key, n in errors.items() if n}
        )

    def __add__(self, other: CounterSnapshot) -> CounterSnapshot:
        """Two processes' counts together (each operation is served by one of them)."""
        calls = {op: self.calls.get(op, 0) + other.calls.get(op, 0) for op in {*self.calls, *other.calls}}
        errors = {k: self.errors.get(k, 0) + other.errors.get(k, 0) for k in {*self.errors, *other.errors}}
        return CounterSnapshot(calls, errors)

    def without(self, operations: Iterable[str]) -> CounterSnapshot:
        left = set(operations)
        return CounterSnapshot(
            {op: n for op, n in self.calls.items() if op not in left},
            {key: n for key, n in self.errors.items() if key[0] not in left},
        )

    def record(self) -> dict[str, Any]:
        """Plain JSON: {"calls": {op: n}, "errors": {"op/kind": n}}."""
        return {
            "calls": dict(sorted(self.calls.items())),
            "errors": {f"{op}/{kind}": n for (op, kind), n in sorted(self.errors.items())},
        }


def scrape(address: str, *, timeout_s: float = 5.0) -> CounterSnapshot:
    """The counters at `address` (host:port of the metrics side port) right now."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout_s) as response:
            text = response.read().decode()
    except OSError as exc:
        raise ScrapeError(f"cannot read the target's counters at http://{address}/metrics: {exc}") from exc
    calls: dict[str, int] = {}
    errors: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "library_calls_total":
                calls[sample.labels["operation"]] = int(sample.value)
            elif sample.name == "library_errors_total":
                errors[(sample.labels["operation"], sample.labels["kind"])] = int(sample.value)
    return CounterSnapshot(calls, errors)


@dataclass(frozen=True)
class CounterCheck:
    ok: bool
    reason: str | None  # what disagreed, readable: "GetBook: server served 1,204, the tool sent 1,502"
    served: CounterSnapshot

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, **self.served.record()}


def check_counts(served: CounterSnapshot, sent: dict[str, int], *, in_flight: int) -> CounterCheck:
    """Did the server serve what the tool sent (within `in_flight`), and answer none of it with an error?"""
    problems: list[str] = []
    for operation in sorted(set(sent) | set(served.calls)):
        server, tool = served.calls.get(operation, 0), sent.get(operation, 0)
        if abs(server - tool) > in_flight:
            problems.append(f"{operation}: the server served {server:,}, the load tool sent {tool:,}")
    for (operation, kind), count in sorted(served.errors.items()):
        problems.append(f"{operation}: the server answered {count:,} with {kind}")
    return CounterCheck(not problems, "; ".join(problems) or None, served)
