"""Cells of a VM profile: one guest per block of cells, raw files brought back through the results share.

The runner only sees "a place where cells run": `run_guest_block(specs, ...)` returns, per cell, the
directory holding its raw files (or the reason it has none).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run.plan import CellSpec

__all__ = ["GuestBlockResult", "dry_run_guest", "run_guest_block"]


@dataclass
class GuestBlockResult:
    outputs: dict[str, Path]  # cell_id -> directory with that cell's raw files
    reasons: dict[str, str]  # cell_id -> why it has no results (guest failed, timeout, ...)
    guest: dict[str, Any]  # GuestRun.as_record() or the error that stopped the guest from starting
    accel: dict[str, Any]  # {"accel": "tcg", "reason": ..., "kernel": ...} for the manifest
    firmware: str | None  # the profile's firmware, recorded so the report never reads vm_profiles/


def _block_timeout(specs: list[CellSpec]) -> float:
    # Under TCG a cell costs ~10x its host time (imports, emulated CPU); boot and build come on top.
    per_cell = 0.0
    for spec in specs:
        s = spec.settings
        per_cell += 60 + 10 * (
            s.warmup_s + len(s.closed_users) * s.level_s + len(s.open_fractions) * s.open_s
        )
    return 300 + per_cell


def _firmware(profile: str) -> str | None:
    from bench.vm import VmError, find_profile

    try:
        return find_profile(profile).firmware
    except VmError:
        return None  # an invalid profile: its error is the guest record's


def run_guest_block(specs: list[CellSpec], batch_dir: Path, *, uri: str | None) -> GuestBlockResult:
    from bench.vm import VmError, run_in_guest

    profile = specs[0].profile
    firmware = _firmware(profile)
    shutil.rmtree(batch_dir, ignore_errors=True)
    (batch_dir / "specs").mkdir(parents=True)
    for index, spec in enumerate(specs):
        (batch_dir / "specs" / f"{index:03d}-{spec.cell_id}.json").write_text(spec.dumps())
    argv = [sys.executable, "-m", "bench.run._guest_batch", "--batch-dir", str(batch_dir)]
    try:
        run = run_in_guest(profile, argv, results_dir=batch_dir, timeout_s=_block_timeout(specs), uri=uri)
    except VmError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        return GuestBlockResult({}, {s.cell_id: reason for s in specs}, {"error": reason}, {}, firmware)
    record = {**run.as_record()}
    outputs: dict[str, Path] = {}
    reasons: dict[str, str] = {}
    done = _done_cells(batch_dir / "done.jsonl")
    for spec in specs:
        out = batch_dir / "out" / spec.cell_id
        if spec.cell_id in done and (out / "cell.json").exists():
            outputs[spec.cell_id] = out
        else:
            reasons[spec.cell_id] = (
                f"guest {run.domain}: {run.reason or 'the cell did not finish in the guest'}"
            )
    accel = {
        "firmware": firmware,
        "accel": run.accel,
        "emulated": run.emulated,
        "reason": run.accel_reason,
        "kernel_package": run.kernel_package,
        "kernel_version": run.kernel_version,
    }
    return GuestBlockResult(outputs, reasons, record, accel, firmware)


def _done_cells(path: Path) -> set[str]:
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text().splitlines():
        try:
            done.add(json.loads(line)["cell_id"])
        except (json.JSONDecodeError, KeyError):
            continue
    return done


def dry_run_guest(profile: str, *, uri: str | None) -> None:
    """Print the domain XML a block of this profile would boot, without starting anything."""
    from bench.vm.domain_xml import domain_xml, placeholder_runtime
    from bench.vm.guest import cached_guest, placeholder_guest
    from bench.vm.profiles import find_profile

    vm = find_profile(profile)
    guest = cached_guest() or placeholder_guest()
    print(
        f"\n--- guest for profile {profile} (libvirt {uri or 'embedded'}; one guest per block of cells) ---"
    )
    sys.stdout.write(domain_xml(vm, guest, placeholder_runtime(vm, accel="tcg", mode="run")))
