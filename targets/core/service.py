"""The library service: every operation of the contract, protocol-free (adapters only translate)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import ClassVar

from targets.core.calls import CallCounters
from targets.core.clock import Clock, SystemClock
from targets.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from targets.core.models import (
    Book,
    BulkAddResult,
    Loan,
    LoanStatus,
    NewBook,
    NewUser,
    StatusUpdate,
    User,
)
from targets.core.store import LibraryStore
from targets.core.validation import (
    LIMITS,
    SETTABLE_STATUSES,
    validate_days,
    validate_id,
    validate_key,
    validate_new_book,
    validate_new_user,
    validate_text,
)

__all__ = [
    "DEFAULT_LOAN_DAYS",
    "LibraryService",
    "check_batch_index",
    "prepare_books",
    "settable_status",
    "validate_idempotency_key",
]

DEFAULT_LOAN_DAYS = 14
# Statuses a client may set through UpdateLoanStatus; ACTIVE is only ever set by CreateLoan.
_SETTABLE = tuple(LoanStatus(name) for name in SETTABLE_STATUSES)


def check_batch_index(index: int) -> None:
    """Streams and batches (BulkAddBooks, UpdateLoanStatus) hold at most `bulk_max` items per call."""
    if index >= LIMITS["bulk_max"]:
        raise InvalidArgument(f"one call may hold at most {LIMITS['bulk_max']} items")


def prepare_books(items: Iterable[NewBook]) -> list[NewBook]:
    """BulkAddBooks' first pass: every item validated and checked against the others, in order.

    The first problem ends the pass, so a batch gets the same error wherever it is checked (the gateway of
    the split topology runs this pass before forwarding, the books service runs it again).
    """
    books: list[NewBook] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        check_batch_index(index)
        try:
            book = validate_new_book(item)
        except InvalidArgument as exc:
            raise InvalidArgument(f"book #{index}: {exc.message}") from exc
        if book.isbn in seen:
            raise AlreadyExists(f"book #{index}: isbn {book.isbn} repeats book #{seen[book.isbn]}")
        seen[book.isbn] = index
        books.append(book)
    return books


def settable_status(value: str) -> LoanStatus:
    """The status an UpdateLoanStatus item asks for, if a client may set it (else InvalidArgument)."""
    try:
        target = LoanStatus(value)
    except ValueError:
        raise InvalidArgument(
            f"status {str(value)[:40]!r} is not one of {', '.join(s.value for s in _SETTABLE)}"
        ) from None
    if target not in _SETTABLE:
        raise InvalidArgument(f"status {target.value} cannot be set; use OVERDUE, LOST or RETURNED")
    return target


def validate_idempotency_key(key: str) -> str:
    return validate_key("idempotency_key", key, LIMITS["idempotency_key_max"])


class LibraryService:
    """Operations named as in the contract table (docs/ARCHITECTURE.md); each raises only `LibraryError`s."""

    # Operations that wait on another service (none here; see `targets.core.circulation`). Adapters that
    # serve from an event loop run these on a worker thread, so the loop goes on serving meanwhile.
    remote_operations: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        store: LibraryStore | None = None,
        clock: Clock | None = None,
        calls: CallCounters | None = None,
    ) -> None:
        self.store = store if store is not None else LibraryStore()
        self.clock = clock if clock is not None else SystemClock()
        # Adapters count each request here (targets.core.calls); the metrics side port reads them.
        self.calls = calls if calls is not None else CallCounters()

    # ---- books -------------------------------------------------------------------------------------
    def add_book(self, new: NewBook) -> Book:
        book = validate_new_book(new)
        with self.store.lock:
            self._check_isbn_free(book.isbn)
            return self._insert_book(book)

    def get_book(self, book_id: int) -> Book:
        validate_id("book_id", book_id)
        book = self.store.books.get(book_id)
        if book is None:
            raise NotFound(f"book {book_id} not found")
        return book

    def delete_book(self, book_id: int) -> None:
        validate_id("book_id", book_id)
        with self.store.lock:
            book = self.get_book(book_id)
            if book.available_copies != book.total_copies:
                out = book.total_copies - book.available_copies
                raise FailedPrecondition(f"book {book_id} has {out} copies on loan")
            self.store.remove_book(book)

    def list_books_by_category(self, category: str) -> list[Book]:
        """Books of one category in id order; an unknown category is an empty list, not an error."""
        validate_text("category", category, LIMITS["category_max"])
        with self.store.lock:
            ids = self.store.book_ids_by_category.get(category, {})
            return [self.store.books[i] for i in ids]

    def bulk_add_books(self, items: Iterable[NewBook]) -> BulkAddResult:
        """All or nothing: every item is validated (and checked for duplicates) before any is stored."""
        books = prepare_books(items)
        with self.store.lock:
            for index, book in enumerate(books):
                if book.isbn in self.store.book_ids_by_isbn:
                    raise AlreadyExists(f"book #{index}: isbn {book.isbn} already exists")
            ids = tuple(self._insert_book(book).id for book in books)
        return BulkAddResult(added=len(ids), ids=ids)

    # ---- copy reservations (internal: the circulation service reserves copies in the books service) ----
    def reserve_copy(self, book_id: int, key: str) -> Book:
        """Take one copy of a book out under `key`; the same key reserves once however often it is sent."""
        validate_id("book_id", book_id)
        validate_key("key", key, LIMITS["reservation_key_max"])
        with self.store.lock:
            book = self.get_book(book_id)
            held = self.store.reservations.get(key)
            if held is not None:
                if held != book_id:
                    raise FailedPrecondition(f"reservation {key!r} holds book {held}, not book {book_id}")
                return book
            if book.available_copies < 1:
                raise FailedPrecondition(f"book {book_id} has no copy available")
            reserved = dataclasses.replace(book, available_copies=book.available_copies - 1)
            self.store.put_book(reserved)
            self.store.reservations[key] = book_id
            return reserved

    def release_copy(self, book_id: int, key: str) -> Book:
        """Give back the copy held under `key`; a key that holds nothing (released before) changes nothing."""
        validate_id("book_id", book_id)
        validate_key("key", key, LIMITS["reservation_key_max"])
        with self.store.lock:
            book = self.get_book(book_id)
            held = self.store.reservations.get(key)
            if held is None:
                return book
            if held != book_id:
                raise FailedPrecondition(f"reservation {key!r} holds book {held}, not book {book_id}")
            del self.store.reservations[key]
            released = dataclasses.replace(book, available_copies=book.available_copies + 1)
            self.store.put_book(released)
            return released

    # ---- users -------------------------------------------------------------------------------------
    def add_user(self, new: NewUser) -> User:
        user = validate_new_user(new)
        with self.store.lock:
            if user.email.casefold() in self.store.user_ids_by_email:
                raise AlreadyExists(f"a user with email {user.email!r} already exists")
            created = User(id=self.store.next_user_id(), name=user.name, email=user.email)
            self.store.put_user(created)
            return created

    def get_user(self, user_id: int) -> User:
        validate_id("user_id", user_id)
        user = self.store.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    # ---- loans -------------------------------------------------------------------------------------
    def create_loan(
        self, user_id: int, book_id: int, days: int = DEFAULT_LOAN_DAYS, idempotency_key: str | None = None
    ) -> Loan:
        """Lend a copy. With an idempotency key, a request repeated with the same key and arguments gets the
        loan the first one created (no second loan, no second copy taken)."""
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
            self.get_user(user_id)
            book = self.get_book(book_id)
            if book.available_copies < 1:
                raise FailedPrecondition(f"book {book_id} has no copy available")
            self.store.put_book(dataclasses.replace(book, available_copies=book.available_copies - 1))
            return self._store_new_loan(user_id, book_id, days, idempotency_key)

    def get_loan(self, loan_id: int) -> Loan:
        validate_id("loan_id", loan_id)
        loan = self.store.loans.get(loan_id)
        if loan is None:
            raise NotFound(f"loan {loan_id} not found")
        return self._as_seen_now(loan)

    def return_loan(self, loan_id: int) -> Loan:
        validate_id("loan_id", loan_id)
        with self.store.lock:
            loan = self.get_loan(loan_id)
            if loan.status is LoanStatus.RETURNED:
                raise FailedPrecondition(f"loan {loan_id} is already returned")
            return self._close_loan(loan)

    def get_overdue_loans(self) -> list[Loan]:
        """Loans past their due date and not returned (stored OVERDUE, or ACTIVE past due), in id order."""
        with self.store.lock:
            now = self.clock.now()
            loans = (self.store.loans[i] for i in self.store.open_loan_ids)
            return [
                dataclasses.replace(loan, status=LoanStatus.OVERDUE)
                for loan in loans
                if loan.status is LoanStatus.OVERDUE
                or (loan.status is LoanStatus.ACTIVE and loan.due_at < now)
            ]

    def update_loan_status(self, updates: Iterable[StatusUpdate]) -> Iterator[Loan]:
        """Apply updates one by one as they arrive, yielding each updated loan.

        Streaming semantics, the same on every protocol: the first failing update ends the call with its
        error; the updates before it stay applied.
        """
        for index, update in enumerate(updates):
            check_batch_index(index)
            yield self.apply_status_update(update)

    def apply_status_update(self, update: StatusUpdate) -> Loan:
        """One step of UpdateLoanStatus, for adapters that receive the updates asynchronously."""
        return self._apply_status(update)

    # ---- helpers -----------------------------------------------------------------------------------
    def _check_isbn_free(self, isbn: str) -> None:
        if isbn in self.store.book_ids_by_isbn:
            raise AlreadyExists(f"a book with isbn {isbn} already exists")

    def _insert_book(self, new: NewBook) -> Book:
        book = Book(
            id=self.store.next_book_id(),
            isbn=new.isbn,
            title=new.title,
            author=new.author,
            category=new.category,
            year=new.year,
            total_copies=new.copies,
            available_copies=new.copies,
        )
        self.store.put_book(book)
        return book

    def _store_new_loan(self, user_id: int, book_id: int, days: int, idempotency_key: str | None) -> Loan:
        """A new ACTIVE loan from now for `days`, stored, and found again by its idempotency key (caller holds
        the lock and has taken the copy)."""
        now = self.clock.now()
        loan = Loan(
            id=self.store.next_loan_id(),
            user_id=user_id,
            book_id=book_id,
            loaned_at=now,
            due_at=now + timedelta(days=days),
            returned_at=None,
            status=LoanStatus.ACTIVE,
        )
        self.store.put_loan(loan)
        if idempotency_key is not None:
            self.store.loan_ids_by_key[idempotency_key] = loan.id
        return loan

    def _replayed_loan(self, key: str, user_id: int, book_id: int, days: int) -> Loan | None:
        """The loan an earlier request with this idempotency key created, if any (caller holds the lock)."""
        loan_id = self.store.loan_ids_by_key.get(key)
        if loan_id is None:
            return None
        loan = self.store.loans[loan_id]
        if (loan.user_id, loan.book_id, (loan.due_at - loan.loaned_at).days) != (user_id, book_id, days):
            raise FailedPrecondition(
                f"idempotency key {key!r} was used for a different loan request (loan {loan_id})"
            )
        return self._as_seen_now(loan)

    def _as_seen_now(self, loan: Loan) -> Loan:
        """An ACTIVE loan past its due date reads as OVERDUE (derived, so the clock decides, not a job)."""
        if loan.status is LoanStatus.ACTIVE and loan.due_at < self.clock.now():
            return dataclasses.replace(loan, status=LoanStatus.OVERDUE)
        return loan

    def _close_loan(self, loan: Loan) -> Loan:
        book = self.store.books.get(loan.book_id)
        if book is not None:
            self.store.put_book(dataclasses.replace(book, available_copies=book.available_copies + 1))
        closed = dataclasses.replace(loan, status=LoanStatus.RETURNED, returned_at=self.clock.now())
        self.store.put_loan(closed)
        return closed

    def _apply_status(self, update: StatusUpdate) -> Loan:
        target = settable_status(update.status)
        with self.store.lock:
            loan = self.get_loan(update.loan_id)
            if loan.status is LoanStatus.RETURNED:
                raise FailedPrecondition(f"loan {loan.id} is already returned")
            if target is LoanStatus.RETURNED:
                return self._close_loan(loan)
            if loan.status is LoanStatus.LOST and target is not LoanStatus.LOST:
                raise FailedPrecondition(f"loan {loan.id} is lost; it can only be returned")
            changed = dataclasses.replace(loan, status=target)
            self.store.put_loan(changed)
            return changed

    def counts(self) -> dict[str, int]:
        """Sizes of the store (for READY diagnostics and manifests)."""
        with self.store.lock:
            return {
                "books": len(self.store.books),
                "users": len(self.store.users),
                "loans": len(self.store.loans),
                "open_loans": len(self.store.open_loan_ids),
            }
