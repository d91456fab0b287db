"""A run directory's layout and its index, `cells.jsonl`: the one writer's record and the one reader.

    results/<run_id>/
        manifest.json   plan.json   cells.jsonl   run.lock
        cells/<cell_id>/attempt-<n>/      raw files of one attempt (cell.json, ops.json, ...)
        guests/<profile>-<n>.json         one booted guest (or the error that kept it from booting)

The runner appends one `CellOutcome` line per finished attempt; the tables and the report read them back
with `read_index` / `final_attempts`, and nothing else parses the index.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CELLS_DIR",
    "GUESTS_DIR",
    "INDEX",
    "MANIFEST",
    "PLAN",
    "CellOutcome",
    "arm_label",
    "attempt_dir",
    "final_attempts",
    "read_cell_json",
    "read_index",
]

MANIFEST = "manifest.json"
PLAN = "plan.json"
INDEX = "cells.jsonl"
CELLS_DIR = "cells"
GUESTS_DIR = "guests"


def attempt_dir(run_dir: Path, cell_id: str, attempt: int) -> Path:
    return run_dir / CELLS_DIR / cell_id / f"attempt-{attempt}"


def read_cell_json(directory: Path) -> dict[str, Any] | None:
    """An attempt's cell.json, or None when it is missing or unreadable (a cell that died early)."""
    try:
        data = json.loads((directory / "cell.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class CellOutcome:
    """One line of cells.jsonl: how one attempt of one cell ended."""

    cell_id: str
    attempt: int
    status: str  # ok | failed
    reason: str | None
    max_steal_pct: float
    generator_limited: bool
    flagged: bool  # steal stayed above the threshold after the allowed re-runs
    final: bool  # the attempt the tables use
    wall_s: float
    max_other_cpu_pct: float = 0.0  # other processes' CPU on the pinned CPUs (% of a CPU), noisiest window
    generator_limited_windows: list[str] = field(default_factory=list)  # their labels (c16, own90, u1 …)

    @classmethod
    def from_cell(cls, cell_id: str, attempt: int, cell: dict[str, Any], *, wall_s: float) -> CellOutcome:
        """The outcome an attempt's cell.json records (not yet final or flagged: the re-run policy says)."""
        return cls(
            cell_id=cell_id,
            attempt=attempt,
            status=str(cell.get("status", "failed")),
            reason=cell.get("reason"),
            max_steal_pct=float(cell.get("max_steal_pct", 0.0)),
            generator_limited=bool(cell.get("generator_limited", False)),
            flagged=False,
            final=True,
            wall_s=wall_s,
            max_other_cpu_pct=float(cell.get("max_other_cpu_pct", 0.0)),
            generator_limited_windows=[str(w) for w in cell.get("generator_limited_windows", [])],
        )

    def record(self) -> dict[str, Any]:
        return asdict(self)


def read_index(run_dir: Path) -> list[dict[str, Any]]:
    """Every attempt line of cells.jsonl in order (re-runs included); a torn last line from a crash is
    skipped (the runner re-runs that attempt)."""
    path = run_dir / INDEX
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "cell_id" in record:
            records.append(record)
    return records


def final_attempts(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """cell_id -> its final attempt's line (a cell is finished once a final line exists; the last wins)."""
    return {str(r["cell_id"]): r for r in records if r.get("final")}


def arm_label(client: str, impl: str) -> str:
    """What a cell measures, as tables and reports name it: the client kind, @ the implementation unless it
    is the Python one (grpc, grpc@node, rest-lean@mine). Older cell specs have no impl: Python."""
    return client if impl in ("", "python") else f"{client}@{impl}"
