"""The REST target as a real process: every route, the error mapping, hardening, OpenAPI and shutdown."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from targets.core import LibraryService, NewBook, isbn13
from targets.limits import LIMITS
from targets.rest.wire import (
    NDJSON,
    PROBLEM_JSON,
    book_to_json,
    loan_from_json,
    loan_to_json,
    new_book_to_json,
    parse_timestamp,
    user_to_json,
)
from tests.rest.conftest import RestProcess, start_rest

_serials = itertools.count(900_000)  # far above the serials the seeded datasets use
NOW = parse_timestamp("2026-01-15T12:00:00Z")
OPERATIONS = {
    "AddBook",
    "GetBook",
    "DeleteBook",
    "ListBooksByCategory",
    "BulkAddBooks",
    "AddUser",
    "GetUser",
    "CreateLoan",
    "GetLoan",
    "ReturnLoan",
    "GetOverdueLoans",
    "UpdateLoanStatus",
}


# ---- helpers -----------------------------------------------------------------------------------------------
def new_book(category: str = "tests", copies: int = 2, **changes: Any) -> dict[str, Any]:
    book = NewBook(isbn13(next(_serials)), "A Title", "An Author", category, 1999, copies)
    return {**new_book_to_json(book), **changes}


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(obj) + b"\n" for obj in objects)


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == NDJSON
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "code"}
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"urn:library:error:{code}"
    assert problem["detail"] and problem["title"]
    return problem


def assert_still_serving(client: httpx.Client) -> None:
    response = client.get("/books/1")
    assert response.status_code == 200
    assert response.json()["id"] == 1


def add_book(client: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/books", json=new_book(**kwargs))
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


def add_user(client: httpx.Client) -> dict[str, Any]:
    serial = next(_serials)
    response = client.post("/users", json={"name": "Test User", "email": f"test{serial}@example.org"})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def create_loan(client: httpx.Client, **body: Any) -> dict[str, Any]:
    if "user_id" not in body:
        body["user_id"] = add_user(client)["id"]
    if "book_id" not in body:
        body["book_id"] = add_book(client)["id"]
    response = client.post("/loans", json=body)
    assert response.status_code == 201, response.text
    loan: dict[str, Any] = response.json()
    return loan


# ---- start, health, shutdown ------------------------------------------------------------------------------
def test_ready_within_10_s_and_healthy(rest_target: RestProcess, client: httpx.Client) -> None:
    assert rest_target.ready_after_s < 10
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "SERVING"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_ends_the_process_cleanly(sig: signal.Signals) -> None:
    target = start_rest()
    try:
        with httpx.Client(base_url=target.url) as http:
            assert http.get("/healthz").status_code == 200  # an open keep-alive connection, too
            started = time.monotonic()
            target.process.send_signal(sig)
            exit_code = target.process.wait(5)
        assert exit_code == 0
        assert time.monotonic() - started < 5
    finally:
        target.stop()
    assert target.stdout_after_ready == b"", "only the READY line may go to stdout"


# ---- books ---------------------------------------------------------------------------------------------
def test_get_book_is_the_core_record(client: httpx.Client, reference: LibraryService) -> None:
    response = client.get("/books/2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == book_to_json(reference.get_book(2))
    assert list(response.json()) == [
        "id",
        "isbn",
        "title",
        "author",
        "category",
        "year",
        "total_copies",
        "available_copies",
    ]


def test_add_book_then_get_it(client: httpx.Client) -> None:
    body = new_book(isbn="978-0-262-03384-8", copies=3)
    response = client.post("/books", json=body)
    assert response.status_code == 201
    book = response.json()
    assert book["isbn"] == "9780262033848"  # normalized by the core
    assert (book["total_copies"], book["available_copies"]) == (3, 3)
    assert client.get(f"/books/{book['id']}").json() == book

    assert_problem(client.post("/books", json=body), 409, "AlreadyExists")


def test_delete_book(client: httpx.Client) -> None:
    book = add_book(client)
    response = client.delete(f"/books/{book['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(f"/books/{book['id']}"), 404, "NotFound")
    assert_problem(client.delete(f"/books/{book['id']}"), 404, "NotFound")

    loan = create_loan(client)
    assert_problem(client.delete(f"/books/{loan['book_id']}"), 409, "FailedPrecondition")


def test_list_books_by_category(client: httpx.Client, reference: LibraryService) -> None:
    response = client.get("/books", params={"category": "size-10"})
    assert response.status_code == 200
    expected = [book_to_json(book) for book in reference.list_books_by_category("size-10")]
    assert [book["id"] for book in lines(response)] == [book["id"] for book in expected]
    assert response.content.endswith(b"\n")

    empty = client.get("/books", params={"category": "no-such-category"})
    assert empty.status_code == 200
    assert lines(empty) == []
    assert_problem(client.get("/books"), 422, "InvalidArgument")
    assert_problem(client.get("/books", params={"category": " "}), 400, "InvalidArgument")


def test_bulk_add_books_and_stream_a_large_category(client: httpx.Client) -> None:
    books = [new_book(category="bulk-large") for _ in range(2000)]
    body = ndjson(*books[:1000]) + b"\n  \n" + ndjson(*books[1000:])  # blank lines are ignored
    response = client.post("/books:bulk", content=body, headers={"content-type": NDJSON})
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["added"] == 2000
    assert result["ids"] == sorted(result["ids"]) and len(set(result["ids"])) == 2000

    with client.stream("GET", "/books", params={"category": "bulk-large"}) as stream:
        assert stream.headers["content-type"] == NDJSON
        assert stream.headers.get("transfer-encoding") == "chunked"  # over one 64 KB chunk: streamed
        received = [orjson.loads(line) for line in stream.iter_lines() if line]
    assert [book["id"] for book in received] == result["ids"]
    assert [book["isbn"] for book in received] == [book["isbn"] for book in books]


def test_bulk_add_is_all_or_nothing_and_names_the_bad_line(client: httpx.Client) -> None:
    good = new_book(category="bulk-atomic")
    bad_json = ndjson(good) + b"\n" + b'{"isbn": "978\n' + ndjson(new_book(category="bulk-atomic"))
    problem = assert_problem(client.post("/books:bulk", content=bad_json), 400, "InvalidArgument")
    assert "line 3" in problem["detail"]

    wrong_type = ndjson(good, new_book(category="bulk-atomic") | {"copies": "2"})
    problem = assert_problem(client.post("/books:bulk", content=wrong_type), 422, "InvalidArgument")
    assert "line 2" in problem["detail"] and "copies" in problem["detail"]

    duplicate = ndjson(good, good)
    assert_problem(client.post("/books:bulk", content=duplicate), 409, "AlreadyExists")
    assert lines(client.get("/books", params={"category": "bulk-atomic"})) == []


# ---- users ---------------------------------------------------------------------------------------------
def test_users(client: httpx.Client, reference: LibraryService) -> None:
    assert client.get("/users/1").json() == user_to_json(reference.get_user(1))
    user = add_user(client)
    assert client.get(f"/users/{user['id']}").json() == user
    duplicate = {"name": "Someone Else", "email": user["email"].upper()}
    assert_problem(client.post("/users", json=duplicate), 409, "AlreadyExists")
    assert_problem(client.post("/users", json={"name": "X", "email": "not-an-email"}), 400, "InvalidArgument")
    assert_problem(client.get("/users/999999"), 404, "NotFound")


# ---- loans ---------------------------------------------------------------------------------------------
def test_get_seeded_loan(client: httpx.Client, reference: LibraryService) -> None:
    assert client.get("/loans/1").json() == loan_to_json(reference.get_loan(1))


def test_create_and_return_a_loan(client: httpx.Client) -> None:
    loan = create_loan(client)
    assert loan["status"] == "ACTIVE"
    assert loan["loaned_at"] == "2026-01-15T12:00:00Z"  # the fixed clock, RFC 3339 with Z
    assert loan["returned_at"] is None
    parsed = loan_from_json(loan)
    assert parsed.due_at - parsed.loaned_at == timedelta(days=14)  # default term
    assert client.get(f"/loans/{loan['id']}").json() == loan
    assert client.get(f"/books/{loan['book_id']}").json()["available_copies"] == 1

    returned = client.post(f"/loans/{loan['id']}/return")
    assert returned.status_code == 200
    assert returned.json()["status"] == "RETURNED"
    assert returned.json()["returned_at"] == "2026-01-15T12:00:00Z"
    assert_problem(client.post(f"/loans/{loan['id']}/return"), 409, "FailedPrecondition")

    three_days = create_loan(client, days=3)
    assert loan_from_json(three_days).due_at == NOW + timedelta(days=3)


def test_create_loan_errors(client: httpx.Client) -> None:
    user = add_user(client)
    book = add_book(client, copies=1)
    create_loan(client, user_id=user["id"], book_id=book["id"])
    no_copy = client.post("/loans", json={"user_id": user["id"], "book_id": book["id"]})
    assert_problem(no_copy, 409, "FailedPrecondition")
    assert_problem(client.post("/loans", json={"user_id": 999999, "book_id": 1}), 404, "NotFound")
    too_long = client.post("/loans", json={"user_id": user["id"], "book_id": 1, "days": 366})
    assert_problem(too_long, 400, "InvalidArgument")
    assert_problem(client.post("/loans", json={"user_id": user["id"]}), 422, "InvalidArgument")
    assert_problem(client.post("/loans/999999/return"), 404, "NotFound")


def test_overdue_loans(client: httpx.Client, reference: LibraryService) -> None:
    response = client.get("/loans/overdue")
    assert response.status_code == 200
    received = {loan["id"]: loan for loan in lines(response)}
    seeded = reference.get_overdue_loans()
    assert seeded, "the tiny dataset has overdue loans"
    for loan in seeded:  # other tests may add overdue loans, never remove seeded ones
        assert received[loan.id] == loan_to_json(loan)
    assert all(loan["status"] == "OVERDUE" for loan in received.values())


def test_update_loan_status_applies_in_order(client: httpx.Client) -> None:
    first, second = create_loan(client), create_loan(client)
    body = ndjson({"loan_id": first["id"], "status": "LOST"}, {"loan_id": second["id"], "status": "OVERDUE"})
    response = client.post("/loans/status", content=body, headers={"content-type": NDJSON})
    assert response.status_code == 200
    updated = lines(response)
    assert [(loan["id"], loan["status"]) for loan in updated] == [
        (first["id"], "LOST"),
        (second["id"], "OVERDUE"),
    ]
    assert second["id"] in {loan["id"] for loan in lines(client.get("/loans/overdue"))}


def test_update_loan_status_stops_at_the_first_failure(client: httpx.Client) -> None:
    first, second = create_loan(client), create_loan(client)
    body = ndjson(
        {"loan_id": first["id"], "status": "RETURNED"},
        {"loan_id": 999999, "status": "LOST"},
        {"loan_id": second["id"], "status": "LOST"},
    )
    assert_problem(client.post("/loans/status", content=body), 404, "NotFound")
    assert client.get(f"/loans/{first['id']}").json()["status"] == "RETURNED"  # applied before the failure
    assert client.get(f"/loans/{second['id']}").json()["status"] == "ACTIVE"  # never reached

    bad_status = ndjson({"loan_id": second["id"], "status": "ACTIVE"})
    assert_problem(client.post("/loans/status", content=bad_status), 400, "InvalidArgument")
    returned_again = ndjson({"loan_id": first["id"], "status": "LOST"})
    assert_problem(client.post("/loans/status", content=returned_again), 409, "FailedPrecondition")

    malformed = ndjson({"loan_id": second["id"], "status": "LOST"}) + b"{not json}\n"
    problem = assert_problem(client.post("/loans/status", content=malformed), 400, "InvalidArgument")
    assert "line 2" in problem["detail"]
    assert client.get(f"/loans/{second['id']}").json()["status"] == "LOST"  # line 1 was applied


# ---- routing errors --------------------------------------------------------------------------------------
def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    assert_problem(client.get("/no/such/route"), 404, "NotFound")
    problem = client.put("/books/1")
    assert_problem(problem, 405, "InvalidArgument")
    assert problem.headers["allow"] == "DELETE, GET"
    assert_problem(client.get("/books:bulk"), 405, "InvalidArgument")
    assert_still_serving(client)


# ---- hardening -----------------------------------------------------------------------------------------
BAD_BODIES = {
    "malformed JSON": (b'{"isbn": "9780262033848", "title": ', 400),
    "empty body": (b"", 400),
    "invalid UTF-8": (b'{"isbn": "\xff\xfe", "title": "x"}', 400),
    "deep nesting": (b"[" * 100_000, 400),
    "deep nesting in a field": (b'{"title": ' + b"[" * 100_000 + b"}", 400),
    "year as a string": (orjson.dumps(new_book(year="1999")), 422),
    "year as a float": (orjson.dumps(new_book(year=1999.0)), 422),
    "copies as a boolean": (orjson.dumps(new_book(copies=True)), 422),
    "missing field": (orjson.dumps({k: v for k, v in new_book().items() if k != "title"}), 422),
    "unknown field": (orjson.dumps(new_book(publisher="X")), 422),
    "array instead of object": (b"[]", 422),
    "overlong title": (orjson.dumps(new_book(title="x" * 301)), 400),
    "control character": (orjson.dumps(new_book(title="a\u0000b")), 400),
    "bad ISBN": (orjson.dumps(new_book(isbn="9780262033849")), 400),
    "year out of range": (orjson.dumps(new_book(year=99999)), 400),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_add_book_bodies(client: httpx.Client, name: str) -> None:
    body, status = BAD_BODIES[name]
    assert_problem(client.post("/books", content=body), status, "InvalidArgument")
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/books/abc", 422),
        ("/books/1.5", 422),
        ("/books/%20 1", 422),
        ("/books/0", 400),
        ("/books/-3", 400),
        ("/books/" + "9" * 40, 400),
        ("/books/9223372036854775808", 400),  # 2**63: past the 64-bit id range
        ("/users/0", 400),
        ("/loans/x", 422),
    ],
)
def test_bad_path_ids(client: httpx.Client, path: str, status: int) -> None:
    assert_problem(client.get(path), status, "InvalidArgument")
    assert_still_serving(client)


def test_body_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    ten_mb = b"x" * (10 * 1024 * 1024)
    problem = assert_problem(client.post("/books", content=ten_mb), 413, "InvalidArgument")
    assert str(LIMITS.max_body_bytes) in problem["detail"]
    assert_still_serving(client)


def test_chunked_body_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server has to count
        for _ in range(10 * 16):
            yield b"\n" * 65536

    response = client.post("/books:bulk", content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(response, 413, "InvalidArgument")
    assert_still_serving(client)


def test_chunked_body_under_the_limit_is_served(client: httpx.Client) -> None:
    body = ndjson(new_book(), new_book())
    response = client.post("/books:bulk", content=iter([body[:10], body[10:]]))  # counted as it arrives
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["added"] == 2


def test_invalid_ndjson_line_names_the_line(client: httpx.Client) -> None:
    body = ndjson(new_book(), new_book()) + b"\n" + b"\xff\xfe\n" + ndjson(new_book())
    problem = assert_problem(client.post("/books:bulk", content=body), 400, "InvalidArgument")
    assert "line 4" in problem["detail"]
    deep = ndjson(new_book()) + b"[" * 100_000 + b"\n"
    problem = assert_problem(client.post("/books:bulk", content=deep), 400, "InvalidArgument")
    assert "line 2" in problem["detail"]
    assert_still_serving(client)


# ---- OpenAPI -------------------------------------------------------------------------------------------
def test_openapi_documents_every_operation(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    operations = {
        op["operationId"]: (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) >= OPERATIONS
    for name in OPERATIONS:
        method, path, op = operations[name]
        success = [status for status in op["responses"] if status.startswith("2")]
        assert len(success) == 1, name
        if success[0] != "204":
            assert op["responses"][success[0]]["content"], name
        assert "application/problem+json" in op["responses"]["500"]["content"], name
        if method == "post" and name != "ReturnLoan":
            assert op["requestBody"]["content"], name
        for param in path.split("{")[1:]:
            assert param.split("}")[0] in {p["name"] for p in op["parameters"]}, name
    assert operations["ListBooksByCategory"][2]["parameters"][0]["name"] == "category"
    _assert_refs_resolve(spec, spec)

    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower() and "/openapi.json" in docs.text


def _assert_refs_resolve(node: Any, spec: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in spec["components"]["schemas"], ref
        for value in node.values():
            _assert_refs_resolve(value, spec)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(value, spec)
