"""`bench verify`: the conformance suite against built-in or running implementations, as a pass/fail table.

Without --target it starts each built-in implementation (--impls) for each protocol it serves, fresh, with
the conformance dataset and clock, and stops it afterwards. With --target it checks implementations someone
else started: they must be fresh and serve what `--print-dataset` writes, with the fixed clock (README,
"Verifying an implementation"). Exit code 0 when every case of every target passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.errors import UsageError
from bench.options import TargetSpec, add_impls, add_targets, parse_impls, parse_target, split_list
from bench.verify.suite import TargetReport

__all__ = ["add_arguments", "run"]

# The client each protocol is verified with: the standard client libraries, which read the contracts.
_CLIENT = {"grpc": "grpc", "rest": "rest", "soap": "soap"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_targets(parser, what="verify")
    add_impls(parser, default="python", what="start and verify when no --target is given")
    parser.add_argument(
        "--protocols", default="grpc,rest,soap", help="protocols of the built-in implementations to verify"
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="PROTO=KIND",
        help="client kind for a protocol instead of the standard one, e.g. rest=rest-lean (repeatable)",
    )
    parser.add_argument(
        "--print-dataset",
        action="store_true",
        help="write the conformance dataset (records as JSON, format library-dataset/1) to stdout and exit",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default: 10)")


def _clients(args: argparse.Namespace) -> dict[str, str]:
    from bench.clients import CLIENT_KINDS, protocol_of

    clients = dict(_CLIENT)
    for text in args.client:
        protocol, _, kind = text.partition("=")
        if kind not in CLIENT_KINDS or protocol_of(kind) != protocol:
            raise UsageError(f"--client {text!r}: give PROTO=KIND with a {protocol or 'PROTO'} client kind")
        clients[protocol] = kind
    return clients


def run(args: argparse.Namespace) -> int:
    from bench.verify.cases import CLOCK, DATASET, SEED

    if args.print_dataset:
        from targets.core import build_service, parse_clock
        from targets.core.dataset import dataset_document

        service = build_service(DATASET, clock=parse_clock(CLOCK), seed=SEED)
        json.dump(dataset_document(service, name=DATASET, seed=SEED), sys.stdout, indent=1)
        print()
        return 0
    clients = _clients(args)
    external = [parse_target(text) for text in args.targets]
    reports = _verify_external(external, clients, args.timeout) if external else []
    if not external:
        reports = _verify_builtin(parse_impls(args.impls), split_list(args.protocols), clients, args.timeout)
    from bench.verify.table import print_reports

    print_reports(reports, sys.stdout)
    return 0 if all(report.failed == 0 for report in reports) else 1


def _verify_external(
    targets: list[TargetSpec], clients: dict[str, str], timeout_s: float
) -> list[TargetReport]:
    from bench.verify.suite import verify_target
    from bench.verify.surface import surface_checks

    return [
        verify_target(
            f"{t.name} ({t.protocol}) {t.address}",
            t.protocol,
            t.address,
            client_kind=clients[t.protocol],
            surface=surface_checks,
            timeout_s=timeout_s,
        )
        for t in targets
    ]


def _verify_builtin(
    impls: list[str], protocols: list[str], clients: dict[str, str], timeout_s: float
) -> list[TargetReport]:
    from bench.load.processes import TargetStartError, start_target
    from bench.verify.cases import CLOCK, DATASET, SEED
    from bench.verify.suite import verify_target
    from bench.verify.surface import surface_checks
    from targets.implementations import IMPLEMENTATIONS, PROTOCOLS

    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise UsageError(f"--protocols {protocol!r}: choose from {', '.join(PROTOCOLS)}")
    reports: list[TargetReport] = []
    for impl in impls:
        for protocol in (p for p in protocols if p in IMPLEMENTATIONS[impl]):
            try:
                target = start_target(protocol, impl=impl, dataset=DATASET, clock=CLOCK, seed=SEED)
            except TargetStartError as exc:
                raise UsageError(f"cannot start the {impl} {protocol} target: {exc}") from exc
            try:
                reports.append(
                    verify_target(
                        f"{protocol}/{impl}",
                        protocol,
                        target.address,
                        client_kind=clients[protocol],
                        surface=surface_checks,
                        timeout_s=timeout_s,
                    )
                )
            finally:
                target.stop()
    if not reports:
        raise UsageError(f"no built-in implementation among {', '.join(impls)} serves {', '.join(protocols)}")
    return reports
