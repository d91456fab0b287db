"""Per-request timings of a split-topology service, reported to its caller as Server-Timing entries.

A service starts a `Timings` when a request arrives (the server wrappers in `topology.server_timing` do it);
every call it makes to another service adds the time it waited (`wait`) and what that service reported of
itself (`reported`, nested names: `books.total`). The caller gets, in milliseconds:

    total                      this service's time from request to response headers
    own                        total minus the time spent waiting on other services
    <service>                  time waiting on that service (e.g. `books`, `circulation`)
    <service>.<metric>         that service's own entries, as it reported them (e.g. `books.own`)

The `Timings` of a request lives in a context variable: worker threads that run the request's calls get
a copy of the context, so they add to the same object.
"""

from __future__ import annotations

import contextvars
import threading
import time

__all__ = ["Timings", "current", "start"]

_CURRENT: contextvars.ContextVar[Timings | None] = contextvars.ContextVar("split_timings", default=None)


class Timings:
    """What one request spent: its start, and per other service the wait and that service's own figures."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.waits: dict[str, float] = {}
        self.reported: dict[str, float] = {}
        self._lock = threading.Lock()  # calls of one request may run on several threads

    def wait(self, service: str, seconds: float) -> None:
        with self._lock:
            self.waits[service] = self.waits.get(service, 0.0) + seconds

    def report(self, service: str, timings: dict[str, float]) -> None:
        with self._lock:
            for name, seconds in timings.items():
                key = f"{service}.{name}"
                self.reported[key] = self.reported.get(key, 0.0) + seconds

    def header(self) -> str:
        """The Server-Timing value as of now (call it when the response headers go out)."""
        total = time.perf_counter() - self.started
        with self._lock:
            waits = dict(self.waits)
            reported = dict(self.reported)
        entries = {"total": total, "own": max(0.0, total - sum(waits.values())), **waits, **reported}
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in entries.items())


def start() -> Timings:
    """A fresh `Timings` for the request being handled in this context."""
    timings = Timings()
    _CURRENT.set(timings)
    return timings


def current() -> Timings | None:
    """The request's `Timings`, or None outside a timed request (e.g. the gateway's start-up probe)."""
    return _CURRENT.get()
