"""`python -m topology hops`: a quick per-hop look at the split topology for each backend protocol.

Not the benchmark (no repetitions, no statistics, one client): it reads every measurement hook the split
topology offers, the way a harness would, and prints them side by side.

- latency per hop: the gateway's Server-Timing header of each call (`topology.timing`), medians;
- CPU per call of each process: utime+stime from /proc/<pid>/stat around each operation's calls;
- bytes per call on each hop: a second topology with counting relays on every hop and in front of the gateway.

The three services share one CPU (the last usable one) and this process runs on another, as
`bench.load.placement` places a target and its generator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.clients import LibraryClient, make_client
from bench.clients.measure import Measurement
from bench.errors import UsageError
from bench.load.placement import Pinning, choose_placement
from bench.load.wiretap import Wiretap
from bench.options import split_list
from targets.serve import PROTOCOLS
from topology.launch import HOPS, SplitTopology, start_split

__all__ = ["OperationFigures", "add_arguments", "measure", "run"]

_WIRE_WARMUP = 5
_ROLES = ("gateway", "books", "circulation")
# Server-Timing entries shown, in this order (milliseconds in the header, microseconds here).
METRICS = ("total", "own", "books", "books.total", "circulation", "circulation.total", "circulation.books")


@dataclass
class OperationFigures:
    operation: str
    calls: int
    client_p50_us: float
    timing_p50_us: dict[str, float]  # Server-Timing metric -> median (µs)
    cpu_us_per_call: dict[str, float]  # process -> CPU µs per call
    bytes_per_call: dict[str, tuple[float, float]] = field(default_factory=dict)  # hop -> (request, response)


class _Workload:
    """The operations measured, each a call that leaves the state as it found it (loans are returned)."""

    def __init__(self, client: LibraryClient) -> None:
        self.client = client
        self._book = 0
        self._open: list[int] = []
        self._lent = 0
        # Books to lend, one loan each in turn: the largest category's books with a copy left.
        category = max((client.list_books_by_category(f"size-{n}") for n in (1000, 100, 10, 1)), key=len)
        self._lendable = [book.id for book in category if book.available_copies > 0]
        if not self._lendable:
            raise UsageError("the dataset has no book with a copy left to lend")

    def operations(self) -> dict[str, Callable[[], object]]:
        return {
            "GetBook": self.get_book,
            "GetUser": lambda: self.client.get_user(1),
            "ListBooksByCategory(100)": lambda: self.client.list_books_by_category("size-100"),
            "CreateLoan": self.create_loan,
            "ReturnLoan": self.return_loan,
        }

    def get_book(self) -> object:
        self._book = self._book % 100 + 1
        return self.client.get_book(self._book)

    def create_loan(self) -> object:
        # Each book in turn; the loans are returned (ReturnLoan) before a book comes round again, as long as
        # there are at least as many lendable books as calls per pass.
        book_id = self._lendable[self._lent % len(self._lendable)]
        self._lent += 1
        loan = self.client.create_loan(1, book_id)
        self._open.append(loan.id)
        return loan

    def return_loan(self) -> object:
        return self.client.return_loan(self._open.pop())


def _cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads, in nanoseconds from schedstat (utime/stime count 10 ms ticks,
    too coarse for a few hundred calls); a thread that ended between two reads drops out of the sum."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total_ns += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total_ns / 1e9


def _timed_pass(topology: SplitTopology, calls: int, warmup: int) -> list[OperationFigures]:
    seen: list[Measurement] = []
    client = make_client("rest-lean", topology.address, hook=seen.append, server_timing=True)
    work = _Workload(client)
    figures = []
    try:
        for name, call in work.operations().items():
            # ReturnLoan returns the loans the CreateLoan calls just made: no warm-up of its own.
            for _ in range(warmup if name != "ReturnLoan" else 0):
                call()
                if name == "CreateLoan":
                    work.return_loan()
            seen.clear()
            before = {role: _cpu_seconds(pid) for role, pid in topology.pids.items()}
            for _ in range(calls):
                call()
            after = {role: _cpu_seconds(pid) for role, pid in topology.pids.items()}
            timings = [m.server_timing or {} for m in seen]
            figures.append(
                OperationFigures(
                    name,
                    calls,
                    statistics.median(m.latency_s for m in seen) * 1e6,
                    {
                        metric: statistics.median(t.get(metric, 0.0) for t in timings) * 1e6
                        for metric in METRICS
                        if any(metric in t for t in timings)
                    },
                    {role: (after[role] - before[role]) / calls * 1e6 for role in _ROLES},
                )
            )
    finally:
        client.close()
    return figures


def _wire_pass(topology: SplitTopology, figures: list[OperationFigures], calls: int) -> None:
    """Bytes per call on each hop, through relays (sequential calls, so each call's bytes are its own)."""
    with Wiretap((topology.gateway.host, topology.gateway.port)) as front:
        client = make_client("rest-lean", front.address)
        work = _Workload(client)
        try:
            for name, call in work.operations().items():  # connections made before counting
                for _ in range(_WIRE_WARMUP if name != "ReturnLoan" else 0):
                    call()
                    if name == "CreateLoan":
                        work.return_loan()
            for entry, call in zip(figures, work.operations().values(), strict=True):
                taps = {"client->gateway": front.counts, **{h: topology.taps[h].counts for h in HOPS}}
                before = {hop: counts() for hop, counts in taps.items()}
                for _ in range(calls):
                    call()
                after = {hop: counts() for hop, counts in taps.items()}
                entry.bytes_per_call = {
                    hop: ((after[hop][0] - before[hop][0]) / calls, (after[hop][1] - before[hop][1]) / calls)
                    for hop in taps
                }
        finally:
            client.close()


def measure(
    protocol: str, *, calls: int, warmup: int, wire_calls: int, dataset: str
) -> list[OperationFigures]:
    placement = choose_placement()
    with Pinning(
        {placement.generator_cpu} if placement.generator_cpu is not None else os.sched_getaffinity(0)
    ):
        with start_split(protocol, dataset=dataset, cpu=placement.target_cpu) as topology:
            figures = _timed_pass(topology, calls, warmup)
        with start_split(protocol, dataset=dataset, cpu=placement.target_cpu, wiretap=True) as topology:
            _wire_pass(topology, figures, wire_calls)
    return figures


def _print(protocol: str, figures: list[OperationFigures]) -> None:
    print(f"\nbackend protocol {protocol}: medians in µs; CPU µs per call; bytes per call (request/response)")
    header = ["operation", "client", *METRICS, "cpu P", "cpu A", "cpu B", *HOPS]
    rows = [header]
    for f in figures:
        rows.append(
            [
                f.operation,
                f"{f.client_p50_us:.0f}",
                *(f"{f.timing_p50_us[m]:.0f}" if m in f.timing_p50_us else "-" for m in METRICS),
                *(f"{f.cpu_us_per_call[role]:.0f}" for role in _ROLES),
                *(f"{f.bytes_per_call[h][0]:.0f}/{f.bytes_per_call[h][1]:.0f}" for h in HOPS),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = (
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(cells))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend-protocols", default="grpc,rest,soap", help="comma-separated (default: all)"
    )
    parser.add_argument(
        "--calls", type=int, default=300, help="calls per operation, timed pass (default: 300)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="calls per operation before (default: 50)")
    parser.add_argument(
        "--wire-calls", type=int, default=20, help="calls per operation, wire pass (default: 20)"
    )
    parser.add_argument("--dataset", default="small", help="seeded dataset (default: small)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")


def run(args: argparse.Namespace) -> int:
    protocols = split_list(args.backend_protocols)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise UsageError(
            f"--backend-protocols {args.backend_protocols!r}: choose from {', '.join(PROTOCOLS)}"
        )
    if min(args.calls, args.wire_calls) < 1 or args.warmup < 0:
        raise UsageError("--calls and --wire-calls must be at least 1, --warmup at least 0")
    results = {}
    for protocol in protocols:
        figures = measure(
            protocol, calls=args.calls, warmup=args.warmup, wire_calls=args.wire_calls, dataset=args.dataset
        )
        _print(protocol, figures)
        results[protocol] = [asdict(f) for f in figures]
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()
    return 0
