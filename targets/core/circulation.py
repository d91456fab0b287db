"""The split topology's two services from one core: books (A) and circulation (B, users and loans).

Service A is a plain `LibraryService` that holds the catalogue and lends copies out through reservations
(`reserve_copy` / `release_copy`). Service B holds users and loans and takes a copy in A for every loan it
stores, through a `Catalogue` (in B's process, a client of A over the protocol chosen at start-up). The
distributed rules (docs/ARCHITECTURE.md, "The split topology"):

- CreateLoan reserves a copy in A before the loan is stored; if storing fails, the reservation is released
  (compensation) and the storing error is the answer.
- A CreateLoan with an idempotency key reserves under a key derived from it, so a retried request never
  takes a second copy; a request without one gets a fresh key of its own.
- ReturnLoan, and UpdateLoanStatus to RETURNED, release the copy in A before the loan is closed; releasing
  is idempotent, so a retry after a failure is safe.
- A unreachable: B answers Unavailable (the catalogue's job to say so), never waits past its deadline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import ClassVar, Protocol

from targets.core.clock import Clock
from targets.core.errors import FailedPrecondition, LibraryError, Unavailable
from targets.core.models import Book, Loan, LoanStatus, StatusUpdate
from targets.core.service import DEFAULT_LOAN_DAYS, LibraryService, validate_idempotency_key
from targets.core.store import LibraryStore
from targets.core.validation import validate_days, validate_id

__all__ = [
    "Catalogue",
    "CirculationService",
    "books_service",
    "circulation_service",
    "reservation_key_for_request",
    "seeded_reservation_key",
]

log = logging.getLogger("targets.circulation")


class Catalogue(Protocol):
    """What B needs from A. Raises `LibraryError`s: A's own (NotFound, FailedPrecondition) or Unavailable."""

    def reserve_copy(self, book_id: int, key: str) -> Book: ...
    def release_copy(self, book_id: int, key: str) -> Book: ...


def seeded_reservation_key(loan_id: int) -> str:
    """The key under which A holds the copy of a loan that came with the seeded dataset."""
    return f"loan-{loan_id}"


def reservation_key_for_request(idempotency_key: str | None) -> str:
    """The reservation key of a CreateLoan: derived from its idempotency key, else unique to this request."""
    return f"req:{idempotency_key}" if idempotency_key is not None else f"req:{uuid.uuid4().hex}"


class CirculationService(LibraryService):
    """Users and loans; every copy a loan takes is reserved in the books service through `catalogue`.

    Book operations answer as for an empty catalogue (the gateway sends them to A). Calls to A are made
    without holding the store lock, so B keeps serving while it waits.
    """

    remote_operations: ClassVar[frozenset[str]] = frozenset({"CreateLoan", "ReturnLoan", "UpdateLoanStatus"})

    def __init__(
        self, catalogue: Catalogue, store: LibraryStore | None = None, clock: Clock | None = None
    ) -> None:
        super().__init__(store, clock)
        self.catalogue = catalogue
        # loan id -> the key its copy is reserved under in A (seeded loans use `seeded_reservation_key`)
        self.reservation_keys: dict[int, str] = {}
        self._in_flight: set[str] = set()  # idempotency keys of CreateLoan calls still running
        self._in_flight_lock = threading.Lock()

    # ---- loans -------------------------------------------------------------------------------------
    def create_loan(
        self, user_id: int, book_id: int, days: int = DEFAULT_LOAN_DAYS, idempotency_key: str | None = None
    ) -> Loan:
        validate_id("user_id", user_id)
        validate_id("book_id", book_id)
        validate_days(days)
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
        with self.store.lock:
            if idempotency_key is not None:
                replayed = self._replayed_loan(idempotency_key, user_id, book_id, days)
                if replayed is not None:
                    return replayed
            self.get_user(user_id)  # an unknown user takes no copy
        with self._claim(idempotency_key):
            key = reservation_key_for_request(idempotency_key)
            try:
                self.catalogue.reserve_copy(book_id, key)
            except Unavailable:
                if idempotency_key is None:
                    # Nobody can retry this request with the same key: give back a copy the lost answer
                    # may have reserved (best effort; with a key, the retry reuses the reservation).
                    self._compensate(book_id, key)
                raise
            try:
                return self._store_loan(user_id, book_id, days, idempotency_key, key)
            except Exception:
                self._compensate(book_id, key)
                raise

    def return_loan(self, loan_id: int) -> Loan:
        validate_id("loan_id", loan_id)
        loan = self.get_loan(loan_id)
        if loan.status is LoanStatus.RETURNED:
            raise FailedPrecondition(f"loan {loan_id} is already returned")
        self._release(loan)
        # A concurrent return may have won meanwhile: the base method re-checks under the lock.
        return super().return_loan(loan_id)

    def _apply_status(self, update: StatusUpdate) -> Loan:
        if update.status == LoanStatus.RETURNED.value:
            loan = self.get_loan(update.loan_id)
            if loan.status is not LoanStatus.RETURNED:
                self._release(loan)
        return super()._apply_status(update)

    def _close_loan(self, loan: Loan) -> Loan:
        # The copy went back to A in `_release`; B holds no books.
        closed = dataclasses.replace(loan, status=LoanStatus.RETURNED, returned_at=self.clock.now())
        self.store.put_loan(closed)
        return closed

    # ---- helpers -----------------------------------------------------------------------------------
    def _store_loan(
        self, user_id: int, book_id: int, days: int, idempotency_key: str | None, reservation_key: str
    ) -> Loan:
        with self.store.lock:
            loan = self._store_new_loan(user_id, book_id, days, idempotency_key)
            self.reservation_keys[loan.id] = reservation_key
            return loan

    def _release(self, loan: Loan) -> None:
        key = self.reservation_keys.get(loan.id, seeded_reservation_key(loan.id))
        self.catalogue.release_copy(loan.book_id, key)

    def _compensate(self, book_id: int, key: str) -> None:
        try:
            self.catalogue.release_copy(book_id, key)
        except LibraryError as exc:
            # The reservation stays held in A; say which one, so an operator can release it by hand.
            log.error("could not release copy of book %d reserved under %r: %s", book_id, key, exc.message)

    @contextlib.contextmanager
    def _claim(self, idempotency_key: str | None) -> Iterator[None]:
        """Hold an idempotency key for one CreateLoan: a concurrent duplicate is refused, not raced."""
        if idempotency_key is None:
            yield
            return
        with self._in_flight_lock:
            if idempotency_key in self._in_flight:
                raise FailedPrecondition(
                    f"a loan request with idempotency key {idempotency_key!r} is still in progress"
                )
            self._in_flight.add(idempotency_key)
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(idempotency_key)


# ---- the two roles from one seeded dataset -------------------------------------------------------------
def books_service(seeded: LibraryService) -> LibraryService:
    """Service A from a fully seeded service: its books, with every open loan's copy held as a reservation.

    Users and loans are dropped; A's records equal the single-process target's books (same ids, same
    available copies).
    """
    store = seeded.store
    with store.lock:
        for loan_id in store.open_loan_ids:
            store.reservations[seeded_reservation_key(loan_id)] = store.loans[loan_id].book_id
        store.users.clear()
        store.user_ids_by_email.clear()
        store.loans.clear()
        store.open_loan_ids.clear()
    return seeded


def circulation_service(seeded: LibraryService, catalogue: Catalogue) -> CirculationService:
    """Service B from a fully seeded service (seeded the same way as A's): its users and loans, no books."""
    store = seeded.store
    with store.lock:
        store.books.clear()
        store.book_ids_by_isbn.clear()
        store.book_ids_by_category.clear()
    return CirculationService(catalogue, store, seeded.clock)
