"""The conformance table: one row per case, run in order against a target and the in-process core.

A case is an operation call (through the `LibraryClient` interface), the expected outcome (success or a
domain error kind) and, where useful, an explicit property of the result. Results must also be *identical*
to what the in-process reference returns for the same sequence, so every implementation returns the same
records. Cases may name their result (`save=`) for later cases: ids are deterministic, so every target sees
the same ids, but naming them keeps the table readable.

What a target must offer to pass (README "Verifying an implementation"): a fresh start (the cases change its
state), the seeded dataset `DATASET` with seed `SEED` (`bench verify --print-dataset` writes its records as
JSON), and the fixed clock `NOW` for the cases marked `clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bench.clients._base import ClientError, LibraryClient
from targets.core import ErrorKind, LoanStatus, NewBook, NewUser, StatusUpdate, isbn13

__all__ = ["CASES", "CLOCK", "DATASET", "NATIVE_ERRORS", "NOW", "SEED", "Case", "Ctx"]

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CLOCK = "fixed:" + NOW.isoformat()
DATASET = "tiny"  # size-1: book 1; size-10: books 2..11; users 1..5; loans 1..8 (6 overdue, 3 and 8 returned)
SEED = 42

# Operations whose results depend on the clock (loan instants, overdue status).
_CLOCKED = frozenset({"CreateLoan", "GetLoan", "ReturnLoan", "GetOverdueLoans", "UpdateLoanStatus"})

# docs/ARCHITECTURE.md error table: the native form each protocol's client reports in RemoteError.native.
NATIVE_ERRORS: dict[str, dict[ErrorKind, str]] = {
    "grpc": {
        ErrorKind.NOT_FOUND: r"NOT_FOUND",
        ErrorKind.INVALID_ARGUMENT: r"INVALID_ARGUMENT",
        ErrorKind.ALREADY_EXISTS: r"ALREADY_EXISTS",
        ErrorKind.FAILED_PRECONDITION: r"FAILED_PRECONDITION",
    },
    "rest": {
        ErrorKind.NOT_FOUND: r"404 NotFound",
        ErrorKind.INVALID_ARGUMENT: r"(400|422) InvalidArgument",
        ErrorKind.ALREADY_EXISTS: r"409 AlreadyExists",
        ErrorKind.FAILED_PRECONDITION: r"409 FailedPrecondition",
    },
    "soap": {
        ErrorKind.NOT_FOUND: r"(\w+:)?Client\.NotFound",
        ErrorKind.INVALID_ARGUMENT: r"(\w+:)?Client\.InvalidArgument",
        ErrorKind.ALREADY_EXISTS: r"(\w+:)?Client\.AlreadyExists",
        ErrorKind.FAILED_PRECONDITION: r"(\w+:)?Client\.FailedPrecondition",
    },
}

Ctx = dict[str, Any]
Call = Callable[[LibraryClient, Ctx], Any]


@dataclass(frozen=True)
class Case:
    name: str
    operation: str
    call: Call
    error: ErrorKind | None = None
    check: Callable[[Any, Ctx], bool] | None = None
    save: str | None = None
    needs: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        # Every case reads or writes records of the seeded dataset (ids, categories, counts follow from it);
        # cases of the clocked operations also need the fixed clock.
        needs = {"dataset"} | ({"clock"} if self.operation in _CLOCKED else set())
        object.__setattr__(self, "needs", frozenset(needs | set(self.needs)))

    def __str__(self) -> str:
        return self.name


E = TypeVar("E", bound=ClientError)


def run_case(client: LibraryClient, case: Case, ctx: Ctx, errors: type[E]) -> tuple[object, E | None]:
    """One case on one client: its result (saved in ctx under `case.save`) or the error it ended in. Only
    `errors` count as an answer (the verify suite: any client error; the tests: the server's own errors, so
    that a transport failure fails the test); anything else propagates."""
    try:
        result = case.call(client, ctx)
    except errors as exc:
        return None, exc
    if case.save:
        ctx[case.save] = result
    return result, None


def book(n: int, **overrides: Any) -> NewBook:
    """A valid new book with a unique ISBN (serials from 900,000 never collide with seeded books)."""
    fields: dict[str, Any] = {
        "isbn": isbn13(900_000 + n),
        "title": f"Conformance {n}",
        "author": "Test Author",
        "category": "conformance",
        "year": 2001,
        "copies": 2,
    }
    fields.update(overrides)
    return NewBook(**fields)


def ids(items: list[Any]) -> list[int]:
    return [item.id for item in items]


OK, NF, IA, AE, FP = (
    None,
    ErrorKind.NOT_FOUND,
    ErrorKind.INVALID_ARGUMENT,
    ErrorKind.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION,
)

CASES: list[Case] = [
    # ---- GetBook / AddBook / DeleteBook ---------------------------------------------------------------
    Case("get-seeded-book", "GetBook", lambda c, x: c.get_book(1), check=lambda r, x: r.category == "size-1"),
    Case(
        "get-book-in-size-10",
        "GetBook",
        lambda c, x: c.get_book(7),
        check=lambda r, x: r.category == "size-10",
    ),
    Case("get-book-unknown", "GetBook", lambda c, x: c.get_book(999_999), NF),
    Case("get-book-id-zero", "GetBook", lambda c, x: c.get_book(0), IA),
    Case("get-book-id-negative", "GetBook", lambda c, x: c.get_book(-3), IA),
    Case(
        "add-book",
        "AddBook",
        lambda c, x: c.add_book(book(1)),
        check=lambda r, x: r.total_copies == r.available_copies == 2 and r.isbn == isbn13(900_001),
        save="book1",
    ),
    Case(
        "get-added-book",
        "GetBook",
        lambda c, x: c.get_book(x["book1"].id),
        check=lambda r, x: r == x["book1"],
    ),
    Case(
        "add-book-isbn10-with-x",
        "AddBook",
        lambda c, x: c.add_book(book(2, isbn="0-8044-2957-X")),
        check=lambda r, x: r.isbn == "080442957X",
    ),
    Case(
        "add-book-hyphenated-isbn13",
        "AddBook",
        lambda c, x: c.add_book(book(3, isbn="978-0-306-40615-7")),
        check=lambda r, x: r.isbn == "9780306406157",
    ),
    Case("add-book-duplicate-isbn", "AddBook", lambda c, x: c.add_book(book(1, title="Other")), AE),
    Case("add-book-bad-check-digit", "AddBook", lambda c, x: c.add_book(book(4, isbn="9780306406158")), IA),
    Case("add-book-isbn-garbage", "AddBook", lambda c, x: c.add_book(book(4, isbn="not-an-isbn")), IA),
    Case("add-book-empty-title", "AddBook", lambda c, x: c.add_book(book(4, title="")), IA),
    Case("add-book-title-too-long", "AddBook", lambda c, x: c.add_book(book(4, title="x" * 301)), IA),
    Case(
        "add-book-title-at-limit",
        "AddBook",
        lambda c, x: c.add_book(book(5, title="y" * 300)),
        check=lambda r, x: len(r.title) == 300,
    ),
    Case("add-book-year-too-early", "AddBook", lambda c, x: c.add_book(book(6, year=999)), IA),
    Case("add-book-year-too-late", "AddBook", lambda c, x: c.add_book(book(6, year=2101)), IA),
    Case("add-book-negative-copies", "AddBook", lambda c, x: c.add_book(book(6, copies=-1)), IA),
    Case(
        "add-book-unicode",
        "AddBook",
        lambda c, x: c.add_book(book(7, title="Ærø — 東京の夜 📚", author="Zoë Ñúñez")),
        check=lambda r, x: r.title == "Ærø — 東京の夜 📚",
    ),
    # A tab: a control character the core refuses, yet one XML can carry, so SOAP sees the same input.
    Case("add-book-control-char", "AddBook", lambda c, x: c.add_book(book(8, title="bad\ttitle")), IA),
    Case(
        "add-book-zero-copies",
        "AddBook",
        lambda c, x: c.add_book(book(9, copies=0)),
        check=lambda r, x: r.available_copies == 0,
        save="empty",
    ),
    Case("loan-book-without-copies", "CreateLoan", lambda c, x: c.create_loan(1, x["empty"].id), FP),
    Case("delete-book-unknown", "DeleteBook", lambda c, x: c.delete_book(999_999), NF),
    Case("delete-book-on-loan", "DeleteBook", lambda c, x: c.delete_book(9), FP),
    Case(
        "delete-book", "DeleteBook", lambda c, x: c.delete_book(x["book1"].id), check=lambda r, x: r is None
    ),
    Case("get-deleted-book", "GetBook", lambda c, x: c.get_book(x["book1"].id), NF),
    # ---- ListBooksByCategory (server stream) ------------------------------------------------------------
    Case(
        "list-size-1",
        "ListBooksByCategory",
        lambda c, x: c.list_books_by_category("size-1"),
        check=lambda r, x: ids(r) == [1],
    ),
    Case(
        "list-size-10-in-id-order",
        "ListBooksByCategory",
        lambda c, x: c.list_books_by_category("size-10"),
        check=lambda r, x: ids(r) == list(range(2, 12)),
    ),
    Case(
        "list-unknown-category",
        "ListBooksByCategory",
        lambda c, x: c.list_books_by_category("nope"),
        check=lambda r, x: r == [],
    ),
    Case("list-empty-category-name", "ListBooksByCategory", lambda c, x: c.list_books_by_category(""), IA),
    Case(
        "list-category-too-long", "ListBooksByCategory", lambda c, x: c.list_books_by_category("c" * 65), IA
    ),
    # ---- BulkAddBooks (client stream) ----------------------------------------------------------------
    Case(
        "bulk-add-three",
        "BulkAddBooks",
        lambda c, x: c.bulk_add_books([book(20 + i, category="bulk") for i in range(3)]),
        check=lambda r, x: r.added == 3 and list(r.ids) == list(range(r.ids[0], r.ids[0] + 3)),
        save="bulk",
    ),
    Case(
        "list-bulk-category-matches-ids",
        "ListBooksByCategory",
        lambda c, x: c.list_books_by_category("bulk"),
        check=lambda r, x: tuple(ids(r)) == x["bulk"].ids,
    ),
    Case(
        "bulk-add-one-invalid-adds-nothing",
        "BulkAddBooks",
        lambda c, x: c.bulk_add_books([book(30, category="bulk2"), book(31, category="bulk2", year=5)]),
        IA,
    ),
    Case(
        "bulk-nothing-was-added",
        "ListBooksByCategory",
        lambda c, x: c.list_books_by_category("bulk2"),
        check=lambda r, x: r == [],
    ),
    Case(
        "bulk-duplicate-within-batch", "BulkAddBooks", lambda c, x: c.bulk_add_books([book(32), book(32)]), AE
    ),
    Case(
        "bulk-duplicate-of-existing", "BulkAddBooks", lambda c, x: c.bulk_add_books([book(33), book(20)]), AE
    ),
    Case(
        "bulk-empty",
        "BulkAddBooks",
        lambda c, x: c.bulk_add_books([]),
        check=lambda r, x: r.added == 0 and r.ids == (),
    ),
    # ---- AddUser / GetUser ------------------------------------------------------------------------------
    Case(
        "add-user",
        "AddUser",
        lambda c, x: c.add_user(NewUser("Ada Conformance", "ada@example.org")),
        check=lambda r, x: r.id == 6,
        save="ada",
    ),
    Case("get-added-user", "GetUser", lambda c, x: c.get_user(x["ada"].id), check=lambda r, x: r == x["ada"]),
    Case(
        "add-user-duplicate-email-any-case",
        "AddUser",
        lambda c, x: c.add_user(NewUser("Other", "ADA@example.org")),
        AE,
    ),
    Case("add-user-bad-email", "AddUser", lambda c, x: c.add_user(NewUser("Bob", "bob-at-example.org")), IA),
    Case("add-user-empty-name", "AddUser", lambda c, x: c.add_user(NewUser("", "empty@example.org")), IA),
    Case(
        "add-user-name-too-long",
        "AddUser",
        lambda c, x: c.add_user(NewUser("n" * 201, "long@example.org")),
        IA,
    ),
    Case(
        "get-seeded-user",
        "GetUser",
        lambda c, x: c.get_user(1),
        check=lambda r, x: r.email == "user1@example.org",
    ),
    Case("get-user-unknown", "GetUser", lambda c, x: c.get_user(999_999), NF),
    # ---- CreateLoan / GetLoan / ReturnLoan -------------------------------------------------------------
    Case(
        "create-loan-default-term",
        "CreateLoan",
        lambda c, x: c.create_loan(x["ada"].id, 2),
        check=lambda r, x: (
            r.status is LoanStatus.ACTIVE and r.loaned_at == NOW and r.due_at == NOW + timedelta(days=14)
        ),
        save="loan",
    ),
    Case(
        "loan-took-a-copy",
        "GetBook",
        lambda c, x: c.get_book(2),
        check=lambda r, x: r.available_copies == r.total_copies - 1,
    ),
    Case(
        "create-loan-30-days",
        "CreateLoan",
        lambda c, x: c.create_loan(1, 3, days=30),
        check=lambda r, x: r.due_at == NOW + timedelta(days=30),
        save="loan30",
    ),
    Case("create-loan-zero-days", "CreateLoan", lambda c, x: c.create_loan(1, 3, days=0), IA),
    Case("create-loan-too-long", "CreateLoan", lambda c, x: c.create_loan(1, 3, days=366), IA),
    Case("create-loan-unknown-user", "CreateLoan", lambda c, x: c.create_loan(999_999, 3), NF),
    Case("create-loan-unknown-book", "CreateLoan", lambda c, x: c.create_loan(1, 999_999), NF),
    Case("get-loan", "GetLoan", lambda c, x: c.get_loan(x["loan"].id), check=lambda r, x: r == x["loan"]),
    Case("get-loan-unknown", "GetLoan", lambda c, x: c.get_loan(999_999), NF),
    Case(
        "get-seeded-overdue-loan",
        "GetLoan",
        lambda c, x: c.get_loan(6),
        check=lambda r, x: r.status is LoanStatus.OVERDUE,
    ),
    Case(
        "return-loan",
        "ReturnLoan",
        lambda c, x: c.return_loan(x["loan"].id),
        check=lambda r, x: r.status is LoanStatus.RETURNED and r.returned_at == NOW,
    ),
    Case("return-loan-twice", "ReturnLoan", lambda c, x: c.return_loan(x["loan"].id), FP),
    Case("return-loan-unknown", "ReturnLoan", lambda c, x: c.return_loan(999_999), NF),
    # ---- GetOverdueLoans (server stream) ---------------------------------------------------------------
    Case(
        "overdue-seeded",
        "GetOverdueLoans",
        lambda c, x: c.get_overdue_loans(),
        check=lambda r, x: ids(r) == [6],
    ),
    # ---- UpdateLoanStatus (bidirectional stream) -------------------------------------------------------
    Case(
        "mark-overdue",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(1, "OVERDUE")]),
        check=lambda r, x: [(loan.id, loan.status) for loan in r] == [(1, LoanStatus.OVERDUE)],
    ),
    Case(
        "overdue-now-includes-marked",
        "GetOverdueLoans",
        lambda c, x: c.get_overdue_loans(),
        check=lambda r, x: ids(r) == [1, 6],
    ),
    Case(
        "lose-then-return-in-one-call",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(2, "LOST"), StatusUpdate(2, "RETURNED")]),
        check=lambda r, x: [loan.status for loan in r] == [LoanStatus.LOST, LoanStatus.RETURNED],
    ),
    Case(
        "set-active-refused",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(4, "ACTIVE")]),
        IA,
    ),
    Case(
        "unknown-status-refused",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(4, "BORROWED")]),
        IA,
    ),
    Case(
        "update-returned-loan",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(3, "LOST")]),
        FP,
    ),
    Case(
        "second-update-fails",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(4, "LOST"), StatusUpdate(999_999, "LOST")]),
        NF,
    ),
    Case(
        "first-update-stayed-applied",
        "GetLoan",
        lambda c, x: c.get_loan(4),
        check=lambda r, x: r.status is LoanStatus.LOST,
    ),
    Case(
        "lost-cannot-become-overdue",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([StatusUpdate(4, "OVERDUE")]),
        FP,
    ),
    Case(
        "update-nothing",
        "UpdateLoanStatus",
        lambda c, x: c.update_loan_status([]),
        check=lambda r, x: r == [],
    ),
    Case(
        "overdue-final",
        "GetOverdueLoans",
        lambda c, x: c.get_overdue_loans(),
        check=lambda r, x: ids(r) == [1, 6] and all(loan.status is LoanStatus.OVERDUE for loan in r),
    ),
    Case(
        "delete-book-after-returns",
        "DeleteBook",
        lambda c, x: c.delete_book(x["empty"].id),
        check=lambda r, x: r is None,
    ),
]
