"""Variants of a real run directory for the report tests: fewer clients, failed cells, a VM profile, ..."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "add_vm_profile",
    "copy_run",
    "drop_cells",
    "fail_cell",
    "flag_cell",
    "read_index",
    "write_index",
]


def copy_run(source: Path, target: Path) -> Path:
    """A private copy of a run (derived files removed) the test may change."""
    shutil.copytree(source, target)
    for name in ("report.html", "tidy.csv", "tidy.parquet"):
        (target / name).unlink(missing_ok=True)
    return target


def read_index(run: Path) -> list[dict[str, Any]]:
    path = run / "cells.jsonl"
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def write_index(run: Path, records: list[dict[str, Any]]) -> None:
    (run / "cells.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def _update_json(path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=1))
    return data


def drop_cells(run: Path, predicate: Any, *, keep_in_plan: bool = False) -> None:
    """Remove the cells whose id matches `predicate` from the index (and the plan unless `keep_in_plan`)."""
    write_index(run, [r for r in read_index(run) if not predicate(r["cell_id"])])
    if not keep_in_plan:
        plan = json.loads((run / "plan.json").read_text())
        (run / "plan.json").write_text(json.dumps([c for c in plan if not predicate(c["cell_id"])]))


def fail_cell(run: Path, cell_id: str, reason: str) -> None:
    """Turn a measured cell into a failed one, as the runner records it."""
    records = read_index(run)
    for record in records:
        if record["cell_id"] == cell_id:
            record.update(status="failed", reason=reason)
            attempt = record["attempt"]
    write_index(run, records)
    cell_json = run / "cells" / cell_id / f"attempt-{attempt}" / "cell.json"
    _update_json(cell_json, status="failed", reason=reason)


def flag_cell(run: Path, cell_id: str, steal_pct: float) -> None:
    """A cell re-run for CPU steal and still noisy: one non-final attempt before the flagged final one."""
    records = read_index(run)
    for record in records:
        if record["cell_id"] == cell_id:
            record.update(flagged=True, max_steal_pct=steal_pct)
            noisy = {**record, "final": False, "flagged": False, "attempt": record["attempt"] + 100}
    write_index(run, [noisy, *records])


def add_vm_profile(run: Path, profile: str, *, skipped: str) -> None:
    """Each local cell again as `profile` (emulated, 2 guests), plus a skipped profile's guest block."""
    records = read_index(run)
    plan = json.loads((run / "plan.json").read_text())
    new_ids = []
    # Guests run the python engine's cells and the floor (never the native engine's).
    local = [r for r in records if r["cell_id"].endswith(tuple(f"-local-r{n}" for n in range(1, 10)))]
    for record in [r for r in local if "-python-" in r["cell_id"] or r["cell_id"].startswith("floor-")]:
        old_id = record["cell_id"]
        new_id = old_id.replace("-local-", f"-{profile}-")
        # A cell re-run for CPU steal has several attempts (index records) but one directory.
        if new_id not in new_ids:
            new_ids.append(new_id)
            shutil.copytree(run / "cells" / old_id, run / "cells" / new_id)
            plan.append(
                {**next(c for c in plan if c["cell_id"] == old_id), "cell_id": new_id, "profile": profile}
            )
        cell_json = run / "cells" / new_id / f"attempt-{record['attempt']}" / "cell.json"
        cell = json.loads(cell_json.read_text())
        cell["spec"].update(cell_id=new_id, profile=profile)
        cell_json.write_text(json.dumps(cell, indent=1))
        records.append({**record, "cell_id": new_id})
    write_index(run, records)
    (run / "plan.json").write_text(json.dumps(plan))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["options"]["profiles"] = ["local", profile, skipped]
    manifest["accel"] = {
        profile: {
            "accel": "tcg",
            "emulated": True,
            "reason": "KVM guests hang here",
            "kernel_version": "6.1.0-test",
        }
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=1))
    guests = run / "guests"
    guests.mkdir(exist_ok=True)
    for number, ready in ((1, 11.5), (2, 12.5)):
        record = {
            "cells": new_ids,
            "profile": profile,
            "domain": f"bench-{profile}-{number}",
            "ok": True,
            "reason": None,
            "accel": "tcg",
            "emulated": True,
            "create_s": 0.88,
            "firmware_s": 0.93,
            "kernel_s": 0.96 if number == 1 else None,
            "kernel_main_s": 5.97,
            "init_s": 10.2,
            "ready_s": ready,
            "guest_uptime_ready_s": 4.9,
            "failure": None,
            "poweroff_s": 100.0,
            "stopped_s": 101.0,
            "host_steal_pct": 0.2,
            "wall_s": 101.5,
            "kernel_version": "6.1.0-test",
        }
        (guests / f"{profile}-{number}.json").write_text(json.dumps(record))
    error = {
        "cells": [f"grpc-mixed-{skipped}-r1"],
        "error": f"ProfileSkipped: profile {skipped!r} skipped: no ROM",
    }
    (guests / f"{skipped}-1.json").write_text(json.dumps(error))
