"""The one measurement hook: every client call produces exactly one `Measurement`, handed to a `Hook`.

locust style: clients know nothing about statistics; whoever wants numbers (locust's `request` event, the
open-model generator, pytest-benchmark, the wire-bytes probe) subscribes a hook.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

from bench.clients._base import RemoteError, TransportError
from targets.core.operations import STREAMED_RESPONSES

__all__ = [
    "SERVER_TIMING",
    "ByteCounter",
    "Hook",
    "Measurement",
    "Meter",
    "error_name",
    "parse_server_timing",
]

# The HTTP response header (W3C Server Timing) and, lower-cased, the gRPC trailing metadata key in which a
# server reports its own timings: `name;dur=<milliseconds>` entries separated by commas.
SERVER_TIMING = "Server-Timing"


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
    # The server's own timings of this call (metric -> seconds), from its Server-Timing header or trailing
    # metadata; None unless the client was asked for them (`server_timing=True`) and the server sent some.
    server_timing: dict[str, float] | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The flat dict written to raw files (the exception object stays in memory only)."""
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(Measurement) if f.name != "exception")
Hook = Callable[[Measurement], None]
ByteCounter = Callable[[], tuple[int, int]]


def parse_server_timing(value: str | None) -> dict[str, float] | None:
    """`total;dur=1.2, books;desc="x";dur=0.5` -> {"total": 0.0012, "books": 0.0005} (seconds).

    Entries without a numeric `dur` are skipped; None when nothing usable is there (or no header at all).
    """
    if not value:
        return None
    timings: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key.strip().lower() == "dur":
                with contextlib.suppress(ValueError):
                    timings[name] = float(number.strip().strip('"')) / 1000.0
                break
    return timings or None


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
    `server_timing`, when True, tells the client to read the server's own timings of each call (a header or
    trailing metadata: a little work per call, so only when asked).
    """

    def __init__(
        self,
        protocol: str,
        client: str,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        server_timing: bool = False,
    ) -> None:
        self.protocol = protocol
        self.client = client
        self.hook = hook
        self.byte_counter = byte_counter
        self.server_timing = server_timing

    def measure(self, operation: str) -> _Call:
        return _Call(self, operation)


class _Call:
    __slots__ = ("_bytes0", "_item_times", "_meter", "_server_timing", "_start", "_wall", "operation")

    def __init__(self, meter: Meter, operation: str) -> None:
        self._meter = meter
        self.operation = operation
        self._item_times: list[float] = []
        self._server_timing: dict[str, float] | None = None

    def server_timing(self, value: str | None) -> None:
        """The server's Server-Timing header (or trailing metadata value) of this call, if it sent one."""
        self._server_timing = parse_server_timing(value)

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
            server_timing=self._server_timing,
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
