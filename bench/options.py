"""Options shared by several `bench` sub-commands: one name, one default and one help text each."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.paths import RESULTS_DIR
from bench.thresholds import STEAL_THRESHOLD_PCT

__all__ = [
    "DEFAULT_REPEATS",
    "add_allow_python_protobuf",
    "add_dry_run",
    "add_libvirt_uri",
    "add_max_reruns",
    "add_repeats",
    "add_results_dir",
    "add_seed",
    "add_steal_threshold",
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
