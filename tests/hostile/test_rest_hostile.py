"""Hostile input against the REST target over raw sockets: bodies, framing, paths, heads, slow clients.

Expected answers: HTTP 4xx with an application/problem+json body whose `code` is a domain error kind. Where
the request framing itself is broken (smuggling-style Content-Length/Transfer-Encoding conflicts, unparsable
heads, over-long heads), the server also closes the connection after the answer, since it can no longer tell
where the next request would start; the tests check that close too.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from targets.core import LoanStatus, isbn13
from targets.limits import LIMITS
from tests.hostile._support import ANSWER_BOUND_S, Case, HttpAnswer, assert_problem, http_exchange

pytestmark = pytest.mark.hostile("rest")

BIG = 50 * 1000 * 1000  # a 50 MB body: over six times LIMITS.max_body_bytes
GOOD_BOOK = {"isbn": "9780306406157", "title": "t", "author": "a", "category": "c", "year": 2000, "copies": 1}


def request(method: str, path: str, body: bytes = b"", *, headers: dict[str, str] | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "host: hostile", "connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"content-length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def exchange(
    case: Case, raw: bytes, *, bound_s: float = ANSWER_BOUND_S, body_sender: bytes | None = None
) -> HttpAnswer:
    """One raw request and its answer, timed against the case's bound and recorded for the leak check."""
    with case.answered_within(bound_s):
        answer = http_exchange(
            case.target.host, case.target.port, raw, timeout_s=bound_s, body_sender=body_sender
        )
    case.record(answer.raw)
    return answer


def post_json(case: Case, path: str, body: bytes) -> HttpAnswer:
    return exchange(case, request("POST", path, body, headers={"content-type": "application/json"}))


def category_is_empty(case: Case, category: str) -> bool:
    return case.target.client.list_books_by_category(category) == []


# ---- bodies ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"{", b'{"isbn": }', b"[1, 2", b"nul", b"{}x", b"\xef\xbb\xbf{}", b"", b"{'isbn': 'x'}", b'{"a":1,}'],
    ids=[
        "open-brace",
        "missing-value",
        "open-array",
        "bad-literal",
        "trailing",
        "bom",
        "empty",
        "single-quotes",
        "trailing-comma",
    ],
)
def test_malformed_json(case: Case, body: bytes) -> None:
    assert_problem(post_json(case, "/books", body), 400)


@pytest.mark.parametrize(
    "override",
    [
        {"year": "2001"},
        {"copies": 1.5},
        {"title": 123},
        {"isbn": None},
        {"year": True},
        {"extra": 1},
        {"title": ["t"]},
    ],
    ids=[
        "year-string",
        "copies-float",
        "title-number",
        "isbn-null",
        "year-bool",
        "unknown-field",
        "title-array",
    ],
)
def test_wrong_types(case: Case, override: dict[str, object]) -> None:
    assert_problem(post_json(case, "/books", orjson.dumps({**GOOD_BOOK, **override})), 422)


def test_body_is_an_array_not_an_object(case: Case) -> None:
    assert_problem(post_json(case, "/books", orjson.dumps([GOOD_BOOK])), 422)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"isbn":' + b"[" * 100_000,
    ],
    ids=["arrays", "objects", "unterminated-in-a-field"],
)
def test_json_nested_100k_levels(case: Case, body: bytes) -> None:
    assert_problem(post_json(case, "/books", body), 400)


def test_integer_with_100k_digits(case: Case) -> None:
    body = orjson.dumps({**GOOD_BOOK, "year": 0}).replace(b'"year":0', b'"year":' + b"9" * 100_000)
    assert_problem(post_json(case, "/books", body), 400)


def test_seven_megabyte_string_under_the_body_limit(case: Case) -> None:
    body = orjson.dumps({**GOOD_BOOK, "title": "x" * 7_000_000})
    problem = assert_problem(post_json(case, "/books", body), 400)
    assert problem["code"] == "InvalidArgument"


def test_lone_surrogate_escape(case: Case) -> None:
    assert_problem(post_json(case, "/books", json.dumps({**GOOD_BOOK, "title": "\ud800"}).encode()), 400)


def test_invalid_utf8_inside_a_json_string(case: Case) -> None:
    body = orjson.dumps(GOOD_BOOK).replace(b'"t"', b'"\xff\xfe"')
    assert_problem(post_json(case, "/books", body), 400)


def test_fifty_megabytes_with_content_length(case: Case) -> None:
    head = request("POST", "/books", headers={"content-type": "application/json"}).replace(
        b"content-length: 0", f"content-length: {BIG}".encode()
    )
    answer = exchange(case, head, bound_s=10.0, body_sender=b"x" * BIG)
    assert_problem(answer, 413)


def test_fifty_megabytes_announced_but_never_sent(case: Case) -> None:
    head = request("POST", "/books:bulk").replace(b"content-length: 0", f"content-length: {BIG}".encode())
    assert_problem(exchange(case, head + b'{"isbn"'), 413)  # answered from the header alone


def test_fifty_megabytes_chunked(case: Case) -> None:
    head = b"POST /books:bulk HTTP/1.1\r\nhost: hostile\r\nconnection: close\r\n"
    head += b"transfer-encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    answer = exchange(case, head, bound_s=10.0, body_sender=chunk * (BIG // 65536) + b"0\r\n\r\n")
    assert_problem(answer, 413)


# ---- NDJSON streams ----------------------------------------------------------------------------------------
def _book_line(serial: int, **override: object) -> bytes:
    fields = {**GOOD_BOOK, "isbn": isbn13(700_000 + serial), "category": "hostile-ndjson", **override}
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    ("bad_line", "status"),
    [(b"{not json", 400), (_book_line(3, year="x"), 422), (b"\xff\xfe", 400), (b"[]", 422)],
    ids=["malformed", "wrong-type", "invalid-utf8", "not-an-object"],
)
def test_bulk_with_a_bad_line_mid_stream(case: Case, bad_line: bytes, status: int) -> None:
    lines = [_book_line(1), _book_line(2), bad_line, _book_line(4)]
    answer = exchange(case, request("POST", "/books:bulk", b"\n".join(lines)))
    problem = assert_problem(answer, status)
    assert "line 3" in str(problem["detail"])
    assert category_is_empty(case, "hostile-ndjson")  # all or nothing: lines 1 and 2 were not added


def test_bulk_over_the_batch_limit(case: Case) -> None:
    lines = b"\n".join(_book_line(i) for i in range(10_001))
    assert_problem(exchange(case, request("POST", "/books:bulk", lines)), 400)
    assert category_is_empty(case, "hostile-ndjson")


def test_status_updates_with_a_bad_line_mid_stream(case: Case) -> None:
    body = b'{"loan_id": 2, "status": "OVERDUE"}\n{"loan_id": \n{"loan_id": 4, "status": "LOST"}\n'
    problem = assert_problem(exchange(case, request("POST", "/loans/status", body)), 400)
    assert "line 2" in str(problem["detail"])
    # Applied before the bad line (as on a stream); the line after it never ran.
    assert case.target.client.get_loan(2).status is LoanStatus.OVERDUE
    assert case.target.client.get_loan(4).status is not LoanStatus.LOST


# ---- paths -------------------------------------------------------------------------------------------------
TRAVERSALS = [
    "/books/..%2F..%2Fetc%2Fpasswd",
    "/books/../../etc/passwd",
    "/books/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/docs/../../../../etc/passwd",
    "/openapi.json/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/books/..%252F..%252Fetc%252Fpasswd",
    "/books/%5C..%5C..%5Cetc%5Cpasswd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_in_ids(case: Case, path: str) -> None:
    assert_problem(exchange(case, request("GET", path)), (400, 404, 422))


def test_path_traversal_to_the_secret_file(case: Case) -> None:
    path = "/books/" + "..%2F" * 8 + str(case.secrets.path).lstrip("/").replace("/", "%2F")
    assert_problem(exchange(case, request("GET", path)), (400, 404, 422))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/books/" + "9" * 10_000, 400),
        ("/books/1%00", 422),
        ("/books/0x10", 422),
        ("/books/1e5", 422),
        ("/books/%ff", 422),
    ],
    ids=["10k-digits", "nul", "hex", "exponent", "invalid-utf8"],
)
def test_bad_ids(case: Case, path: str, status: int) -> None:
    assert_problem(exchange(case, request("GET", path)), status)


def test_raw_invalid_utf8_bytes_in_the_request_line(case: Case) -> None:
    answer = exchange(case, b"GET /books/\xff\xfe HTTP/1.1\r\nhost: hostile\r\n\r\n")
    assert_problem(answer, 400)
    assert answer.closed


def test_invalid_utf8_in_the_query(case: Case) -> None:
    assert_problem(exchange(case, request("GET", "/books?category=%ff%fe")), 400)


def test_huge_query_string_under_the_head_limit(case: Case) -> None:
    assert_problem(exchange(case, request("GET", "/books?category=" + "a" * 60_000)), 400)


def test_query_string_over_the_head_limit(case: Case) -> None:
    answer = exchange(case, request("GET", "/books?category=" + "a" * (LIMITS.max_header_bytes + 1)))
    assert_problem(answer, 431)
    assert answer.closed


# ---- heads -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{"x-bomb": "a" * 100_000}, {f"x-h{i}": "a" * 20 for i in range(5_000)}],
    ids=["one-100KB-header", "5000-headers"],
)
def test_header_bomb(case: Case, headers: dict[str, str]) -> None:
    answer = exchange(case, request("GET", "/books/1", headers=headers))
    assert_problem(answer, 431)
    assert answer.closed


SMUGGLING = {
    "cl-and-te": b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-content-lengths": b"content-length: 2\r\ncontent-length: 6\r\n\r\n{}{}{}",
    "te-space-before-colon": b"transfer-encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-xchunked": b"transfer-encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-chunked-then-identity": b"transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "chunk-size-overflow": b"transfer-encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "content-length-plus": b"content-length: +2\r\n\r\n{}",
    "content-length-negative": b"content-length: -2\r\n\r\n{}",
    "obs-fold": b"x-a: a\r\n b\r\ncontent-length: 2\r\n\r\n{}",
    "nul-in-header": b"x-a: a\x00b\r\ncontent-length: 2\r\n\r\n{}",
}


@pytest.mark.parametrize("tail", list(SMUGGLING.values()), ids=list(SMUGGLING))
def test_smuggling_style_framing(case: Case, tail: bytes) -> None:
    # A second request hides behind each ambiguous body; it must never be answered separately.
    hidden = b"GET /books/1 HTTP/1.1\r\nhost: hostile\r\n\r\n"
    answer = exchange(case, b"POST /books HTTP/1.1\r\nhost: hostile\r\n" + tail + hidden)
    assert_problem(answer, 400)
    assert answer.closed
    assert answer.raw.endswith(answer.body), "something followed the first answer"


@pytest.mark.parametrize(
    "opening",
    [
        b"GET /books/1 HTTP/1.1\nhost: hostile\n\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /books/1 HTTP/3.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
    ],
    ids=["bare-lf", "http2-preface", "http3-version", "tls-client-hello"],
)
def test_not_http_1_1(case: Case, opening: bytes) -> None:
    answer = exchange(case, opening)
    assert_problem(answer, 400)
    assert answer.closed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/books/1"),
        ("PATCH", "/books/1"),
        ("DELETE", "/books"),
        ("TRACE", "/books/1"),
        ("POST", "/books/1"),
    ],
)
def test_unsupported_method(case: Case, method: str, path: str) -> None:
    answer = exchange(case, request(method, path))
    assert_problem(answer, 405)
    assert answer.headers.get("allow")


@pytest.mark.parametrize(
    "raw",
    [
        b"FOO /books/1 HTTP/1.1\r\nhost: hostile\r\n\r\n",
        b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nhost: hostile\r\n\r\n",
    ],
    ids=["unknown-method", "connect"],
)
def test_method_the_parser_rejects(case: Case, raw: bytes) -> None:
    assert_problem(exchange(case, raw), 400)


# ---- slow and greedy clients -------------------------------------------------------------------------------
@pytest.fixture
def slow_clients(case: Case) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def test_slow_header_clients_do_not_delay_others(case: Case, slow_clients: list[socket.socket]) -> None:
    # 100 slowloris connections trickle their heads a few bytes at a time. The protocol-correct answer for
    # them is none yet (each sends within LIMITS.idle_timeout_s; a silent one gets 408, tests/rest covers
    # that); everybody else must be served promptly meanwhile.
    for _ in range(100):
        sock = socket.create_connection((case.target.host, case.target.port))
        sock.sendall(b"GET /books/1 HTTP/1.1\r\nhost: slow\r\n")
        slow_clients.append(sock)
    worst = 0.0
    for round_ in range(10):
        for sock in slow_clients:
            sock.sendall(b"x-slow-%d: y\r\n" % round_)
        started = time.monotonic()
        case.target.still_serves()
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.1)
    assert worst < 1.0, f"a normal request took {worst:.2f} s while slow clients were connected"
    for sock in slow_clients:  # the slow heads still complete and get their answers
        sock.sendall(b"connection: close\r\n\r\n")
    for sock in slow_clients[:5]:
        sock.settimeout(ANSWER_BOUND_S)
        assert case.record(sock.recv(65536)).startswith(b"HTTP/1.1 200 ")


def test_pipelined_flood_then_hang_up(case: Case) -> None:
    # 2,000 pipelined requests written at once and never read: the server must drop them with the connection.
    with socket.create_connection((case.target.host, case.target.port)) as sock, case.answered_within():
        sock.sendall(b"GET /books?category=size-10 HTTP/1.1\r\nhost: hostile\r\n\r\n" * 2000)
        time.sleep(0.2)


def test_client_leaves_in_the_middle_of_a_body(case: Case) -> None:
    # No answer is owed to a client that is gone; the server must not treat it as its own failure (before the
    # fix in targets/rest/problems.py every such client logged a full traceback).
    for _ in range(20):
        with socket.create_connection((case.target.host, case.target.port)) as sock:
            sock.sendall(
                request("POST", "/books").replace(b"content-length: 0", b"content-length: 1000") + b'{"is'
            )
            time.sleep(0.01)
    time.sleep(0.2)  # let the server notice the disconnects before the guard reads its log
