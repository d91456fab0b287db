"""Bytes on the wire, checked against exchanges whose size is known exactly.

The relay must count what crosses the socket — no more, no less — for HTTP/1.1 (headers, chunking) and
HTTP/2 (preface, frames, HPACK); the per-call figures the clients report must add up to the relay's totals.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from bench.clients import make_client
from bench.clients.measure import Measurement
from bench.load.processes import TargetProcess
from bench.load.wiretap import Wiretap
from tests.http1 import read_http1_response

Start = Callable[..., TargetProcess]
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_exact_count_of_a_hand_made_http1_exchange(start: Start) -> None:
    target = start("rest")
    request = f"GET /books/1 HTTP/1.1\r\nHost: {target.address}\r\nAccept: application/json\r\n\r\n".encode()
    with (
        Wiretap((target.host, target.port)) as tap,
        socket.create_connection(("127.0.0.1", tap.port)) as sock,
    ):
        sock.sendall(request)
        response = read_http1_response(sock)
        sent, received = tap.counts()
    assert sent == len(request)
    assert received == len(response)
    assert response.startswith(b"HTTP/1.1 200")


def h2_frames(data: bytes) -> list[tuple[int, int]]:
    """(type, length) of every HTTP/2 frame in a byte string that is whole frames only."""
    frames, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 3], "big")
        frames.append((data[offset + 3], length))
        offset += 9 + length
    assert offset == len(data), "the capture ends mid-frame"
    return frames


def test_grpc_bytes_are_whole_http2_frames_and_match_the_client_figures(start: Start) -> None:
    target = start("grpc")
    seen: list[Measurement] = []
    with Wiretap((target.host, target.port), capture=True) as tap:
        client = make_client("grpc", tap.address, hook=seen.append, byte_counter=tap.counts)
        try:
            for _ in range(5):
                assert client.get_book(1).id == 1
        finally:
            client.close()
        sent, received = tap.counts()
        upstream, downstream = bytes(tap.captured_sent), bytes(tap.captured_received)
    assert upstream.startswith(H2_PREFACE)
    up_frames = h2_frames(upstream[len(H2_PREFACE) :])
    down_frames = h2_frames(downstream)
    assert sent == len(H2_PREFACE) + sum(9 + length for _, length in up_frames)
    assert received == sum(9 + length for _, length in down_frames)
    # the request DATA frames carry the 5-byte gRPC prefix + GetBookRequest(id=1) = 2 bytes
    data_frames = [length for kind, length in up_frames if kind == 0 and length]
    assert data_frames == [5 + 2] * 5
    # every byte counted by the relay during the calls is attributed to exactly one call
    assert sum(m.request_bytes or 0 for m in seen) <= sent
    assert sum(m.response_bytes or 0 for m in seen) <= received
    steady = seen[-1]
    assert steady.request_bytes and steady.response_bytes
    # a steady-state GetBook: headers (HPACK-indexed after the first call) + one DATA frame each way
    assert steady.request_bytes < seen[0].request_bytes, "HPACK makes repeated headers smaller"


@pytest.mark.parametrize("kind", ["rest-lean", "soap-lean"])
def test_lean_client_figures_equal_the_relay_totals(start: Start, kind: str) -> None:
    target = start(kind.split("-")[0])
    seen: list[Measurement] = []
    with Wiretap((target.host, target.port)) as tap:
        client = make_client(kind, tap.address, hook=seen.append, byte_counter=tap.counts)
        try:
            for _ in range(3):
                client.get_book(1)
            client.list_books_by_category("size-10")
        finally:
            client.close()
        sent, received = tap.counts()
    assert sum(m.request_bytes or 0 for m in seen) == sent
    assert sum(m.response_bytes or 0 for m in seen) == received
    assert len({m.request_bytes for m in seen[:3]}) == 1, "the same request costs the same bytes every time"
