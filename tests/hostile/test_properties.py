"""Property-based hostile input through the normal clients: only success or domain errors, alike everywhere.

Every operation's inputs are drawn by hypothesis (arbitrary text incl. control characters, integers at and
past the int32/int64 edges, ISBN- and e-mail-like strings) and sent to all three targets in the same order,
so their states stay identical; each outcome must be success or a domain error (never Internal, HTTP 500, a
SOAP Server fault or a dropped connection), and the same on every protocol. Inputs that only some wires can
carry (lone surrogates, integers past int64, invalid UTF-8, XML-illegal characters) get their own properties
on the protocols that can send them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from xml.sax.saxutils import escape

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.clients import LibraryClient, make_client
from targets.core import NewBook, NewUser, StatusUpdate, isbn13
from tests.hostile._h2 import varint
from tests.hostile._support import DOMAIN_KINDS, Case, LiveTarget, outcome

ALL = ("grpc", "rest", "soap")
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
PROPERTY = settings(
    max_examples=50,
    deadline=None,  # a loaded VM would make per-example deadlines flaky; the guard bounds the case instead
    database=None,  # no .hypothesis directory in the work tree
    # `case` is one guard for the whole property (all its examples), which is what it is meant to be.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INT32 = st.one_of(
    st.integers(-(2**31), 2**31 - 1), st.sampled_from([-1, 0, 1, 999, 1000, 2100, 2101, 10_000, 10_001])
)
INT64 = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.integers(-3, 40), st.sampled_from([2**31, 2**63 - 1, -(2**63)])
)
PAST_INT64 = st.one_of(st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1))


def _xml_char(char: str) -> bool:
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def _xml_text(text: str) -> bool:
    return all(map(_xml_char, text))


# Text every protocol can carry: valid Unicode (no surrogates) made of XML 1.0 characters. Control characters
# TAB, LF, CR and C1 are in; the core refuses them, and must do so on every protocol alike.
TEXT = st.one_of(
    st.text(st.characters(codec="utf-8").filter(_xml_char), max_size=80),
    st.sampled_from(["", " ", "\t", "size-1", "size-10", "é" * 64, "x" * 65, "x" * 300, "x" * 301]),
)
ISBN = st.one_of(
    st.builds(isbn13, st.integers(0, 999_999_999)),  # valid ISBN-13s, some repeating
    st.from_regex(r"97[89][0-9]{10}", fullmatch=True),
    st.from_regex(r"[0-9]{9}[0-9Xx]", fullmatch=True),
    st.from_regex(r"[0-9 -]{10,17}", fullmatch=True),
    TEXT,
)
EMAIL = st.one_of(
    st.emails(),
    st.from_regex(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+", fullmatch=True).filter(_xml_text),
    st.sampled_from(["a@b", "@example.org", "a@@example.org", "a@example.", "a b@example.org"]),
    TEXT,
)
BOOK = st.builds(NewBook, isbn=ISBN, title=TEXT, author=TEXT, category=TEXT, year=INT32, copies=INT32)
STATUS = st.one_of(
    st.sampled_from(["OVERDUE", "LOST", "RETURNED", "ACTIVE", "UNSPECIFIED", "lost", ""]), TEXT
)


def same_everywhere(case: Case, call: Callable[[LibraryClient], object]) -> str:
    """Run `call` on every target (same order every time); all must agree on a domain outcome."""
    outcomes = {t.protocol: outcome(lambda t=t: call(t.client)) for t in case.targets}  # type: ignore[misc]
    assert len(set(outcomes.values())) == 1, f"protocols disagree: {outcomes}"
    return next(iter(outcomes.values()))


# ---- one input, three protocols ----------------------------------------------------------------------------
@pytest.mark.hostile(*ALL)
@PROPERTY
@given(book=BOOK)
def test_add_book(case: Case, book: NewBook) -> None:
    same_everywhere(case, lambda c: c.add_book(book))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(books=st.lists(BOOK, max_size=4))
def test_bulk_add_books(case: Case, books: list[NewBook]) -> None:
    same_everywhere(case, lambda c: c.bulk_add_books(books))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(name=TEXT, email=EMAIL)
def test_add_user(case: Case, name: str, email: str) -> None:
    same_everywhere(case, lambda c: c.add_user(NewUser(name=name, email=email)))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(
    operation=st.sampled_from(["get_book", "delete_book", "get_user", "get_loan", "return_loan"]), id_=INT64
)
def test_operations_by_id(case: Case, operation: str, id_: int) -> None:
    if operation == "delete_book" and id_ == 1:
        id_ = 2  # book 1 is what the guard reads back after the case
    same_everywhere(case, lambda c: getattr(c, operation)(id_))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(category=TEXT)
def test_list_books_by_category(case: Case, category: str) -> None:
    same_everywhere(case, lambda c: c.list_books_by_category(category))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(user_id=INT64, book_id=INT64, days=st.one_of(st.none(), INT32))
def test_create_loan(case: Case, user_id: int, book_id: int, days: int | None) -> None:
    same_everywhere(case, lambda c: c.create_loan(user_id, book_id, days))


@pytest.mark.hostile(*ALL)
@PROPERTY
@given(updates=st.lists(st.builds(StatusUpdate, loan_id=INT64, status=STATUS), max_size=4))
def test_update_loan_status(case: Case, updates: list[StatusUpdate]) -> None:
    same_everywhere(case, lambda c: c.update_loan_status(updates))
    same_everywhere(case, lambda c: c.get_overdue_loans())  # the state the updates left behind reads alike


# ---- what only some wires can carry ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lean_clients(rest_target: LiveTarget, soap_target: LiveTarget) -> Iterator[dict[str, LibraryClient]]:
    """The lean clients send what they are given (no client-side schema), e.g. digits past int64 in XML."""
    clients = {
        t.protocol: make_client(f"{t.protocol}-lean", t.process.address) for t in (rest_target, soap_target)
    }
    yield clients
    for client in clients.values():
        client.close()


@pytest.mark.hostile("rest", "soap")
@PROPERTY
@given(operation=st.sampled_from(["get_book", "get_user", "get_loan", "return_loan"]), id_=PAST_INT64)
def test_ids_past_int64(case: Case, lean_clients: dict[str, LibraryClient], operation: str, id_: int) -> None:
    # gRPC's int64 cannot carry these; REST (in the path) and SOAP (as xs:long) must both refuse them.
    kinds = {
        protocol: outcome(lambda c=client: getattr(c, operation)(id_))  # type: ignore[misc]
        for protocol, client in lean_clients.items()
    }
    assert set(kinds.values()) == {"InvalidArgument"}, kinds


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.hostile("rest")
@PROPERTY
@given(
    fields=st.dictionaries(
        st.sampled_from(["isbn", "title", "author", "category", "year", "copies", "x"]), JSON_VALUE
    )
)
def test_rest_add_book_with_any_json(case: Case, fields: dict[str, object]) -> None:
    # Any JSON at all, lone surrogates (as \\ud800 escapes) and integers of any size included.
    body = json.dumps(fields).encode()
    with httpx.Client(base_url=f"http://{case.target.process.address}", timeout=10.0) as http:
        response = http.post("/books", content=body, headers={"content-type": "application/json"})
    case.record(response.content)
    assert response.status_code in (201, 400, 409, 422), response.text[:300]
    if response.status_code != 201:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in {k.value for k in DOMAIN_KINDS}


@pytest.mark.hostile("grpc")
@PROPERTY
@given(title=st.binary(max_size=40), name=st.binary(max_size=40))
def test_grpc_string_fields_with_any_bytes(case: Case, title: bytes, name: bytes) -> None:
    def field(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    book = (
        field(1, isbn13(123).encode())
        + field(2, title)
        + field(3, b"a")
        + field(4, b"c")
        + b"\x28\xd0\x0f\x30\x01"
    )
    user = field(1, name) + field(2, b"a@example.org")
    with grpc.insecure_channel(case.target.process.address) as chan:
        for method, message in (("AddBook", book), ("AddUser", user)):
            call = chan.unary_unary(
                f"/library.v1.Library/{method}",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            try:
                call(message, timeout=10)
            except grpc.RpcError as exc:
                code = exc.code()
                assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS), exc


@pytest.mark.hostile("soap")
@PROPERTY
@given(text=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_soap_text_with_any_characters(case: Case, text: str) -> None:
    # Raw characters, XML-illegal ones included (as literal bytes or as character references): always a
    # Client fault or success, never a Server fault.
    literal = escape(text)
    references = "".join(f"&#{ord(c)};" for c in text)
    with httpx.Client(base_url=f"http://{case.target.process.address}", timeout=10.0) as http:
        for value in (literal, references):
            document = (
                f'<s:Envelope xmlns:s="{SOAP11}" xmlns:l="urn:library-bench:v1">'
                f"<s:Body><l:ListBooksByCategory><l:category>{value}</l:category></l:ListBooksByCategory>"
                "</s:Body></s:Envelope>"
            )
            response = http.post("/", content=document.encode(), headers={"content-type": "text/xml"})
            case.record(response.content)
            assert response.status_code in (200, 500), response.text[:300]
            if response.status_code == 500:
                assert b"<faultcode>soap11env:Client" in response.content, response.text[:300]
