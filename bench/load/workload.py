"""What a simulated user does: pick an operation by scenario weight and call it with valid arguments.

Shared by the locust users, the open-model generator and the micro-benchmarks, so every load model issues the
same mix. Arguments keep the run sustainable: reads use seeded ids, writes use the user's own records (own
book with many copies for loans, unique ISBNs and e-mails), so a long run does not drift into errors.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections.abc import Callable

from bench.clients._base import LibraryClient
from bench.load.scenarios import Scenario
from targets.core import DATASETS, FixedClock, NewBook, NewUser, StatusUpdate, build_service, isbn13

__all__ = ["SeededIds", "Workload", "seeded_ids"]

_instances = itertools.count()
# ISBN serials: seeded books use < 10^5 and conformance tests 9*10^5.., so load starts at 10^8.
_SERIAL_BASE = 100_000_000


class SeededIds:
    def __init__(self, books: int, users: int, loans: int) -> None:
        self.books, self.users, self.loans = books, users, loans


@functools.cache
def seeded_ids(dataset: str) -> SeededIds:
    """How many records of each kind a target seeds (ids are 1..n), computed by seeding in-process."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}")
    from datetime import UTC, datetime

    service = build_service(dataset, clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    counts = service.counts()
    return SeededIds(counts["books"], counts["users"], counts["loans"])


class Workload:
    """One simulated user of one client. Not thread-safe: one per greenlet/thread, like the client."""

    LOAN_COPIES = 10_000

    def __init__(
        self, client: LibraryClient, scenario: Scenario, *, seed: int = 0, slot: int | None = None
    ) -> None:
        self.client = client
        self.scenario = scenario
        instance = next(_instances)
        # Distinct ISBN/e-mail spaces per process slot and per workload instance: no duplicates, ever.
        process_slot = (slot if slot is not None else os.getpid()) % 9
        self._serials = itertools.count(_SERIAL_BASE * (1 + process_slot) + (instance % 1000) * 100_000)
        self._tag = f"p{process_slot}i{instance}"
        self.rng = random.Random(f"{seed}:{process_slot}:{instance}")
        self.ids = seeded_ids(scenario.dataset)
        self._operations = scenario.operations
        self._weights = [scenario.weights[op] for op in self._operations]
        self._own_book: int | None = None
        self._own_user: int | None = None
        self._open_loans: list[int] = []
        self._spare_books: list[int] = []
        self._counter = itertools.count()
        self._run: dict[str, Callable[[], object]] = {
            "GetBook": lambda: client.get_book(self.rng.randint(1, self.ids.books)),
            "GetUser": lambda: client.get_user(self.rng.randint(1, self.ids.users)),
            "GetLoan": lambda: client.get_loan(self.rng.randint(1, max(1, self.ids.loans))),
            "AddBook": self._add_book,
            "DeleteBook": self._delete_book,
            "AddUser": self._add_user,
            "CreateLoan": self._create_loan,
            "ReturnLoan": self._return_loan,
            "ListBooksByCategory": lambda: client.list_books_by_category(scenario.list_category),
            "GetOverdueLoans": client.get_overdue_loans,
            "BulkAddBooks": lambda: client.bulk_add_books(
                [self._new_book() for _ in range(scenario.bulk_size)]
            ),
            "UpdateLoanStatus": self._update_status,
        }

    def next_operation(self) -> str:
        return self.rng.choices(self._operations, self._weights)[0]

    def run(self, operation: str) -> None:
        """Call one operation (setup calls it needs, e.g. a loan to return, report under their own name)."""
        self._run[operation]()

    def step(self) -> str:
        operation = self.next_operation()
        self.run(operation)
        return operation

    # ---- write operations with their own records ----------------------------------------------------
    def _new_book(self, copies: int = 1) -> NewBook:
        serial = next(self._serials)
        return NewBook(
            isbn=isbn13(serial),
            title=f"Load test book {serial}",
            author="Load Generator",
            category=f"load-{self._tag}",
            year=2000 + serial % 26,
            copies=copies,
        )

    def _add_book(self) -> None:
        self._spare_books.append(self.client.add_book(self._new_book()).id)

    def _delete_book(self) -> None:
        if not self._spare_books:
            self._add_book()
        self.client.delete_book(self._spare_books.pop())

    def _add_user(self) -> None:
        n = next(self._counter)
        self.client.add_user(
            NewUser(name=f"Load User {self._tag}-{n}", email=f"{self._tag}-{n}@load.example")
        )

    def _loan_book(self) -> int:
        if self._own_book is None:
            self._own_book = self.client.add_book(self._new_book(copies=self.LOAN_COPIES)).id
        return self._own_book

    def _create_loan(self) -> None:
        book = self._loan_book()
        user = self.rng.randint(1, self.ids.users)
        self._open_loans.append(self.client.create_loan(user, book).id)

    def _return_loan(self) -> None:
        if not self._open_loans:
            self._create_loan()
        self.client.return_loan(self._open_loans.pop(0))

    def _update_status(self) -> None:
        batch = self.scenario.update_batch
        while len(self._open_loans) < batch:
            self._create_loan()
        # Return the oldest loans through the bidirectional call: sustainable (copies come back).
        chosen, self._open_loans = self._open_loans[:batch], self._open_loans[batch:]
        self.client.update_loan_status([StatusUpdate(loan_id, "RETURNED") for loan_id in chosen])
