"""Hostile input against the gRPC target: raw HTTP/2 frames, bad gRPC framing, bad protobuf, stream abuse.

Expected answers: a gRPC status (the one the gRPC spec or the error table of docs/ARCHITECTURE.md names) on
the stream, or, for connection-level violations (bad preface, bad frames, HPACK errors, floods), a closed
connection, with or without a GOAWAY first; HTTP/2 lets the server close on any connection error.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator

import grpc
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)

from tests.hostile._h2 import H2Connection, StreamResult, grpc_frame, varint
from tests.hostile._support import ANSWER_BOUND_S, Case

pytestmark = pytest.mark.hostile("grpc")

SERVICE = "/library.v1.Library"
GET_BOOK = f"{SERVICE}/GetBook"
GET_BOOK_1 = b"\x08\x01"  # GetBookRequest(id=1)
OK = grpc.StatusCode.OK.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED.value[0]
INTERNAL = grpc.StatusCode.INTERNAL.value[0]
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
# RST_STREAM codes a server uses to turn away streams over SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 5.1.2).
REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x7, 0xB


@contextlib.contextmanager
def connection(case: Case) -> Iterator[H2Connection]:
    """A raw HTTP/2 connection whose received bytes all go through the leak check."""
    conn = H2Connection(case.target.host, case.target.port)
    try:
        yield conn
    finally:
        case.record(conn.received)
        conn.close()


@contextlib.contextmanager
def channel(case: Case) -> Iterator[grpc.Channel]:
    # A client that sends anything: no send-side limits of its own.
    options = [("grpc.max_send_message_length", -1), ("grpc.max_metadata_size", 1 << 24)]
    with grpc.insecure_channel(case.target.process.address, options=options) as chan:
        yield chan


def raw_unary(chan: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    return chan.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def rpc_error(case: Case, call: object) -> grpc.RpcError:
    """Run `call()`, which must fail with an RpcError; its details go through the leak check."""
    assert callable(call)
    with pytest.raises(grpc.RpcError) as info, case.answered_within():
        call()
    case.record(str(info.value.details()))
    return info.value


def one_stream(conn: H2Connection, stream_id: int = 1) -> StreamResult:
    result = conn.wait_streams([stream_id], ANSWER_BOUND_S)[stream_id]
    assert result.finished, f"no answer on stream {stream_id}: {result}"
    return result


def header_frames(conn: H2Connection, stream_id: int, headers: list[tuple[str, str]]) -> list[HeadersFrame]:
    """A header block split into HEADERS + CONTINUATION frames of the default maximum frame size."""
    block = conn.header_block(headers)
    chunks = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    frames: list[HeadersFrame] = [HeadersFrame(stream_id, chunks[0])]
    frames += [ContinuationFrame(stream_id, chunk) for chunk in chunks[1:]]  # type: ignore[misc]
    frames[-1].flags.add("END_HEADERS")
    return frames


# ---- connection-level garbage: the connection is closed ----------------------------------------------------
@pytest.mark.parametrize("size", [16, 4096, 65536])
def test_random_bytes_after_a_valid_preface(case: Case, size: int) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.send_raw(random.Random(size).randbytes(size))
        assert conn.wait_closed(ANSWER_BOUND_S)


@pytest.mark.parametrize(
    "opening",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00",
    ],
    ids=["http1-request", "corrupt-preface", "tls-client-hello"],
)
def test_not_an_http2_preface(case: Case, opening: bytes) -> None:
    with connection(case) as conn, case.answered_within():
        conn.send_raw(opening)
        assert conn.wait_closed(ANSWER_BOUND_S)


def test_truncated_frame_then_half_close(case: Case) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        frame = HeadersFrame(1, conn.header_block(conn.grpc_headers(GET_BOOK)))
        frame.flags.add("END_HEADERS")
        conn.send_raw(frame.serialize()[:20])
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.wait_closed(ANSWER_BOUND_S)


@pytest.mark.parametrize(
    "block",
    [b"\xff" * 100, b"\x3f\xe1\xff\x03"],  # garbage HPACK; a dynamic table size update past the limit
    ids=["garbage-hpack", "hpack-table-size-over-limit"],
)
def test_undecodable_header_block(case: Case, block: bytes) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        frame = HeadersFrame(1, block + conn.header_block(conn.grpc_headers(GET_BOOK)))
        frame.flags.add("END_HEADERS")
        conn.send(frame)
        assert conn.wait_closed(ANSWER_BOUND_S)


def test_zero_window_update(case: Case) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.send(WindowUpdateFrame(0, 0))  # PROTOCOL_ERROR (RFC 9113 6.9)
        assert conn.wait_closed(ANSWER_BOUND_S)


def test_continuation_without_headers(case: Case) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        frame = ContinuationFrame(1, conn.header_block(conn.grpc_headers(GET_BOOK)))
        frame.flags.add("END_HEADERS")
        conn.send(frame)
        assert conn.wait_closed(ANSWER_BOUND_S)


def test_ping_flood(case: Case) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.send(*[PingFrame(0, i.to_bytes(8, "big")) for i in range(20_000)])
        assert conn.wait_closed(ANSWER_BOUND_S)
    assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM


def test_continuation_flood_never_ending_a_header_block(case: Case) -> None:
    # 48 MB of CONTINUATION frames without END_HEADERS (the 2024 "CONTINUATION flood"): must not be buffered.
    with connection(case) as conn, case.answered_within(15.0):
        conn.start()
        first = HeadersFrame(1, conn.header_block(conn.grpc_headers(GET_BOOK)))
        flood = ContinuationFrame(1, b"\x00" * 16000).serialize()
        conn.send(first)
        with contextlib.suppress(OSError):  # the server may close before we are done
            for _ in range(3000):
                conn.send_raw(flood)
        assert conn.wait_closed(ANSWER_BOUND_S)


def test_rapid_reset(case: Case) -> None:
    # Open and cancel 10,000 streams at once (CVE-2023-44487): the server must keep up and stay usable.
    with connection(case) as conn, case.answered_within(15.0):
        conn.start()
        frames: list[HeadersFrame | RstStreamFrame] = []
        for stream_id in range(1, 20_001, 2):
            frames += header_frames(conn, stream_id, conn.grpc_headers(GET_BOOK))
            frames.append(RstStreamFrame(stream_id, 0x8))  # CANCEL
        conn.send(*frames)
        if not conn.closed:
            with contextlib.suppress(OSError):
                conn.unary(20_001, GET_BOOK, GET_BOOK_1)
            result = conn.wait_streams([20_001], ANSWER_BOUND_S)[20_001]
            # The same connection still answers, or refuses more streams from this client (grpc core's
            # rapid-reset defence answers ENHANCE_YOUR_CALM), or the server ends it with a GOAWAY.
            calmed = result.reset_code in (REFUSED_STREAM, ENHANCE_YOUR_CALM)
            assert result.grpc_status == OK or calmed or conn.goaway is not None or conn.closed


# ---- gRPC framing: the stream gets a status ----------------------------------------------------------------
@pytest.mark.parametrize("length", [100 * 1024 * 1024, 2**32 - 1], ids=["100MB", "4GB"])
def test_length_prefix_over_the_message_limit(case: Case, length: int) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.open_stream(1, conn.grpc_headers(GET_BOOK))
        conn.send_data(1, grpc_frame(GET_BOOK_1, length=length))  # announces far more than it sends
        assert one_stream(conn).grpc_status == RESOURCE_EXHAUSTED


def test_message_over_the_limit_for_real(case: Case) -> None:
    title = b"x" * (9 * 1024 * 1024)
    with channel(case) as chan:
        error = rpc_error(
            case, lambda: raw_unary(chan, f"{SERVICE}/AddBook")(b"\x12" + varint(len(title)) + title)
        )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([], grpc_frame(GET_BOOK_1, compressed=True)),  # the spec's answer: INTERNAL
        ([("grpc-encoding", "gzip")], grpc_frame(b"not gzip at all", compressed=True)),
        ([("grpc-encoding", "no-such-codec")], grpc_frame(GET_BOOK_1, compressed=True)),
    ],
    ids=["compressed-flag-without-encoding", "gzip-garbage", "unknown-encoding"],
)
def test_bad_compression(case: Case, headers: list[tuple[str, str]], message: bytes) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.open_stream(1, conn.grpc_headers(GET_BOOK, extra=headers))
        conn.send_data(1, message, end_stream=True)
        assert one_stream(conn).grpc_status in (INTERNAL, UNIMPLEMENTED)


@pytest.mark.parametrize(
    "path",
    [f"{SERVICE}/NoSuchMethod", "/no.such.Service/GetBook", "/../../etc/passwd", "/" + "x" * 10_000],
    ids=["unknown-method", "unknown-service", "path-traversal", "10k-path"],
)
def test_unknown_method(case: Case, path: str) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.unary(1, path, GET_BOOK_1)
        assert one_stream(conn).grpc_status == UNIMPLEMENTED


@pytest.mark.parametrize(
    "extra",
    [[("grpc-timeout", "soon")], [("x-token-bin", "!!! not base64 !!!")]],
    ids=["malformed-grpc-timeout", "malformed-binary-metadata"],
)
def test_malformed_reserved_metadata(case: Case, extra: list[tuple[str, str]]) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        conn.unary(1, GET_BOOK, GET_BOOK_1, extra=extra)
        assert one_stream(conn).grpc_status == INTERNAL  # grpc core: "Error parsing '<key>' metadata"


def test_get_instead_of_post(case: Case) -> None:
    with connection(case) as conn, case.answered_within():
        conn.start()
        headers = [(k, "GET" if k == ":method" else v) for k, v in conn.grpc_headers(GET_BOOK)]
        conn.open_stream(1, headers, end_stream=True)
        result = one_stream(conn)
        assert result.reset_code is not None or result.grpc_status not in (None, OK)


def test_json_body_with_json_content_type(case: Case) -> None:
    # A REST client pointed at the gRPC port: '{"id": 1}' read as a gRPC frame is a flag byte of 0x7b and a
    # 577 MB length prefix, cut short by END_STREAM. grpc core answers with an error or, at random, not at all
    # (the grpc.aio bug documented below), so the request carries a deadline, as real clients' requests do.
    with connection(case) as conn, case.answered_within(1.0 + ANSWER_BOUND_S):
        conn.start()
        conn.open_stream(1, conn.grpc_headers(GET_BOOK, content_type="application/json", timeout="1S"))
        conn.send_data(1, b'{"id": 1}', end_stream=True)
        assert one_stream(conn).grpc_status not in (None, OK)


# ---- metadata ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metadata",
    [[(f"x-h{i}", "v" * 1000) for i in range(1000)], [("x-big", "a" * 1_000_000)]],
    ids=["1000-headers-of-1KB", "one-1MB-header"],
)
def test_metadata_over_the_limit(case: Case, metadata: list[tuple[str, str]]) -> None:
    # Sent by a grpc client (Huffman-coded, as every real client does): refused against the hard limit.
    with channel(case) as chan:
        error = rpc_error(
            case, lambda: raw_unary(chan, GET_BOOK)(GET_BOOK_1, metadata=tuple(metadata), timeout=5)
        )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_header_value_over_the_hpack_string_cap(case: Case) -> None:
    with connection(case) as conn:
        frames = header_frames(
            conn, 1, conn.grpc_headers(GET_BOOK, extra=[("x-big", "a" * (17 * 1024 * 1024))])
        )
        with case.answered_within():
            conn.start()
            conn.send(*frames)
            conn.send_data(1, grpc_frame(GET_BOOK_1), end_stream=True)
            assert one_stream(conn).grpc_status == RESOURCE_EXHAUSTED


@pytest.mark.xfail(
    strict=True,
    reason="grpc core 1.85 bug: header values sent without Huffman coding skip the hard metadata limit "
    "(80 KiB here) and are refused only at random (soft limit) up to a 16 MiB cap; 20 streams with 10 MB "
    "headers took the target from 50 to 430 MB. Not fixable in the adapter (the HPACK parser is in C core).",
)
def test_plain_megabyte_header_values_are_always_refused(case: Case) -> None:
    ids = list(range(1, 41, 2))
    with connection(case) as conn:
        headers = conn.grpc_headers(GET_BOOK, extra=[("x-big", "a" * 1_000_000)])
        frames = [frame for stream_id in ids for frame in header_frames(conn, stream_id, headers)]
        conn.start()
        for frame in frames:
            conn.send(frame)
            if "END_HEADERS" in frame.flags:
                conn.send_data(frame.stream_id, grpc_frame(GET_BOOK_1), end_stream=True)
        results = conn.wait_streams(ids, ANSWER_BOUND_S)
    assert all(r.grpc_status == RESOURCE_EXHAUSTED for r in results.values())


@pytest.mark.xfail(
    strict=True,
    reason="grpc core accepts any content-type (the gRPC spec says a server SHOULD answer HTTP 415)",
)
def test_wrong_content_type_with_a_valid_body(case: Case) -> None:
    with connection(case) as conn:
        conn.start()
        conn.unary(1, GET_BOOK, GET_BOOK_1, content_type="text/plain")
        result = one_stream(conn)
    assert result.headers.get(":status") == "415" or result.grpc_status != OK


# ---- concurrency and idle clients --------------------------------------------------------------------------
def test_thousand_concurrent_streams_on_one_connection(case: Case) -> None:
    with connection(case) as conn, case.answered_within(15.0):
        conn.start()
        ids = list(range(1, 2001, 2))
        frames: list[HeadersFrame | DataFrame] = []
        for stream_id in ids:
            frames += header_frames(conn, stream_id, conn.grpc_headers(GET_BOOK))
            frames.append(conn.data(stream_id, grpc_frame(GET_BOOK_1), end_stream=True))
        conn.send(*frames)
        results = conn.wait_streams(ids, 10.0)
    assert all(r.finished for r in results.values()), "every stream must be answered or refused"
    served = [r for r in results.values() if r.grpc_status == OK]
    refused = [r for r in results.values() if r.reset_code in (REFUSED_STREAM, ENHANCE_YOUR_CALM)]
    assert len(served) + len(refused) == len(ids)
    assert len(served) >= 256  # LIMITS.max_concurrent_streams at once, at the very least


def test_thousand_concurrent_calls_through_one_channel(case: Case) -> None:
    # Each call either succeeds or is refused by the server (RST_STREAM REFUSED_STREAM, which grpc clients
    # report as UNAVAILABLE): the server counts a stream until it has seen it end, so a client that reuses
    # slots at once can briefly exceed SETTINGS_MAX_CONCURRENT_STREAMS in the server's eyes.
    with channel(case) as chan, case.answered_within(20.0):
        call = raw_unary(chan, GET_BOOK)
        futures = [call.future(GET_BOOK_1, timeout=20) for _ in range(1000)]
        served = 0
        for future in futures:
            try:
                served += future.result().startswith(b"\x08\x01")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                assert "error code 7" in str(exc.details()), exc
    assert served >= 256


def test_streams_held_open_do_not_block_other_clients(case: Case) -> None:
    # 256 BulkAddBooks streams that never send a message and have no deadline: legal (a client may stream at
    # leisure), so the server waits; it must still serve everybody else at once.
    with connection(case) as conn:
        conn.start()
        for stream_id in range(1, 513, 2):
            conn.open_stream(stream_id, conn.grpc_headers(f"{SERVICE}/BulkAddBooks"))
        conn.pump(0.5)
        started = time.monotonic()
        case.target.still_serves()
        assert time.monotonic() - started < 1.0


def test_silent_connections_do_not_block_other_clients(case: Case) -> None:
    # 200 TCP connections that never send a byte (not even the preface).
    socks = [socket.create_connection((case.target.host, case.target.port)) for _ in range(200)]
    try:
        started = time.monotonic()
        case.target.still_serves()
        assert time.monotonic() - started < 1.0
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        (GET_BOOK, None),  # a unary call half-closed without its message
        (GET_BOOK, grpc_frame(GET_BOOK_1, length=100)),  # a message cut short, then half-closed
        (GET_BOOK, b"\x00\x00"),  # a length prefix cut short, then half-closed
        (f"{SERVICE}/BulkAddBooks", b""),  # a client stream that opens and never sends or ends
    ],
    ids=[
        "unary-without-message",
        "truncated-message",
        "truncated-length-prefix",
        "client-stream-never-sends",
    ],
)
def test_incomplete_request_with_a_deadline_ends_at_the_deadline(
    case: Case, method: str, payload: bytes | None
) -> None:
    with connection(case) as conn, case.answered_within(1.0 + ANSWER_BOUND_S):
        conn.start()
        conn.open_stream(1, conn.grpc_headers(method, timeout="1S"), end_stream=payload is None)
        if payload:
            conn.send_data(1, payload, end_stream=True)
        assert one_stream(conn).grpc_status == DEADLINE_EXCEEDED


@pytest.mark.xfail(
    strict=True,
    reason="grpc.aio bug: a unary call half-closed without a (complete) message is never answered "
    "(_handle_unary_unary_rpc returns without a status), so the stream hangs until the client leaves; "
    "gRPC Java answers INTERNAL here. Fixing it in the adapter would mean registering every unary method "
    "as client-streaming, a cost on the hottest benchmark path.",
)
def test_unary_without_message_and_without_deadline_is_answered(case: Case) -> None:
    with connection(case) as conn:
        conn.start()
        conn.open_stream(1, conn.grpc_headers(GET_BOOK), end_stream=True)
        result = conn.wait_streams([1], 2.0)[1]
    assert result.finished


# ---- protobuf content: INVALID_ARGUMENT (docs/ARCHITECTURE.md), never INTERNAL ------------------------
def _field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


BAD_UTF8 = b"\xff\xfe\xc3\x28"
GOOD_BOOK = {1: b"9780306406157", 2: b"Title", 3: b"Author", 4: b"Category"}


def _add_book(**bad: int) -> bytes:
    fields = dict(GOOD_BOOK)
    for number in bad.values():
        fields[number] = BAD_UTF8
    body = b"".join(_field(n, v) for n, v in fields.items())
    return body + varint(5 << 3) + varint(2000) + varint(6 << 3) + varint(1)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("AddBook", _add_book(isbn=1)),
        ("AddBook", _add_book(title=2)),
        ("AddBook", _add_book(author=3)),
        ("AddBook", _add_book(category=4)),
        ("AddUser", _field(1, BAD_UTF8) + _field(2, b"a@example.org")),
        ("AddUser", _field(1, b"Ada") + _field(2, b"a\xff@example.org")),
        ("ListBooksByCategory", _field(1, BAD_UTF8)),
    ],
    ids=["isbn", "title", "author", "category", "name", "email", "list-category"],
)
def test_invalid_utf8_in_a_string_field(case: Case, method: str, message: bytes) -> None:
    with channel(case) as chan:
        if method == "ListBooksByCategory":
            stream = chan.unary_stream(
                f"{SERVICE}/{method}", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            error = rpc_error(case, lambda: list(stream(message, timeout=ANSWER_BOUND_S)))
        else:
            error = rpc_error(
                case, lambda: raw_unary(chan, f"{SERVICE}/{method}")(message, timeout=ANSWER_BOUND_S)
            )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "message",
    [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint that never ends
        b"\x0a\x10short",  # a length past the end of the message
        b"\x0e\x01",  # wire type 6 does not exist
        b"\x0b" * 100_000 + b"\x0c" * 100_000,  # unknown groups nested 100,000 deep
        varint(1 << 3) + varint(2**64 - 1),  # id = -1
        b"\x08",  # a field tag without its value
    ],
    ids=[
        "endless-varint",
        "length-past-end",
        "wire-type-6",
        "groups-100k-deep",
        "negative-id",
        "tag-without-value",
    ],
)
def test_malformed_protobuf(case: Case, message: bytes) -> None:
    with channel(case) as chan:
        error = rpc_error(case, lambda: raw_unary(chan, GET_BOOK)(message, timeout=ANSWER_BOUND_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_fields_of_every_wire_type_are_ignored(case: Case) -> None:
    # Protocol-correct answer: success. proto3 keeps unknown fields and the request means GetBook(1).
    unknown = varint(99 << 3 | 0) + varint(7) + varint(98 << 3 | 1) + b"\x00" * 8 + _field(97, b"x" * 1000)
    unknown += varint(96 << 3 | 5) + b"\x00" * 4 + varint(95 << 3 | 3) + varint(95 << 3 | 4)
    with channel(case) as chan, case.answered_within():
        reply = raw_unary(chan, GET_BOOK)(GET_BOOK_1 + unknown, timeout=ANSWER_BOUND_S)
        case.record(reply)
    assert reply.startswith(b"\x08\x01")


def test_int32_field_sent_as_a_64_bit_varint(case: Case) -> None:
    # year = 2**40: protobuf truncates it to int32 (0), which the core refuses.
    message = _add_book() + varint(5 << 3) + varint(2**40)
    with channel(case) as chan:
        error = rpc_error(
            case, lambda: raw_unary(chan, f"{SERVICE}/AddBook")(message, timeout=ANSWER_BOUND_S)
        )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- streams carrying garbage ------------------------------------------------------------------------------
def test_client_stream_of_garbage(case: Case) -> None:
    rng = random.Random(7)
    with channel(case) as chan:
        bulk = chan.stream_unary(
            f"{SERVICE}/BulkAddBooks", request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        error = rpc_error(
            case, lambda: bulk(iter([rng.randbytes(64) for _ in range(100)]), timeout=ANSWER_BOUND_S)
        )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_endless_client_stream_is_cut_at_the_batch_limit(case: Case) -> None:
    with channel(case) as chan:
        bulk = chan.stream_unary(
            f"{SERVICE}/BulkAddBooks", request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        endless = (b"" for _ in range(10**9))  # empty AddBookRequests, forever
        error = rpc_error(case, lambda: bulk(endless, timeout=ANSWER_BOUND_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "messages",
    [
        [b"\x08\x02\x10\x03", b"\xff\xff\xff"],  # loan 2 -> OVERDUE, then garbage
        [b"\xff\xff\xff", b"\x08\x02\x10\x03"],  # garbage first
        [b"\x08\x02\x10\x63"],  # status 99: not a LoanStatus
    ],
    ids=["garbage-mid-stream", "garbage-first", "enum-out-of-range"],
)
def test_bidirectional_stream_with_garbage(case: Case, messages: list[bytes]) -> None:
    answers: list[bytes] = []
    with channel(case) as chan:
        bidi = chan.stream_stream(
            f"{SERVICE}/UpdateLoanStatus", request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        error = rpc_error(case, lambda: answers.extend(bidi(iter(messages), timeout=ANSWER_BOUND_S)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    valid_before_garbage = 1 if messages[0].startswith(b"\x08\x02\x10\x03") else 0
    assert len(answers) == valid_before_garbage  # updates before the bad one are answered (and applied)
