"""Deterministic seeded datasets: the same name + seed + clock gives the same records on every target."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from targets.core.clock import FixedClock
from targets.core.models import LoanStatus, NewBook, NewUser, StatusUpdate
from targets.core.service import LibraryService

__all__ = [
    "DATASETS",
    "DOCUMENT_FORMAT",
    "DatasetSpec",
    "category_name",
    "dataset_document",
    "dataset_names",
    "isbn13",
    "seed_service",
]


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Sizes of a dataset. Category `size-N` holds exactly N books, so scenarios stream 1/100/1,000 items."""

    name: str
    category_sizes: tuple[int, ...]
    users: int
    loans: int
    overdue_fraction: float = 0.25
    returned_fraction: float = 0.25


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("tiny", category_sizes=(1, 10), users=5, loans=8),
        DatasetSpec("small", category_sizes=(1, 100, 1000), users=100, loans=200),
        DatasetSpec("large", category_sizes=(1, 100, 1000, 10_000), users=10_000, loans=20_000),
    )
}

_WORDS = (
    "silent river night garden winter empire machine secret shadow light ocean stone city house fire "
    "glass journey memory island forest letter summer north station paper"
).split()
_FIRST = "Ada Alan Grace Edsger Barbara Donald Frances Ken Margaret Dennis Leslie Radia Niklaus Tony".split()
_LASTS = (
    "Lovelace Turing Hopper Dijkstra Liskov Knuth Allen Thompson Hamilton Ritchie Lamport Perlman Wirth Hoare"
).split()


def dataset_names() -> list[str]:
    return list(DATASETS)


def category_name(size: int) -> str:
    return f"size-{size}"


def isbn13(serial: int) -> str:
    """A valid ISBN-13 in the 979 range built from a serial number (unique per serial)."""
    body = f"979{serial:09d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def seed_service(service: LibraryService, spec: DatasetSpec, *, seed: int = 42) -> None:
    """Fill an empty service with the dataset, through the service's own operations.

    Loans are created at instants before the service clock's "now", so that about `overdue_fraction` of them
    are past due at "now"; with a fixed clock every target started with the same seed holds the same records.
    """
    rng = random.Random(seed)
    now = service.clock.now()
    serial = 0
    for size in spec.category_sizes:
        category = category_name(size)
        books = []
        for _ in range(size):
            serial += 1
            books.append(
                NewBook(
                    isbn=isbn13(serial),
                    title=" ".join(rng.choice(_WORDS).capitalize() for _ in range(rng.randint(1, 4))),
                    author=f"{rng.choice(_FIRST)} {rng.choice(_LASTS)}",
                    category=category,
                    year=rng.randint(1900, 2025),
                    copies=rng.randint(2, 6),
                )
            )
        service.bulk_add_books(books)
    for i in range(1, spec.users + 1):
        service.add_user(
            NewUser(name=f"{rng.choice(_FIRST)} {rng.choice(_LASTS)}", email=f"user{i}@example.org")
        )

    book_ids = sorted(service.store.books)
    user_ids = sorted(service.store.users)
    for i in range(spec.loans):
        overdue = rng.random() < spec.overdue_fraction
        # Overdue loans started 15..60 days ago with a 14-day term; the others started 0..13 days ago.
        age_days = rng.randint(15, 60) if overdue else rng.randint(0, 13)
        started = now - timedelta(days=age_days, seconds=i)
        book_id = rng.choice(book_ids)
        if service.store.books[book_id].available_copies == 0:
            continue
        at_start = LibraryService(service.store, FixedClock(started))
        loan = at_start.create_loan(rng.choice(user_ids), book_id, days=14)
        if not overdue and rng.random() < spec.returned_fraction:
            at_return = LibraryService(service.store, FixedClock(started + timedelta(hours=1)))
            list(at_return.update_loan_status([StatusUpdate(loan.id, LoanStatus.RETURNED.value)]))


# ---- the records as a document, for implementations that do not share this core ---------------------------
DOCUMENT_FORMAT = "library-dataset/1"


def _instant(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z and microseconds: the REST wire form, exact to the stored microsecond."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dataset_document(service: LibraryService, *, name: str, seed: int) -> dict[str, Any]:
    """Every stored record of `service`, as JSON-ready data (format `library-dataset/1`, README).

    Loans carry their *stored* status (ACTIVE, RETURNED, OVERDUE, LOST): an ACTIVE loan past its due date
    reads as OVERDUE by the serving implementation's clock, as in the core. `now` is the clock's reading when
    the records were made; `next_ids` are the ids the next created records get.
    """
    store = service.store
    with store.lock:
        return {
            "format": DOCUMENT_FORMAT,
            "dataset": name,
            "seed": seed,
            "now": _instant(service.clock.now()),
            "books": [dataclasses.asdict(book) for book in store.books.values()],
            "users": [dataclasses.asdict(user) for user in store.users.values()],
            "loans": [
                {
                    "id": loan.id,
                    "user_id": loan.user_id,
                    "book_id": loan.book_id,
                    "loaned_at": _instant(loan.loaned_at),
                    "due_at": _instant(loan.due_at),
                    "returned_at": _instant(loan.returned_at),
                    "status": loan.status.value,
                }
                for loan in store.loans.values()
            ],
            "next_ids": {
                "book": max(store.books, default=0) + 1,
                "user": max(store.users, default=0) + 1,
                "loan": max(store.loans, default=0) + 1,
            },
        }
