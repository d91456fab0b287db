"""The one measurement hook: every client call produces exactly one `Measurement`, handed to a `Hook`.

locust style: clients know nothing about statistics; whoever wants numbers (locust's `request` event, the
open-model generator, pytest-benchmark, the wire-bytes probe) subscribes a hook.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

from bench.clients._base import RemoteError, TransportError
from targets.core.operations import STREAMED_RESPONSES

__all__ = ["ByteCounter", "Hook", "Measurement", "Meter", "error_name"]


@dataclass(slots=True)
class Measurement:
    """A flat record (loads straight into a DataFrame). Times in seconds; bytes as counted at the socket."""

    operation: str
    protocol: str
    client: str
    started_at: float  # time.time() when the call started (wall clock, for joining with steal windows)
    latency_s: float
    error: str | None = None  # ErrorKind value, or "transport:<reason>", or the exception class name
    request_bytes: int | None = None
    response_bytes: int | None = None
    items: int | None = None  # streamed items (server/bidi streams; batch equivalents count array items)
    ttfi_s: float | None = None  # time to first item
    max_gap_s: float | None = None  # largest inter-item gap
    mean_gap_s: float | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The flat dict written to raw files (the exception object stays in memory only)."""
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(Measurement) if f.name != "exception")
Hook = Callable[[Measurement], None]
ByteCounter = Callable[[], tuple[int, int]]


def error_name(exc: BaseException) -> str:
    """Stable, short error name used in stats (never a URL or a message with ids in it)."""
    if isinstance(exc, RemoteError):
        return exc.kind.value
    if isinstance(exc, TransportError):
        return f"transport:{exc.reason}"
    return type(exc).__name__


class Meter:
    """`with meter.measure("GetBook") as m: ...; m.item()` — times one call and reports it to the hook.

    `byte_counter`, when set (by a wiretap relay), returns cumulative (sent, received) socket bytes, and the
    difference across the call is recorded; calls must then be sequential on that connection.
    """

    def __init__(
        self, protocol: str, client: str, hook: Hook | None = None, byte_counter: ByteCounter | None = None
    ) -> None:
        self.protocol = protocol
        self.client = client
        self.hook = hook
        self.byte_counter = byte_counter

    def measure(self, operation: str) -> _Call:
        return _Call(self, operation)


class _Call:
    __slots__ = ("_bytes0", "_item_times", "_meter", "_start", "_wall", "operation")

    def __init__(self, meter: Meter, operation: str) -> None:
        self._meter = meter
        self.operation = operation
        self._item_times: list[float] = []

    def item(self) -> None:
        """Call once per received stream item (or per array element for batch equivalents)."""
        self._item_times.append(time.perf_counter())

    def items(self, count: int) -> None:
        """All items arrived at once (batch equivalents): one timestamp for all of them."""
        now = time.perf_counter()
        self._item_times.extend([now] * count)

    def __enter__(self) -> _Call:
        counter = self._meter.byte_counter
        self._bytes0 = counter() if counter else (0, 0)
        self._wall = time.time()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        end = time.perf_counter()
        meter = self._meter
        if meter.hook is None or (exc is not None and not isinstance(exc, Exception)):
            return  # no hook, or the call was cut short by a shutdown (GreenletExit, KeyboardInterrupt)
        result = Measurement(
            operation=self.operation,
            protocol=meter.protocol,
            client=meter.client,
            started_at=self._wall,
            latency_s=end - self._start,
            error=error_name(exc) if exc is not None else None,
            exception=exc,
        )
        if meter.byte_counter is not None:
            sent, received = meter.byte_counter()
            result.request_bytes = sent - self._bytes0[0]
            result.response_bytes = received - self._bytes0[1]
        times = self._item_times
        if times or (exc is None and self.operation in STREAMED_RESPONSES):
            result.items = len(times)
            if times:
                result.ttfi_s = times[0] - self._start
                gaps = [b - a for a, b in itertools.pairwise(times)]
                if gaps:
                    result.max_gap_s = max(gaps)
                    result.mean_gap_s = sum(gaps) / len(gaps)
        meter.hook(result)
