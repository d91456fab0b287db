"""`bench codegen [--check]`: the gRPC stubs and the WSDL, generated from the contracts and committed."""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a committed file differs from a fresh generation (for CI)",
    )


def run(args: argparse.Namespace) -> int:
    from targets.grpc import codegen
    from targets.soap.wsdl import WSDL_PATH, render_wsdl

    stale: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bench-codegen-") as tmp:
        fresh = Path(tmp)
        codegen.generate(fresh)
        for name in codegen.OUTPUTS:
            committed = codegen.GENERATED / name
            if not committed.exists() or not filecmp.cmp(fresh / name, committed, shallow=False):
                stale.append(committed)
                if not args.check:
                    committed.write_bytes((fresh / name).read_bytes())
    wsdl = render_wsdl()
    if not WSDL_PATH.exists() or WSDL_PATH.read_bytes() != wsdl:
        stale.append(WSDL_PATH)
        if not args.check:
            WSDL_PATH.parent.mkdir(parents=True, exist_ok=True)
            WSDL_PATH.write_bytes(wsdl)
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run `bench codegen` and commit it", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        print(f"wrote {path}")
    if not stale:
        print("generated files are up to date")
    return 0
