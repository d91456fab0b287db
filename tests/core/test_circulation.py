"""Copy reservations, idempotency keys and the circulation service's distributed rules, in one process.

The books service here is a real `LibraryService` (it implements the `Catalogue` B calls); the same rules
over the three protocols, between real processes, are in tests/topology.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from targets.core import (
    Book,
    ErrorKind,
    FailedPrecondition,
    FixedClock,
    InvalidArgument,
    LibraryError,
    LibraryService,
    LoanStatus,
    NewBook,
    NotFound,
    StatusUpdate,
    Unavailable,
    build_service,
    error_for_kind,
)
from targets.core.circulation import (
    CirculationService,
    books_service,
    circulation_service,
    seeded_reservation_key,
)
from targets.core.store import LibraryStore

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def seeded() -> LibraryService:
    return build_service("tiny", clock=FixedClock(NOW))


@pytest.fixture
def pair() -> tuple[LibraryService, CirculationService]:
    """A and B split from the same seeded dataset, B calling A in-process."""
    books = books_service(seeded())
    return books, circulation_service(seeded(), books)


def free_book(books: LibraryService) -> Book:
    return next(b for b in books.store.books.values() if b.available_copies >= 2)


# ---- reservations on the books service ----------------------------------------------------------------
def test_reserve_takes_one_copy_once_per_key() -> None:
    service = seeded()
    book = free_book(service)
    first = service.reserve_copy(book.id, "k-1")
    again = service.reserve_copy(book.id, "k-1")
    assert first.available_copies == again.available_copies == book.available_copies - 1
    assert service.reserve_copy(book.id, "k-2").available_copies == book.available_copies - 2


def test_release_gives_back_once_and_is_idempotent() -> None:
    service = seeded()
    book = free_book(service)
    service.reserve_copy(book.id, "k")
    assert service.release_copy(book.id, "k").available_copies == book.available_copies
    assert service.release_copy(book.id, "k").available_copies == book.available_copies
    assert service.release_copy(book.id, "never-held").available_copies == book.available_copies


def test_reservation_errors() -> None:
    service = seeded()
    book = free_book(service)
    with pytest.raises(NotFound):
        service.reserve_copy(999_999, "k")
    with pytest.raises(InvalidArgument):
        service.reserve_copy(book.id, "")
    with pytest.raises(InvalidArgument):
        service.reserve_copy(book.id, "no spaces allowed")
    with pytest.raises(InvalidArgument):
        service.reserve_copy(book.id, "k" * 161)
    service.reserve_copy(book.id, "k")
    other = next(b for b in service.store.books.values() if b.id != book.id)
    with pytest.raises(FailedPrecondition, match="holds book"):
        service.reserve_copy(other.id, "k")
    empty = service.add_book(NewBook("9780306406157", "Empty", "An Author", "c", 2000, copies=0))
    with pytest.raises(FailedPrecondition, match="no copy available"):
        service.reserve_copy(empty.id, "k-empty")


def test_a_book_with_reserved_copies_cannot_be_deleted() -> None:
    service = seeded()
    book = free_book(service)
    service.reserve_copy(book.id, "k")
    with pytest.raises(FailedPrecondition, match="on loan"):
        service.delete_book(book.id)


# ---- idempotency keys on CreateLoan (every target) ---------------------------------------------------------
def test_create_loan_with_the_same_key_returns_the_first_loan() -> None:
    service = seeded()
    book = free_book(service)
    first = service.create_loan(1, book.id, 14, idempotency_key="order-1")
    assert service.create_loan(1, book.id, 14, idempotency_key="order-1") == first
    assert service.get_book(book.id).available_copies == book.available_copies - 1
    with pytest.raises(FailedPrecondition, match="different loan request"):
        service.create_loan(2, book.id, 14, idempotency_key="order-1")
    with pytest.raises(InvalidArgument):
        service.create_loan(1, book.id, 14, idempotency_key="bad key")


# ---- the circulation service ------------------------------------------------------------------------------
def test_split_roles_hold_the_single_targets_records() -> None:
    single = seeded()
    books = books_service(seeded())
    circulation = circulation_service(seeded(), books)
    assert books.store.books == single.store.books
    assert circulation.store.users == single.store.users and circulation.store.loans == single.store.loans
    assert not books.store.users and not books.store.loans and not circulation.store.books
    held = {key: books.store.reservations[key] for key in books.store.reservations}
    assert held == {
        seeded_reservation_key(i): single.store.loans[i].book_id for i in single.store.open_loan_ids
    }


def test_loan_reserves_and_return_releases(pair: tuple[LibraryService, CirculationService]) -> None:
    books, circulation = pair
    book = free_book(books)
    loan = circulation.create_loan(1, book.id)
    assert books.get_book(book.id).available_copies == book.available_copies - 1
    circulation.return_loan(loan.id)
    assert books.get_book(book.id).available_copies == book.available_copies
    with pytest.raises(FailedPrecondition, match="already returned"):
        circulation.return_loan(loan.id)
    assert books.get_book(book.id).available_copies == book.available_copies


def test_seeded_loan_returned_through_status_update_releases_its_copy(
    pair: tuple[LibraryService, CirculationService],
) -> None:
    books, circulation = pair
    loan_id = next(iter(circulation.store.open_loan_ids))
    book_id = circulation.store.loans[loan_id].book_id
    before = books.get_book(book_id).available_copies
    (lost,) = circulation.update_loan_status([StatusUpdate(loan_id, "LOST")])
    assert lost.status is LoanStatus.LOST and books.get_book(book_id).available_copies == before
    (returned,) = circulation.update_loan_status([StatusUpdate(loan_id, "RETURNED")])
    assert returned.status is LoanStatus.RETURNED and books.get_book(book_id).available_copies == before + 1


def test_unknown_user_or_book_takes_no_copy(pair: tuple[LibraryService, CirculationService]) -> None:
    books, circulation = pair
    book = free_book(books)
    with pytest.raises(NotFound, match="user"):
        circulation.create_loan(999_999, book.id)
    with pytest.raises(NotFound, match="book"):
        circulation.create_loan(1, 999_999)
    assert books.get_book(book.id).available_copies == book.available_copies
    assert len(books.store.reservations) == len(circulation.store.open_loan_ids)


def test_retried_loan_with_the_same_key_reserves_once(
    pair: tuple[LibraryService, CirculationService],
) -> None:
    books, circulation = pair
    book = free_book(books)
    first = circulation.create_loan(1, book.id, idempotency_key="retry-me")
    assert circulation.create_loan(1, book.id, idempotency_key="retry-me") == first
    assert books.get_book(book.id).available_copies == book.available_copies - 1


class FailingStore(LibraryStore):
    """A store whose loan writes fail: the storage failure after a successful reservation."""

    def put_loan(self, loan: object) -> None:
        raise OSError("disk full")


def test_loan_that_cannot_be_stored_releases_its_reservation() -> None:
    books = books_service(seeded())
    circulation = CirculationService(books, FailingStore(), FixedClock(NOW))
    circulation.store.put_user(seeded().get_user(1))
    book = free_book(books)
    reservations = dict(books.store.reservations)
    with pytest.raises(OSError, match="disk full"):
        circulation.create_loan(1, book.id, idempotency_key="k")
    assert books.get_book(book.id).available_copies == book.available_copies
    assert books.store.reservations == reservations


class UnreachableCatalogue:
    """A books service that reserved the copy but whose answer was lost (what a timeout looks like)."""

    def __init__(self, books: LibraryService) -> None:
        self.books = books
        self.released: list[str] = []

    def reserve_copy(self, book_id: int, key: str) -> Book:
        self.books.reserve_copy(book_id, key)
        raise Unavailable("the books service did not answer (timeout)")

    def release_copy(self, book_id: int, key: str) -> Book:
        self.released.append(key)
        return self.books.release_copy(book_id, key)


def test_lost_answer_without_a_key_is_compensated_with_one_it_is_kept_for_the_retry() -> None:
    books = books_service(seeded())
    catalogue = UnreachableCatalogue(books)
    circulation = circulation_service(seeded(), catalogue)
    book = free_book(books)
    with pytest.raises(Unavailable):
        circulation.create_loan(1, book.id)
    assert len(catalogue.released) == 1, "nobody can retry a keyless request: its copy is given back"
    assert books.get_book(book.id).available_copies == book.available_copies
    with pytest.raises(Unavailable):
        circulation.create_loan(1, book.id, idempotency_key="k")
    assert len(catalogue.released) == 1, "a keyed request keeps its reservation for the retry"
    assert books.get_book(book.id).available_copies == book.available_copies - 1
    circulation.catalogue = books  # the books service answers again
    circulation.create_loan(1, book.id, idempotency_key="k")
    assert books.get_book(book.id).available_copies == book.available_copies - 1, "the retry reused it"


def test_a_concurrent_duplicate_is_refused(pair: tuple[LibraryService, CirculationService]) -> None:
    books, circulation = pair
    book = free_book(books)
    entered, leave = threading.Event(), threading.Event()

    class SlowCatalogue:
        def reserve_copy(self, book_id: int, key: str) -> Book:
            entered.set()
            leave.wait(5)
            return books.reserve_copy(book_id, key)

        def release_copy(self, book_id: int, key: str) -> Book:
            return books.release_copy(book_id, key)

    circulation.catalogue = SlowCatalogue()
    first = threading.Thread(
        target=circulation.create_loan, args=(1, book.id), kwargs={"idempotency_key": "d"}
    )
    first.start()
    assert entered.wait(5)
    try:
        with pytest.raises(FailedPrecondition, match="still in progress"):
            circulation.create_loan(1, book.id, idempotency_key="d")
    finally:
        leave.set()
        first.join(5)
    assert books.get_book(book.id).available_copies == book.available_copies - 1


def test_error_for_kind_round_trips_every_kind() -> None:
    for kind in ErrorKind:
        error = error_for_kind(kind, "m")
        assert isinstance(error, LibraryError) and error.kind is kind and error.message == "m"
