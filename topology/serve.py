"""Run one process of the split topology (`bench serve books|circulation|gateway`): print one READY line
once it answers, stop on SIGINT/SIGTERM and when the process that started it dies."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bench.errors import UsageError
from bench.load.processes import TargetProcess, TargetStartError
from targets.core import Clock, parse_clock
from targets.lifetime import die_with_parent
from targets.serve import ready_line
from topology.errors import TopologyError
from topology.launch import RoleOptions, start_backends
from topology.placement import cpus_for, parse_placement, pin

__all__ = ["run_role"]

log = logging.getLogger("topology")


def _check(args: argparse.Namespace) -> None:
    role = args.protocol
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (0..65535)")
    if args.backend_timeout <= 0:
        raise UsageError(f"--backend-timeout {args.backend_timeout}: give a positive number of seconds")
    if args.ready_timeout <= 0:
        raise UsageError(f"--ready-timeout {args.ready_timeout}: give a positive number of seconds")
    if args.backend_threads < 1:
        raise UsageError(f"--backend-threads {args.backend_threads}: give at least 1")
    if args.cpu is not None and args.placement is not None:
        raise UsageError("give --cpu (every process on one CPU) or --placement (each its own), not both")
    if role == "books" and (args.books or args.circulation):
        raise UsageError("the books service calls nobody: --books/--circulation do not apply")
    if role == "circulation" and (not args.books or args.circulation):
        raise UsageError("the circulation service needs --books HOST:PORT (and no --circulation)")
    if role == "gateway" and bool(args.books) != bool(args.circulation):
        raise UsageError("give both --books and --circulation to attach to running services, or neither")


def run_role(args: argparse.Namespace) -> int:
    die_with_parent()
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )
    _check(args)
    role: str = args.protocol
    placement = parse_placement(args.placement) if args.placement else {}
    pin(role, cpus_for(role, args.cpu, placement))
    try:
        clock = parse_clock(args.clock)
    except ValueError as exc:
        raise UsageError(f"--clock: {exc}") from exc
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        log.warning(
            "binding %s: the service is reachable beyond loopback; it has no authentication", args.host
        )
    try:
        if role == "gateway":
            _run_gateway(args)
        else:
            _run_backend(role, args, clock)
    except OSError as exc:
        raise TopologyError(f"cannot serve {role} on {args.host}:{args.port}: {exc}") from exc
    return 0


def _run_backend(role: str, args: argparse.Namespace, clock: Clock) -> None:
    from topology.roles import serve_books, serve_circulation

    def on_ready(port: int, metrics: str | None) -> None:
        print(ready_line(role, args.host, port, metrics=metrics), flush=True)

    if role == "books":
        serve_books(
            args.backend_protocol, dataset=args.dataset, seed=args.seed, clock=clock, host=args.host,
            port=args.port, on_ready=on_ready, metrics_port=args.metrics_port,
        )  # fmt: skip
    else:
        serve_circulation(
            args.backend_protocol, books_address=args.books, timeout_s=args.backend_timeout,
            dataset=args.dataset, seed=args.seed, clock=clock, host=args.host, port=args.port,
            on_ready=on_ready, metrics_port=args.metrics_port,
        )  # fmt: skip


def _run_gateway(args: argparse.Namespace) -> None:
    """Attach to the given backends, or start both first (they end with this process); then serve."""
    from topology.gateway.server import serve_gateway

    launched: list[TargetProcess] = []
    if args.books:
        books_address, circulation_address = args.books, args.circulation
    else:
        options = RoleOptions(
            args.backend_protocol, args.host, args.dataset, args.seed, args.clock, args.cpu, args.placement,
            args.backend_timeout, log_level=args.log_level, ready_timeout_s=args.ready_timeout,
        )  # fmt: skip
        try:
            books, circulation = start_backends(options)
        except TargetStartError as exc:
            raise TopologyError(f"a backend did not start: {exc}") from exc
        launched = [circulation, books]
        books_address, circulation_address = books.address, circulation.address

    def on_ready(port: int) -> None:
        line = ready_line("gateway", args.host, port)
        if launched:
            # Started here, so the caller learns them here: addresses and pids (CPU per process).
            circulation, books = launched
            line += (
                f" backend={args.backend_protocol} books={books.address} books_pid={books.pid}"
                f" circulation={circulation.address} circulation_pid={circulation.pid}"
                f" gateway_pid={os.getpid()}"
            )
        print(line, flush=True)

    try:
        serve_gateway(
            args.backend_protocol, books_address=books_address, circulation_address=circulation_address,
            backend_timeout_s=args.backend_timeout, threads=args.backend_threads, host=args.host,
            port=args.port, on_ready=on_ready, ready_timeout_s=args.ready_timeout,
        )  # fmt: skip
    finally:
        for process in launched:
            process.stop()
