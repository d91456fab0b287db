"""The one client interface every protocol implements, and the client exception tree.

Exception tree::

    ClientError                 any failure seen by a client
    ├── RemoteError             the server answered with a protocol-native error (kind + native code)
    └── TransportError          no valid answer: refused, unreachable, timeout, wrong protocol, dropped
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from targets.core import Book, BulkAddResult, ErrorKind, Loan, NewBook, NewUser, StatusUpdate, User

__all__ = ["ClientError", "LibraryClient", "RemoteError", "TransportError"]


class ClientError(Exception):
    """Base class of everything a client raises on purpose."""


class RemoteError(ClientError):
    """A protocol-native error: `kind` is the domain meaning, `native` the code on the wire.

    `native` is e.g. "NOT_FOUND" (gRPC status), "404 NotFound" (HTTP status + problem code) or
    "soap11env:Client.NotFound" (SOAP faultcode), so tests can check the error mapping
    (docs/ARCHITECTURE.md) exactly.
    """

    def __init__(self, kind: ErrorKind, native: str, message: str) -> None:
        super().__init__(f"{kind.value} ({native}): {message}")
        self.kind = kind
        self.native = native
        self.message = message


class TransportError(ClientError):
    """The call got no valid protocol answer; `reason` is short and stable (used as the stats error name)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@runtime_checkable
class LibraryClient(Protocol):
    """One method per operation; streams are consumed fully and returned as lists (in arrival order)."""

    protocol: str

    def add_book(self, book: NewBook) -> Book: ...
    def get_book(self, book_id: int) -> Book: ...
    def delete_book(self, book_id: int) -> None: ...
    def list_books_by_category(self, category: str) -> list[Book]: ...
    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult: ...
    def add_user(self, user: NewUser) -> User: ...
    def get_user(self, user_id: int) -> User: ...
    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan: ...
    def return_loan(self, loan_id: int) -> Loan: ...
    def get_loan(self, loan_id: int) -> Loan: ...
    def get_overdue_loans(self) -> list[Loan]: ...
    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]: ...
    # internal operations (the split topology's circulation service calls them on the books service)
    def reserve_copy(self, book_id: int, key: str) -> Book: ...
    def release_copy(self, book_id: int, key: str) -> Book: ...
    def close(self) -> None: ...
