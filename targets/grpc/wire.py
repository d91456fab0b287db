"""Conversion between protobuf messages and domain records (used by the servicer and by the gRPC client)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from targets.core import (
    DEFAULT_LOAN_DAYS,
    Book,
    BulkAddResult,
    Loan,
    LoanStatus,
    NewBook,
    NewUser,
    StatusUpdate,
    User,
)
from targets.grpc._generated import library_pb2 as pb

__all__ = [
    "book_from_pb",
    "book_to_pb",
    "bulk_result_from_pb",
    "loan_from_pb",
    "loan_to_pb",
    "new_book_from_pb",
    "new_book_to_pb",
    "pb",
    "status_from_pb",
    "status_update_from_pb",
    "user_from_pb",
    "user_to_pb",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PREFIX = "LOAN_STATUS_"


def _ts(dt: datetime) -> Timestamp:
    # Integer arithmetic on timedelta: exact to the microsecond (float timestamps are not).
    delta = dt - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return Timestamp(seconds=seconds, nanos=delta.microseconds * 1000)


def _dt(ts: Timestamp) -> datetime:
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def status_to_pb(status: LoanStatus) -> pb.LoanStatus:
    return cast(pb.LoanStatus, pb.LoanStatus.Value(_PREFIX + status.value))  # the stubs type Value() as int


def status_from_pb(value: int) -> str:
    """Enum number -> core status name; unknown numbers become a name the core rejects as InvalidArgument."""
    try:
        return str(pb.LoanStatus.Name(value)).removeprefix(_PREFIX)
    except ValueError:
        return f"UNKNOWN({value})"


def book_to_pb(book: Book) -> pb.Book:
    return pb.Book(
        id=book.id,
        isbn=book.isbn,
        title=book.title,
        author=book.author,
        category=book.category,
        year=book.year,
        total_copies=book.total_copies,
        available_copies=book.available_copies,
    )


def book_from_pb(msg: pb.Book) -> Book:
    return Book(
        id=msg.id,
        isbn=msg.isbn,
        title=msg.title,
        author=msg.author,
        category=msg.category,
        year=msg.year,
        total_copies=msg.total_copies,
        available_copies=msg.available_copies,
    )


def user_to_pb(user: User) -> pb.User:
    return pb.User(id=user.id, name=user.name, email=user.email)


def user_from_pb(msg: pb.User) -> User:
    return User(id=msg.id, name=msg.name, email=msg.email)


def loan_to_pb(loan: Loan) -> pb.Loan:
    msg = pb.Loan(
        id=loan.id,
        user_id=loan.user_id,
        book_id=loan.book_id,
        loaned_at=_ts(loan.loaned_at),
        due_at=_ts(loan.due_at),
        status=status_to_pb(loan.status),
    )
    if loan.returned_at is not None:
        msg.returned_at.CopyFrom(_ts(loan.returned_at))
    return msg


def loan_from_pb(msg: pb.Loan) -> Loan:
    return Loan(
        id=msg.id,
        user_id=msg.user_id,
        book_id=msg.book_id,
        loaned_at=_dt(msg.loaned_at),
        due_at=_dt(msg.due_at),
        returned_at=_dt(msg.returned_at) if msg.HasField("returned_at") else None,
        status=LoanStatus(status_from_pb(msg.status)),
    )


def new_book_from_pb(msg: pb.AddBookRequest) -> NewBook:
    return NewBook(
        isbn=msg.isbn,
        title=msg.title,
        author=msg.author,
        category=msg.category,
        year=msg.year,
        copies=msg.copies,
    )


def new_book_to_pb(book: NewBook) -> pb.AddBookRequest:
    return pb.AddBookRequest(
        isbn=book.isbn,
        title=book.title,
        author=book.author,
        category=book.category,
        year=book.year,
        copies=book.copies,
    )


def new_user_from_pb(msg: pb.AddUserRequest) -> NewUser:
    return NewUser(name=msg.name, email=msg.email)


def loan_days_from_pb(msg: pb.CreateLoanRequest) -> int:
    return msg.days if msg.HasField("days") else DEFAULT_LOAN_DAYS


def idempotency_key_from_pb(msg: pb.CreateLoanRequest) -> str | None:
    return msg.idempotency_key if msg.HasField("idempotency_key") else None


def status_update_from_pb(msg: pb.LoanStatusUpdate) -> StatusUpdate:
    return StatusUpdate(loan_id=msg.loan_id, status=status_from_pb(msg.status))


def bulk_result_from_pb(msg: pb.BulkAddBooksResponse) -> BulkAddResult:
    return BulkAddResult(added=msg.added, ids=tuple(msg.ids))
