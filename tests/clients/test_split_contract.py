"""The contract additions of the split topology through every client kind against real targets: copy
reservations (internal), CreateLoan idempotency keys, Unavailable on each protocol, and the server's own
timings read by the client (`server_timing=True`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.clients import CLIENT_KINDS, RemoteError, TransportError, make_client, protocol_of
from bench.clients.measure import Measurement
from bench.load.processes import TargetProcess
from targets.core import ErrorKind
from tests.conftest import FIXED_CLOCK
from topology.launch import RoleOptions, start_role

KINDS = list(CLIENT_KINDS)
BOOK = 3  # tiny dataset: 2 copies, none on loan


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_reservations_and_idempotency_keys(kind: str, start: Callable[..., TargetProcess]) -> None:
    target = start(protocol_of(kind))
    client = make_client(kind, target.address, timeout_s=10)
    try:
        copies = client.get_book(BOOK).available_copies
        assert client.reserve_copy(BOOK, "req:a-1").available_copies == copies - 1
        assert client.reserve_copy(BOOK, "req:a-1").available_copies == copies - 1, "one copy per key"
        assert client.release_copy(BOOK, "req:a-1").available_copies == copies
        assert client.release_copy(BOOK, "req:a-1").available_copies == copies, "released once"
        with pytest.raises(RemoteError) as bad_key:
            client.reserve_copy(BOOK, "no spaces")
        assert bad_key.value.kind is ErrorKind.INVALID_ARGUMENT
        with pytest.raises(RemoteError) as unknown:
            client.reserve_copy(999_999, "k")
        assert unknown.value.kind is ErrorKind.NOT_FOUND

        loan = client.create_loan(1, BOOK, idempotency_key="order-1")
        assert client.create_loan(1, BOOK, idempotency_key="order-1") == loan
        assert client.get_book(BOOK).available_copies == copies - 1
        with pytest.raises(RemoteError) as reused:
            client.create_loan(2, BOOK, idempotency_key="order-1")
        assert reused.value.kind is ErrorKind.FAILED_PRECONDITION
    finally:
        client.close()


@pytest.fixture(scope="module")
def circulation_without_books() -> Iterator[dict[str, TargetProcess]]:
    """For each protocol, a circulation service whose books service is gone."""
    started: dict[str, TargetProcess] = {}
    books: list[TargetProcess] = []
    try:
        for protocol in ("grpc", "rest", "soap"):
            options = RoleOptions(protocol, dataset="tiny", clock=FIXED_CLOCK, backend_timeout_s=1.0)
            a = start_role("books", options)
            books.append(a)
            started[protocol] = start_role("circulation", options, books=a.address)
            a.stop()
        yield started
    finally:
        for process in [*started.values(), *books]:
            process.stop()


def test_unavailable_on_every_protocol(
    kind: str, circulation_without_books: dict[str, TargetProcess]
) -> None:
    protocol = protocol_of(kind)
    client = make_client(kind, circulation_without_books[protocol].address, timeout_s=10)
    try:
        assert client.get_user(1).id == 1, "what does not need the books service still works"
        with pytest.raises((RemoteError, TransportError)) as info:
            client.create_loan(1, BOOK)
    finally:
        client.close()
    error = info.value
    if protocol == "grpc":  # the gRPC client reports UNAVAILABLE as a transport-level reason
        assert isinstance(error, TransportError) and error.reason == "unavailable"
    else:
        assert isinstance(error, RemoteError) and error.kind is ErrorKind.UNAVAILABLE
        assert error.native.endswith("503 Unavailable" if protocol == "rest" else "Server.Unavailable")
    assert "the books service at" in error.message


def test_the_server_timing_a_client_reads(kind: str) -> None:
    protocol = protocol_of(kind)
    books = start_role("books", RoleOptions(protocol, dataset="tiny", clock=FIXED_CLOCK))
    seen: list[Measurement] = []
    timed = make_client(kind, books.address, hook=seen.append, server_timing=True)
    untimed = make_client(kind, books.address, hook=seen.append)
    try:
        timed.get_book(1)
        timed.list_books_by_category("size-10")
        with pytest.raises(RemoteError):
            timed.get_book(999_999)
        untimed.get_book(1)
    finally:
        timed.close()
        untimed.close()
        books.stop()
    read, stream, refused, plain = seen
    for measurement in (read, stream, refused):
        assert measurement.server_timing is not None, measurement.operation
        assert set(measurement.server_timing) == {"total", "own"}
        assert 0 <= measurement.server_timing["total"] < measurement.latency_s
    assert plain.server_timing is None, "not read unless asked"
