"""`bench vm migrate`: per load level and repeat, a fresh guest serving a target under load, migrated once.

Every repeat boots a guest on the source (from the read-only guest image), waits until its load runs, lets
it run for a window, migrates it, lets it run for a window on the destination and destroys it there. Raw
files per repeat go to `<out>/<level>/rep-NNN/`, one flat record per repeat to `migrations.jsonl`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import random
import re
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bench.errors import UsageError
from bench.vm.accel import AccelChoice, resolve_accel
from bench.vm.cache import boot_id
from bench.vm.connection import Hypervisor, connect, embedded_uri
from bench.vm.domain_xml import DomainRuntime, domain_xml, new_runtime
from bench.vm.errors import (
    AccelError,
    BootError,
    DestinationUnreachable,
    LibvirtUnavailable,
    MigrationError,
)
from bench.vm.guest import GuestArtifacts
from bench.vm.launch import cpu_times, host_cpu_share
from bench.vm.migrate import timeline
from bench.vm.migrate._load import (
    DEFAULT_DIRTY_MIB_S,
    DIRTY_BUFFER_MIB,
    HEARTBEAT_S,
    IDLE_INTERVAL_S,
    LOAD_PORT,
)
from bench.vm.migrate.daemons import DaemonPair, DaemonUser, daemon_user
from bench.vm.migrate.guest import ensure_migration_guest
from bench.vm.migrate.image import GuestImage, ensure_image
from bench.vm.migrate.live import MigrationOutcome, MigrationRequest, migrate
from bench.vm.profiles import VmProfile
from bench.vm.serial import FAIL_MARKER, SerialTail

__all__ = [
    "MIGRATIONS_FILE",
    "MOVES",
    "SHARED",
    "Ends",
    "MigratePlan",
    "open_ends",
    "plan_migrations",
    "run_migrations",
    "summarise",
]

MIGRATIONS_FILE = "migrations.jsonl"
Transport = Literal["unix", "tcp"]

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


@dataclass(frozen=True)
class MigratePlan:
    profile: VmProfile
    levels: tuple[str, ...]
    repeats: int
    order: list[tuple[str, int]]  # (level, repeat) in run order
    seed: int
    protocol: str
    source_uri: str | None  # None: a private session daemon started here
    destination_uri: str | None  # None: likewise
    transport: Transport | None  # None: libvirt's choice (an end we did not start)
    max_downtime_ms: int | None
    bandwidth_mib_s: int | None
    timeout_s: float
    window_s: float
    dirty_mib_s: int = DEFAULT_DIRTY_MIB_S

    @property
    def local_pair(self) -> bool:
        return self.source_uri is None and self.destination_uri is None


def plan_migrations(
    profile: VmProfile,
    *,
    levels: tuple[str, ...],
    repeats: int,
    seed: int | None,
    protocol: str,
    source_uri: str | None,
    destination_uri: str | None,
    transport: Transport | None,
    max_downtime_ms: int | None,
    bandwidth_mib_s: int | None,
    timeout_s: float,
    window_s: float,
    dirty_mib_s: int = DEFAULT_DIRTY_MIB_S,
) -> MigratePlan:
    """Validate the options and interleave the repeats: every round runs each level once, shuffled."""
    if not profile.is_vm:
        raise UsageError(f"profile {profile.name!r} has firmware = 'none': there is no guest to migrate")
    reason = profile.skip_reason()
    if reason is not None:
        raise UsageError(f"profile {profile.name!r} cannot run here: {reason}")
    for uri, option in ((source_uri, "--libvirt-uri"), (destination_uri, "--to")):
        if uri is not None and uri.startswith("qemu:///embed"):
            raise UsageError(
                f"{option} {uri}: an embedded libvirt driver cannot take part in a migration (nothing "
                "outside this process can connect to it); leave the option out to use private daemons"
            )
    if transport is not None and (source_uri or destination_uri):
        raise UsageError(
            "--transport applies to the two private daemons only; with --to or --libvirt-uri "
            "libvirt picks the migration transport"
        )
    if source_uri is None and destination_uri is None and transport is None:
        transport = "unix"
    if repeats < 1:
        raise UsageError("--repeats must be at least 1")
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    order: list[tuple[str, int]] = []
    for repeat in range(1, repeats + 1):
        names = list(levels)
        rng.shuffle(names)
        order.extend((level, repeat) for level in names)
    return MigratePlan(
        profile=profile,
        levels=levels,
        repeats=repeats,
        order=order,
        seed=seed,
        protocol=protocol,
        source_uri=source_uri,
        destination_uri=destination_uri,
        transport=transport,
        max_downtime_ms=max_downtime_ms,
        bandwidth_mib_s=bandwidth_mib_s,
        timeout_s=timeout_s,
        window_s=window_s,
        dirty_mib_s=dirty_mib_s,
    )


@dataclass
class Ends:
    """The two libvirts of the migration, and the directories their QEMUs read and write."""

    source: Hypervisor
    destination: Hypervisor
    dconnuri: str  # the destination as the source daemon reaches it
    pair: DaemonPair
    files_dir: Path  # kernel, initramfs, image: readable by every QEMU
    guests_dir: Path  # per-guest serial and load files, written by QEMU
    migrations: int = 0

    def migration_target(self, transport: Transport | None) -> tuple[str | None, str | None]:
        """(migration URI, listen address) of the next migration."""
        self.migrations += 1
        if transport == "unix":
            # No TCP at all: the destination QEMU listens on a unix socket in a directory its account owns.
            sockets = self.pair.directory("migrate", writable_by_daemons=True)
            return f"unix://{sockets / f'{self.migrations}.sock'}", None
        if transport == "tcp":
            # A port from the destination's migration_port range, on loopback (listen address per call).
            return "tcp://127.0.0.1", "127.0.0.1"
        return None, None

    def guest_dir(self, name: str, *, anyone: bool) -> Path:
        return self.pair.directory(f"guests/{name}", writable_by_daemons=True, anyone=anyone)


def _connect(uri: str, role: str, pid_dir: Path | None) -> Hypervisor:
    try:
        return Hypervisor(uri, pid_dir=pid_dir)
    except LibvirtUnavailable as exc:
        if role == "destination":
            raise DestinationUnreachable(f"cannot reach the destination libvirt {uri}: {exc}") from exc
        raise


@contextlib.contextmanager
def open_ends(plan: MigratePlan, user: DaemonUser | None = None) -> Iterator[Ends]:
    """Start the private daemons the plan needs, connect to both ends, check they can migrate to each other;
    on exit destroy every guest and stop the daemons by pid."""
    roles = tuple(
        role
        for role, uri in (("source", plan.source_uri), ("destination", plan.destination_uri))
        if uri is None
    )
    with DaemonPair(user, roles=roles) as pair:
        hvs: dict[str, Hypervisor] = {}
        try:
            for role, uri in (("source", plan.source_uri), ("destination", plan.destination_uri)):
                daemon = pair.daemons.get(role)
                if daemon is not None:
                    hvs[role] = _connect(daemon.spec.uri, role, daemon.spec.pid_dir)
                else:
                    hvs[role] = _connect(str(uri), role, None)
            if hvs["source"].host_uuid() == hvs["destination"].host_uuid():
                raise MigrationError(
                    f"the source ({hvs['source'].uri}) and destination ({hvs['destination'].uri}) report the "
                    "same host UUID, and libvirt refuses to migrate between them; leave --to and "
                    "--libvirt-uri out to use two private daemons with distinct host UUIDs"
                )
            files = pair.directory("files", writable_by_daemons=False)
            guests = pair.directory("guests", writable_by_daemons=True, anyone=not plan.local_pair)
            dconnuri = plan.destination_uri or pair.daemons["destination"].spec.uri
            yield Ends(hvs["source"], hvs["destination"], dconnuri, pair, files, guests)
        finally:
            for hv in hvs.values():
                hv.close()  # destroys every guest it tracks, before the daemons stop


def _stage(path: Path, directory: Path) -> Path:
    """The file at a path every QEMU can read (the cache is often under /root): a hard link, else a copy."""
    target = directory / path.name
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
            target.chmod(0o644)
    return target


def _runtimes(
    plan: MigratePlan, level: str, accel: AccelChoice, image: Path, ends: Ends
) -> tuple[DomainRuntime, DomainRuntime]:
    """The guest's identity and files on the source and on the destination."""
    profile = plan.profile
    identity = new_runtime(profile, accel=accel.accel, mode="migrate", workdir=Path("/"), share_dir=Path("/"))
    guest_dir = ends.guest_dir(identity.name, anyone=not plan.local_pair)
    base = dataclasses.replace(identity, share_dir=guest_dir)
    extra = (
        f"bench_load={level}",
        f"bench_protocol={plan.protocol}",
        f"bench_target_cpu={profile.guest_target_cpu}",
        f"bench_generator_cpu={profile.guest_generator_cpu}",
        *([f"bench_dirty_mib_s={plan.dirty_mib_s}"] if level == "dirty" else []),
    )
    source = dataclasses.replace(
        base,
        serial_log=guest_dir / "serial.source.log",
        load_log=guest_dir / "load.source.log",
        image=image,
        load_port=LOAD_PORT,
        cmdline_extra=extra,
    )
    # The same guest; only the files its serial port and load channel write to differ on the destination.
    destination = dataclasses.replace(
        source, serial_log=guest_dir / "serial.destination.log", load_log=guest_dir / "load.destination.log"
    )
    return source, destination


@dataclass
class _Tails:
    serial_source: SerialTail
    serial_destination: SerialTail
    load_source: SerialTail
    load_destination: SerialTail

    def failure(self) -> str | None:
        for tail in (self.serial_source, self.serial_destination):
            for line in tail.lines():
                if FAIL_MARKER in line.text:
                    return line.text.split(FAIL_MARKER, 1)[1].strip() or "guest init failed"
        return None

    def crash(self) -> str | None:
        """The destination kernel's first words of a crash (oops, panic), if it crashed."""
        for line in self.serial_destination.lines():
            if _CRASH.search(line.text):
                return line.text.strip()[:200]
        return None

    def last_serial(self) -> str:
        lines = [line.text for line in self.serial_source.lines() if line.text.strip()]
        return lines[-1][-200:] if lines else "<no serial output>"


# A kernel that found its memory corrupt says one of these first.
_CRASH = re.compile(r"general protection fault|Kernel panic|BUG: |Oops: |invalid opcode")


def _wait_for_load(handle: Any, tails: _Tails, timeout_s: float) -> tuple[str, str | None]:
    """('ok', None) once the workload writes its start marker, else (outcome, reason)."""
    deadline = time.monotonic() + timeout_s
    while tails.load_source.wait_for(timeline.START_MARKER, timeout_s=0.2) is None:
        failure = tails.failure()
        if failure is not None:
            return "init-failed", f"guest init failed: {failure}"
        if not handle.is_active():
            return (
                "never-ready",
                f"the guest stopped before its load started; last serial line: {tails.last_serial()!r}",
            )
        if time.monotonic() > deadline:
            last = tails.last_serial()
            return "never-ready", f"no load within {timeout_s:.0f} s; last serial line: {last!r}"
    return "ok", None


def _rel(t: float | None, zero: float) -> float | None:
    return None if t is None else round(t - zero, 4)


def _marks(
    outcome: MigrationOutcome,
    source_events: list[tuple[float, str]],
    destination_events: list[tuple[float, str]],
) -> dict[str, Any]:
    """Host times of the migration's phases, seconds since the migrateToURI3 call."""
    zero = outcome.started_t

    def event(events: list[tuple[float, str]], name: str) -> float | None:
        return next((t for t, e in events if e == name and t >= zero), None)

    iterations: list[list[float]] = []
    seen = 0
    for sample in outcome.samples:
        iteration = sample.stats.get("memory_iteration", 0)
        if iteration > seen:
            iterations.append([round(sample.t - zero, 4), iteration])
            seen = iteration
    return {
        "api_return_s": round(outcome.ended_t - zero, 4),
        "destination_started_s": _rel(event(destination_events, "started"), zero),
        "source_paused_s": _rel(event(source_events, "suspended"), zero),
        "destination_resumed_s": _rel(event(destination_events, "resumed"), zero),
        "iterations_s": iterations,  # [seconds, iteration] when the sampler first saw each iteration
    }


def _job_figures(outcome: MigrationOutcome) -> dict[str, Any]:
    stats = outcome.stats
    page = stats.get("memory_page_size", 4096)
    dirty = [s.stats.get("memory_dirty_rate", 0) for s in outcome.samples]

    def mb(value: int | None) -> float | None:
        return None if value is None else round(value / 1e6, 3)

    return {
        "total_ms": stats.get("time_elapsed"),
        "downtime_ms": stats.get("downtime"),
        "setup_ms": stats.get("setup_time"),
        "transferred_mb": mb(stats.get("memory_processed")),
        "memory_total_mb": mb(stats.get("memory_total")),
        "memory_normal_mb": mb(stats.get("memory_normal_bytes")),
        "zero_pages": stats.get("memory_constant"),
        "iterations": stats.get("memory_iteration"),
        "bandwidth_mb_s": mb(stats.get("memory_bps")),
        "dirty_rate_max_mb_s": mb(max(dirty) * page) if dirty else None,
        "dirty_rate_last_mb_s": mb(dirty[-1] * page) if dirty else None,
        "api_wall_s": round(outcome.api_wall_s, 4),
        "max_downtime_ms": outcome.max_downtime_ms,
        "job_samples": len(outcome.samples),
    }


def _series_figures(
    events: list[timeline.LoadEvent], outcome: MigrationOutcome, marks: dict[str, Any], window_s: float
) -> dict[str, Any]:
    zero = outcome.started_t
    end = outcome.ended_t
    figures: dict[str, Any] = {}
    for phase, (start, stop) in {
        "before": (zero - window_s, zero),
        "during": (zero, end),
        "after": (end, end + window_s),
    }.items():
        for key, value in timeline.latency_summary(events, start, stop).items():
            figures[f"{phase}_{key}"] = value
    pause = timeline.switchover_gap(events)
    figures["gap_ms"] = round(pause.host_s * 1000, 2) if pause else None
    interval = timeline.line_interval_s(events, zero - window_s, zero)
    figures["line_interval_ms"] = round(interval * 1000, 2) if interval is not None else None
    marks["last_source_line_s"] = _rel(pause.before.host_t, zero) if pause else None
    marks["first_destination_line_s"] = _rel(pause.after.host_t, zero) if pause else None
    paused, resumed = marks["source_paused_s"], marks["destination_resumed_s"]
    first = marks["first_destination_line_s"]

    def ms(start: float | None, end: float | None) -> float | None:
        return round((end - start) * 1000, 2) if start is not None and end is not None else None

    # The gap in two parts: the pause itself (libvirt's lifecycle events from each end), then the time the
    # resumed guest takes to write again (under TCG the new QEMU first re-translates the code it runs).
    figures["pause_events_ms"] = ms(paused, resumed)
    figures["resume_to_line_ms"] = ms(resumed, first)
    return figures


def _copy(directory: Path, out: Path, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            shutil.copyfile(directory / name, out / name)


def migrate_once(
    plan: MigratePlan,
    ends: Ends,
    guest: GuestArtifacts,
    image: Path,
    accel: AccelChoice,
    level: str,
    out: Path,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Boot, load, migrate, observe, destroy: one repeat. Returns its flat record; raw files go to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    source_rt, destination_rt = _runtimes(plan, level, accel, image, ends)
    guest_dir = source_rt.serial_log.parent
    (out / "source.xml").write_text(domain_xml(plan.profile, guest, source_rt))
    dest_xml = domain_xml(plan.profile, guest, destination_rt)
    (out / "destination.xml").write_text(dest_xml)
    name = source_rt.name
    record: dict[str, Any] = {"domain": name, "outcome": "ok", "reason": None}
    migrate_uri, listen = ends.migration_target(plan.transport)
    request = MigrationRequest(
        dconnuri=ends.dconnuri,
        migrate_uri=migrate_uri,
        listen_address=listen,
        dest_xml=dest_xml,
        max_downtime_ms=plan.max_downtime_ms,
        bandwidth_mib_s=plan.bandwidth_mib_s,
        timeout_s=plan.timeout_s,
    )
    outcome: MigrationOutcome | None = None
    created = time.monotonic()
    assert source_rt.load_log is not None and destination_rt.load_log is not None
    tails = _Tails(
        SerialTail(source_rt.serial_log),
        SerialTail(destination_rt.serial_log),
        SerialTail(source_rt.load_log),
        SerialTail(destination_rt.load_log),
    )
    with tails.serial_source, tails.serial_destination, tails.load_source, tails.load_destination:
        try:
            handle = ends.source.start((out / "source.xml").read_text(), name, autodestroy=False)
            state, reason = _wait_for_load(handle, tails, plan.profile.boot_timeout_s)
            record["load_start_s"] = round(time.monotonic() - created, 3)
            if state != "ok":
                record.update(outcome=state, reason=reason)
                return record
            if handle.wait_stopped(plan.window_s):
                why = tails.failure() or tails.last_serial()
                record.update(outcome="failed", reason=f"the guest stopped before the migration: {why}")
                return record
            cpu_before = cpu_times()
            outcome = migrate(ends.source, handle, ends.destination, request, log=log)
            record.update(host_cpu_share(cpu_before, cpu_times()))
            if outcome.completed and outcome.destination is not None:
                # The guest runs on the destination now: keep it under observation for the window.
                if outcome.destination.wait_stopped(plan.window_s):
                    record.update(outcome="crashed", reason=_crash_reason(tails, outcome))
            elif outcome.completed:
                record.update(outcome="crashed", reason=_crash_reason(tails, outcome))
            elif outcome.aborted == "timeout":
                record.update(outcome="timeout", reason=_timeout_reason(outcome, plan))
            else:
                record.update(
                    outcome="failed",
                    reason=f"the migration failed: {outcome.error}; the guest was left on: {outcome.side}",
                )
            record["guest_side"] = outcome.side
            record["source_events"] = [[round(t - outcome.started_t, 4), e] for t, e in handle.events]
            dest_events = outcome.arriving.events if outcome.arriving else []
            record["destination_events"] = [[round(t - outcome.started_t, 4), e] for t, e in dest_events]
            record["marks"] = _marks(outcome, handle.events, dest_events)
        finally:
            for hv in (ends.source, ends.destination):
                hv.destroy_named(name)
            record["left_running"] = [hv.uri for hv in (ends.source, ends.destination) if hv.is_running(name)]
            tails.load_source.stop()
            tails.load_destination.stop()
            tails.serial_source.stop()
            tails.serial_destination.stop()
            _copy(
                guest_dir,
                out,
                ["serial.source.log", "serial.destination.log", "load.source.log", "load.destination.log"],
            )
    assert outcome is not None
    record.update(_job_figures(outcome))
    _write_samples(out / "jobstats.jsonl", outcome)
    source_events, bad_source = timeline.parse_lines(tails.load_source.lines(), "source")
    destination_events, bad_destination = timeline.parse_lines(tails.load_destination.lines(), "destination")
    events, lost = timeline.merge(source_events, destination_events)
    timeline.write_csv(out / "timeline.csv", events, outcome.started_t)
    record.update(_series_figures(events, outcome, record["marks"], plan.window_s))
    record.update(lost_lines=lost, malformed_lines=bad_source + bad_destination, load_lines=len(events))
    return record


def _crash_reason(tails: _Tails, outcome: MigrationOutcome) -> str:
    time.sleep(0.5)  # the kernel's last lines reach the file after the guest is gone
    events = outcome.arriving.events if outcome.arriving else []
    resumed = next((t for t, e in events if e == "resumed"), None)
    stopped = next((t for t, e in events if e == "stopped"), None)
    after = f" {stopped - resumed:.1f} s after it resumed there" if resumed and stopped else ""
    return (
        f"the migration completed, but the guest stopped on the destination{after}: "
        f"{tails.crash() or tails.failure() or 'no crash message on its console'}"
    )


def _timeout_reason(outcome: MigrationOutcome, plan: MigratePlan) -> str:
    last = outcome.samples[-1].stats if outcome.samples else {}
    page = last.get("memory_page_size", 4096)
    return (
        f"the migration did not finish within --timeout {plan.timeout_s:g} s and was aborted (iteration "
        f"{last.get('memory_iteration', '?')}, {last.get('memory_remaining', 0) / 1e6:.1f} MB still to send, "
        f"dirty rate {last.get('memory_dirty_rate', 0) * page / 1e6:.1f} MB/s, sending "
        f"{last.get('memory_bps', 0) / 1e6:.1f} MB/s, max downtime {outcome.max_downtime_ms} ms); the guest "
        f"was left on: {outcome.side}. Raise --timeout or --max-downtime, or lower the load"
    )


def _write_samples(path: Path, outcome: MigrationOutcome) -> None:
    with path.open("w") as handle:
        for sample in outcome.samples:
            handle.write(json.dumps({"t_s": round(sample.t - outcome.started_t, 4), **sample.stats}) + "\n")


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
            guest, kernel=_stage(guest.kernel, ends.files_dir), initrd=_stage(guest.initrd, ends.files_dir)
        )
        image_path = _stage(image.path, ends.files_dir)
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
