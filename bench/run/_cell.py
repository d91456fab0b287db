"""Entry point the runner starts for one cell: `python -m bench.run._cell --spec <spec.json> --out <dir>`.

The same program runs on the host and inside a guest (bench.vm), so the runner only sees "a place where
cells run". Exit code 0: measured; 1: the cell failed (the reason is in <dir>/cell.json).
"""

from __future__ import annotations

# bench.run.cell sets up gevent and gRPC-on-gevent before anything opens a socket.
from bench.run.cell import run_cell  # isort: skip

import argparse
import json
import sys
from pathlib import Path

from bench.run.plan import CellSpec
from targets.lifetime import die_with_parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run._cell",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", type=Path, required=True, help="cell spec JSON (written by bench run)")
    parser.add_argument("--out", type=Path, required=True, help="directory for this cell's raw files")
    args = parser.parse_args(argv)
    die_with_parent()
    spec = CellSpec.from_json(json.loads(args.spec.read_text()))
    return run_cell(spec, args.out)


if __name__ == "__main__":
    sys.exit(main())
