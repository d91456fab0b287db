"""Helpers of the micro-benchmarks: sustainable write cases, CPU pinning, placement, bare servers."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

from bench.clients import make_client
from bench.load.placement import Pinning, choose_placement
from bench.micro._support import LOAN_BOOK_COPIES, WriteState, build_case, group_name
from bench.micro.bare import reference_book, start_bare
from targets.core import Book, Loan, LoanStatus, NewBook


class _Helper:
    """Records the setup calls a WriteState makes."""

    def __init__(self) -> None:
        self.books: list[NewBook] = []
        self.loans: list[tuple[int, int]] = []

    def add_book(self, book: NewBook) -> Book:
        self.books.append(book)
        n = len(self.books)
        return Book(n, book.isbn, book.title, book.author, book.category, book.year, book.copies, book.copies)

    def create_loan(self, user_id: int, book_id: int) -> Loan:
        self.loans.append((user_id, book_id))
        return Loan(len(self.loans), user_id, book_id, None, None, None, LoanStatus.ACTIVE)  # type: ignore[arg-type]


def test_loan_books_are_replaced_before_they_run_out() -> None:
    helper = _Helper()
    state = WriteState(helper)  # type: ignore[arg-type]
    books = [state.loan_book() for _ in range(LOAN_BOOK_COPIES + 1)]
    assert books.count(1) == LOAN_BOOK_COPIES and books[-1] == 2
    assert all(b.copies == LOAN_BOOK_COPIES for b in helper.books)


def test_new_records_never_repeat() -> None:
    state = WriteState(_Helper())  # type: ignore[arg-type]
    isbns = {state.new_book().isbn for _ in range(1000)}
    emails = {state.new_user().email for _ in range(1000)}
    assert len(isbns) == 1000 and len(emails) == 1000


def test_write_cases_need_write_state_and_unknown_operations_fail() -> None:
    client: Any = object()
    with pytest.raises(ValueError, match="write state"):
        build_case("AddBook", client, None)
    with pytest.raises(ValueError, match="unknown operation"):
        build_case("Nope", client, WriteState(_Helper()))  # type: ignore[arg-type]
    assert group_name("ListBooksByCategory", 100) == "ListBooksByCategory[100]"
    assert group_name("GetBook", None) == "GetBook"


def test_update_loan_status_case_returns_loans_made_in_setup() -> None:
    helper = _Helper()
    client = SimpleNamespace(update_loan_status=lambda updates: updates)
    case = build_case("UpdateLoanStatus", client, WriteState(helper), 10)  # type: ignore[arg-type]
    (updates,), _ = case.arguments()
    assert [u.status for u in updates] == ["RETURNED"] * 10
    assert len(helper.loans) == 10 and len({u.loan_id for u in updates}) == 10


def test_pinning_covers_every_thread_and_restores() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    with Pinning({cpus[0]}):
        assert os.sched_getaffinity(0) == {cpus[0]}
    assert sorted(os.sched_getaffinity(0)) == cpus


def test_placement_never_shares_a_cpu() -> None:
    placement = choose_placement()
    if len(os.sched_getaffinity(0)) < 2:
        assert not placement.pinned
    else:
        assert placement.target_cpu != placement.generator_cpu
    with pytest.raises(ValueError):
        choose_placement("0", "0")


@pytest.mark.parametrize(("stack", "kind"), [("grpc", "grpc"), ("rest", "rest-lean"), ("soap", "soap-lean")])
def test_bare_servers_answer_like_a_target(stack: str, kind: str) -> None:
    server = start_bare(stack)
    try:
        client = make_client(kind, server.address)
        try:
            assert client.get_book(1) == reference_book()
            assert len(client.list_books_by_category("size-100")) == 100
        finally:
            client.close()
    finally:
        server.stop()
