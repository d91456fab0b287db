"""`run_in_guest`: run one command inside a fresh guest and bring its results back through a 9p share."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.vm.accel import resolve_accel
from bench.vm.cache import project_root
from bench.vm.connection import connect, signals_raise
from bench.vm.domain_xml import Accel
from bench.vm.errors import BootError, ProfileError, ProfileSkipped
from bench.vm.guest import GuestArtifacts, ensure_guest
from bench.vm.launch import CONTROL_DIR, BootRecord, boot_once
from bench.vm.profiles import VmProfile, find_profile
from bench.vm.serial import BootPhases

__all__ = ["GuestRun", "guest_environment", "run_in_guest"]


@dataclass(frozen=True)
class GuestRun:
    """What happened to one command run inside a guest. `reason` is None only when it succeeded."""

    profile: str
    domain: str
    argv: tuple[str, ...]
    exit_code: int | None  # None: the command never reported a status (timeout, guest not ready)
    reason: str | None  # "timeout: …", "never-ready: …", "exit code 3", …
    accel: Accel
    emulated: bool  # True under TCG: every figure from this guest is software-emulated
    accel_reason: str
    phases: BootPhases  # host-side boot milestones, seconds since the start request
    create_s: float
    poweroff_s: float | None
    stopped_s: float | None
    host_steal_pct: float | None  # host CPU stolen by the hypervisor while the guest ran
    host_busy_pct: float | None  # host CPU busy (guest + anything else) while the guest ran
    wall_s: float  # host wall time of the whole call, guest build and accel probe included
    results_dir: Path
    serial_log: Path
    domain_xml: Path
    stdout_log: Path
    stderr_log: Path
    kernel_package: str
    kernel_version: str
    initrd_sha256: str

    @property
    def ok(self) -> bool:
        return self.reason is None

    def as_record(self) -> dict[str, object]:
        """Flat dict for the raw results (one JSON line)."""
        return {
            "profile": self.profile,
            "domain": self.domain,
            "argv": json.dumps(list(self.argv)),
            "exit_code": self.exit_code,
            "ok": self.ok,
            "reason": self.reason,
            "accel": self.accel,
            "emulated": self.emulated,
            "accel_reason": self.accel_reason,
            **self.phases.as_record(),
            "create_s": self.create_s,
            "poweroff_s": self.poweroff_s,
            "stopped_s": self.stopped_s,
            "host_steal_pct": self.host_steal_pct,
            "host_busy_pct": self.host_busy_pct,
            "wall_s": self.wall_s,
            "results_dir": str(self.results_dir),
            "serial_log": str(self.serial_log),
            "domain_xml": str(self.domain_xml),
            "stdout_log": str(self.stdout_log),
            "stderr_log": str(self.stderr_log),
            "kernel_package": self.kernel_package,
            "kernel_version": self.kernel_version,
            "initrd_sha256": self.initrd_sha256,
        }


def guest_environment(profile: VmProfile, accel: Accel, extra: dict[str, str] | None) -> dict[str, str]:
    """The command's environment inside the guest: the venv first on PATH, profile facts, then `extra`."""
    path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    env: dict[str, str] = {"HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"}
    if sys.prefix != sys.base_prefix:  # running from a venv: the guest sees it at the same path
        env["VIRTUAL_ENV"] = sys.prefix
        path.insert(0, str(Path(sys.prefix) / "bin"))
    env["PATH"] = ":".join(path)
    env.update(
        {
            "BENCH_IN_GUEST": "1",
            "BENCH_VM_PROFILE": profile.name,
            "BENCH_VM_ACCEL": accel,
            "BENCH_VM_EMULATED": "1" if accel == "tcg" else "0",
            "BENCH_GUEST_TARGET_CPU": str(profile.guest_target_cpu),
            "BENCH_GUEST_GENERATOR_CPU": str(profile.guest_generator_cpu),
        }
    )
    env.update(extra or {})
    return env


def _exit_code(control: Path) -> int | None:
    try:
        return int(json.loads((control / "exit-status.json").read_text())["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        # The helper itself died (e.g. the interpreter is missing in the guest): init's status of it.
        status = int((control / "init-status").read_text().strip())
    except (OSError, ValueError):
        return None
    return status if status != 0 else None


def _reason(record: BootRecord, exit_code: int | None) -> str | None:
    if record.outcome != "ok":
        return f"{record.outcome}: {record.reason}"
    if exit_code is None:
        return "no-status: the guest powered off without an exit status from the command"
    if exit_code != 0:
        return f"exit code {exit_code}"
    return None


def run_in_guest(
    profile: VmProfile | str,
    argv: list[str],
    *,
    results_dir: Path,
    timeout_s: float,
    uri: str | None = None,
    env: dict[str, str] | None = None,
) -> GuestRun:
    """Boot a transient guest for `profile`, run `argv` in it, and destroy the guest whatever happens.

    Inside the guest the host's root is mounted read-only at the same paths (the project, its venv and
    /root), `results_dir` is mounted read-write at its host path, the working directory is the project
    root, and loopback is up. `timeout_s` bounds the guest's whole life (boot, command, power-off).
    The serial log, the domain XML and the command's stdout/stderr end up in `results_dir/vm-guest/`.
    Raises ProfileError / ProfileSkipped / GuestBuildError / LibvirtUnavailable / AccelError when it
    cannot even start; a guest that starts and fails is reported in the returned GuestRun instead.
    """
    started = time.monotonic()
    if isinstance(profile, str):
        profile = find_profile(profile)
    if not profile.is_vm:
        raise ProfileError(
            f"profile {profile.name!r} has firmware = 'none': run the command on the host instead"
        )
    skip = profile.skip_reason()
    if skip is not None:
        raise ProfileSkipped(f"profile {profile.name!r} skipped: {skip}")
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    results_dir = results_dir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)

    with signals_raise():
        guest: GuestArtifacts = ensure_guest()
        hv = connect(uri)
        choice = resolve_accel(profile.accel, hv, guest, profile=profile)
        request: dict[str, object] = {
            "argv": list(argv),
            "cwd": str(project_root()),
            "env": guest_environment(profile, choice.accel, env),
        }
        try:
            record = boot_once(
                hv,
                profile,
                guest,
                accel=choice.accel,
                mode="run",
                share_dir=results_dir,
                timeout_s=timeout_s,
                ready_timeout_s=min(profile.boot_timeout_s, timeout_s),
                request=request,
            )
        except BootError as exc:
            raise BootError(f"profile {profile.name!r}: {exc}") from exc

    control = results_dir / CONTROL_DIR
    exit_code = _exit_code(control) if record.outcome == "ok" else None
    run = GuestRun(
        profile=profile.name,
        domain=record.domain,
        argv=tuple(argv),
        exit_code=exit_code,
        reason=_reason(record, exit_code),
        accel=choice.accel,
        emulated=choice.emulated,
        accel_reason=choice.reason,
        phases=record.phases,
        create_s=record.create_s,
        poweroff_s=record.poweroff_s,
        stopped_s=record.stopped_s,
        host_steal_pct=record.host_steal_pct,
        host_busy_pct=record.host_busy_pct,
        wall_s=round(time.monotonic() - started, 4),
        results_dir=results_dir,
        serial_log=record.serial_log,
        domain_xml=record.xml_path,
        stdout_log=control / "stdout.log",
        stderr_log=control / "stderr.log",
        kernel_package=guest.kernel_package,
        kernel_version=guest.kernel_version,
        initrd_sha256=guest.initrd_sha256,
    )
    tmp = control / f".guest-run.{os.getpid()}.json"
    tmp.write_text(json.dumps(run.as_record(), indent=2) + "\n")
    tmp.rename(control / "guest-run.json")
    return run
