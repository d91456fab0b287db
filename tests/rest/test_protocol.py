"""Connection limits of the REST target (request head size, idle clients), over raw sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn

from targets.core import build_service, parse_clock
from targets.limits import LIMITS
from targets.rest.app import create_app
from targets.rest.protocol import LimitedHttpToolsProtocol
from tests.http1 import read_http1_response
from tests.rest.conftest import FIXED_CLOCK, RestProcess


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _status_and_problem(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    problem: dict[str, object] = orjson.loads(body)
    return int(head.split()[1]), problem


def _get(path: str, extra_headers: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: test\r\n" + extra_headers + b"\r\n"


def test_head_over_the_limit_gets_431_and_a_closed_connection(rest_target: RestProcess) -> None:
    big = b"x-padding: " + b"a" * LIMITS.max_header_bytes + b"\r\n"
    with _connect(_address(rest_target.url)) as sock:
        sock.sendall(_get("/books/1", big))
        status, problem = _status_and_problem(_read_until_closed(sock))
    assert status == 431 and problem["code"] == "InvalidArgument"


def test_head_sent_in_small_pieces_is_counted_across_them(rest_target: RestProcess) -> None:
    with _connect(_address(rest_target.url)) as sock:
        sock.sendall(b"GET /books/1 HTTP/1.1\r\nhost: test\r\n")
        try:
            for _ in range(LIMITS.max_header_bytes // 4096 + 2):
                sock.sendall(b"x-padding: " + b"a" * 4083 + b"\r\n")
                time.sleep(0.001)  # separate reads on the server side
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the client finished: expected
        status, _ = _status_and_problem(_read_until_closed(sock))
    assert status == 431


def test_heads_are_counted_per_request_not_per_connection(rest_target: RestProcess) -> None:
    padding = b"x-padding: " + b"a" * 4096 + b"\r\n"
    requests = 2 * LIMITS.max_header_bytes // len(padding)  # together twice the limit, each far under it
    with _connect(_address(rest_target.url)) as sock:
        for _ in range(requests):
            sock.sendall(_get("/healthz", padding))
            assert read_http1_response(sock).startswith(b"HTTP/1.1 200 ")


def test_large_heads_under_the_limit_and_large_bodies_are_fine(rest_target: RestProcess) -> None:
    padding = b"x-padding: " + b"a" * (LIMITS.max_header_bytes - 1024) + b"\r\n"
    with _connect(_address(rest_target.url)) as sock:
        sock.sendall(_get("/books/1", padding + b"connection: close\r\n"))
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 200 ")

    body = b"\n" * (1024 * 1024)  # a head and a large body arriving together are not one long head
    request = b"POST /books:bulk HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
    with _connect(_address(rest_target.url)) as sock:
        sock.sendall(request % len(body) + body)
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 201 ")


class _QuickIdle(LimitedHttpToolsProtocol):
    idle_timeout_s = 0.3


@pytest.fixture(scope="module")
def quick_idle_server() -> Iterator[tuple[str, int]]:
    """The app on uvicorn in a thread with a 0.3 s idle limit instead of 30 s, so a test can wait it out."""
    service = build_service("tiny", clock=parse_clock(FIXED_CLOCK))
    config = uvicorn.Config(
        create_app(service), http=_QuickIdle, loop="uvloop", lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.parametrize("sent", [b"", b"GET /books/1 HTTP/1.1\r\nhost: te"], ids=["silent", "partial head"])
def test_silent_or_slow_client_is_disconnected_with_408(
    quick_idle_server: tuple[str, int], sent: bytes
) -> None:
    with _connect(quick_idle_server) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        status, _ = _status_and_problem(_read_until_closed(sock))
        waited = time.monotonic() - started
    assert status == 408
    assert 0.25 <= waited < 3


def test_idle_limit_does_not_cut_keep_alive_connections(quick_idle_server: tuple[str, int]) -> None:
    with _connect(quick_idle_server) as sock:
        for _ in range(2):
            sock.sendall(_get("/healthz"))
            assert read_http1_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.7)  # past the idle limit, within the keep-alive timeout
