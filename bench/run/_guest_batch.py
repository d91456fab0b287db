"""Run a block of cells inside one guest, in one Python process (imports under TCG cost seconds each).

    python -m bench.run._guest_batch --batch-dir <shared dir>

Reads `<dir>/specs/*.json` in name order, measures each cell into `<dir>/out/<cell_id>/`, and appends one
line per finished cell to `<dir>/done.jsonl`, so the host can collect whatever finished even if the guest
is stopped mid-way.
"""

from __future__ import annotations

# Guests run python cells: the python engine patches the process for gevent before anything opens a socket.
import bench.run.python_cell  # noqa: F401  # isort: skip
from bench.run.cell import run_cell  # isort: skip

import argparse
import json
import sys
import time
from pathlib import Path

from bench.rawfiles import append_line
from bench.run.plan import CellSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    failures = 0
    for spec_path in sorted((args.batch_dir / "specs").glob("*.json")):
        spec = CellSpec.from_json(json.loads(spec_path.read_text()))
        started = time.monotonic()
        print(f"cell {spec.cell_id} ...", flush=True)
        code = run_cell(spec, args.batch_dir / "out" / spec.cell_id)
        failures += code != 0
        append_line(
            args.batch_dir / "done.jsonl",
            {"cell_id": spec.cell_id, "exit_code": code, "wall_s": time.monotonic() - started},
        )
        print(f"cell {spec.cell_id} exit {code} in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
