"""The run loop: the matrix into a run directory, then every cell (interleaved, pinned, steal-checked).

Results layout: see bench.rundir. Every cell runs as its own process (`python -m bench.run._cell`) on the
host, or inside a guest for VM profiles (bench.run.guest_cells); the runner only moves finished attempt
directories into place and appends their outcome to the index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import RunDirectoryError, UsageError
from bench.options import TargetSpec
from bench.paths import REPO
from bench.rawfiles import append_line, fsync_dir, write_json
from bench.run.plan import Arm, CellSpec, MeasureSettings, expand_plan
from bench.run.reruns import decide
from bench.rundir import (
    GUESTS_DIR,
    INDEX,
    MANIFEST,
    PLAN,
    CellOutcome,
    attempt_dir,
    final_attempts,
    read_cell_json,
    read_index,
)
from targets.lifetime import child_env

__all__ = ["Progress", "Run", "RunOptions", "cell_timeout"]

Progress = Callable[[str, CellOutcome | None], None]


@dataclass(frozen=True)
class RunOptions:
    """What `bench run` was asked to do (validated by `Run.create`)."""

    protocols: list[str]
    clients: list[str] | None
    scenarios: list[str]
    profiles: list[str]
    repeats: int
    vm_repeats: int | None
    duration_s: float | None
    quick: bool
    seed: int | None
    steal_threshold_pct: float
    max_reruns: int
    rerun_budget: float
    locust_workers: int
    request_timeout_s: float
    libvirt_uri: str | None
    impls: tuple[str, ...] = ("python",)  # implementations started by the cells (targets.implementations)
    external: tuple[TargetSpec, ...] = ()  # running targets the harness did not start (--target)


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def _placement(profile: str) -> tuple[int | None, int | None]:
    """(target CPU, generator CPU): inside a guest as its profile says, on the host the usual placement."""
    if profile != "local":
        from bench.vm import find_profile

        vm = find_profile(profile)
        return vm.guest_target_cpu, vm.guest_generator_cpu
    from bench.load.placement import choose_placement

    placement = choose_placement()
    return placement.target_cpu, placement.generator_cpu


# What the harness cannot do for a target it did not start (recorded per arm, shown by the report).
_UNCONTROLLED = [
    "not started by the harness: no CPU pinning, no CPU time per window (server CPU is not reported)",
    "not restarted between cells: the state one cell leaves (added books, users, loans) carries over",
    "the dataset is the target's own (the scenarios expect the seeded `small` dataset)",
]


def _arms(clients: list[str], options: RunOptions, protocols: dict[str, str]) -> list[Arm]:
    """The Python implementation for every client, each other --impls for the clients of protocols it
    serves, and each --target with its protocol's default client."""
    from bench.clients import DEFAULT_CLIENT
    from targets.implementations import IMPLEMENTATIONS

    arms = [Arm(client, protocols[client]) for client in clients]
    for impl in options.impls:
        if impl == "python":
            continue
        # An implementation without a client of its protocols in this run has no arm (the plan shows it).
        arms += [Arm(c, protocols[c], impl) for c in clients if protocols[c] in IMPLEMENTATIONS[impl]]
    for target in options.external:
        arms.append(Arm(DEFAULT_CLIENT[target.protocol], target.protocol, target.name, target.address))
    labels = [arm.label for arm in arms]
    if len(set(labels)) != len(labels):
        raise UsageError(f"two arms share a name: {', '.join(labels)}; name each --target differently")
    return arms


def _verify_arms(arms: list[Arm], timeout_s: float) -> dict[str, str]:
    """Verified first: another implementation must pass `bench verify` (a fresh instance, started here)
    before it is measured; an external target, which cannot be restarted, must pass the protocol surface
    checks and serve the seeded dataset's first book. Raises UsageError with the failures."""
    from bench.load.processes import start_target
    from bench.verify.cases import CLOCK, DATASET, SEED
    from bench.verify.suite import verify_target
    from bench.verify.surface import probe_target, surface_checks

    checks: dict[str, str] = {}
    for arm in arms:
        if arm.impl == "python":
            continue
        if arm.address:
            report = probe_target(
                arm.label, arm.protocol, arm.address, client_kind=arm.client, timeout_s=timeout_s
            )
        else:
            target = start_target(arm.protocol, impl=arm.impl, dataset=DATASET, clock=CLOCK, seed=SEED)
            try:
                report = verify_target(
                    arm.label, arm.protocol, target.address, client_kind=arm.client, surface=surface_checks
                )
            finally:
                target.stop()
        if report.failed:
            failures = "; ".join(f"{r.name}: {r.reason}" for r in report.results if not r.passed)
            raise UsageError(f"{arm.label} fails verification ({report.failed} failed): {failures[:800]}")
        kind = "surface checks and dataset probe" if arm.address else "bench verify"
        checks[arm.label] = f"{kind}: {report.passed} of {len(report.results)} passed"
    return checks


def _choose(option: str, values: list[str], allowed: Any) -> None:
    for value in values:
        if value not in allowed:
            raise UsageError(f"{option} {value!r}: choose from {', '.join(allowed)}")


class Run:
    """One run directory and the loop that fills it."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any], plan: list[CellSpec]) -> None:
        self.dir = run_dir
        self.manifest = manifest
        self.plan = plan
        self.options = manifest["options"]
        self.current_cell: subprocess.Popen[bytes] | None = None  # ended on Ctrl-C

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    # ---- creation / loading -----------------------------------------------------------------------------
    @classmethod
    def create(cls, options: RunOptions, results_dir: Path, *, dry_run: bool = False) -> Run:
        from bench.clients import CLIENT_KINDS, DEFAULT_CLIENT, protocol_of
        from bench.load.scenarios import load_scenarios
        from bench.run.manifest import collect_manifest

        _choose("--protocols", options.protocols, DEFAULT_CLIENT)
        clients = options.clients or [DEFAULT_CLIENT[p] for p in options.protocols]
        _choose("--clients", clients, CLIENT_KINDS)
        _choose("--scenarios", options.scenarios, load_scenarios())
        if options.repeats < 1:
            raise UsageError("--repeats must be at least 1")
        if options.duration_s is not None and options.duration_s <= 0:
            raise UsageError("--duration must be positive")
        profiles = list(options.profiles)
        if any(p != "local" for p in profiles) and "local" not in profiles:
            profiles.insert(0, "local")  # guests are always reported next to the host they run on
        placement = {p: _placement(p) for p in profiles}
        host_settings = (
            MeasureSettings.with_duration(options.duration_s)
            if options.duration_s
            else MeasureSettings.quick()
        )
        host_settings = MeasureSettings(
            **{
                **host_settings.__dict__,
                "locust_workers": options.locust_workers,
                "request_timeout_s": options.request_timeout_s,
            }
        )
        quick_guests = options.quick or options.duration_s is None
        settings = {p: host_settings if p == "local" or not quick_guests else MeasureSettings.guest_quick()
                    for p in profiles}  # fmt: skip
        vm_repeats = (
            options.vm_repeats if options.vm_repeats is not None else (1 if quick_guests else options.repeats)
        )
        repeats = {p: options.repeats if p == "local" else vm_repeats for p in profiles}
        seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big") % 1_000_000
        arms = _arms(clients, options, {c: protocol_of(c) for c in clients})
        plan = expand_plan(
            arms=arms,
            scenarios=options.scenarios,
            profiles=profiles,
            repeats=repeats,
            seed=seed,
            settings=settings,
            placement=placement,
        )
        run_id = _new_run_id()
        checks = {} if dry_run else _verify_arms(arms, options.request_timeout_s)
        recorded = {
            "clients": [arm.label for arm in arms],
            "implementations": {
                arm.label: {
                    "impl": arm.impl,
                    "address": arm.address or None,
                    "verified": checks.get(arm.label, "python: the reference implementation"),
                    "uncontrolled": _UNCONTROLLED if arm.address else [],
                }
                for arm in arms
            },
            "scenarios": options.scenarios,
            "profiles": profiles,
            "repeats": options.repeats,
            "seed": seed,
            "steal_threshold_pct": options.steal_threshold_pct,
            "max_reruns": options.max_reruns,
            "rerun_budget": max(0, round(options.rerun_budget * len(plan))),
            "settings": {p: v.__dict__ for p, v in settings.items()},
            "repeats_by_profile": repeats,
            "placement": {p: {"target_cpu": t, "generator_cpu": g} for p, (t, g) in placement.items()},
            "libvirt_uri": options.libvirt_uri,
        }
        manifest = collect_manifest(run_id=run_id, options=recorded, started_at=time.time(), status="running")
        run_dir = results_dir / run_id
        if not dry_run:
            _check_space(results_dir, len(plan))
            try:
                run_dir.mkdir(parents=True)
                write_json(run_dir / PLAN, [c.to_json() for c in plan])
                write_json(run_dir / MANIFEST, manifest)
            except OSError as exc:
                raise RunDirectoryError(f"cannot create {run_dir}: {exc} (use --results-dir)") from exc
        return cls(run_dir, manifest, plan)

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        try:
            manifest = json.loads((run_dir / MANIFEST).read_text())
            plan = [CellSpec.from_json(c) for c in json.loads((run_dir / PLAN).read_text())]
        except FileNotFoundError as exc:
            raise RunDirectoryError(f"{run_dir} is not a run directory ({exc.filename} missing)") from exc
        return cls(run_dir, manifest, plan)

    def finished_cells(self) -> dict[str, dict[str, Any]]:
        """cell_id -> its final index line (a cell is finished once its final attempt is indexed)."""
        return final_attempts(read_index(self.dir))

    @contextlib.contextmanager
    def locked(self) -> Any:
        """One runner per run directory: a resume while the first runner still lives would measure twice."""
        fd = os.open(self.dir / "run.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirectoryError(
                    f"{self.dir.name} is being run by another process (run.lock is held)"
                ) from None
            yield self
        finally:
            os.close(fd)

    # ---- execution -------------------------------------------------------------------------------------
    def execute(self, progress: Progress) -> list[CellOutcome]:
        done = self.finished_cells()
        pending = [spec for spec in self.plan if spec.cell_id not in done]
        outcomes: list[CellOutcome] = []
        index = 0
        while index < len(pending):
            spec = pending[index]
            if spec.profile != "local":
                # A guest boots once per block of consecutive cells of its profile (the plan groups them).
                block = [spec]
                while (
                    index + len(block) < len(pending) and pending[index + len(block)].profile == spec.profile
                ):
                    block.append(pending[index + len(block)])
                progress(f"{spec.profile}: guest with {len(block)} cells", None)
                for outcome in self._run_guest_block(block):
                    outcomes.append(outcome)
                    progress(outcome.cell_id, outcome)
                index += len(block)
                continue
            progress(spec.cell_id, None)
            outcome = self._run_with_reruns(spec)
            outcomes.append(outcome)
            progress(spec.cell_id, outcome)
            index += 1
        return outcomes

    def _next_attempt(self, cell_id: str) -> int:
        cell_dir = self.dir / "cells" / cell_id
        cell_dir.mkdir(parents=True, exist_ok=True)
        return len([p for p in cell_dir.glob("attempt-*") if p.is_dir()]) + 1

    def _run_guest_block(self, block: list[CellSpec]) -> list[CellOutcome]:
        """Cells of a VM profile, measured inside one guest; steal re-runs don't apply (the guest is emulated
        or shares the host, and its steal is reported by the guest record instead)."""
        from bench.run.guest_cells import run_guest_block

        profile = block[0].profile
        guests = self.dir / GUESTS_DIR
        guests.mkdir(exist_ok=True)
        number = len(list(guests.glob(f"{profile}-*.json"))) + 1
        batch = self.dir / f".guest-{profile}-{number}"
        started = time.monotonic()
        result = run_guest_block(block, batch, uri=self.options.get("libvirt_uri"))
        record = {"cells": [s.cell_id for s in block], "firmware": result.firmware, **result.guest}
        write_json(guests / f"{profile}-{number}.json", record)
        if result.accel:
            self.manifest.setdefault("accel", {})[profile] = result.accel
            write_json(self.dir / MANIFEST, self.manifest)
        per_cell = (time.monotonic() - started) / len(block)
        outcomes = []
        for spec in block:
            attempt = self._next_attempt(spec.cell_id)
            final_dir = attempt_dir(self.dir, spec.cell_id, attempt)
            source = result.outputs.get(spec.cell_id)
            if source is not None:
                shutil.move(str(source), final_dir)
            else:
                final_dir.mkdir()
                write_json(
                    final_dir / "cell.json",
                    {"status": "failed", "reason": result.reasons.get(spec.cell_id), "spec": spec.to_json()},
                )
            fsync_dir(final_dir.parent)
            cell = read_cell_json(final_dir) or {}
            outcome = CellOutcome.from_cell(spec.cell_id, attempt, cell, wall_s=per_cell)
            append_line(self.dir / INDEX, outcome.record())
            outcomes.append(outcome)
        if (batch / "vm-guest").is_dir():
            # Domain XML, serial log and QEMU log of this guest stay beside its results.
            shutil.move(str(batch / "vm-guest"), guests / f"{profile}-{number}")
        shutil.rmtree(batch, ignore_errors=True)
        return outcomes

    def _run_with_reruns(self, spec: CellSpec) -> CellOutcome:
        threshold = float(self.options["steal_threshold_pct"])
        first = self._next_attempt(spec.cell_id)
        attempt = first
        while True:
            outcome = self._attempt(spec, attempt)
            noisy = outcome.status == "ok" and outcome.max_steal_pct > threshold
            decision = decide(
                noisy=noisy,
                reruns_done=attempt - first,
                max_reruns=int(self.options["max_reruns"]),
                budget_left=self._reruns_left(),
            )
            outcome.final, outcome.flagged = decision.final, decision.flagged
            append_line(self.dir / INDEX, outcome.record())
            if outcome.final:
                return outcome
            attempt += 1

    def _reruns_left(self) -> int:
        """Steal re-runs still allowed in this run (counted from the index, so a resume keeps the budget)."""
        budget = int(self.options.get("rerun_budget", len(self.plan)))
        return budget - sum(1 for record in read_index(self.dir) if not record.get("final", True))

    def _attempt(self, spec: CellSpec, attempt: int) -> CellOutcome:
        final_dir = attempt_dir(self.dir, spec.cell_id, attempt)
        partial = final_dir.with_name(f".attempt-{attempt}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        spec_path = partial / "spec.json"
        spec_path.write_text(spec.dumps())
        started = time.monotonic()
        status, reason = self._run_local_cell(spec_path, partial, cell_timeout(spec))
        cell = read_cell_json(partial)
        if cell is None:
            cell = {
                "status": "failed",
                "reason": reason or "the cell wrote no cell.json",
                "spec": spec.to_json(),
            }
            write_json(partial / "cell.json", cell)
        elif status == "failed" and cell.get("status") == "ok":
            cell["status"], cell["reason"] = "failed", reason
            write_json(partial / "cell.json", cell)
        os.replace(partial, final_dir)
        fsync_dir(final_dir.parent)
        return CellOutcome.from_cell(spec.cell_id, attempt, cell, wall_s=time.monotonic() - started)

    def _run_local_cell(self, spec_path: Path, out: Path, timeout_s: float) -> tuple[str, str | None]:
        """Run `python -m bench.run._cell` in its own session, so a hang or Ctrl-C ends its process group."""
        argv = [sys.executable, "-m", "bench.run._cell", "--spec", str(spec_path), "--out", str(out)]
        with open(out / "cell.log", "ab") as log:
            # Own session: a hang or Ctrl-C ends the whole group. Death signal: if this runner is killed
            # outright, the cell (and, through its own death signal, its target) goes too.
            process = subprocess.Popen(
                argv, stdout=log, stderr=log, cwd=REPO, start_new_session=True, env=child_env()
            )
        self.current_cell = process
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(process)
            return "failed", f"timeout: the cell did not finish within {timeout_s:.0f} s"
        finally:
            self.current_cell = None
        if process.returncode not in (0, 1):
            return "failed", f"cell process exited with code {process.returncode} (see cell.log)"
        return ("ok" if process.returncode == 0 else "failed"), None

    def interrupt(self) -> None:
        """End the cell in flight (Ctrl-C, SIGTERM): only processes this run started."""
        if self.current_cell is not None:
            kill_group(self.current_cell)

    def finish(self, status: str) -> None:
        self.manifest["status"] = status
        self.manifest["ended_at"] = time.time()
        write_json(self.dir / MANIFEST, self.manifest)


# Raw files of a quick cell take ~0.5 MB (gzipped measurements dominate); leave room for tables and report.
_BYTES_PER_CELL = 2 * 1024 * 1024
_BYTES_FIXED = 32 * 1024 * 1024


def _check_space(results_dir: Path, cells: int) -> None:
    """Refuse to start a run that cannot be written: better now than after an hour of measuring."""
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirectoryError(f"cannot create results in {results_dir}: {exc} (use --results-dir)") from exc
    free = shutil.disk_usage(results_dir).free
    needed = _BYTES_FIXED + cells * _BYTES_PER_CELL
    if free < needed:
        raise RunDirectoryError(
            f"{results_dir} has {free // 2**20} MiB free, this run needs about {needed // 2**20} MiB "
            f"({cells} cells); free some space or use --results-dir"
        )


def cell_timeout(spec: CellSpec) -> float:
    s = spec.settings
    expected = s.warmup_s + len(s.closed_users) * (s.level_s + 0.5) + len(s.open_fractions) * (s.open_s + 0.5)
    return 60.0 + 3 * expected


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM then SIGKILL to the cell's own process group (only processes this run started)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
