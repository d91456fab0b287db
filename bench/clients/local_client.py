"""In-process client: calls LibraryService directly (the reference model in conformance tests and the
no-protocol floor in benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from bench.clients._base import RemoteError
from targets.core import (
    DEFAULT_LOAN_DAYS,
    Book,
    BulkAddResult,
    LibraryError,
    LibraryService,
    Loan,
    NewBook,
    NewUser,
    StatusUpdate,
    User,
)

__all__ = ["LocalClient"]

T = TypeVar("T")


class LocalClient:
    protocol = "local"

    def __init__(self, service: LibraryService) -> None:
        self.service = service

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except LibraryError as exc:
            raise RemoteError(exc.kind, exc.kind.value, exc.message) from exc

    def add_book(self, book: NewBook) -> Book:
        return self._call(lambda: self.service.add_book(book))

    def get_book(self, book_id: int) -> Book:
        return self._call(lambda: self.service.get_book(book_id))

    def delete_book(self, book_id: int) -> None:
        self._call(lambda: self.service.delete_book(book_id))

    def list_books_by_category(self, category: str) -> list[Book]:
        return self._call(lambda: self.service.list_books_by_category(category))

    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult:
        return self._call(lambda: self.service.bulk_add_books(books))

    def add_user(self, user: NewUser) -> User:
        return self._call(lambda: self.service.add_user(user))

    def get_user(self, user_id: int) -> User:
        return self._call(lambda: self.service.get_user(user_id))

    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan:
        term = DEFAULT_LOAN_DAYS if days is None else days
        return self._call(lambda: self.service.create_loan(user_id, book_id, term, idempotency_key))

    def return_loan(self, loan_id: int) -> Loan:
        return self._call(lambda: self.service.return_loan(loan_id))

    def get_loan(self, loan_id: int) -> Loan:
        return self._call(lambda: self.service.get_loan(loan_id))

    def get_overdue_loans(self) -> list[Loan]:
        return self._call(self.service.get_overdue_loans)

    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]:
        return self._call(lambda: list(self.service.update_loan_status(updates)))

    def reserve_copy(self, book_id: int, key: str) -> Book:
        return self._call(lambda: self.service.reserve_copy(book_id, key))

    def release_copy(self, book_id: int, key: str) -> Book:
        return self._call(lambda: self.service.release_copy(book_id, key))

    def close(self) -> None:
        pass
