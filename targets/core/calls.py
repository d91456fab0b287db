"""Calls and errors per operation: the server-side ground truth a benchmark checks its own counts against.

Every adapter marks where a request for an operation reaches the core, once per call (a stream counts once):

    with service.calls.call("GetBook") as call:   # counted on entry
        ...                                        # a LibraryError escaping is counted as its kind
        call.fail(ErrorKind.NOT_FOUND)             # or mapped by the adapter itself (e.g. a gRPC abort)

Anything else escaping counts as `Internal`. Requests an adapter rejects before it knows the operation (a body
over the size limit, an unknown route) are not calls of any operation. `inject_delay_s` makes every call
slower by busy-waiting that long on entry: a deliberately slowed target, for tests and demonstrations.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType

from targets.core.errors import ErrorKind, LibraryError
from targets.core.operations import INTERNAL_OPERATIONS, OPERATIONS

# The public operations and the internal ones a split topology's books service serves (ReserveCopy, ...).
_COUNTED = (*OPERATIONS, *INTERNAL_OPERATIONS)

__all__ = ["CallCounters", "OperationCall"]


class OperationCall:
    """One call in progress; `fail(kind)` records how it ended when the adapter maps the error itself."""

    __slots__ = ("_counters", "_failed", "operation")

    def __init__(self, counters: CallCounters, operation: str) -> None:
        self._counters = counters
        self.operation = operation
        self._failed = False

    def fail(self, kind: ErrorKind | str) -> None:
        if not self._failed:
            self._failed = True
            self._counters._add_error(self.operation, kind.value if isinstance(kind, ErrorKind) else kind)

    def __enter__(self) -> OperationCall:
        self._counters._enter(self.operation)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or self._failed:
            return
        if isinstance(exc, LibraryError):
            self.fail(exc.kind)
        elif isinstance(exc, Exception):  # not on shutdown (CancelledError, GeneratorExit are BaseException)
            self.fail(ErrorKind.INTERNAL)


class CallCounters:
    """Per-operation call and error counts of one service (thread-safe: the SOAP server is threaded)."""

    def __init__(self, *, inject_delay_s: float = 0.0) -> None:
        if inject_delay_s < 0:
            raise ValueError(f"inject_delay_s must not be negative, got {inject_delay_s}")
        self.inject_delay_s = inject_delay_s
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._errors: Counter[tuple[str, str]] = Counter()

    def call(self, operation: str) -> OperationCall:
        if operation not in _COUNTED:
            raise ValueError(f"{operation!r} is not an operation of the contract")
        return OperationCall(self, operation)

    def _enter(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1
        if self.inject_delay_s:
            # Busy-wait, not sleep: a slower implementation costs CPU, so capacity drops as well as latency.
            deadline = time.perf_counter() + self.inject_delay_s
            while time.perf_counter() < deadline:
                pass

    def _add_error(self, operation: str, kind: str) -> None:
        with self._lock:
            self._errors[(operation, kind)] += 1

    def snapshot(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        """(calls by operation, errors by (operation, kind)); every operation is present in the calls."""
        with self._lock:
            calls = {name: self._calls.get(name, 0) for name in _COUNTED}
            return calls, dict(self._errors)
