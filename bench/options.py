"""Options shared by several `bench` sub-commands: one name, one default and one help text each."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError
from bench.paths import RESULTS_DIR
from bench.thresholds import STEAL_THRESHOLD_PCT
from targets.implementations import IMPLEMENTATIONS, PROTOCOLS

__all__ = [
    "DEFAULT_REPEATS",
    "TargetSpec",
    "add_allow_python_protobuf",
    "add_dry_run",
    "add_impls",
    "add_libvirt_uri",
    "add_max_reruns",
    "add_repeats",
    "add_results_dir",
    "add_seed",
    "add_steal_threshold",
    "add_targets",
    "parse_impls",
    "parse_target",
    "split_list",
]

DEFAULT_REPEATS = 5


def split_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (comma-separated option values)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_repeats(parser: argparse.ArgumentParser, *, unit: str) -> None:
    parser.add_argument(
        "--repeats", type=int, default=DEFAULT_REPEATS, help=f"{unit} (default: {DEFAULT_REPEATS})"
    )


def add_seed(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--seed", type=int, default=None, help=f"seed of {what} (default: random, recorded with the results)"
    )


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where runs are written and found (default: {RESULTS_DIR}; or $BENCH_RESULTS)",
    )


def add_libvirt_uri(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`default`: what is used without the option, when a command differs from the usual one."""
    parser.add_argument(
        "--libvirt-uri",
        metavar="URI",
        default=None,
        help="libvirt URI, e.g. qemu:///system or qemu+ssh://host/system "
        f"(default: {default or '$BENCH_LIBVIRT_URI, else an embedded driver under the cache dir'})",
    )


def add_steal_threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steal-threshold",
        type=float,
        default=STEAL_THRESHOLD_PCT,
        help=f"CPU steal %% of a window that makes it noisy (default: {STEAL_THRESHOLD_PCT:g})",
    )


def add_max_reruns(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--max-reruns", type=int, default=1, help=f"re-runs of a noisy {what} before keeping it (default: 1)"
    )


def add_allow_python_protobuf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-python-protobuf",
        action="store_true",
        help="measure gRPC even on protobuf's slow pure-Python backend (refused by default)",
    )


def add_dry_run(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument("--dry-run", action="store_true", help=f"print {what} and exit; start nothing")


# ---- implementations and external targets (bench verify, bench run) -------------------------------------
@dataclass(frozen=True)
class TargetSpec:
    """A running implementation the harness did not start: `name` labels it in tables and reports."""

    name: str
    protocol: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(text: str) -> TargetSpec:
    """`PROTO=HOST:PORT` (named after its protocol) or `NAME=PROTO:HOST:PORT`; HOST may be `[v6]`."""
    name, sep, rest = text.partition("=")
    form = "expected PROTO=HOST:PORT or NAME=PROTO:HOST:PORT, e.g. grpc=127.0.0.1:50051"
    if not sep or not name or not rest:
        raise UsageError(f"--target {text!r}: {form}")
    protocol, colon, address = rest.partition(":")
    if not colon or protocol not in PROTOCOLS:
        protocol, address = name, rest
    if protocol not in PROTOCOLS:
        raise UsageError(
            f"--target {text!r}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}; {form}"
        )
    host, colon, port_text = address.rpartition(":")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--target {text!r}: {address!r} is not HOST:PORT; {form}")
    return TargetSpec(name, protocol, host.strip("[]") if host.startswith("[") else host, int(port_text))


def add_targets(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="[NAME=]PROTO=HOST:PORT",
        help=f"a running implementation to {what}, as PROTO=HOST:PORT or NAME=PROTO:HOST:PORT "
        "(repeat for several); e.g. grpc=127.0.0.1:50051 or node=grpc:127.0.0.1:50051",
    )


def parse_impls(text: str) -> list[str]:
    impls = split_list(text)
    for impl in impls:
        if impl not in IMPLEMENTATIONS:
            raise UsageError(f"--impls {impl!r}: choose from {', '.join(IMPLEMENTATIONS)}")
    return impls


def add_impls(parser: argparse.ArgumentParser, *, default: str, what: str) -> None:
    served = "; ".join(f"{impl}: {', '.join(protocols)}" for impl, protocols in IMPLEMENTATIONS.items())
    parser.add_argument(
        "--impls",
        default=default,
        help=f"built-in implementations to {what} (default: {default}; {served})",
    )
