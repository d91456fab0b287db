"""What a native tool sends for each operation of a scenario: pools of requests captured from the clients.

A pool is made by running the scenario's own workload (bench.load.workload) against a capturing client
(bench.clients.wire_requests), so ids rotate, ISBNs and e-mails are unique, and bodies are exactly what the
Python clients send. Reads cycle through their pool; writes that must be unique (AddBook, AddUser,
BulkAddBooks) use each request once, so their pool is sized from the number of requests a window can send.

Operations that need the answer of an earlier call (the loan a ReturnLoan returns, the book a DeleteBook
deletes, the copies a CreateLoan takes) are python-only: `PYTHON_ONLY` says why. UpdateLoanStatus is sent
natively as a repeatable update (seeded open loans marked OVERDUE again and again), where the Python
workload returns loans it created: the server does the same work per item, but on other records.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.clients import LibraryClient
from bench.clients.wire_requests import WireRequest, capture, captured, capturing_client
from bench.load.scenarios import Scenario
from bench.load.workload import Workload
from targets.core import FixedClock, LoanStatus, StatusUpdate, build_service

__all__ = ["PYTHON_ONLY", "UNIQUE", "NativeUnsupported", "RequestPool", "native_operations", "request_pool"]

# Operation -> why no native tool can send it (each request depends on the answer to an earlier one).
PYTHON_ONLY: dict[str, str] = {
    "CreateLoan": "each loan takes a copy: a sustainable run needs its own book and returns what it lends",
    "ReturnLoan": "needs the id of a loan the same client created just before",
    "DeleteBook": "needs the id of a book the same client created just before",
}
# Operations whose every request must differ (duplicate ISBNs and e-mails are refused).
UNIQUE = frozenset({"AddBook", "AddUser", "BulkAddBooks"})
_READ_VARIANTS = 256  # rotating ids: enough variety that no cache effect shows, few enough to build fast


class NativeUnsupported(ValueError):
    """A scenario names an operation no native tool can send; the message says which and why."""


@dataclass(frozen=True)
class RequestPool:
    operation: str
    weight: int
    requests: tuple[WireRequest, ...]
    unique: bool  # each request may be sent once (a window that needs more fails its counter check)


def native_operations(scenario: Scenario) -> list[str]:
    """The scenario's operations, or NativeUnsupported naming the python-only ones."""
    blocked = [op for op in scenario.operations if op in PYTHON_ONLY]
    if blocked:
        reasons = "; ".join(f"{op}: {PYTHON_ONLY[op]}" for op in blocked)
        raise NativeUnsupported(
            f"scenario {scenario.name!r} needs python-only operations ({reasons}); use the python engine"
        )
    return list(scenario.operations)


@functools.cache
def _open_loans(dataset: str, seed: int) -> tuple[int, ...]:
    """Seeded loans whose copy is still out (ACTIVE or LOST in the store): OVERDUE may be set on the
    ACTIVE ones any number of times, whatever the clock."""
    service = build_service(dataset, clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), seed=seed)
    return tuple(loan.id for loan in service.store.loans.values() if loan.status is LoanStatus.ACTIVE)


def _repeatable_status_updates(protocol: str, scenario: Scenario, count: int, seed: int) -> list[WireRequest]:
    loans = _open_loans(scenario.dataset, 42)
    if len(loans) < scenario.update_batch:
        raise NativeUnsupported(f"dataset {scenario.dataset!r} has too few open loans for UpdateLoanStatus")
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        updates = [StatusUpdate(loan_id, "OVERDUE") for loan_id in rng.sample(loans, scenario.update_batch)]

        def send(client: LibraryClient, updates: list[StatusUpdate] = updates) -> object:
            return client.update_loan_status(updates)

        requests.append(capture(protocol, send))
    return requests


def request_pool(
    protocol: str, scenario: Scenario, operation: str, *, count: int | None = None, seed: int = 0
) -> RequestPool:
    """`count` requests for `operation` (reads: a fixed rotation; unique writes: `count` is required)."""
    if operation in PYTHON_ONLY:
        raise NativeUnsupported(f"{operation} is python-only: {PYTHON_ONLY[operation]}")
    unique = operation in UNIQUE
    if count is None:
        if unique:
            raise ValueError(f"{operation}: a pool of unique requests needs a size")
        count = _READ_VARIANTS
    if operation == "UpdateLoanStatus":
        requests = _repeatable_status_updates(protocol, scenario, count, seed)
    else:
        # The scenario's own workload, one step per request; slot 8 keeps its ISBN/e-mail space apart from
        # the Python engine's users and the wire-bytes pass.
        requests = capture_workload(protocol, scenario, operation, count, seed)
    return RequestPool(operation, scenario.weights[operation], tuple(requests), unique)


def capture_workload(
    protocol: str, scenario: Scenario, operation: str, count: int, seed: int
) -> list[WireRequest]:
    """`count` steps of the scenario's workload for `operation`, captured instead of sent."""
    workload = Workload(capturing_client(protocol), scenario, seed=seed, slot=6)
    return [captured(lambda: workload.run(operation)) for _ in range(count)]
