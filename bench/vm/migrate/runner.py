"""`bench vm migrate`: per load level and repeat, a fresh guest serving a target under load, migrated once.

Every repeat boots a guest on the source (from the read-only guest image), waits until its load runs, lets
it run for a window, migrates it, lets it run for a window on the destination and destroys it there
(`repeat.py`). Raw files per repeat go to `<out>/<level>/rep-NNN/`, one flat record per repeat to
`migrations.jsonl`, the run's facts to `manifest.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.vm.accel import AccelChoice, resolve_accel
from bench.vm.cache import boot_id
from bench.vm.connection import connect, embedded_uri
from bench.vm.errors import AccelError, BootError, MigrationError
from bench.vm.guest import GuestArtifacts
from bench.vm.migrate._load import DIRTY_BUFFER_MIB, HEARTBEAT_S, IDLE_INTERVAL_S
from bench.vm.migrate.daemons import DaemonUser, daemon_user
from bench.vm.migrate.ends import Ends, open_ends, stage
from bench.vm.migrate.guest import ensure_migration_guest
from bench.vm.migrate.image import GuestImage, ensure_image
from bench.vm.migrate.live import MigrationRequest
from bench.vm.migrate.plan import MigratePlan
from bench.vm.migrate.repeat import migrate_once

__all__ = ["MIGRATIONS_FILE", "MOVES", "SHARED", "SUMMARY_KEYS", "manifest", "run_migrations", "summarise"]

MIGRATIONS_FILE = "migrations.jsonl"

MOVES = (
    "the guest's RAM (every page the guest touched; untouched pages go as zero-page markers), then the "
    "vCPU and device state (virtio-blk, virtio-serial, serial port, timers) at the switchover"
)
SHARED = (
    "the read-only guest image (squashfs), the kernel and the initramfs: both QEMUs open the same files, "
    "shared storage for free on one host; nothing of the disk moves"
)

# Record keys summarised per level (median and IQR over the repeats that completed): key -> heading.
SUMMARY_KEYS: dict[str, str] = {
    "total_ms": "total time (QEMU), ms",
    "downtime_ms": "downtime (QEMU), ms",
    "gap_ms": "gap seen from outside, ms",
    "pause_events_ms": "paused→resumed events, ms",
    "resume_to_line_ms": "resumed→first line, ms",
    "transferred_mb": "memory transferred, MB",
    "iterations": "iterations",
    "dirty_rate_max_mb_s": "dirty rate (max), MB/s",
    "api_wall_s": "API wall time, s",
    "during_median_ms": "in-guest latency during, ms",
    "before_median_ms": "in-guest latency before, ms",
}


def _accel(plan: MigratePlan, guest: GuestArtifacts, user: DaemonUser) -> AccelChoice:
    # KVM works or not per host, so the probe (cached per host boot) runs where the source runs: on this
    # host unless --libvirt-uri names another libvirt.
    hv = connect(plan.source_uri) if plan.source_uri else connect(embedded_uri())
    choice = resolve_accel(plan.profile.accel, hv, guest, profile=plan.profile)
    if choice.accel == "kvm" and plan.source_uri is None and os.geteuid() == 0:
        kvm = os.stat("/dev/kvm")
        if not (kvm.st_mode & 0o060 == 0o060 and kvm.st_gid in user.groups):
            raise AccelError(
                f"KVM works on this host, but /dev/kvm (mode {kvm.st_mode & 0o777:o}) is not usable by "
                f"{user.name}, the account of the private daemons; give the kvm group read-write access, or "
                "set accel = 'tcg' in the profile"
            )
    return choice


def manifest(
    plan: MigratePlan,
    *,
    accel: AccelChoice,
    guest: GuestArtifacts,
    image: GuestImage,
    ends: Ends,
    user: DaemonUser,
) -> dict[str, Any]:
    profile = plan.profile
    sample = MigrationRequest(
        dconnuri=ends.dconnuri,
        migrate_uri=None,
        listen_address=None,
        dest_xml="",
        max_downtime_ms=plan.max_downtime_ms,
        bandwidth_mib_s=plan.bandwidth_mib_s,
        timeout_s=plan.timeout_s,
    )
    return {
        "kind": "vm-migrate",
        "status": "running",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "host_kernel": platform.release(),
        "host_boot_id": boot_id(),
        "host_cpus": os.cpu_count(),
        "versions": ends.source.versions(),
        "profile": {
            "name": profile.name,
            "firmware": profile.firmware,
            "machine": profile.machine,
            "vcpus": profile.vcpus,
            "memory_mib": profile.memory_mib,
            "vcpu_pins": list(profile.vcpu_pins),
            "emulator_pin": profile.emulator_pin,
            "cpu_mode": profile.cpu_mode,
        },
        "accel": {"accel": accel.accel, "emulated": accel.emulated, "reason": accel.reason},
        "guest": guest.as_record(),
        "image": image.as_record(),
        "source": {"uri": ends.source.uri, "private_daemon": plan.source_uri is None},
        "destination": {
            "uri": ends.destination.uri,
            "dconnuri": ends.dconnuri,
            "private_daemon": plan.destination_uri is None,
        },
        "daemon_account": user.name if plan.source_uri is None or plan.destination_uri is None else None,
        "transport": plan.transport or "libvirt's default",
        "flags": sample.flag_names(),
        "params": {k: v for k, v in sample.param_items().items() if k != "VIR_MIGRATE_PARAM_DEST_XML"},
        "max_downtime_ms": plan.max_downtime_ms,
        "bandwidth_mib_s": plan.bandwidth_mib_s,
        "timeout_s": plan.timeout_s,
        "window_s": plan.window_s,
        "protocol": plan.protocol,
        "levels": list(plan.levels),
        "load": {
            "idle": f"one GetBook every {IDLE_INTERVAL_S * 1000:.0f} ms (the service is up but barely used)",
            "busy": "GetBook back to back, one at a time (closed loop)",
            "dirty": f"the busy load, plus a process that dirties {plan.dirty_mib_s} MiB of guest memory per "
            f"second, cycling through a {DIRTY_BUFFER_MIB} MiB buffer",
            "heartbeat_ms": HEARTBEAT_S * 1000,
        },
        "repeats": plan.repeats,
        "seed": plan.seed,
        "order": [f"{level}-{repeat}" for level, repeat in plan.order],
        "moves": MOVES,
        "shared": SHARED,
        "times": "host times are seconds since the migrateToURI3 call; QEMU's figures come from libvirt's "
        "completed job statistics on the destination",
    }


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per level: repeats, completed ones, and (q1, median, q3) of each SUMMARY_KEYS figure."""
    summary: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = summary.setdefault(str(record.get("level")), {"n": 0, "ok": 0})
        entry["n"] += 1
        entry["ok"] += record.get("outcome") == "ok"
    for level, entry in summary.items():
        ok = [r for r in records if r.get("level") == level and r.get("outcome") == "ok"]
        for key in SUMMARY_KEYS:
            values = [float(r[key]) for r in ok if r.get(key) is not None]
            entry[key] = _quartiles(values) if values else None
    return summary


def run_migrations(
    plan: MigratePlan,
    out: Path,
    *,
    log: Callable[[str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every planned repeat; records are appended to migrations.jsonl as they finish."""
    out.mkdir(parents=True, exist_ok=True)
    user = daemon_user()
    guest = ensure_migration_guest(log=log)
    image = ensure_image(plan.protocol, log=log)
    accel = _accel(plan, guest, user)
    records: list[dict[str, Any]] = []
    if log:
        log("starting the private libvirt daemons …")
    with open_ends(plan, user) as ends:
        staged = dataclasses.replace(
            guest, kernel=stage(guest.kernel, ends.files_dir), initrd=stage(guest.initrd, ends.files_dir)
        )
        image_path = stage(image.path, ends.files_dir)
        record_manifest = manifest(plan, accel=accel, guest=guest, image=image, ends=ends, user=user)
        _write_manifest(out, record_manifest)
        status = "interrupted"
        try:
            for index, (level, repeat) in enumerate(plan.order):
                if progress:
                    progress(f"{level} {repeat}/{plan.repeats}", index, len(plan.order))
                wall = time.time()
                started = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
                record = {
                    "profile": plan.profile.name,
                    "level": level,
                    "repeat": repeat,
                    "sequence": index,
                    "protocol": plan.protocol,
                    "accel": accel.accel,
                    "emulated": accel.emulated,
                    "started_utc": started,
                }
                try:
                    record.update(
                        migrate_once(
                            plan,
                            ends,
                            staged,
                            image_path,
                            accel,
                            level,
                            out / level / f"rep-{repeat:03d}",
                            log,
                        )
                    )
                except (BootError, MigrationError) as exc:
                    record.update(outcome="error", reason=str(exc))
                records.append(record)
                with (out / MIGRATIONS_FILE).open("a") as handle:  # append-only raw data
                    handle.write(json.dumps(record) + "\n")
            status = "complete"
            if progress:
                progress("done", len(plan.order), len(plan.order))
        finally:
            ends.pair.keep_logs(out / "daemons")
            record_manifest["status"] = status
            record_manifest["ended_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
            _write_manifest(out, record_manifest)
    return records


def _write_manifest(out: Path, record: dict[str, Any]) -> None:
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.rename(out / "manifest.json")
