"""The domain core on its own: validation rules, state transitions, datasets, clocks, thread safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from targets.core import (
    DATASETS,
    AlreadyExists,
    FailedPrecondition,
    FixedClock,
    InvalidArgument,
    LibraryService,
    LoanStatus,
    NewBook,
    NewUser,
    NotFound,
    StatusUpdate,
    SystemClock,
    build_service,
    category_name,
    isbn13,
    parse_clock,
)
from targets.core.validation import normalize_isbn

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def new_book(serial: int = 1, **overrides: object) -> NewBook:
    fields: dict[str, object] = dict(
        isbn=isbn13(500_000 + serial), title="T", author="A", category="c", year=2000, copies=1
    )
    fields.update(overrides)
    return NewBook(**fields)  # type: ignore[arg-type]


def test_no_protocol_library_is_imported_by_the_core() -> None:
    import ast
    from pathlib import Path

    core = Path(__file__).resolve().parents[2] / "targets" / "core"
    forbidden = {
        "grpc",
        "google",
        "fastapi",
        "starlette",
        "uvicorn",
        "spyne",
        "zeep",
        "lxml",
        "httpx",
        "cheroot",
    }
    for path in core.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


@pytest.mark.parametrize("isbn", ["9780306406157", "978-0-306-40615-7", "0-8044-2957-X", "0306406152"])
def test_valid_isbns(isbn: str) -> None:
    assert normalize_isbn(isbn) == isbn.replace("-", "")


@pytest.mark.parametrize("isbn", ["9780306406158", "030640615X", "12345", "", "97803064061５7", "abcdefghij"])
def test_invalid_isbns(isbn: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize_isbn(isbn)


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 301},
        {"author": "a" * 201},
        {"category": "c" * 65},
        {"year": 999},
        {"year": 2101},
        {"copies": -1},
        {"copies": 10_001},
        {"title": "tab\tinside"},
        {"title": "lone \ud800 surrogate"},
        {"year": True},
    ],
)
def test_book_validation(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        LibraryService().add_book(new_book(**overrides))


def test_user_validation_and_case_insensitive_uniqueness() -> None:
    service = LibraryService()
    service.add_user(NewUser("Ada", "Ada@Example.org"))
    with pytest.raises(AlreadyExists):
        service.add_user(NewUser("Other", "ada@example.ORG"))
    for email in ["no-at-sign", "a@b", "a b@c.d", "@example.org", "x" * 65 + "@example.org"]:
        with pytest.raises(InvalidArgument):
            service.add_user(NewUser("Bob", email))


def test_loan_lifecycle_moves_copies_and_uses_the_clock() -> None:
    service = LibraryService(clock=FixedClock(NOW))
    book = service.add_book(new_book(copies=1))
    user = service.add_user(NewUser("Ada", "ada@example.org"))
    loan = service.create_loan(user.id, book.id)
    assert (loan.loaned_at, loan.due_at, loan.status) == (NOW, NOW + timedelta(days=14), LoanStatus.ACTIVE)
    assert service.get_book(book.id).available_copies == 0
    with pytest.raises(FailedPrecondition):
        service.create_loan(user.id, book.id)
    with pytest.raises(FailedPrecondition):
        service.delete_book(book.id)
    later = LibraryService(service.store, FixedClock(NOW + timedelta(days=15)))
    assert later.get_loan(loan.id).status is LoanStatus.OVERDUE
    assert [x.id for x in later.get_overdue_loans()] == [loan.id]
    returned = later.return_loan(loan.id)
    assert returned.returned_at == NOW + timedelta(days=15)
    assert later.get_overdue_loans() == []
    with pytest.raises(FailedPrecondition):
        later.return_loan(loan.id)
    service.delete_book(book.id)
    with pytest.raises(NotFound):
        service.get_book(book.id)


def test_update_loan_status_is_applied_in_order_until_the_first_error() -> None:
    service = LibraryService(clock=FixedClock(NOW))
    book = service.add_book(new_book(copies=3))
    user = service.add_user(NewUser("Ada", "ada@example.org"))
    first, second = service.create_loan(user.id, book.id), service.create_loan(user.id, book.id)
    results = service.update_loan_status([StatusUpdate(first.id, "LOST"), StatusUpdate(second.id, "OVERDUE")])
    assert [r.status for r in results] == [LoanStatus.LOST, LoanStatus.OVERDUE]
    with pytest.raises(NotFound):
        list(service.update_loan_status([StatusUpdate(second.id, "RETURNED"), StatusUpdate(999, "LOST")]))
    assert service.get_loan(second.id).status is LoanStatus.RETURNED
    assert service.get_book(book.id).available_copies == 2  # one copy lost, one back
    for status in ["ACTIVE", "UNSPECIFIED", "lost", ""]:
        with pytest.raises(InvalidArgument):
            list(service.update_loan_status([StatusUpdate(first.id, status)]))
    with pytest.raises(FailedPrecondition):
        list(service.update_loan_status([StatusUpdate(first.id, "OVERDUE")]))


def test_bulk_add_is_all_or_nothing() -> None:
    service = LibraryService()
    with pytest.raises(InvalidArgument, match="book #1"):
        service.bulk_add_books([new_book(1), new_book(2, year=3000)])
    assert service.counts()["books"] == 0
    with pytest.raises(AlreadyExists):
        service.bulk_add_books([new_book(1), new_book(1)])
    result = service.bulk_add_books([new_book(1), new_book(2)])
    assert (result.added, result.ids) == (2, (1, 2))


def test_datasets_are_deterministic_and_sized_as_named() -> None:
    clock = FixedClock(NOW)
    a, b = build_service("small", clock=clock), build_service("small", clock=clock)
    assert (
        a.store.books == b.store.books and a.store.loans == b.store.loans and a.store.users == b.store.users
    )
    for size in DATASETS["small"].category_sizes:
        assert len(a.list_books_by_category(category_name(size))) == size
    overdue = a.get_overdue_loans()
    assert 0 < len(overdue) < len(a.store.loans)
    assert build_service("small", clock=clock, seed=7).store.books != a.store.books
    with pytest.raises(ValueError, match="unknown dataset"):
        build_service("huge")


def test_clock_specs() -> None:
    assert isinstance(parse_clock("system"), SystemClock)
    assert parse_clock("fixed:2026-01-15T12:00:00Z").now() == NOW
    for bad in ["fixed:yesterday", "fixed:2026-01-15T12:00:00", "sundial"]:
        with pytest.raises(ValueError):
            parse_clock(bad)


def test_concurrent_loans_never_oversell_copies() -> None:
    service = LibraryService(clock=FixedClock(NOW))
    book = service.add_book(new_book(copies=50))
    user = service.add_user(NewUser("Ada", "ada@example.org"))
    outcomes: list[str] = []

    def borrow() -> None:
        for _ in range(20):
            try:
                service.create_loan(user.id, book.id)
                outcomes.append("ok")
            except FailedPrecondition:
                outcomes.append("none left")

    threads = [threading.Thread(target=borrow) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 50
    assert service.get_book(book.id).available_copies == 0


def test_binding_beyond_loopback_warns() -> None:
    """Safe default: 127.0.0.1 unless told otherwise, then a warning (nothing is sent to that address)."""
    from bench.load.processes import start_target

    target = start_target("rest", host="0.0.0.0", dataset="tiny")
    try:
        assert target.alive()
        assert "reachable beyond loopback" in target.stderr_tail()
    finally:
        target.stop()
    quiet = start_target("rest", dataset="tiny")
    try:
        assert quiet.host == "127.0.0.1" and "beyond loopback" not in quiet.stderr_tail()
    finally:
        quiet.stop()
