"""Entry point the runner starts for one cell: `python -m bench.run._cell --spec <spec.json> --out <dir>`.

The same program runs on the host and inside a guest (bench.vm), so the runner only sees "a place where
cells run". Exit code 0: measured; 1: the cell failed (the reason is in <dir>/cell.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run._cell",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", type=Path, required=True, help="cell spec JSON (written by bench run)")
    parser.add_argument("--out", type=Path, required=True, help="directory for this cell's raw files")
    args = parser.parse_args(argv)
    data = json.loads(args.spec.read_text())
    if data.get("kind") == "load" and data.get("engine", "python") == "python":
        # The python engine patches the process for gevent (and gRPC for gevent): before anything else runs.
        import bench.run.python_cell  # noqa: F401

    from bench.run.cell import run_cell
    from bench.run.plan import CellSpec
    from targets.lifetime import die_with_parent

    die_with_parent()
    return run_cell(CellSpec.from_json(data), args.out)


if __name__ == "__main__":
    sys.exit(main())
