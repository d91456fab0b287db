"""`bench vm boot`: time repeated guest boots per profile, keep every raw record, summarise median + IQR."""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.vm.accel import AccelChoice, resolve_accel
from bench.vm.cache import boot_id
from bench.vm.connection import connect, resolve_uri, signals_raise
from bench.vm.domain_xml import domain_xml, placeholder_runtime
from bench.vm.errors import AccelError, BootError, ProfileError
from bench.vm.firmware import FIRMWARE_OUTPUT
from bench.vm.guest import cached_guest, ensure_guest, placeholder_guest
from bench.vm.launch import boot_once
from bench.vm.profiles import VmProfile

__all__ = ["PHASE_COLUMNS", "BootPlan", "plan_boots", "run_boots", "summarise"]

# (record key, table heading): milestones in seconds since the start request, then the guest's view.
PHASE_COLUMNS: list[tuple[str, str]] = [
    ("create_s", "QEMU up"),
    ("firmware_s", "firmware out"),
    ("kernel_s", "kernel out"),
    ("kernel_main_s", "kernel main"),
    ("init_s", "init"),
    ("ready_s", "ready"),
    ("poweroff_s", "power-off"),
    ("stopped_s", "gone"),
    ("guest_uptime_ready_s", "guest uptime@ready"),
]


@dataclass(frozen=True)
class BootPlan:
    profiles: list[VmProfile]  # will be booted
    skipped: dict[str, str]  # profile name -> reason
    order: list[str]  # boot order: rounds of all profiles, shuffled within each round
    seed: int


def plan_boots(profiles: list[VmProfile], repeats: int, *, seed: int | None = None) -> BootPlan:
    """Interleave repetitions (round-robin, shuffled within each round) so drift hits every profile alike."""
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    runnable: list[VmProfile] = []
    skipped: dict[str, str] = {}
    for profile in profiles:
        reason = "firmware = 'none' runs on the host: no boot" if not profile.is_vm else profile.skip_reason()
        if reason is None:
            runnable.append(profile)
        else:
            skipped[profile.name] = reason
    rng = random.Random(seed)
    order: list[str] = []
    for _ in range(repeats):
        names = [p.name for p in runnable]
        rng.shuffle(names)
        order.extend(names)
    return BootPlan(profiles=runnable, skipped=skipped, order=order, seed=seed)


def dry_run_text(plan: BootPlan, all_profiles: list[VmProfile], *, uri: str | None, out: Path) -> str:
    """The plan and every domain's XML, without connecting to libvirt or starting anything."""
    guest = cached_guest()
    lines = [
        f"libvirt URI: {resolve_uri(uri)}",
        f"output: {out}",
        f"guest: {'built: ' + str(guest.initrd) if guest else 'not built yet (placeholder paths below)'}",
        f"boot order (seed {plan.seed}): {', '.join(plan.order) or '-'}",
    ]
    for name, reason in plan.skipped.items():
        lines.append(f"skipped: {name}: {reason}")
    for profile in all_profiles:
        if profile.name in plan.skipped:
            continue
        lines.append("")
        lines.append(
            f"# {profile.name}: accel {profile.accel} (auto probes KVM once per host boot, else TCG); "
            f"firmware output: {FIRMWARE_OUTPUT[profile.firmware]}"
        )
        lines.append(
            domain_xml(profile, guest or placeholder_guest(), placeholder_runtime(profile, mode="boot"))
        )
    return "\n".join(lines)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def summarise(records: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Per profile: n, n ok, and (median, q1, q3) of every phase over the successful boots."""
    summary: dict[str, dict[str, object]] = {}
    for record in records:
        entry = summary.setdefault(str(record["profile"]), {"n": 0, "ok": 0, "accel": record.get("accel")})
        entry["n"] = int(str(entry["n"])) + 1
        if record.get("outcome") == "ok":
            entry["ok"] = int(str(entry["ok"])) + 1
    for profile, entry in summary.items():
        ok = [r for r in records if r["profile"] == profile and r.get("outcome") == "ok"]
        for key, _ in PHASE_COLUMNS:
            values = [float(str(r[key])) for r in ok if r.get(key) is not None]
            entry[key] = _quartiles(values) if values else None
    return summary


def _manifest(out: Path, plan: BootPlan, repeats: int, uri: str, accel: dict[str, AccelChoice]) -> None:
    guest = cached_guest()
    manifest = {
        "kind": "vm-boot",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "host_kernel": platform.release(),
        "host_boot_id": boot_id(),
        "libvirt_uri": uri,
        "repeats": repeats,
        "seed": plan.seed,
        "order": plan.order,
        "skipped": plan.skipped,
        "accel": {
            name: {"accel": c.accel, "emulated": c.emulated, "reason": c.reason} for name, c in accel.items()
        },
        "guest": guest.as_record() if guest else None,
        "phases": {key: heading for key, heading in PHASE_COLUMNS},
        "times": "seconds since the domain start request (createXML), measured on the host; "
        "guest_uptime_ready_s is the guest's own /proc/uptime at the ready marker",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def run_boots(
    plan: BootPlan,
    *,
    repeats: int,
    out: Path,
    uri: str | None,
    timeout_s: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, object]]:
    """Boot every planned guest once per entry of `plan.order`; returns the raw records (also on disk)."""
    out.mkdir(parents=True, exist_ok=True)
    records_path = out / "boots.jsonl"
    records: list[dict[str, object]] = []
    with signals_raise():
        guest = ensure_guest(log=log)
        hv = connect(uri)
        if log:
            log("checking whether KVM guests boot here (cached per host boot) …")
        by_name = {p.name: p for p in plan.profiles}
        choices: dict[str, AccelChoice] = {}
        for profile in plan.profiles:
            try:
                choices[profile.name] = resolve_accel(profile.accel, hv, guest, profile=profile)
            except AccelError as exc:
                plan.skipped[profile.name] = str(exc)
        _manifest(out, plan, repeats, hv.uri, choices)
        counters: dict[str, int] = {}
        order = [name for name in plan.order if name in choices]
        for done, name in enumerate(order):
            profile = by_name[name]
            index = counters[name] = counters.get(name, 0) + 1
            if progress:
                progress(name, done, len(order))
            share = out / name / f"boot-{index:03d}"
            wall0 = time.time()
            try:
                record = boot_once(
                    hv,
                    profile,
                    guest,
                    accel=choices[name].accel,
                    mode="boot",
                    share_dir=share,
                    timeout_s=timeout_s or profile.boot_timeout_s,
                ).as_record()
            except (BootError, ProfileError) as exc:
                record = {"profile": name, "outcome": "error", "reason": str(exc)}
            record.update(
                repeat=index,
                sequence=done,
                started_utc=datetime.fromtimestamp(wall0, UTC).isoformat(timespec="milliseconds"),
                accel_reason=choices[name].reason,
            )
            records.append(record)
            with records_path.open("a") as handle:  # append-only raw data, one flat dict per line
                handle.write(json.dumps(record) + "\n")
        if progress:
            progress("", len(order), len(order))
    return records
