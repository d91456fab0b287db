"""Boot one transient guest, time it from the host, and always destroy it: the primitive behind everything."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.vm import guest_exec
from bench.vm.cache import project_root
from bench.vm.connection import Hypervisor
from bench.vm.domain_xml import Accel, DomainRuntime, domain_xml, new_runtime
from bench.vm.guest import GuestArtifacts, Mode
from bench.vm.profiles import VmProfile
from bench.vm.serial import BootPhases, SerialTail, parse_phases, power_down_t

__all__ = [
    "CONTROL_DIR",
    "BootOutcome",
    "BootRecord",
    "boot_once",
    "cpu_times",
    "host_cpu_share",
    "prepare_share",
]

CONTROL_DIR = "vm-guest"  # inside the shared results directory: init/helper control files, logs, XML

BootOutcome = Literal["ok", "timeout", "never-ready", "init-failed"]


@dataclass(frozen=True)
class BootRecord:
    """One boot, measured on the host. Times are seconds since the start request (createXML call)."""

    profile: str
    domain: str
    accel: Accel
    mode: Mode
    outcome: BootOutcome
    reason: str | None
    create_s: float  # createXML: libvirt + QEMU start-up, until the vCPUs run
    phases: BootPhases
    poweroff_s: float | None  # guest powered off (libvirt shutdown event, else the kernel's last line)
    stopped_s: float | None  # QEMU gone and the domain cleaned up by libvirt
    serial_log: Path
    xml_path: Path
    host_steal_pct: float | None = None  # host CPU stolen by the hypervisor during this boot
    host_busy_pct: float | None = None  # host CPU busy (this guest and anything else) during this boot

    @property
    def emulated(self) -> bool:
        return self.accel == "tcg"

    def as_record(self) -> dict[str, object]:
        """A flat dict, one JSON line in the raw results."""
        record: dict[str, object] = {
            "profile": self.profile,
            "domain": self.domain,
            "accel": self.accel,
            "emulated": self.emulated,
            "mode": self.mode,
            "outcome": self.outcome,
            "reason": self.reason,
            "create_s": self.create_s,
            **self.phases.as_record(),
            "poweroff_s": self.poweroff_s,
            "stopped_s": self.stopped_s,
            "host_steal_pct": self.host_steal_pct,
            "host_busy_pct": self.host_busy_pct,
            "serial_log": str(self.serial_log),
            "xml_path": str(self.xml_path),
        }
        return record


# The guest mounts its own tmpfs on these; host paths below them must be bound back in (init script).
_GUEST_TMPFS = ("/tmp", "/var/tmp", "/run")


def paths_hidden_in_guest() -> list[str]:
    """The project, venv and Python install, where a guest tmpfs would hide them (e.g. a checkout in /tmp)."""
    candidates = {
        project_root(),
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.executable).resolve().parent,
    }
    hidden = set()
    for path in candidates:
        text = str(path.resolve())
        if "\n" not in text and any(text.startswith(root + "/") for root in _GUEST_TMPFS):
            hidden.add(text)
    return sorted(hidden)


def prepare_share(share_dir: Path, *, request: dict[str, object] | None = None) -> Path:
    """Write the files the guest init and helper read from the results share; returns the control dir."""
    if "\n" in str(share_dir.resolve()):
        # The guest init reads the mount point as one line.
        raise ValueError(f"results directory {share_dir!r} contains a newline; choose another path")
    control = share_dir / CONTROL_DIR
    control.mkdir(parents=True, exist_ok=True)
    for stale in ("exit-status.json", "init-status", "stdout.log", "stderr.log", "serial.log"):
        (control / stale).unlink(missing_ok=True)
    (control / "mountpoint").write_text(f"{share_dir.resolve()}\n")
    (control / "python").write_text(f"{sys.executable}\n")
    (control / "helper").write_text(f"{Path(guest_exec.__file__).resolve()}\n")
    (control / "keep").write_text("".join(f"{path}\n" for path in paths_hidden_in_guest()))
    if request is not None:
        (control / "request.json").write_text(json.dumps(request, indent=2) + "\n")
    return control


def cpu_times() -> list[int]:
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return []


def host_cpu_share(before: list[int], after: list[int]) -> dict[str, float | None]:
    """Host CPU steal and busy share (all CPUs, percent) between two /proc/stat samples.

    These machines are VMs whose hypervisor steals CPU in bursts, and other work may run beside a boot:
    both explain outliers, so every measured window records them.
    """
    if len(before) < 8 or len(after) < 8:
        return {"host_steal_pct": None, "host_busy_pct": None}
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1
    idle = delta[3] + delta[4]  # idle + iowait
    return {
        "host_steal_pct": round(100 * delta[7] / total, 2),
        "host_busy_pct": round(100 * (total - idle - delta[7]) / total, 2),
    }


def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 4)


def boot_once(
    hv: Hypervisor,
    profile: VmProfile,
    guest: GuestArtifacts,
    *,
    accel: Accel,
    mode: Mode,
    share_dir: Path,
    timeout_s: float,
    ready_timeout_s: float | None = None,
    request: dict[str, object] | None = None,
) -> BootRecord:
    """Start a guest, tail its serial log, wait for it to power off; destroy it whatever happens.

    `timeout_s` bounds the whole life of the guest; `ready_timeout_s` (default: the same) bounds the time
    until the init's ready marker. KeyboardInterrupt and other exceptions propagate after the destroy.
    """
    share_dir.mkdir(parents=True, exist_ok=True)
    control = prepare_share(share_dir, request=request)
    rt: DomainRuntime = new_runtime(profile, accel=accel, mode=mode, workdir=control, share_dir=share_dir)
    xml = domain_xml(profile, guest, rt)
    xml_path = control / "domain.xml"
    xml_path.write_text(xml)
    ready_timeout_s = timeout_s if ready_timeout_s is None else ready_timeout_s

    outcome: BootOutcome = "ok"
    reason: str | None = None
    cpu_before = cpu_times()
    with SerialTail(rt.serial_log) as tail:
        t0 = time.monotonic()
        try:
            with hv.running(xml, rt.name) as handle:
                created = time.monotonic()
                deadline = t0 + timeout_s
                ready_deadline = t0 + ready_timeout_s
                ready = False
                stopped_t: float | None = None
                shutdown_t: float | None = None
                while not handle.wait_stopped(0.05):
                    now = time.monotonic()
                    if not ready:
                        ready = tail.wait_for("BENCH-READY", timeout_s=0) is not None
                    if now > deadline:
                        outcome, reason = "timeout", f"guest still running after {timeout_s:.0f} s; destroyed"
                        break
                    if not ready and now > ready_deadline:
                        outcome = "never-ready"
                        reason = f"no ready marker within {ready_timeout_s:.0f} s; destroyed"
                        break
                else:
                    # The guest ended by itself (power-off, reset or crash), not by our destroy.
                    stopped_t = handle.event_time("stopped") or time.monotonic()
                    shutdown_t = handle.event_time("shutdown")
        finally:
            if rt.nvram is not None:
                rt.nvram.unlink(missing_ok=True)  # 540 KB of firmware variables per boot: not evidence
            qemu_log = hv.qemu_log(rt.name)
            if qemu_log is not None:
                shutil.copyfile(qemu_log, control / "qemu.log")  # QEMU's own stderr, for failures
        tail.stop()
        lines = tail.lines()

    # The serial log again, each line prefixed with the host time it appeared (seconds since the start
    # request): the evidence behind every phase figure.
    (control / "serial.timed.log").write_text("".join(f"{line.t - t0:9.4f}  {line.text}\n" for line in lines))
    phases = parse_phases(lines, t0)
    cpu_share = host_cpu_share(cpu_before, cpu_times())
    if outcome == "ok":
        if phases.failure is not None:
            outcome, reason = "init-failed", f"guest init failed: {phases.failure}"
        elif phases.ready_s is None:
            last = next((line.text for line in reversed(lines) if line.text.strip()), "<no serial output>")
            outcome = "never-ready"
            reason = f"guest stopped without reaching the ready marker; last serial line: {last[-200:]!r}"
    return BootRecord(
        profile=profile.name,
        domain=rt.name,
        accel=accel,
        mode=mode,
        outcome=outcome,
        reason=reason,
        create_s=round(created - t0, 4),
        phases=phases,
        poweroff_s=_rel(shutdown_t or (power_down_t(lines) if stopped_t else None), t0),
        stopped_s=_rel(stopped_t, t0),
        serial_log=rt.serial_log,
        xml_path=xml_path,
        host_steal_pct=cpu_share["host_steal_pct"],
        host_busy_pct=cpu_share["host_busy_pct"],
    )
