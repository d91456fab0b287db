"""The REST wire format and the adapter's in-process parts: encoding, chunking, the error table, 500s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from targets.core import (
    AlreadyExists,
    Book,
    BulkAddResult,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    LibraryError,
    LibraryService,
    Loan,
    LoanStatus,
    NotFound,
    Unavailable,
    User,
)
from targets.rest.app import create_app
from targets.rest.problems import STATUS_FOR_KIND
from targets.rest.responses import CHUNK_BYTES, ndjson_chunks
from targets.rest.wire import (
    book_from_json,
    book_to_json,
    bulk_result_from_json,
    bulk_result_to_json,
    dumps_lines,
    dumps_record,
    error_from_problem,
    loan_from_json,
    loan_to_json,
    problem_to_json,
    user_from_json,
    user_to_json,
)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
BOOK = Book(7, "9780262033848", "Títle “quoted”", "Author", "size-1", 1999, 3, 2)
USER = User(3, "Ada", "ada@example.org")
OPEN_LOAN = Loan(5, 3, 7, T0, T0.replace(day=29), None, LoanStatus.ACTIVE)
CLOSED_LOAN = Loan(6, 3, 7, T0, T0.replace(day=29), T0.replace(microsecond=120), LoanStatus.RETURNED)


def test_loan_format() -> None:
    assert loan_to_json(CLOSED_LOAN) == {
        "id": 6,
        "user_id": 3,
        "book_id": 7,
        "loaned_at": "2026-01-15T12:00:00Z",
        "due_at": "2026-01-29T12:00:00Z",
        "returned_at": "2026-01-15T12:00:00.000120Z",
        "status": "RETURNED",
    }
    assert loan_to_json(OPEN_LOAN)["returned_at"] is None


@pytest.mark.parametrize(
    ("record", "to_json", "from_json"),
    [
        (BOOK, book_to_json, book_from_json),
        (USER, user_to_json, user_from_json),
        (OPEN_LOAN, loan_to_json, loan_from_json),
        (CLOSED_LOAN, loan_to_json, loan_from_json),
        (BulkAddResult(2, (4, 5)), bulk_result_to_json, bulk_result_from_json),
    ],
)
def test_fast_encoding_equals_the_dict_format(record: object, to_json: object, from_json: object) -> None:
    as_dict = to_json(record)  # type: ignore[operator]
    assert dumps_record(record) == orjson.dumps(as_dict)  # type: ignore[arg-type]
    assert from_json(orjson.loads(dumps_record(record))) == record  # type: ignore[arg-type, operator]


def test_ndjson_lines_and_chunks() -> None:
    assert dumps_lines([BOOK, USER]) == dumps_record(BOOK) + b"\n" + dumps_record(USER) + b"\n"
    books = [BOOK] * 2000
    chunks = list(ndjson_chunks(books))
    assert b"".join(chunks) == dumps_lines(books)
    assert len(chunks) > 1 and all(len(chunk) >= CHUNK_BYTES for chunk in chunks[:-1])
    assert all(chunk.endswith(b"\n") for chunk in chunks)  # a chunk never splits a line
    assert list(ndjson_chunks([])) == []


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        (ErrorKind.NOT_FOUND, NotFound),
        (ErrorKind.INVALID_ARGUMENT, InvalidArgument),
        (ErrorKind.ALREADY_EXISTS, AlreadyExists),
        (ErrorKind.FAILED_PRECONDITION, FailedPrecondition),
        (ErrorKind.INTERNAL, LibraryError),
        (ErrorKind.UNAVAILABLE, Unavailable),
    ],
)
def test_problem_round_trip(kind: ErrorKind, error_type: type[LibraryError]) -> None:
    problem = problem_to_json(kind, STATUS_FOR_KIND[kind], "what happened")
    error = error_from_problem(problem)
    assert type(error) is error_type and error.kind is kind and error.message == "what happened"


def test_error_table() -> None:
    assert STATUS_FOR_KIND == {
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.INVALID_ARGUMENT: 400,
        ErrorKind.ALREADY_EXISTS: 409,
        ErrorKind.FAILED_PRECONDITION: 409,
        ErrorKind.INTERNAL: 500,
        ErrorKind.UNAVAILABLE: 503,
    }


class _BrokenService(LibraryService):
    """Fault injection: a core that fails unexpectedly."""

    def get_book(self, book_id: int) -> Book:
        raise RuntimeError("secret internal state")


def test_unexpected_exception_is_a_generic_500() -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(_BrokenService()), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/books/1")

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "Internal"
    assert "secret" not in response.text and "Traceback" not in response.text
