"""Deterministic seeded datasets: the same name + seed + clock gives the same records on every target."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from targets.core.clock import FixedClock
from targets.core.models import LoanStatus, NewBook, NewUser, StatusUpdate
from targets.core.service import LibraryService

__all__ = ["DATASETS", "DatasetSpec", "category_name", "dataset_names", "isbn13", "seed_service"]


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
