"""Start the split topology's processes: the harness-side API (`start_split`) and the launcher of
`bench serve gateway` (`start_backends`).

Each process is started with `python -m topology serve <role>`, prints `READY <role> <host>:<port>`, and
ends with the process that started it (`targets.lifetime`). `start_split` starts all three separately, so
the caller holds each one's pid (CPU per process), can stop or restart one (faults), and can put counting
relays (`bench.load.wiretap.Wiretap`) on the inter-service hops (bytes per hop).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench.load.processes import TargetProcess, start_ready_process
from bench.load.wiretap import Wiretap
from topology.placement import parse_placement

__all__ = [
    "DEFAULT_BACKEND_TIMEOUT_S",
    "HOPS",
    "RoleOptions",
    "SplitTopology",
    "role_argv",
    "start_backends",
    "start_role",
    "start_split",
]

# Deadline on every inter-service call (B -> A, gateway -> A; gateway -> B gets about twice as long).
DEFAULT_BACKEND_TIMEOUT_S = 2.0
# The inter-service hops, named caller->callee; a wiretap relay can sit on each.
HOPS = ("gateway->books", "gateway->circulation", "circulation->books")


@dataclass(frozen=True)
class RoleOptions:
    """What every process of one topology is started with (a restarted process gets the same)."""

    backend_protocol: str
    host: str = "127.0.0.1"
    dataset: str = "small"
    seed: int = 42
    clock: str = "system"
    cpu: int | None = None
    placement: str | None = None  # "gateway=0,books=1,circulation=2-3"; each process takes its own entry
    backend_timeout_s: float = DEFAULT_BACKEND_TIMEOUT_S
    backend_threads: int | None = None
    log_level: str = "WARNING"
    ready_timeout_s: float = 30.0
    stderr_dir: Path | None = None  # keep each process's stderr as <role>.stderr there (else temp files)
    metrics: bool = False  # the backends serve their call counters on a free side port (--metrics-port 0)


def role_argv(role: str, options: RoleOptions, *, port: int = 0, **addresses: str) -> list[str]:
    """The command line of one process; `addresses`: books=…, circulation=… (HOST:PORT)."""
    o = options
    argv = [sys.executable, "-m", "topology", "serve", role, "--backend-protocol", o.backend_protocol]
    argv += ["--host", o.host, "--port", str(port), "--dataset", o.dataset, "--seed", str(o.seed)]
    argv += ["--clock", o.clock, "--backend-timeout", str(o.backend_timeout_s), "--log-level", o.log_level]
    argv += ["--ready-timeout", str(o.ready_timeout_s)]
    if o.cpu is not None:
        argv += ["--cpu", str(o.cpu)]
    if o.placement is not None:
        argv += ["--placement", o.placement]
    if o.backend_threads is not None:
        argv += ["--backend-threads", str(o.backend_threads)]
    for name, address in addresses.items():
        argv += [f"--{name}", address]
    if o.metrics and role in ("books", "circulation"):
        argv += ["--metrics-port", "0"]
    return argv


def start_role(role: str, options: RoleOptions, *, port: int = 0, **addresses: str) -> TargetProcess:
    """Start one process and return once it printed READY (its stderr tail in the error otherwise)."""
    stderr_path = None if options.stderr_dir is None else options.stderr_dir / f"{role}.stderr"
    return start_ready_process(
        role_argv(role, options, port=port, **addresses),
        name=role,
        ready_timeout_s=options.ready_timeout_s,
        stderr_path=stderr_path,
    )


def start_backends(options: RoleOptions) -> tuple[TargetProcess, TargetProcess]:
    """A then B (B calls A): the two backends, for a gateway that launches them itself."""
    books = start_role("books", options)
    try:
        circulation = start_role("circulation", options, books=books.address)
    except BaseException:
        books.stop()
        raise
    return books, circulation


@dataclass
class SplitTopology:
    """Three running processes, stopped together (gateway first) by `stop()` or at the end of a `with`."""

    options: RoleOptions
    books: TargetProcess
    circulation: TargetProcess
    gateway: TargetProcess
    taps: dict[str, Wiretap] = field(default_factory=dict)  # by hop name when started with wiretap=True

    @property
    def address(self) -> str:
        """The gateway's public address (host:port)."""
        return self.gateway.address

    @property
    def pids(self) -> dict[str, int]:
        return {"gateway": self.gateway.pid, "books": self.books.pid, "circulation": self.circulation.pid}

    @property
    def metrics_addresses(self) -> list[str]:
        """host:port of the backends' call counters (started with metrics=True; the gateway has none: every
        public operation is served, and counted, by exactly one backend)."""
        found = [p.metrics_address for p in (self.books, self.circulation)]
        return [address for address in found if address is not None]

    @property
    def counter_addresses(self) -> list[str]:
        return self.metrics_addresses

    @property
    def cpu_pids(self) -> dict[str, int]:
        """Every process of the topology: the target's CPU is theirs together (bench.run windows)."""
        return self.pids

    def alive(self) -> bool:
        return all(process.alive() for process in self.processes().values())

    def stderr_tail(self, limit: int = 4000) -> str:
        """The stderr tails of the processes that exited (the ones that explain a failure)."""
        dead = [(role, p) for role, p in self.processes().items() if not p.alive()] or list(
            self.processes().items()
        )
        return "\n".join(f"{role}: {p.stderr_tail(limit // 3).strip()}" for role, p in dead)

    def processes(self) -> dict[str, TargetProcess]:
        return {"gateway": self.gateway, "circulation": self.circulation, "books": self.books}

    def hop_bytes(self) -> dict[str, tuple[int, int]]:
        """Bytes so far on each tapped hop: (caller -> callee, callee -> caller)."""
        return {hop: tap.counts() for hop, tap in self.taps.items()}

    def restart(self, role: str) -> TargetProcess:
        """Stop a backend (if still running) and start it again on the same port, with fresh seeded state.

        The gateway (and B, for A) reconnect by themselves; a tap on the hop keeps counting.
        """
        if role not in ("books", "circulation"):
            raise ValueError(f"only a backend can be restarted, not {role!r}")
        old = self.books if role == "books" else self.circulation
        old.stop()
        addresses = {} if role == "books" else {"books": self._books_address_for_circulation()}
        new = start_role(role, self.options, port=old.port, **addresses)
        if role == "books":
            self.books = new
        else:
            self.circulation = new
        return new

    def _books_address_for_circulation(self) -> str:
        tap = self.taps.get("circulation->books")
        return tap.address if tap is not None else self.books.address

    def stop(self) -> dict[str, int]:
        """Stop the gateway, then B, then A (by pid); returns each exit code."""
        codes = {role: process.stop() for role, process in self.processes().items()}
        for tap in self.taps.values():
            tap.close()
        return codes

    def __enter__(self) -> SplitTopology:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_split(
    backend_protocol: str,
    *,
    host: str = "127.0.0.1",
    dataset: str = "small",
    seed: int = 42,
    clock: str = "system",
    cpu: int | None = None,
    placement: str | None = None,
    backend_timeout_s: float = DEFAULT_BACKEND_TIMEOUT_S,
    backend_threads: int | None = None,
    wiretap: bool = False,
    ready_timeout_s: float = 30.0,
    stderr_dir: Path | None = None,
    metrics: bool = False,
) -> SplitTopology:
    """Start A, B and the gateway (each its own process, pinned as asked) and return once all answer.

    With `wiretap=True` a counting relay sits on every hop (`HOPS`), so `hop_bytes()` gives the bytes on
    the wire between the services; the relays add latency, so use them in a pass of their own.
    """
    if placement is not None:
        parse_placement(placement)  # a bad placement is refused here, not as three failed starts
    options = RoleOptions(
        backend_protocol, host, dataset, seed, clock, cpu, placement, backend_timeout_s, backend_threads,
        ready_timeout_s=ready_timeout_s, stderr_dir=stderr_dir, metrics=metrics,
    )  # fmt: skip
    started: list[TargetProcess] = []
    taps: dict[str, Wiretap] = {}
    try:
        books = start_role("books", options)
        started.append(books)
        if wiretap:
            for hop in ("gateway->books", "circulation->books"):
                taps[hop] = Wiretap((books.host, books.port))
        b_to_a = taps["circulation->books"].address if wiretap else books.address
        circulation = start_role("circulation", options, books=b_to_a)
        started.append(circulation)
        if wiretap:
            taps["gateway->circulation"] = Wiretap((circulation.host, circulation.port))
        p_to_a = taps["gateway->books"].address if wiretap else books.address
        p_to_b = taps["gateway->circulation"].address if wiretap else circulation.address
        gateway = start_role("gateway", options, books=p_to_a, circulation=p_to_b)
    except BaseException:
        for process in reversed(started):
            process.stop()
        for tap in taps.values():
            tap.close()
        raise
    return SplitTopology(options, books, circulation, gateway, taps)
