"""Every operation through zeep (WSDL loaded from disk) against a live target, compared with the core."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from lxml import etree  # type: ignore[import-untyped]
from zeep.exceptions import Fault
from zeep.plugins import Plugin

from targets.core import (
    Book,
    ErrorKind,
    FixedClock,
    LibraryService,
    Loan,
    LoanStatus,
    User,
    build_service,
    isbn13,
)
from targets.soap.faults import error_kind_for_fault, local_fault_code
from tests.soap._support import NOW, TNS, SoapTarget, envelope, launch, post, zeep_service

_serials = itertools.count(700_000)


def new_book_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "isbn": isbn13(next(_serials)),
        "title": "A Title",
        "author": "An Author",
        "category": "soap-tests",
        "year": 2001,
        "copies": 2,
    }
    fields.update(overrides)
    return fields


def unique_email() -> str:
    return f"soap{next(_serials)}@example.org"


def as_book(z: Any) -> Book:
    return Book(z.id, z.isbn, z.title, z.author, z.category, z.year, z.total_copies, z.available_copies)


def as_user(z: Any) -> User:
    return User(z.id, z.name, z.email)


def as_loan(z: Any) -> Loan:
    return Loan(z.id, z.user_id, z.book_id, z.loaned_at, z.due_at, z.returned_at, LoanStatus(z.status))


def fault(call: Any, *args: Any, **kwargs: Any) -> Fault:
    with pytest.raises(Fault) as info:
        call(*args, **kwargs)
    return info.value


# ---- read-only conformance against a pristine target ------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LibraryService]]:
    """A target nobody mutates, and the in-process core seeded identically (the oracle)."""
    target: SoapTarget = launch(tmp_path_factory.mktemp("pristine") / "stderr")
    try:
        yield zeep_service(target.url), build_service("tiny", clock=FixedClock(NOW))
    finally:
        target.stop()


def test_reads_match_the_core(pristine: tuple[Any, LibraryService]) -> None:
    service, oracle = pristine
    for book_id, book in oracle.store.books.items():
        assert as_book(service.GetBook(id=book_id)) == book
    for user_id, user in oracle.store.users.items():
        assert as_user(service.GetUser(id=user_id)) == user
    for loan_id in oracle.store.loans:
        assert as_loan(service.GetLoan(id=loan_id)) == oracle.get_loan(loan_id)
    for category in ("size-1", "size-10"):
        assert [as_book(b) for b in service.ListBooksByCategory(category=category)] == (
            oracle.list_books_by_category(category)
        )
    overdue = service.GetOverdueLoans()
    assert [as_loan(loan) for loan in overdue] == oracle.get_overdue_loans()
    assert overdue and all(loan.status == "OVERDUE" and loan.returned_at is None for loan in overdue)


def test_timestamps_are_utc_datetimes(pristine: tuple[Any, LibraryService]) -> None:
    service, oracle = pristine
    returned = [loan for loan in oracle.store.loans.values() if loan.returned_at is not None]
    assert returned, "the tiny dataset has returned loans"
    loan = service.GetLoan(id=returned[0].id)
    for instant in (loan.loaned_at, loan.due_at, loan.returned_at):
        assert instant.utcoffset() == timedelta(0)
    assert loan.returned_at == returned[0].returned_at


# ---- operations with their own records on the shared target -----------------------------------------
def test_add_book_and_get_book(service: Any) -> None:
    fields = new_book_fields(copies=3)
    hyphenated = f"{fields['isbn'][:3]}-{fields['isbn'][3:]}"
    added = service.AddBook(**{**fields, "isbn": hyphenated})
    assert added.isbn == fields["isbn"]  # normalised by the core
    assert (added.total_copies, added.available_copies) == (3, 3)
    assert as_book(service.GetBook(id=added.id)) == as_book(added)


def test_add_book_duplicate_and_invalid(service: Any) -> None:
    fields = new_book_fields()
    service.AddBook(**fields)
    assert fault(service.AddBook, **fields).code == "soap11env:Client.AlreadyExists"
    too_long = fault(service.AddBook, **new_book_fields(title="T" * 301))
    assert too_long.code == "soap11env:Client.InvalidArgument"
    # the schema's maxLength facet caught it before the core (the same fault either way)
    assert too_long.message.startswith("title: ") and "'300'" in too_long.message
    assert fault(service.AddBook, **new_book_fields(isbn="123")).code == "soap11env:Client.InvalidArgument"
    assert fault(service.AddBook, **new_book_fields(year=999)).code == "soap11env:Client.InvalidArgument"


def test_delete_book(service: Any) -> None:
    book = service.AddBook(**new_book_fields())
    assert service.DeleteBook(id=book.id) is None
    gone = fault(service.GetBook, id=book.id)
    assert (gone.code, gone.message) == ("soap11env:Client.NotFound", f"book {book.id} not found")
    assert fault(service.DeleteBook, id=book.id).code == "soap11env:Client.NotFound"


def test_delete_book_on_loan_is_failed_precondition(service: Any) -> None:
    book = service.AddBook(**new_book_fields())
    user = service.AddUser(name="Borrower", email=unique_email())
    service.CreateLoan(user_id=user.id, book_id=book.id)
    assert fault(service.DeleteBook, id=book.id).code == "soap11env:Client.FailedPrecondition"


def test_add_user_and_get_user(service: Any) -> None:
    email = unique_email()
    user = service.AddUser(name="Grace Hopper", email=email)
    assert (user.name, user.email) == ("Grace Hopper", email)
    assert as_user(service.GetUser(id=user.id)) == as_user(user)
    assert fault(service.AddUser, name="Other", email=email.upper()).code == "soap11env:Client.AlreadyExists"
    assert fault(service.AddUser, name="X", email="not-an-address").code == "soap11env:Client.InvalidArgument"
    assert fault(service.GetUser, id=10**12).code == "soap11env:Client.NotFound"


def test_create_loan_days_default_and_explicit(service: Any) -> None:
    book = service.AddBook(**new_book_fields(copies=3))
    user = service.AddUser(name="Reader", email=unique_email())
    loan = service.CreateLoan(user_id=user.id, book_id=book.id)  # days absent -> 14
    assert (loan.user_id, loan.book_id, loan.status, loan.returned_at) == (user.id, book.id, "ACTIVE", None)
    assert loan.loaned_at == NOW
    assert loan.due_at - loan.loaned_at == timedelta(days=14)
    short = service.CreateLoan(user_id=user.id, book_id=book.id, days=3)
    assert short.due_at - short.loaned_at == timedelta(days=3)
    assert service.GetBook(id=book.id).available_copies == 1
    assert fault(service.CreateLoan, user_id=user.id, book_id=book.id, days=0).code == (
        "soap11env:Client.InvalidArgument"
    )
    assert fault(service.CreateLoan, user_id=10**12, book_id=book.id).code == "soap11env:Client.NotFound"


def test_create_loan_without_copies_is_failed_precondition(service: Any) -> None:
    book = service.AddBook(**new_book_fields(copies=1))
    user = service.AddUser(name="Reader", email=unique_email())
    service.CreateLoan(user_id=user.id, book_id=book.id)
    error = fault(service.CreateLoan, user_id=user.id, book_id=book.id)
    assert (error.code, error.message) == (
        "soap11env:Client.FailedPrecondition",
        f"book {book.id} has no copy available",
    )


def test_return_loan_and_get_loan(service: Any) -> None:
    book = service.AddBook(**new_book_fields(copies=1))
    user = service.AddUser(name="Reader", email=unique_email())
    loan = service.CreateLoan(user_id=user.id, book_id=book.id)
    returned = service.ReturnLoan(id=loan.id)
    assert (returned.status, returned.returned_at) == ("RETURNED", NOW)
    assert as_loan(service.GetLoan(id=loan.id)) == as_loan(returned)
    assert service.GetBook(id=book.id).available_copies == 1
    assert fault(service.ReturnLoan, id=loan.id).code == "soap11env:Client.FailedPrecondition"
    assert fault(service.GetLoan, id=10**12).code == "soap11env:Client.NotFound"
    assert fault(service.GetLoan, id=0).code == "soap11env:Client.InvalidArgument"


def test_list_books_by_category(service: Any) -> None:
    category = f"list-{next(_serials)}"
    result = service.BulkAddBooks(books=[new_book_fields(category=category) for _ in range(3)])
    listed = service.ListBooksByCategory(category=category)
    assert isinstance(listed, list)
    assert [book.id for book in listed] == list(result.ids)
    assert service.ListBooksByCategory(category="no-such-category") == []
    assert fault(service.ListBooksByCategory, category="c" * 65).code == "soap11env:Client.InvalidArgument"


def test_bulk_add_books(service: Any) -> None:
    category = f"bulk-{next(_serials)}"
    books = [new_book_fields(category=category) for _ in range(4)]
    result = service.BulkAddBooks(books=books)
    assert result.added == 4
    assert len(result.ids) == 4 and list(result.ids) == sorted(result.ids)
    assert [service.GetBook(id=i).isbn for i in result.ids] == [b["isbn"] for b in books]
    empty = service.BulkAddBooks(books=[])
    assert (empty.added, list(empty.ids)) == (0, [])


def test_bulk_add_books_is_all_or_nothing(service: Any) -> None:
    category = f"bulk-{next(_serials)}"
    first, second = new_book_fields(category=category), new_book_fields(category=category)
    repeated = fault(service.BulkAddBooks, books=[first, second, {**first, "title": "again"}])
    assert repeated.code == "soap11env:Client.AlreadyExists"
    invalid = fault(service.BulkAddBooks, books=[first, new_book_fields(category=category, copies=-1)])
    assert (invalid.code, invalid.message.startswith("book #1: copies")) == (
        "soap11env:Client.InvalidArgument",
        True,
    )
    assert service.ListBooksByCategory(category=category) == []  # nothing of either batch was stored


def test_update_loan_status(service: Any) -> None:
    book = service.AddBook(**new_book_fields(copies=3))
    user = service.AddUser(name="Reader", email=unique_email())
    a, b = (service.CreateLoan(user_id=user.id, book_id=book.id) for _ in range(2))
    updated = service.UpdateLoanStatus(
        updates=[{"loan_id": a.id, "status": "LOST"}, {"loan_id": b.id, "status": "OVERDUE"}]
    )
    assert [(loan.id, loan.status) for loan in updated] == [(a.id, "LOST"), (b.id, "OVERDUE")]
    assert service.UpdateLoanStatus(updates=[]) == []


def test_update_loan_status_stops_at_first_failure_and_keeps_earlier_updates(service: Any) -> None:
    book = service.AddBook(**new_book_fields(copies=3))
    user = service.AddUser(name="Reader", email=unique_email())
    a, b = (service.CreateLoan(user_id=user.id, book_id=book.id) for _ in range(2))
    error = fault(
        service.UpdateLoanStatus,
        updates=[
            {"loan_id": a.id, "status": "RETURNED"},
            {"loan_id": 10**12, "status": "LOST"},
            {"loan_id": b.id, "status": "LOST"},
        ],
    )
    assert (error.code, error.message) == ("soap11env:Client.NotFound", f"loan {10**12} not found")
    assert service.GetLoan(id=a.id).status == "RETURNED"  # applied before the failure
    assert service.GetLoan(id=b.id).status == "ACTIVE"  # never reached


@pytest.mark.parametrize("status", ["BOGUS", "ACTIVE", "lost", ""])
def test_update_loan_status_unknown_or_unsettable_status_is_invalid_argument(
    service: Any, status: str
) -> None:
    book = service.AddBook(**new_book_fields())
    user = service.AddUser(name="Reader", email=unique_email())
    loan = service.CreateLoan(user_id=user.id, book_id=book.id)
    error = fault(service.UpdateLoanStatus, updates=[{"loan_id": loan.id, "status": status}])
    assert error.code == "soap11env:Client.InvalidArgument"
    assert service.GetLoan(id=loan.id).status == "ACTIVE"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("soap11env:Client.NotFound", ErrorKind.NOT_FOUND),
        ("soap11env:Client.InvalidArgument", ErrorKind.INVALID_ARGUMENT),
        ("soap11env:Client.AlreadyExists", ErrorKind.ALREADY_EXISTS),
        ("soap11env:Client.FailedPrecondition", ErrorKind.FAILED_PRECONDITION),
        ("soap11env:Client.SchemaValidationError", ErrorKind.INVALID_ARGUMENT),
        ("soap11env:Client.DTDForbidden", ErrorKind.INVALID_ARGUMENT),
        ("soap11env:Server", ErrorKind.INTERNAL),
        ("Client.NotFound", ErrorKind.NOT_FOUND),
    ],
)
def test_fault_code_helpers(code: str, kind: ErrorKind) -> None:
    assert error_kind_for_fault(code) is kind
    assert local_fault_code(code) == code.rpartition(":")[2]


class _Corrupt(Plugin):
    """Rewrites the outgoing envelope (zeep's own egress hook) so zeep sends what its schema would refuse."""

    def __init__(self, field: str, value: str | None) -> None:
        self.field = field
        self.value = value

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any) -> Any:
        element = envelope.find(f".//{{{TNS}}}{self.field}")
        if self.value is None:
            element.getparent().remove(element)
        else:
            element.text = self.value
        return envelope, http_headers


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "abc"), ("id", "99999999999999999999"), ("id", None), ("id", "")],
    ids=["not-a-number", "beyond-xs-long", "missing", "empty"],
)
def test_zeep_sees_schema_violations_as_client_faults(
    soap_target: SoapTarget, field: str, value: str | None
) -> None:
    service = zeep_service(soap_target.url, plugins=[_Corrupt(field, value)])
    error = fault(service.GetBook, id=1)
    assert error.code == "soap11env:Client.SchemaValidationError"
    assert error_kind_for_fault(error.code) is ErrorKind.INVALID_ARGUMENT


# ---- the XML on the wire -----------------------------------------------------------------------------
def _body(response: httpx.Response) -> etree._Element:
    root = etree.fromstring(response.content)
    return root[0][0]


def test_wire_shapes(http: httpx.Client, service: Any) -> None:
    book = service.AddBook(**new_book_fields(category=f"wire-{next(_serials)}"))
    user = service.AddUser(name="Wire", email=unique_email())
    loan = service.CreateLoan(user_id=user.id, book_id=book.id)
    q = f"{{{TNS}}}"

    def call(operation: str) -> etree._Element:
        return _body(post(http, envelope(operation)))

    open_loan = call(f"<l:GetLoan><l:id>{loan.id}</l:id></l:GetLoan>")
    assert open_loan.tag == q + "GetLoanResponse"
    record = open_loan.find(q + "loan")
    # returned_at is absent (minOccurs=0), not nil, while the loan is open
    fields = [child.tag.removeprefix(q) for child in record]
    assert fields == ["id", "user_id", "book_id", "loaned_at", "due_at", "status"]
    assert record.findtext(q + "loaned_at") == "2026-01-15T12:00:00+00:00"
    service.ReturnLoan(id=loan.id)
    closed = call(f"<l:GetLoan><l:id>{loan.id}</l:id></l:GetLoan>").find(q + "loan")
    assert closed.findtext(q + "returned_at") == "2026-01-15T12:00:00+00:00"

    listed = call(f"<l:ListBooksByCategory><l:category>{book.category}</l:category></l:ListBooksByCategory>")
    assert [child.tag for child in listed] == [q + "book"]  # repeated elements, no wrapper array element
    bulk = call("<l:BulkAddBooks/>")  # no books: an empty batch, not an error
    assert [child.tag for child in bulk[0]] == [q + "added"]  # ids repeated 0 times
    assert bulk[0].findtext(q + "added") == "0"
