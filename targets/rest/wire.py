"""The REST wire format: core records <-> JSON objects, NDJSON framing and problem+json error bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from targets.core.errors import (
    AlreadyExists,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    LibraryError,
    NotFound,
    Unavailable,
)
from targets.core.models import Book, BulkAddResult, Loan, LoanStatus, NewBook, NewUser, StatusUpdate, User

__all__ = [
    "IDEMPOTENCY_KEY",
    "JSON",
    "NDJSON",
    "PROBLEM_JSON",
    "PROBLEM_TYPE_PREFIX",
    "TITLES",
    "Record",
    "book_from_json",
    "book_to_json",
    "bulk_result_from_json",
    "bulk_result_to_json",
    "dumps_lines",
    "dumps_record",
    "error_from_problem",
    "format_timestamp",
    "loan_from_json",
    "loan_to_json",
    "new_book_from_json",
    "new_book_to_json",
    "new_user_to_json",
    "parse_timestamp",
    "problem_to_json",
    "status_update_to_json",
    "user_from_json",
    "user_to_json",
]

# Clients and tests import this module, so it depends only on the core, the standard library and orjson.
#
# Format (fixed; clients depend on it):
# - field names exactly as the core dataclasses (snake_case), in their declaration order;
# - timestamps are RFC 3339 UTC strings ending in "Z", microseconds present only when non-zero
#   (`dt.isoformat()` with "+00:00" written as "Z"); `returned_at` is null while a loan is open;
# - `status` is the enum value: "ACTIVE", "RETURNED", "OVERDUE" or "LOST";
# - streams are NDJSON: one compact JSON object per line, every line ending in "\n";
# - errors are RFC 9457 problem objects: `type` "urn:library:error:<Code>", `title`, `status`, `detail` and
#   `code` (the `ErrorKind` value).
# The server encodes records with `dumps_record` / `dumps_lines`, which yield exactly
# `orjson.dumps(<record>_to_json(record))`; tests check that the two agree.

JSON = "application/json"
NDJSON = "application/x-ndjson"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:library:error:"
# Request header of CreateLoan: a retried request with the same key gets the loan the first one created.
IDEMPOTENCY_KEY = "Idempotency-Key"

# One title per problem type (RFC 9457: the title does not change from occurrence to occurrence).
TITLES: dict[ErrorKind, str] = {
    ErrorKind.NOT_FOUND: "Not found",
    ErrorKind.INVALID_ARGUMENT: "Invalid argument",
    ErrorKind.ALREADY_EXISTS: "Already exists",
    ErrorKind.FAILED_PRECONDITION: "Failed precondition",
    ErrorKind.INTERNAL: "Internal error",
    ErrorKind.UNAVAILABLE: "Service unavailable",
}

_ERROR_TYPES: dict[ErrorKind, type[LibraryError]] = {
    ErrorKind.NOT_FOUND: NotFound,
    ErrorKind.INVALID_ARGUMENT: InvalidArgument,
    ErrorKind.ALREADY_EXISTS: AlreadyExists,
    ErrorKind.FAILED_PRECONDITION: FailedPrecondition,
    ErrorKind.INTERNAL: LibraryError,
    ErrorKind.UNAVAILABLE: Unavailable,
}

Record = Book | User | Loan | BulkAddResult
# OPT_UTC_Z writes a UTC offset as "Z"; orjson already omits zero microseconds, as isoformat() does.
_ORJSON_OPTIONS = orjson.OPT_UTC_Z


# ---- timestamps ------------------------------------------------------------------------------------
def format_timestamp(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- records -----------------------------------------------------------------------------------------
def book_to_json(book: Book) -> dict[str, Any]:
    return {
        "id": book.id,
        "isbn": book.isbn,
        "title": book.title,
        "author": book.author,
        "category": book.category,
        "year": book.year,
        "total_copies": book.total_copies,
        "available_copies": book.available_copies,
    }


def book_from_json(obj: Mapping[str, Any]) -> Book:
    return Book(
        id=obj["id"],
        isbn=obj["isbn"],
        title=obj["title"],
        author=obj["author"],
        category=obj["category"],
        year=obj["year"],
        total_copies=obj["total_copies"],
        available_copies=obj["available_copies"],
    )


def user_to_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email}


def user_from_json(obj: Mapping[str, Any]) -> User:
    return User(id=obj["id"], name=obj["name"], email=obj["email"])


def loan_to_json(loan: Loan) -> dict[str, Any]:
    return {
        "id": loan.id,
        "user_id": loan.user_id,
        "book_id": loan.book_id,
        "loaned_at": format_timestamp(loan.loaned_at),
        "due_at": format_timestamp(loan.due_at),
        "returned_at": None if loan.returned_at is None else format_timestamp(loan.returned_at),
        "status": loan.status.value,
    }


def loan_from_json(obj: Mapping[str, Any]) -> Loan:
    returned_at = obj["returned_at"]
    return Loan(
        id=obj["id"],
        user_id=obj["user_id"],
        book_id=obj["book_id"],
        loaned_at=parse_timestamp(obj["loaned_at"]),
        due_at=parse_timestamp(obj["due_at"]),
        returned_at=None if returned_at is None else parse_timestamp(returned_at),
        status=LoanStatus(obj["status"]),
    )


def bulk_result_to_json(result: BulkAddResult) -> dict[str, Any]:
    return {"added": result.added, "ids": list(result.ids)}


def bulk_result_from_json(obj: Mapping[str, Any]) -> BulkAddResult:
    return BulkAddResult(added=obj["added"], ids=tuple(obj["ids"]))


# ---- request bodies ------------------------------------------------------------------------------------
def new_book_to_json(new: NewBook) -> dict[str, Any]:
    """AddBook body, and one line of a BulkAddBooks body."""
    return {
        "isbn": new.isbn,
        "title": new.title,
        "author": new.author,
        "category": new.category,
        "year": new.year,
        "copies": new.copies,
    }


def new_book_from_json(obj: Mapping[str, Any]) -> NewBook:
    return NewBook(
        isbn=obj["isbn"],
        title=obj["title"],
        author=obj["author"],
        category=obj["category"],
        year=obj["year"],
        copies=obj["copies"],
    )


def new_user_to_json(new: NewUser) -> dict[str, Any]:
    return {"name": new.name, "email": new.email}


def status_update_to_json(update: StatusUpdate) -> dict[str, Any]:
    """One line of an UpdateLoanStatus body."""
    return {"loan_id": update.loan_id, "status": update.status}


# ---- encoding ----------------------------------------------------------------------------------------
def _loan_fields(loan: Loan) -> dict[str, Any]:
    # `loan_to_json` with the datetimes and the enum left to orjson, which writes them as `loan_to_json`
    # does (OPT_UTC_Z) in C rather than through format_timestamp.
    return {
        "id": loan.id,
        "user_id": loan.user_id,
        "book_id": loan.book_id,
        "loaned_at": loan.loaned_at,
        "due_at": loan.due_at,
        "returned_at": loan.returned_at,
        "status": loan.status,
    }


# orjson encodes a dict about twice as fast as a slotted dataclass (0.27 vs 0.6 µs for a Book here).
_FIELDS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Book: book_to_json,
    User: user_to_json,
    Loan: _loan_fields,
    BulkAddResult: bulk_result_to_json,
}


def dumps_record(record: Record) -> bytes:
    """One record as compact JSON bytes."""
    return orjson.dumps(_FIELDS[type(record)](record), option=_ORJSON_OPTIONS)


def dumps_lines(records: Iterable[Record]) -> bytes:
    """Records as NDJSON: every line (the last one too) ends in a newline."""
    options = _ORJSON_OPTIONS | orjson.OPT_APPEND_NEWLINE
    fields = _FIELDS
    return b"".join([orjson.dumps(fields[type(record)](record), option=options) for record in records])


# ---- errors ------------------------------------------------------------------------------------------
def problem_to_json(kind: ErrorKind, status: int, detail: str) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_PREFIX + kind.value,
        "title": TITLES[kind],
        "status": status,
        "detail": detail,
        "code": kind.value,
    }


def error_from_problem(obj: Mapping[str, Any]) -> LibraryError:
    """The domain error a problem object stands for (an unknown code reads as an internal error)."""
    detail = str(obj.get("detail", ""))
    try:
        kind = ErrorKind(str(obj.get("code")))
    except ValueError:
        kind = ErrorKind.INTERNAL
    return _ERROR_TYPES[kind](detail)
