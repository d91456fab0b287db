"""Helpers of the network micro-benchmarks: sustainable call cases, wire bytes, warm-up, rounds, servers."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.clients import DEFAULT_CLIENT, LibraryClient, make_client, protocol_of
from bench.clients.measure import Measurement
from bench.load.placement import Placement
from bench.load.processes import TargetProcess, start_target
from bench.load.sysmetrics import HostBusy, Window, other_cpu_pct
from bench.load.wiretap import Wiretap
from bench.micro.bare import start_bare
from targets.core import OPERATIONS, NewBook, NewUser, StatusUpdate, category_name, isbn13

__all__ = [
    "DATASET",
    "KINDS",
    "LEAN_KIND",
    "Benchmark",
    "Case",
    "Micro",
    "ServerPool",
    "build_case",
    "group_name",
]

DATASET = "small"
KINDS = ("grpc", "rest", "rest-lean", "soap", "soap-lean")
# The client for setup calls (e.g. the loans a ReturnLoan round returns): the cheapest one per protocol.
LEAN_KIND = DEFAULT_CLIENT  # the lean client of each protocol (bench.clients decides which)
WARMUP_CALLS = 200
WARMUP_MAX_S = 0.5  # warm-up stops earlier on slow calls (a 1,000-book list over zeep takes ~0.1 s)
MAX_ROUNDS = 5000
BULK_SIZE = 100  # BulkAddBooks books per call (the `streaming` scenario's size)
UPDATE_BATCH = 10  # UpdateLoanStatus updates per call (the `streaming` scenario's size)
SEEDED_ID = 1  # book, user and loan 1 exist in every seeded dataset
# ISBN serials of records created here: above the seeded books (< 10^5) and the conformance tests (9*10^5..).
SERIAL_BASE = 10_000_000
LOAN_BOOK_COPIES = 10_000  # the core's maximum; a fresh loan book is added when one runs out


class Benchmark(Protocol):
    """The parts of pytest-benchmark's `benchmark` fixture used here (it ships no type information)."""

    group: str | None
    extra_info: dict[str, Any]
    disabled: bool

    def __call__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
        teardown: Callable[..., Any] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any: ...


Arguments = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass
class Case:
    """One benchmarked call: `call(*args)` is timed; `setup()` (untimed) makes fresh arguments per round."""

    operation: str
    call: Callable[..., Any]
    setup: Callable[[], Arguments] | None
    items: int | None  # records in the payload (the larger direction); None: depends on the data (overdue)
    check: Callable[[Any], None]
    args: tuple[Any, ...] = ()

    def arguments(self) -> Arguments:
        return self.setup() if self.setup is not None else (self.args, {})

    def once(self) -> Any:
        args, kwargs = self.arguments()
        return self.call(*args, **kwargs)


def group_name(operation: str, size: int | None) -> str:
    """pytest-benchmark group: one per operation (and payload size), so protocols and bare stacks line up."""
    return operation if size is None else f"{operation}[{size}]"


# ---- state for sustainable writes --------------------------------------------------------------------------
class WriteState:
    """Per target: unique ISBNs / e-mails, and loan books that never run out of copies."""

    def __init__(self, helper: LibraryClient) -> None:
        self.helper = helper  # setup calls go through the protocol's lean client
        self._serials = itertools.count(SERIAL_BASE)
        self._emails = itertools.count()
        self._loan_book: int | None = None
        self._copies_left = 0
        self._users = itertools.cycle(range(1, 101))  # the small dataset's seeded users

    def new_book(self, copies: int = 1) -> NewBook:
        serial = next(self._serials)
        return NewBook(
            isbn=isbn13(serial),
            title=f"Micro benchmark book {serial}",
            author="Micro Benchmark",
            category="micro",
            year=2000 + serial % 26,
            copies=copies,
        )

    def new_user(self) -> NewUser:
        n = next(self._emails)
        return NewUser(name=f"Micro User {n}", email=f"micro-{n}@bench.example")

    def user_id(self) -> int:
        return next(self._users)

    def loan_book(self) -> int:
        """A book with a copy left for one more loan (copies lent by CreateLoan rounds never come back)."""
        if self._loan_book is None or self._copies_left == 0:
            self._loan_book = self.helper.add_book(self.new_book(copies=LOAN_BOOK_COPIES)).id
            self._copies_left = LOAN_BOOK_COPIES
        self._copies_left -= 1
        return self._loan_book

    def new_loan(self) -> int:
        return self.helper.create_loan(self.user_id(), self.loan_book()).id


# ---- cases -------------------------------------------------------------------------------------------------
def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def build_case(
    operation: str, client: LibraryClient, state: WriteState | None, size: int | None = None
) -> Case:
    """The call for `operation` on `client`, sustainable across thousands of rounds.

    Reads use seeded records; writes use records created for them (unique ISBNs and e-mails, loans created in
    the untimed setup of the round that returns them, books added in setup for DeleteBook).
    """
    c = client

    def needs_state() -> WriteState:
        if state is None:
            raise ValueError(f"{operation} writes: it needs a target with write state, not a bare stack")
        return state

    def one(result: Any) -> None:
        _expect(result is not None, f"{operation} returned nothing")

    if operation == "GetBook":
        return Case(
            operation, c.get_book, None, 1, lambda b: _expect(b.id == SEEDED_ID, "wrong book"), (SEEDED_ID,)
        )
    if operation == "GetUser":
        return Case(
            operation, c.get_user, None, 1, lambda u: _expect(u.id == SEEDED_ID, "wrong user"), (SEEDED_ID,)
        )
    if operation == "GetLoan":
        return Case(
            operation, c.get_loan, None, 1, lambda x: _expect(x.id == SEEDED_ID, "wrong loan"), (SEEDED_ID,)
        )
    if operation == "ListBooksByCategory":
        n = size or 1
        check = len_check(operation, n)
        return Case(operation, c.list_books_by_category, None, n, check, (category_name(n),))
    if operation == "GetOverdueLoans":
        return Case(
            operation,
            c.get_overdue_loans,
            None,
            None,
            lambda loans: _expect(len(loans) > 0, "no overdue loans"),
        )
    s = needs_state()
    if operation == "AddBook":
        return Case(operation, c.add_book, lambda: ((s.new_book(),), {}), 1, one)
    if operation == "DeleteBook":
        return Case(
            operation, c.delete_book, lambda: ((s.helper.add_book(s.new_book()).id,), {}), 0, lambda r: None
        )
    if operation == "AddUser":
        return Case(operation, c.add_user, lambda: ((s.new_user(),), {}), 1, one)
    if operation == "CreateLoan":
        return Case(operation, c.create_loan, lambda: ((s.user_id(), s.loan_book()), {}), 1, one)
    if operation == "ReturnLoan":
        return Case(
            operation,
            c.return_loan,
            lambda: ((s.new_loan(),), {}),
            1,
            lambda x: _expect(x.status == "RETURNED", "open"),
        )
    if operation == "BulkAddBooks":
        batch = size or BULK_SIZE
        return Case(
            operation,
            c.bulk_add_books,
            lambda: (([s.new_book() for _ in range(batch)],), {}),
            batch,
            lambda r: _expect(r.added == batch, f"added {r.added} of {batch}"),
        )
    if operation == "UpdateLoanStatus":
        batch = size or UPDATE_BATCH
        # Returning loans is what the workload does, and keeps copies available; the loans are made in setup.
        return Case(
            operation,
            c.update_loan_status,
            lambda: (([StatusUpdate(s.new_loan(), "RETURNED") for _ in range(batch)],), {}),
            batch,
            len_check(operation, batch),
        )
    raise ValueError(f"unknown operation {operation!r}; choose one of {', '.join(OPERATIONS)}")


def len_check(operation: str, n: int) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        _expect(len(result) == n, f"{operation}: {len(result)} items instead of {n}")

    return check


# ---- servers and clients -----------------------------------------------------------------------------------
class ServerPool:
    """Targets (`grpc`, `rest`, `soap`) and bare stacks (`bare-grpc`, …), started on first use."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        self._servers: dict[str, TargetProcess] = {}

    def get(self, name: str) -> TargetProcess:
        server = self._servers.get(name)
        if server is None:
            cpu = self.placement.target_cpu
            if name.startswith("bare-"):
                server = start_bare(name.removeprefix("bare-"), cpu=cpu)
            else:
                server = start_target(name, dataset=DATASET, cpu=cpu)
            self._servers[name] = server
        if not server.alive():
            raise RuntimeError(f"{name} server (pid {server.pid}) died: {server.stderr_tail(800)}")
        return server

    def stop_all(self) -> None:
        while self._servers:
            _, server = self._servers.popitem()
            server.stop()  # signals our own child, by its pid


@dataclass
class _Tapped:
    client: LibraryClient
    tap: Wiretap
    records: list[Measurement] = field(default_factory=list)


class Micro:
    """What a network benchmark needs: servers, one client per (server, kind), wire taps, write state."""

    def __init__(self, servers: ServerPool, *, max_time_s: float, min_rounds: int) -> None:
        self.servers = servers
        self.max_time_s = max_time_s
        self.min_rounds = min_rounds
        self._clients: dict[tuple[str, str], LibraryClient] = {}
        self._tapped: dict[tuple[str, str], _Tapped] = {}
        self._states: dict[str, WriteState] = {}

    def client(self, server: str, kind: str) -> LibraryClient:
        key = (server, kind)
        if key not in self._clients:
            self._clients[key] = make_client(kind, self.servers.get(server).address, timeout_s=30.0)
        return self._clients[key]

    def tapped(self, server: str, kind: str) -> _Tapped:
        """A second client of `kind` whose connection runs through a counting relay (bytes at the socket)."""
        key = (server, kind)
        if key not in self._tapped:
            target = self.servers.get(server)
            tap = Wiretap((target.host, target.port))
            records: list[Measurement] = []
            client = make_client(
                kind, tap.address, timeout_s=30.0, hook=records.append, byte_counter=tap.counts
            )
            self._tapped[key] = _Tapped(client, tap, records)
        return self._tapped[key]

    def state(self, server: str) -> WriteState | None:
        if server.startswith("bare-"):
            return None
        if server not in self._states:
            self._states[server] = WriteState(self.client(server, LEAN_KIND[server]))
        return self._states[server]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        for tapped in self._tapped.values():
            tapped.client.close()
            tapped.tap.close()
        self._clients.clear()
        self._tapped.clear()

    # ---- one benchmark ------------------------------------------------------------------------------------
    def run(
        self, benchmark: Benchmark, *, kind: str, operation: str, size: int | None = None, bare: bool = False
    ) -> None:
        protocol = protocol_of(kind)
        server = f"bare-{protocol}" if bare else protocol
        state = self.state(server)
        case = build_case(operation, self.client(server, kind), state, size)
        tapped = self.tapped(server, kind)
        wire = wire_bytes(build_case(operation, tapped.client, state, size), tapped.records)
        target = self.servers.get(server)
        benchmark.group = group_name(operation, size)
        benchmark.extra_info.update(
            protocol=protocol,
            client=f"{kind}-bare" if bare else kind,
            client_kind=kind,
            stack="bare" if bare else "adapter",
            operation=operation,
            pattern=OPERATIONS[operation].value,
            items=case.items if case.items is not None else wire.items,
            request_bytes=wire.request_bytes,
            response_bytes=wire.response_bytes,
            target_cpu=self.servers.placement.target_cpu,
            generator_cpu=self.servers.placement.generator_cpu,
        )
        if benchmark.disabled:
            case.check(benchmark.pedantic(case.call, args=case.args, setup=case.setup))
            return
        per_call_s, warm_calls = warm_up(case)
        rounds = max(self.min_rounds, min(MAX_ROUNDS, math.ceil(self.max_time_s / per_call_s)))
        with Window(target.pid) as window, HostBusy() as busy:
            result = (
                benchmark.pedantic(case.call, setup=case.setup, rounds=rounds)
                if case.setup is not None
                else benchmark.pedantic(case.call, args=case.args, rounds=rounds)
            )
        case.check(result)
        assert window.result is not None
        benchmark.extra_info.update(
            warmup_calls=warm_calls,
            rounds=rounds,
            steal_pct=round(window.result.steal_pct, 2),
            # Other processes' CPU use (e.g. other benchmarks on a shared host), in % of one CPU.
            other_cpu_pct=round(
                other_cpu_pct(
                    busy.seconds,
                    window.result.target_cpu_s,
                    window.result.generator_cpu_s,
                    window.result.wall_s,
                ),
                1,
            ),
            # Setup calls (new loans, books) also run on the target inside the window: only clean cases count.
            target_cpu_us_per_call=(
                round(1e6 * window.result.target_cpu_s / rounds, 1) if case.setup is None else None
            ),
        )


@dataclass(frozen=True)
class WireBytes:
    request_bytes: int | None
    response_bytes: int | None
    items: int | None


def wire_bytes(case: Case, records: list[Measurement]) -> WireBytes:
    """Bytes of one call as they cross the socket; the second of two calls, so connection setup and HTTP/2
    header-table warm-up (HPACK) are not in it."""
    records.clear()
    for _ in range(2):
        case.check(case.once())
    mine = [m for m in records if m.operation == case.operation]
    _expect(bool(mine), f"no {case.operation} measurement through the wiretap")
    last = mine[-1]
    _expect(last.error is None, f"{case.operation} failed through the wiretap: {last.error}")
    return WireBytes(last.request_bytes, last.response_bytes, last.items)


def warm_up(case: Case) -> tuple[float, int]:
    """Up to WARMUP_CALLS calls (at most ~WARMUP_MAX_S); returns the median call time and the call count."""
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(WARMUP_CALLS):
        args, kwargs = case.arguments()
        t0 = time.perf_counter()
        case.call(*args, **kwargs)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > WARMUP_MAX_S and len(times) >= 3:
            break
    return max(statistics.median(times), 1e-6), len(times)
