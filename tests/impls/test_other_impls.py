"""The other implementations (Node.js, Go) as real processes: started like every target, pinned, stopped,
hardened against garbage input. Their conformance runs in tests/conformance and tests/verify."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import grpc
import pytest

from bench.clients.grpc_client import GrpcClient
from bench.load.processes import TargetProcess
from bench.paths import REPO
from tests.grpc.test_grpc_target import raw_unary

Start = Callable[..., TargetProcess]
# implementation -> the program that serves (the process name `bench serve` hands over to)
PROGRAMS = {"node": "node", "go": "library-grpc-go"}
IMPLS = pytest.mark.parametrize("impl", list(PROGRAMS))


@IMPLS
def test_starts_like_every_target_and_stops_cleanly(start: Start, impl: str) -> None:
    target = start("grpc", impl=impl, cpu=0)
    assert target.ready_line == f"READY grpc 127.0.0.1:{target.port}"
    # `bench serve` hands its own process over: the pid the harness holds is the server, pinned.
    with open(f"/proc/{target.pid}/comm") as comm:
        assert comm.read().strip() == PROGRAMS[impl]
    assert os.sched_getaffinity(target.pid) == {0}
    client = GrpcClient(target.address)
    try:
        assert client.get_book(1).category == "size-1"
    finally:
        client.close()
    assert target.stop(signal.SIGTERM) == 0
    assert target.stdout_after_ready == b""  # nothing on stdout but the READY line


@IMPLS
def test_streams_a_thousand_books_in_id_order(start: Start, impl: str) -> None:
    target = start("grpc", impl=impl, dataset="small")
    client = GrpcClient(target.address)
    try:
        books = client.list_books_by_category("size-1000")
    finally:
        client.close()
    assert len(books) == 1000
    assert [b.id for b in books] == sorted(b.id for b in books)


@IMPLS
@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("/library.v1.Library/GetBook", b"\xff\xff\xff\xff\xff"),  # corrupt varint
        ("/library.v1.Library/AddBook", b"\x12\x02\xff\xfe"),  # title with invalid UTF-8
        ("/library.v1.Library/AddUser", b"\x0a\x10short"),  # length prefix past the end
    ],
)
def test_garbage_is_invalid_argument_and_the_server_keeps_serving(
    start: Start, impl: str, method: str, payload: bytes
) -> None:
    target = start("grpc", impl=impl)
    with grpc.insecure_channel(target.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(channel, method)(payload, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bulk = "/library.v1.Library/BulkAddBooks"
        stream = channel.stream_unary(bulk, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            stream(iter([b"\xff\xff\xff"]), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client = GrpcClient(target.address)
    try:
        assert client.get_book(1).id == 1
    finally:
        client.close()


@IMPLS
def test_other_implementations_serve_grpc_only(impl: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "targets", "serve", "rest", "--impl", impl],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"the {impl} implementation serves grpc, not rest" in done.stderr
