"""One repeat of `bench vm migrate`: boot on the source, await the load, migrate, watch, destroy."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.vm.accel import AccelChoice
from bench.vm.domain_xml import DomainRuntime, domain_xml, new_runtime
from bench.vm.guest import GuestArtifacts
from bench.vm.launch import cpu_times, host_cpu_share
from bench.vm.migrate import timeline
from bench.vm.migrate._load import LOAD_PORT
from bench.vm.migrate.ends import Ends
from bench.vm.migrate.live import MigrationOutcome, MigrationRequest, migrate
from bench.vm.migrate.plan import MigratePlan
from bench.vm.serial import FAIL_MARKER, SerialTail

__all__ = ["migrate_once"]


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
