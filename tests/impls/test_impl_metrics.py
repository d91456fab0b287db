"""The server-side call counters of the other implementations (Node.js, Go) as real processes: `bench serve
grpc --impl node|go --metrics-port 0` serves `library_calls_total{operation}` and
`library_errors_total{operation,kind}` at GET /metrics on the READY line's `metrics=` address, counted the
way the Python targets count (targets/core/calls.py); `--inject-delay` busy-waits on every call."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.clients import RemoteError, make_client
from bench.load.processes import TargetProcess
from bench.paths import REPO
from targets.core import ErrorKind, NewBook, StatusUpdate
from targets.core.operations import INTERNAL_OPERATIONS, OPERATIONS
from targets.grpc._generated import library_pb2
from tests.grpc.test_grpc_target import raw_unary

Start = Callable[..., TargetProcess]
IMPLS = pytest.mark.parametrize("impl", ["node", "go"])
MISSING_ID = 999_999


def require(impl: str) -> None:
    """Skip, with the reason, when the implementation cannot start here (make deps has not run)."""
    if impl == "node":
        from targets.node import NodeUnavailable, _node

        try:
            _node()
        except NodeUnavailable as exc:
            pytest.skip(f"node implementation unavailable: {exc}")
    else:
        from targets.go import BINARY

        if not os.access(BINARY, os.X_OK):
            pytest.skip(f"go implementation unavailable: {BINARY} is not built (targets/go/build.sh)")


@dataclass(frozen=True)
class Counters:
    content_type: str
    families: dict[str, str]  # family name -> type
    calls: dict[str, int]
    errors: dict[tuple[str, str], int]


def scrape(address: str) -> Counters:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    families: dict[str, str] = {}
    calls: dict[str, int] = {}
    errors: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            if sample.name == "library_calls_total":
                calls[sample.labels["operation"]] = int(sample.value)
            elif sample.name == "library_errors_total":
                errors[(sample.labels["operation"], sample.labels["kind"])] = int(sample.value)
            else:
                raise AssertionError(f"unexpected sample {sample}")
    return Counters(content_type, families, calls, errors)


def grown(before: Counters, after: Counters) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """What changed between two scrapes (only the counters that grew)."""
    calls = {op: n - before.calls.get(op, 0) for op, n in after.calls.items()}
    errors = {key: n - before.errors.get(key, 0) for key, n in after.errors.items()}
    return {op: n for op, n in calls.items() if n}, {key: n for key, n in errors.items() if n}


def started(start: Start, impl: str, **options: object) -> tuple[TargetProcess, str]:
    require(impl)
    target = start("grpc", impl=impl, dataset="small", metrics=True, **options)
    metrics = target.metrics_address
    assert metrics is not None, target.ready_line
    assert target.ready_line == f"READY grpc 127.0.0.1:{target.port} metrics={metrics}"
    host, _, port = metrics.rpartition(":")
    assert host == "127.0.0.1" and int(port) not in (0, target.port)
    return target, metrics


@IMPLS
def test_every_operation_is_listed_at_zero_on_a_fresh_server(start: Start, impl: str) -> None:
    target, metrics = started(start, impl)
    fresh = scrape(metrics)
    assert fresh.content_type.startswith("text/plain; version=0.0.4")
    # Every operation of the contract (the split topology's internal ones too: they are in the .proto).
    assert fresh.calls == dict.fromkeys([*OPERATIONS, *INTERNAL_OPERATIONS], 0)
    assert fresh.errors == {}
    assert fresh.families.get("library_calls") == "counter"
    assert set(fresh.families) <= {"library_calls", "library_errors"}
    assert all(fresh.families[name] == "counter" for name in fresh.families)
    assert scrape(metrics).calls == fresh.calls  # a scrape is not a call
    assert target.alive()


@IMPLS
def test_calls_and_errors_are_counted_once_per_call(start: Start, impl: str) -> None:
    target, metrics = started(start, impl)
    client = make_client("grpc", target.address)
    try:
        before = scrape(metrics)
        for book_id in range(1, 11):
            assert client.get_book(book_id).id == book_id
        assert grown(before, scrape(metrics)) == ({"GetBook": 10}, {})

        before = scrape(metrics)
        with pytest.raises(RemoteError) as info:
            client.get_book(MISSING_ID)
        assert info.value.kind is ErrorKind.NOT_FOUND
        after = scrape(metrics)
        assert grown(before, after) == ({"GetBook": 1}, {("GetBook", "NotFound"): 1})
        assert after.families["library_errors"] == "counter"

        # A server stream of 100 books is one call.
        before = scrape(metrics)
        assert len(client.list_books_by_category("size-100")) == 100
        assert grown(before, scrape(metrics)) == ({"ListBooksByCategory": 1}, {})

        # A client stream of two books, one of them invalid: one call, one InvalidArgument.
        before = scrape(metrics)
        good = NewBook("9780306406157", "Counted", "Author", "tests", 2001, 1)
        bad = NewBook("9780306406157", "Counted", "Author", "tests", 5, 1)
        with pytest.raises(RemoteError) as info:
            client.bulk_add_books([good, bad])
        assert info.value.kind is ErrorKind.INVALID_ARGUMENT
        expected = ({"BulkAddBooks": 1}, {("BulkAddBooks", "InvalidArgument"): 1})
        assert grown(before, scrape(metrics)) == expected

        # A bidirectional stream: one call whatever it carries; its first failing update ends it.
        before = scrape(metrics)
        assert client.update_loan_status([]) == []
        with pytest.raises(RemoteError) as info:
            client.update_loan_status([StatusUpdate(MISSING_ID, "LOST")])
        assert info.value.kind is ErrorKind.NOT_FOUND
        expected = ({"UpdateLoanStatus": 2}, {("UpdateLoanStatus", "NotFound"): 1})
        assert grown(before, scrape(metrics)) == expected

        before = scrape(metrics)
        client.get_overdue_loans()
        with pytest.raises(RemoteError):
            client.get_user(MISSING_ID)
        assert grown(before, scrape(metrics)) == (
            {"GetOverdueLoans": 1, "GetUser": 1},
            {("GetUser", "NotFound"): 1},
        )
    finally:
        client.close()


@IMPLS
def test_an_undecodable_request_is_a_call_that_ends_in_invalid_argument(start: Start, impl: str) -> None:
    target, metrics = started(start, impl)
    before = scrape(metrics)
    with grpc.insecure_channel(target.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(channel, "/library.v1.Library/GetBook")(b"\xff\xff\xff\xff\xff", timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Not the Library service (health): not a call of any operation.
        raw_unary(channel, "/grpc.health.v1.Health/Check")(b"", timeout=5)
    assert grown(before, scrape(metrics)) == ({"GetBook": 1}, {("GetBook", "InvalidArgument"): 1})


@IMPLS
def test_a_call_the_client_cancels_is_counted_but_is_no_error(start: Start, impl: str) -> None:
    target, metrics = started(start, impl)
    before = scrape(metrics)
    stop_sending = threading.Event()

    def updates() -> Iterator[bytes]:
        stop_sending.wait(10)  # keep the request stream open until the call is cancelled
        return
        yield b""

    with grpc.insecure_channel(target.address) as channel:
        request = library_pb2.ListBooksByCategoryRequest(category="size-1000").SerializeToString()
        listing = channel.unary_stream(
            "/library.v1.Library/ListBooksByCategory",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )(request, timeout=10)
        next(listing)
        listing.cancel()
        bidi = channel.stream_stream(
            "/library.v1.Library/UpdateLoanStatus",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )(updates(), timeout=10)
        deadline = time.monotonic() + 5
        while scrape(metrics).calls["UpdateLoanStatus"] == before.calls["UpdateLoanStatus"]:
            assert time.monotonic() < deadline, "the bidirectional call never reached the server"
            time.sleep(0.02)
        bidi.cancel()
        stop_sending.set()
    time.sleep(0.5)  # let the server see both cancellations
    assert grown(before, scrape(metrics)) == ({"ListBooksByCategory": 1, "UpdateLoanStatus": 1}, {})


@IMPLS
def test_injected_delay_busy_waits_on_every_call(start: Start, impl: str) -> None:
    delay_us, calls = 20_000.0, 10
    target, metrics = started(start, impl, inject_delay_us=delay_us)
    client = make_client("grpc", target.address)
    try:
        client.get_book(1)  # connect outside the measured part
        cpu_before = _cpu_seconds(target.pid)
        started_at = time.perf_counter()
        for _ in range(calls):
            client.get_book(1)
        elapsed = time.perf_counter() - started_at
        cpu = _cpu_seconds(target.pid) - cpu_before
    finally:
        client.close()
    total_s = calls * delay_us / 1e6
    assert elapsed >= total_s  # every call waited at least the delay
    # Busy, not asleep: the server spent CPU on it (lenient: CPU steal on a shared host shortens it).
    assert cpu >= 0.5 * total_s, f"{cpu:.3f} s of CPU for {total_s:.3f} s of injected delay"
    assert scrape(metrics).calls["GetBook"] == calls + 1


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@IMPLS
def test_without_metrics_port_the_ready_line_is_unchanged(start: Start, impl: str) -> None:
    require(impl)
    target = start("grpc", impl=impl)
    assert target.ready_line == f"READY grpc 127.0.0.1:{target.port}"
    assert target.metrics_address is None


@IMPLS
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--metrics-port", "70000"], "--metrics-port 70000 is not a TCP port"),
        (["--inject-delay", "-1"], "--inject-delay -1.0 must not be negative"),
    ],
)
def test_bad_options_are_refused(impl: str, option: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "targets", "serve", "grpc", "--impl", impl, *option],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
