"""`bench serve`: one target (grpc, rest, soap: `targets.cli`) or a process of the split topology (books,
circulation, gateway: `topology.serve`), each printing one READY line.

`bench serve gateway --backend-protocol grpc` starts the books and circulation services itself and prints
`READY gateway <host>:<port> backend=… books=… books_pid=… circulation=… circulation_pid=… gateway_pid=…`;
with `--books HOST:PORT --circulation HOST:PORT` it attaches to running ones and prints the plain
`READY gateway <host>:<port>`.
"""

from __future__ import annotations

import argparse
import sys

from bench.errors import BenchError
from targets import cli as targets_cli
from targets.serve import PROTOCOLS
from topology.placement import ROLES

__all__ = ["add_arguments", "main", "run"]

DEFAULT_BACKEND_TIMEOUT_S = 2.0  # the same as topology.launch (not imported: `bench --help` stays light)
DEFAULT_BACKEND_THREADS = 32  # the same as topology.gateway.backends
DEFAULT_READY_TIMEOUT_S = 30.0


def _accept_roles(parser: argparse.ArgumentParser) -> None:
    """The targets' positional `protocol` also takes the split topology's roles."""
    for action in parser._actions:  # argparse has no public way to extend a declared argument's choices
        if action.dest == "protocol":
            action.choices = (*PROTOCOLS, *ROLES)
            action.help = (
                "a target (grpc, rest, soap) or a process of the split topology (books, circulation, gateway)"
            )
            return
    raise AssertionError("targets.cli declares no 'protocol' argument")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    targets_cli.add_arguments(parser)
    _accept_roles(parser)
    split = parser.add_argument_group("split topology (books, circulation, gateway)")
    split.add_argument(
        "--backend-protocol",
        choices=PROTOCOLS,
        default="grpc",
        help="protocol between the services: what books and circulation serve and what the gateway and "
        "circulation call them with (default: grpc)",
    )
    split.add_argument(
        "--books",
        metavar="HOST:PORT",
        help="the books service to call (circulation: required; gateway: attach instead of starting one)",
    )
    split.add_argument(
        "--circulation", metavar="HOST:PORT", help="gateway: the circulation service to attach to"
    )
    split.add_argument(
        "--backend-timeout",
        type=float,
        default=DEFAULT_BACKEND_TIMEOUT_S,
        metavar="SECONDS",
        help="deadline of every call to the books service; calls to circulation get 2×+1 s "
        f"(default: {DEFAULT_BACKEND_TIMEOUT_S})",
    )
    split.add_argument(
        "--backend-threads",
        type=int,
        default=DEFAULT_BACKEND_THREADS,
        metavar="N",
        help="gateway: backend calls in flight at once, one worker thread each "
        f"(default: {DEFAULT_BACKEND_THREADS})",
    )
    split.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_S,
        metavar="SECONDS",
        help="gateway: how long to wait for the backends to start and answer before giving up "
        f"(default: {DEFAULT_READY_TIMEOUT_S:.0f})",
    )
    split.add_argument(
        "--placement",
        metavar="ROLE=CPUS,…",
        help="pin each process to its own CPUs, e.g. gateway=0,books=1,circulation=2-3 (instead of --cpu)",
    )


def run(args: argparse.Namespace) -> int:
    if args.protocol not in ROLES:
        return int(targets_cli.run(args))
    from topology.serve import run_role

    return run_role(args)


def main(argv: list[str] | None = None) -> int:
    """`python -m topology serve …` (as `bench serve`) and `python -m topology hops …` (topology.hops)."""
    from topology import hops

    parser = argparse.ArgumentParser(prog="python -m topology", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start a target or a process of the split topology")
    add_arguments(serve)
    serve.set_defaults(_run=run)
    measure = sub.add_parser(
        "hops", help="per-hop latency, CPU and bytes of the split topology, per protocol"
    )
    hops.add_arguments(measure)
    measure.set_defaults(_run=hops.run)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except BenchError as exc:
        print(f"python -m topology {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
