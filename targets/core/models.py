"""Domain records (immutable) and the inputs that create or change them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Book", "BulkAddResult", "Loan", "LoanStatus", "NewBook", "NewUser", "StatusUpdate", "User"]


class LoanStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    RETURNED = "RETURNED"
    OVERDUE = "OVERDUE"
    LOST = "LOST"


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    isbn: str
    title: str
    author: str
    category: str
    year: int
    total_copies: int
    available_copies: int


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Loan:
    id: int
    user_id: int
    book_id: int
    loaned_at: datetime
    due_at: datetime
    returned_at: datetime | None
    status: LoanStatus


@dataclass(frozen=True, slots=True)
class NewBook:
    """AddBook / BulkAddBooks input; `copies` becomes both total and available copies."""

    isbn: str
    title: str
    author: str
    category: str
    year: int
    copies: int


@dataclass(frozen=True, slots=True)
class NewUser:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One UpdateLoanStatus request item. `status` is a string so that an unknown value is a validation
    error reported by the core, identically on every protocol, instead of a decoding error in an adapter."""

    loan_id: int
    status: str


@dataclass(frozen=True, slots=True)
class BulkAddResult:
    added: int
    ids: tuple[int, ...]
