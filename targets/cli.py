"""`bench serve <protocol>` / `python -m targets serve <protocol>`: start one target, print one READY line,
stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from targets.core import DATASETS, LibraryService, build_service, parse_clock
from targets.lifetime import die_with_parent
from targets.serve import IMPLEMENTATIONS, PROTOCOLS, address, ready_line, server_for

__all__ = ["add_arguments", "main", "run"]

log = logging.getLogger("targets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", choices=PROTOCOLS, help="which target to start")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default: 0)")
    parser.add_argument(
        "--dataset", default="small", choices=list(DATASETS), help="seeded dataset to serve (default: small)"
    )
    parser.add_argument("--seed", type=int, default=42, help="dataset seed (default: 42)")
    parser.add_argument(
        "--clock",
        default="system",
        help="'system' or 'fixed:<ISO instant>' (tests use a fixed clock so 'overdue' is deterministic)",
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin the server process to this CPU")
    parser.add_argument(
        "--log-level", default="WARNING", help="server log level on stderr (default: WARNING)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve per-operation call and error counters in Prometheus text format on this port (0: a free "
        "one); the READY line then ends with metrics=<host>:<port>",
    )
    parser.add_argument(
        "--inject-delay",
        type=float,
        default=0.0,
        metavar="MICROSECONDS",
        help="make every call this much slower (CPU busy-wait): a deliberately slowed target for tests and "
        "demonstrations (default: 0)",
    )
    parser.add_argument(
        "--impl",
        default="python",
        choices=list(IMPLEMENTATIONS),
        help="implementation: python (this package), node (targets/node) or go (targets/go); node and go "
        "serve gRPC only (default: python)",
    )


def run(args: argparse.Namespace) -> int:
    die_with_parent()
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )
    for option, port in (("--port", args.port), ("--metrics-port", args.metrics_port)):
        if port is not None and not 0 <= port <= 65535:
            print(f"bench serve: {option} {port} is not a TCP port (0..65535)", file=sys.stderr)
            return 2
    if args.inject_delay < 0:
        print(f"bench serve: --inject-delay {args.inject_delay} must not be negative", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        log.warning(
            "binding %s: the target is reachable beyond loopback; it has no authentication", args.host
        )
    if args.cpu is not None:
        try:
            os.sched_setaffinity(0, {args.cpu})
        except (OSError, OverflowError) as exc:
            print(
                f"bench serve: cannot pin to --cpu {args.cpu} (this machine has {os.cpu_count()}): {exc}",
                file=sys.stderr,
            )
            return 2
    try:
        clock = parse_clock(args.clock)
    except ValueError as exc:
        print(f"bench serve: --clock: {exc}", file=sys.stderr)
        return 2
    if args.protocol not in IMPLEMENTATIONS[args.impl]:
        print(f"bench serve: the {args.impl} implementation serves {', '.join(IMPLEMENTATIONS[args.impl])}, "
              f"not {args.protocol}", file=sys.stderr)  # fmt: skip
        return 2
    service = build_service(args.dataset, clock=clock, seed=args.seed, inject_delay_s=args.inject_delay / 1e6)
    if args.impl in ("node", "go"):
        return _hand_over(args, service)
    serve = server_for(args.protocol)
    metrics: str | None = None
    if args.metrics_port is not None:
        from targets.metrics import start_metrics_server

        try:
            bound = start_metrics_server(service.calls, host=args.host, port=args.metrics_port)
        except OSError as exc:
            print(
                f"bench serve: cannot serve metrics on {args.host}:{args.metrics_port}: {exc}",
                file=sys.stderr,
            )
            return 1
        metrics = address(args.host, bound)

    def on_ready(port: int) -> None:
        print(ready_line(args.protocol, args.host, port, metrics=metrics), flush=True)

    try:
        serve(service, host=args.host, port=args.port, on_ready=on_ready)
    except OSError as exc:
        print(f"bench serve: cannot serve {args.protocol} on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _hand_over(args: argparse.Namespace, service: LibraryService) -> int:
    """Replace this process with another implementation's server, fed this service's records."""
    options = {
        "name": args.dataset,
        "seed": args.seed,
        "clock": args.clock,
        "host": args.host,
        "port": args.port,
        "metrics_port": args.metrics_port,
        "inject_delay_us": args.inject_delay,
    }
    try:
        if args.impl == "node":
            from targets.node import exec_node_server

            exec_node_server(service, **options)
        from targets.go import exec_go_server

        exec_go_server(service, **options)
    except (RuntimeError, OSError) as exc:  # NodeUnavailable, GoUnavailable, exec failures
        print(f"bench serve: cannot start the {args.impl} implementation: {exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m targets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("serve", help="start one target"))
    args = parser.parse_args(argv)
    return run(args)
