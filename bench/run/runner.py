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
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import RunDirectoryError, UsageError
from bench.options import TargetSpec
from bench.paths import REPO
from bench.rawfiles import append_line, fsync_dir, write_json
from bench.run.plan import Arm, CellSpec, MeasureSettings, expand_plan, pilot_id
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
from bench.thresholds import BUSY_HOST_PCT
from targets.lifetime import child_env

__all__ = ["Progress", "Run", "RunOptions", "cell_timeout"]

Progress = Callable[[str, CellOutcome | None], None]


@dataclass(frozen=True)
class RunOptions:
    """What `bench run` was asked to do (validated by `Run.create`)."""

    protocols: list[str]
    clients: list[str] | None
    engines: list[str]  # native, python
    native_scenarios: list[str]
    python_scenarios: list[str]
    profiles: list[str]
    repeats: int  # native cells and floors, per arm and scenario
    python_repeats: int
    vm_repeats: int | None
    duration_s: float | None
    quick: bool
    thorough: bool
    seed: int | None
    steal_threshold_pct: float
    max_reruns: int
    rerun_budget: float
    locust_workers: int
    request_timeout_s: float
    libvirt_uri: str | None
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    aa_arm: str | None = None  # the native arm scheduled twice (A/A); None: the first protocol's
    impls: tuple[str, ...] = ("python",)  # implementations the cells start (targets.implementations)
    external: tuple[TargetSpec, ...] = ()  # running targets the harness did not start (--target)
    topology: str = "single"  # single: one process per target; split: the gateway over two services
    backend_protocols: tuple[str, ...] = ("grpc", "rest", "soap")  # split: the arms
    inject_delay_us: float = 0.0  # every target the run starts busy-waits this long per call (demos)
    generator_cpus: str = "auto"  # the generator's CPUs on the host ("0,2,3"); tools run a thread per CPU


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def _placement(profile: str, generator_cpus: str = "auto") -> tuple[int | None, int | None, tuple[int, ...]]:
    """(target CPU, generator CPU, every generator CPU): inside a guest as its profile says, on the host the
    usual placement (`--generator-cpus`: the generator's CPUs; the target keeps the last other one)."""
    if profile != "local":
        from bench.vm import find_profile

        vm = find_profile(profile)
        return vm.guest_target_cpu, vm.guest_generator_cpu, ()
    from bench.load.placement import choose_placement

    try:
        placement = choose_placement(generator=generator_cpus)
    except ValueError as exc:
        raise UsageError(f"--generator-cpus {generator_cpus}: {exc}") from None
    return placement.target_cpu, placement.generator_cpu, placement.generator_cpus


def _host_settings(options: RunOptions) -> MeasureSettings:
    """The host's cell settings: --thorough, --duration or the quick default; the default run's python
    cells measure the client experience only (no open model: that is the native engine's)."""
    if options.thorough:
        base = MeasureSettings.thorough()
    elif options.duration_s:
        base = MeasureSettings.with_duration(options.duration_s)
    else:
        base = MeasureSettings.quick()
    changes: dict[str, Any] = {
        "locust_workers": options.locust_workers,
        "remote_workers": options.remote_workers,
        "master_bind": options.master_bind,
        "master_port": options.master_port,
        "request_timeout_s": options.request_timeout_s,
    }
    if "native" in options.engines and not options.thorough:
        # The client experience at one user (its verdicts); the ramp and the open model are --thorough's.
        changes.update(closed_users=(1,), open_fractions=(), wire_calls=3)
    return replace(base, **changes)


def _arms(options: RunOptions, clients: list[str], protocol_of: Any) -> list[Arm]:
    """Native arms (one per protocol and implementation, plus the A/A twin), python arms (one per client
    kind and implementation), and each --target with the native engine and its protocol's default client."""
    from bench.clients import DEFAULT_CLIENT
    from targets.implementations import IMPLEMENTATIONS

    if options.topology == "split":
        return _split_arms(options, clients, protocol_of)
    others = [impl for impl in options.impls if impl != "python"]
    arms: list[Arm] = []
    if "native" in options.engines:
        arms += [Arm(p, "native", p, "") for p in options.protocols]
        arms += [Arm(f"{p}@{impl}", "native", p, "", impl=impl)
                 for impl in others for p in options.protocols if p in IMPLEMENTATIONS[impl]]  # fmt: skip
        arms += [Arm(f"{t.protocol}@{t.name}", "native", t.protocol, "", impl=t.name, address=t.address)
                 for t in options.external]  # fmt: skip
        twin = options.aa_arm or options.protocols[0]
        if twin != "none":
            if twin not in options.protocols:
                raise UsageError(
                    f"--aa-arm {twin!r}: choose one of --protocols ({', '.join(options.protocols)})"
                )
            arms.append(Arm(f"{twin}-aa", "native", twin, "", twin_of=twin))
    if "python" in options.engines:
        arms += [Arm(c, "python", protocol_of(c), c) for c in clients]
        arms += [Arm(f"{c}@{impl}", "python", protocol_of(c), c, impl=impl)
                 for impl in others for c in clients if protocol_of(c) in IMPLEMENTATIONS[impl]]  # fmt: skip
        for t in options.external:
            client = DEFAULT_CLIENT[t.protocol]
            name = f"{client}@{t.name}"
            arms.append(Arm(name, "python", t.protocol, client, impl=t.name, address=t.address))
    for engine in ("native", "python"):
        names = [arm.name for arm in arms if arm.engine == engine]
        if len(set(names)) != len(names):
            raise UsageError(f"two arms share a name: {', '.join(names)}; name each --target differently")
    return arms


def _split_arms(options: RunOptions, clients: list[str], protocol_of: Any) -> list[Arm]:
    """The split topology: one arm per backend protocol, all driven through the gateway's public REST API
    (the native engine's wrk and gload; the python engine's REST clients), plus the A/A twin."""
    backends = list(options.backend_protocols)
    arms = []
    if "native" in options.engines:
        arms += [Arm(f"gw-{b}", "native", "rest", "", backend=b) for b in backends]
        twin = options.aa_arm or backends[0]
        if twin != "none":
            if twin not in backends:
                raise UsageError(
                    f"--aa-arm {twin!r}: choose one of --backend-protocols ({', '.join(backends)})"
                )
            arms.append(Arm(f"gw-{twin}-aa", "native", "rest", "", twin_of=f"gw-{twin}", backend=twin))
    if "python" in options.engines:
        rest_clients = [c for c in clients if protocol_of(c) == "rest"] or ["rest-lean"]
        for client in rest_clients:
            suffix = "" if len(rest_clients) == 1 else f"@{client}"
            arms += [Arm(f"gw-{b}{suffix}", "python", "rest", client, backend=b) for b in backends]
    return arms


# What the harness cannot do for a target it did not start (recorded per arm, shown by the report).
_UNCONTROLLED = [
    "not started by the harness: no CPU pinning, no CPU time per window (no server CPU, no capacity verdict)",
    "no server-side counters: the windows are not checked against what the server served",
    "not restarted between cells: the state one cell leaves (added books, users, loans) carries over",
    "the dataset is the target's own (the scenarios expect the seeded `small` dataset)",
]


def _verify_arms(arms: list[Arm], timeout_s: float) -> dict[str, str]:
    """Verified first: another implementation must pass `bench verify` (a fresh instance, started here)
    before it is measured; an external target, which cannot be restarted, must pass the protocol surface
    checks and serve the seeded dataset's first book. Raises UsageError with the failures."""
    from bench.load.processes import start_target
    from bench.verify.cases import CLOCK, DATASET, SEED
    from bench.verify.suite import verify_target
    from bench.verify.surface import probe_target, surface_checks

    checks: dict[str, str] = {}
    done: set[tuple[str, str, str]] = set()
    for arm in arms:
        if arm.impl == "python" or (arm.protocol, arm.impl, arm.address) in done:
            continue
        done.add((arm.protocol, arm.impl, arm.address))
        client = arm.client or _default_client(arm.protocol)
        if arm.address:
            report = probe_target(
                arm.name, arm.protocol, arm.address, client_kind=client, timeout_s=timeout_s
            )
        else:
            target = start_target(arm.protocol, impl=arm.impl, dataset=DATASET, clock=CLOCK, seed=SEED)
            try:
                report = verify_target(
                    arm.name, arm.protocol, target.address, client_kind=client, surface=surface_checks
                )
            finally:
                target.stop()
        if report.failed:
            failures = "; ".join(f"{r.name}: {r.reason}" for r in report.results if not r.passed)
            raise UsageError(f"{arm.name} fails verification ({report.failed} failed): {failures[:800]}")
        kind = "surface checks and dataset probe" if arm.address else "bench verify"
        checks[f"{arm.protocol}@{arm.impl}"] = f"{kind}: {report.passed} of {len(report.results)} passed"
    return checks


def _default_client(protocol: str) -> str:
    from bench.clients import DEFAULT_CLIENT

    return DEFAULT_CLIENT[protocol]


def _implementations(arms: list[Arm], checks: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The manifest's record per arm: who served it, how it was verified, what the harness did not control."""
    return {
        f"{arm.engine}:{arm.name}": {
            "impl": arm.impl,
            "address": arm.address or None,
            "verified": checks.get(f"{arm.protocol}@{arm.impl}", "python: the reference implementation"),
            "uncontrolled": _UNCONTROLLED if arm.address else [],
        }
        for arm in arms
    }


def _native_tool_versions() -> dict[str, str]:
    """Versions of the native tools, for the manifest ("missing" when one is not installed)."""
    from bench.errors import MissingTool
    from bench.load.native.build import ensure_gload
    from bench.load.native.tools import tool_version

    versions = {}
    for tool in ("wrk", "h2load"):
        try:
            versions[tool] = tool_version(tool)
        except OSError:
            versions[tool] = "missing"
    try:
        versions["gload"] = ensure_gload().name
    except MissingTool as exc:
        versions["gload"] = f"missing: {exc}"
    return versions


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
        from bench.load.engine import ENGINES
        from bench.load.native.requests import NativeUnsupported, native_operations
        from bench.load.scenarios import load_scenarios
        from bench.run.manifest import collect_manifest

        _choose("--protocols", options.protocols, DEFAULT_CLIENT)
        _choose("--topology", [options.topology], ("single", "split"))
        _choose("--backend-protocols", list(options.backend_protocols), DEFAULT_CLIENT)
        if options.topology == "split":
            if not options.backend_protocols:
                raise UsageError("--backend-protocols: give at least one of grpc, rest, soap")
            if options.external or [i for i in options.impls if i != "python"]:
                raise UsageError("--topology split measures the Python services behind the gateway: "
                                 "--impls and --target do not apply")  # fmt: skip
            if any(p != "local" for p in options.profiles):
                raise UsageError("--topology split runs on the host only (--profiles local)")
        _choose("--engine", options.engines, ENGINES)
        clients = options.clients or [DEFAULT_CLIENT[p] for p in options.protocols]
        _choose("--clients", clients, CLIENT_KINDS)
        scenarios = load_scenarios()
        _choose("--scenarios", [*options.native_scenarios, *options.python_scenarios], scenarios)
        for name in options.native_scenarios if "native" in options.engines else ():
            try:
                native_operations(scenarios[name])
            except NativeUnsupported as exc:
                raise UsageError(f"--engine native: {exc}") from None
        for option, value in (("--repeats", options.repeats), ("--python-repeats", options.python_repeats)):
            if value < 1:
                raise UsageError(f"{option} must be at least 1")
        if options.duration_s is not None and options.duration_s <= 0:
            raise UsageError("--duration must be positive")
        profiles = list(options.profiles)
        if any(p != "local" for p in profiles) and "local" not in profiles:
            profiles.insert(0, "local")  # guests are always reported next to the host they run on
        placements = {p: _placement(p, options.generator_cpus) for p in profiles}
        placement = {p: (t, g) for p, (t, g, _) in placements.items()}
        generator_cpus = placements["local"][2] if "local" in placements else ()
        host_settings = _host_settings(options)
        quick_guests = options.quick or options.duration_s is None
        settings = {p: host_settings if p == "local" or not quick_guests else MeasureSettings.guest_quick()
                    for p in profiles}  # fmt: skip
        vm_repeats = (
            options.vm_repeats if options.vm_repeats is not None else (1 if quick_guests else options.repeats)
        )
        arms = _arms(options, clients, protocol_of)
        engine_scenarios = {
            "native": options.native_scenarios if "native" in options.engines else [],
            "python": options.python_scenarios if "python" in options.engines else [],
        }
        repeats: dict[tuple[str, str], int] = {}
        for profile in profiles:
            local = profile == "local"
            repeats[("native", profile)] = options.repeats if local else 0
            repeats[("python", profile)] = options.python_repeats if local else vm_repeats
            # Floors are context (the smallest possible latency, the tools' ceilings), not a verdict: once.
            floors = options.repeats if options.thorough else 1
            repeats[("floor", profile)] = floors if local else vm_repeats
        seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big") % 1_000_000
        plan = expand_plan(
            arms=arms,
            scenarios=engine_scenarios,
            profiles=profiles,
            repeats=repeats,
            seed=seed,
            settings=settings,
            placement=placement,
        )
        if generator_cpus:
            plan = [replace(c, generator_cpus=generator_cpus) if c.profile == "local" else c for c in plan]
        if options.inject_delay_us:
            if options.inject_delay_us < 0 or options.topology == "split":
                raise UsageError(
                    "--inject-delay: a positive number of microseconds, for single-process targets"
                )
            delay = options.inject_delay_us
            plan = [c if c.kind == "floor" or c.address else replace(c, inject_delay_us=delay) for c in plan]
        run_id = _new_run_id()
        recorded = {
            "protocols": options.protocols,
            "clients": clients,
            "engines": options.engines,
            "arms": [asdict(arm) for arm in arms],
            "scenarios": sorted({*engine_scenarios["native"], *engine_scenarios["python"]}),
            "engine_scenarios": engine_scenarios,
            "profiles": profiles,
            "repeats": options.repeats,
            "python_repeats": options.python_repeats,
            "seed": seed,
            "inject_delay_us": options.inject_delay_us,
            "steal_threshold_pct": options.steal_threshold_pct,
            "max_reruns": options.max_reruns,
            "rerun_budget": max(0, round(options.rerun_budget * len(plan))),
            "settings": {p: asdict(v) for p, v in settings.items()},
            "repeats_by_profile": {p: options.repeats if p == "local" else vm_repeats for p in profiles},
            "placement": {
                p: {
                    "target_cpu": t,
                    "generator_cpu": g,
                    "generator_cpus": list(gs or ([] if g is None else [g])),
                }
                for p, (t, g, gs) in placements.items()
            },
            "topology": {
                "kind": options.topology,
                **(
                    {
                        "backend_protocols": list(options.backend_protocols),
                        # On 2 CPUs the gateway and both services share the target CPU (each cell's
                        # processes are pinned there); the generator keeps its own.
                        "processes": ["gateway", "books", "circulation"],
                    }
                    if options.topology == "split"
                    else {}
                ),
            },
            "libvirt_uri": options.libvirt_uri,
        }
        checks = {} if dry_run else _verify_arms(arms, options.request_timeout_s)
        recorded["implementations"] = _implementations(arms, checks)
        recorded["impls"] = list(options.impls)
        manifest = collect_manifest(run_id=run_id, options=recorded, started_at=time.time(), status="running")
        if "native" in options.engines and engine_scenarios["native"]:
            manifest["native_tools"] = _native_tool_versions()
            missing = {t: v for t, v in manifest["native_tools"].items() if v.startswith("missing")}
            if missing and not dry_run:
                from bench.errors import MissingTool
                from bench.load.native.tools import APT_HINT

                raise MissingTool(
                    f"--engine native needs {', '.join(missing)} ({'; '.join(missing.values())}); install "
                    f"with: {APT_HINT} golang-go golang-google-grpc-dev, or run --engine python"
                )
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
        """Run every unfinished cell in plan order; a noisy attempt is re-queued at a random later point of
        the run (the noise may have passed by then), within the re-run budget."""
        done = self.finished_cells()
        pending = [spec for spec in self.plan if spec.cell_id not in done]
        rng = random.Random(f"{self.options.get('seed', 0)}:{len(read_index(self.dir))}")
        outcomes: list[CellOutcome] = []
        while pending:
            spec = pending.pop(0)
            if spec.profile != "local":
                # A guest boots once per block of consecutive cells of its profile (the plan groups them).
                block = [spec]
                while pending and pending[0].profile == spec.profile:
                    block.append(pending.pop(0))
                progress(f"{spec.profile}: guest with {len(block)} cells", None)
                for outcome in self._run_guest_block(block):
                    outcomes.append(outcome)
                    progress(outcome.cell_id, outcome)
                continue
            progress(spec.cell_id, None)
            outcome = self._run_once(spec)
            if outcome.final:
                outcomes.append(outcome)
                progress(spec.cell_id, outcome)
                continue
            # Local cells only. Load cells take their rates from the pilots, so a pilot goes back among the
            # pilots still to run; anything else anywhere after them.
            first = next((i for i, s in enumerate(pending) if s.kind != "pilot"), len(pending))
            pending.insert(first if spec.kind == "pilot" else rng.randint(first, len(pending)), spec)
            progress(f"{spec.cell_id} (noisy: re-queued)", None)
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

    def _run_once(self, spec: CellSpec) -> CellOutcome:
        """One attempt of a local cell, indexed with the re-run policy's decision (final, or noisy)."""
        attempt = self._next_attempt(spec.cell_id)
        resolved, problem = self._resolve(spec)
        if problem is not None:
            outcome = self._record_unrunnable(resolved, attempt, problem)
        else:
            outcome = self._attempt(resolved, attempt)
        noisy = outcome.status == "ok" and (
            outcome.max_steal_pct > float(self.options["steal_threshold_pct"])
            or outcome.max_other_cpu_pct > BUSY_HOST_PCT
        )
        reruns_done = sum(
            1 for r in read_index(self.dir) if r.get("cell_id") == spec.cell_id and not r.get("final", True)
        )
        decision = decide(
            noisy=noisy,
            reruns_done=reruns_done,
            max_reruns=int(self.options["max_reruns"]),
            budget_left=self._reruns_left(),
        )
        outcome.final, outcome.flagged = decision.final, decision.flagged
        append_line(self.dir / INDEX, outcome.record())
        return outcome

    def _resolve(self, spec: CellSpec) -> tuple[CellSpec, str | None]:
        """A native load cell's closed-model concurrency and open-model rates, from the pilot cells."""
        if spec.kind != "load" or spec.engine != "native":
            return spec, None
        finished = self.finished_cells()
        pilots = {
            s.arm: s
            for s in self.plan
            if s.kind == "pilot" and s.scenario == spec.scenario and s.profile == spec.profile
        }
        capacities: dict[str, tuple[float, int | None]] = {}
        for arm, pilot in pilots.items():
            if pilot.cell_id not in finished:
                continue
            cell = read_cell_json(
                attempt_dir(self.dir, pilot.cell_id, int(finished[pilot.cell_id]["attempt"]))
            )
            found = (cell or {}).get("capacity") or {}
            if isinstance(found.get("rps"), int | float) and found["rps"] > 0:
                capacities[arm] = (float(found["rps"]), found.get("concurrency"))
        own_arm = spec.twin_of or spec.arm
        if own_arm not in capacities:
            return spec, f"its pilot {pilot_id(own_arm, spec.scenario, spec.profile)} measured no capacity"
        own, concurrency = capacities[own_arm]
        slowest = min(rps for rps, _ in capacities.values())
        s = spec.settings
        rates = [(f"eq{round(f * 100)}", f * slowest) for f in s.equal_fractions]
        for fraction in s.own_fractions:
            rate = fraction * own
            if all(abs(rate - r) > 0.02 * r for _, r in rates):  # an own rate equal to a shared one: once
                rates.append((f"own{round(fraction * 100)}", rate))
        return replace(spec, concurrency=concurrency or 16, rates=tuple(rates)), None

    def _record_unrunnable(self, spec: CellSpec, attempt: int, reason: str) -> CellOutcome:
        final_dir = attempt_dir(self.dir, spec.cell_id, attempt)
        final_dir.mkdir(parents=True)
        cell = {"status": "failed", "reason": reason, "spec": spec.to_json()}
        write_json(final_dir / "cell.json", cell)
        fsync_dir(final_dir.parent)
        return CellOutcome.from_cell(spec.cell_id, attempt, cell, wall_s=0.0)

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
    """Generous: three times what the cell's windows add up to, plus a minute for start-up."""
    s = spec.settings
    if spec.engine == "native":
        levels = len(s.capacity_levels) if spec.kind == "pilot" else 1
        opens = len(s.equal_fractions) + len(s.own_fractions)
        expected = s.native_warmup_s + levels * (s.native_window_s + 1) + opens * (s.native_window_s + 1.5)
    elif spec.kind == "floor":
        expected = 20.0
    else:
        expected = (
            s.warmup_s + len(s.closed_users) * (s.level_s + 0.5) + len(s.open_fractions) * (s.open_s + 0.5)
        )
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
