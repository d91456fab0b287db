"""The serialization benchmarks encode what the targets send, and decode it back to the same records."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.clients import make_client
from bench.load.processes import TargetProcess
from bench.load.wiretap import Wiretap
from bench.micro.bare import reference_books
from bench.micro.codecs import CODECS, FORMATS, protobuf_decode
from targets.grpc.wire import book_to_pb


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [1, 100])
def test_round_trip(fmt: str, size: int) -> None:
    books = reference_books()[f"size-{size}"]
    codec = CODECS[fmt]
    assert codec.decode(codec.encode(books)) == books


def test_protobuf_frames_are_grpc_messages() -> None:
    books = reference_books()["size-100"][:3]
    data = CODECS["protobuf"].encode(books)
    first = book_to_pb(books[0]).SerializeToString()
    assert data[:5] == b"\x00" + len(first).to_bytes(4, "big")
    assert data[5 : 5 + len(first)] == first
    assert protobuf_decode(data) == books


def _http_body(raw: bytes) -> bytes:
    """The body of the one HTTP/1.1 response in `raw` (Content-Length framing)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower(), "expected a Content-Length response"
    return body


@pytest.mark.parametrize(
    ("protocol", "kind", "fmt"), [("rest", "rest-lean", "json"), ("soap", "soap-lean", "soap-xml")]
)
def test_encoding_matches_the_target(
    start: Callable[..., TargetProcess], protocol: str, kind: str, fmt: str
) -> None:
    target = start(protocol, dataset="tiny")
    with Wiretap((target.host, target.port), capture=True) as tap:
        client = make_client(kind, tap.address)
        try:
            books = client.list_books_by_category("size-10")
        finally:
            client.close()
        received = bytes(tap.captured_received)
    assert books == reference_books("tiny")["size-10"]
    assert _http_body(received) == CODECS[fmt].encode(books)
