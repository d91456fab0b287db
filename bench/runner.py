"""`bench run`: expand the matrix, run every cell (interleaved, pinned, steal-checked), tables, report.

Results layout (results/<run_id>/):
    manifest.json           environment, options, start/end (rewritten atomically as the run progresses)
    plan.json               every cell spec in run order (written once)
    cells.jsonl             append-only index: one line per finished cell attempt (the resume checkpoint)
    cells/<cell_id>/attempt-<n>/   raw files of one attempt (cell.json, ops.json, locust_stats.csv, ...)
    tidy.csv, tidy.parquet, report.html   derived, rebuilt by `bench report <run_id>`
"""

from __future__ import annotations

import argparse
import contextlib
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

from bench.plan import CellSpec, MeasureSettings, expand_plan
from bench.rawfiles import RawFileError, append_line, fsync_dir, write_json
from targets.lifetime import child_env

__all__ = ["RESULTS_DIR", "CellOutcome", "Run", "add_arguments", "run"]

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS", REPO / "results"))
DEFAULT_CLIENT = {"grpc": "grpc", "rest": "rest-lean", "soap": "soap-lean"}


@dataclass
class CellOutcome:
    cell_id: str
    attempt: int
    status: str  # ok | failed
    reason: str | None
    max_steal_pct: float
    generator_limited: bool
    flagged: bool  # steal stayed above the threshold after the allowed re-runs
    final: bool  # the attempt the tables use
    wall_s: float

    def record(self) -> dict[str, Any]:
        return self.__dict__.copy()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocols", default="grpc,rest,soap", help="protocols to compare (default: all three)"
    )
    parser.add_argument(
        "--clients",
        default=None,
        help="client kinds instead of --protocols' defaults (grpc, rest-lean, soap-lean); e.g. "
        "grpc,rest,rest-lean,soap,soap-lean to separate client-library cost",
    )
    parser.add_argument(
        "--scenarios", default="mixed", help="scenarios from bench/scenarios.toml (default: mixed)"
    )
    parser.add_argument("--profiles", default="local", help="vm_profiles to run on (default: local = no VM)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="repetitions per cell (default: 5; >= 4 for tests)"
    )
    parser.add_argument(
        "--vm-repeats",
        type=int,
        default=None,
        help="repetitions per cell inside guests (default: 1 when quick)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured window")
    parser.add_argument(
        "--quick", action="store_true", help="short windows (the default when --duration is absent)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for run order and workloads")
    parser.add_argument(
        "--steal-threshold", type=float, default=5.0, help="CPU steal %% that triggers a re-run"
    )
    parser.add_argument(
        "--max-reruns", type=int, default=1, help="re-runs of a cell above the steal threshold"
    )
    parser.add_argument(
        "--rerun-budget",
        type=float,
        default=0.2,
        help="re-runs allowed in the whole run, as a fraction of its cells (default 0.2): bounds the run's "
        "length when the host is noisy; beyond it noisy cells are kept and flagged",
    )
    parser.add_argument(
        "--locust-workers", type=int, default=0, help="closed model as locust master + N workers"
    )
    parser.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        help="locust workers on other machines to wait for (each cell)",
    )
    parser.add_argument(
        "--master-bind", default="127.0.0.1", help="address the locust master listens on (remote workers)"
    )
    parser.add_argument(
        "--master-port", type=int, default=0, help="locust master port (fixed for remote workers)"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds before a call counts as failed (default 10)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where runs are written")
    parser.add_argument("--resume", metavar="RUN_ID", help="complete an interrupted run")
    parser.add_argument("--no-report", action="store_true", help="skip tables and report at the end")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (and guest XML) and exit")
    parser.add_argument("--libvirt-uri", default=None, help="libvirt URI for guests (default: embedded)")
    parser.add_argument(
        "--allow-python-protobuf",
        action="store_true",
        help="run even on the slow pure-Python protobuf backend",
    )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def _placement(profile: str) -> tuple[int | None, int | None]:
    """(target CPU, generator CPU): the last CPU for the target, the first for the load (DESIGN.md)."""
    if profile != "local":
        from bench.vm import find_profile

        vm = find_profile(profile)
        return vm.guest_target_cpu, vm.guest_generator_cpu
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


class Run:
    """One run directory and the loop that fills it."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any], plan: list[CellSpec]) -> None:
        self.dir = run_dir
        self.manifest = manifest
        self.plan = plan
        self.options = manifest["options"]

    # ---- creation / loading -----------------------------------------------------------------------------
    @classmethod
    def create(cls, args: argparse.Namespace) -> Run:
        from bench.clients import CLIENT_KINDS, protocol_of
        from bench.manifest import collect_manifest
        from bench.scenarios import load_scenarios

        protocols = _split(args.protocols)
        for protocol in protocols:
            if protocol not in DEFAULT_CLIENT:
                raise SystemExit(
                    f"bench run: --protocols {protocol!r}: choose from {', '.join(DEFAULT_CLIENT)}"
                )
        clients = _split(args.clients) if args.clients else [DEFAULT_CLIENT[p] for p in protocols]
        for client in clients:
            if client not in CLIENT_KINDS:
                raise SystemExit(f"bench run: --clients {client!r}: choose from {', '.join(CLIENT_KINDS)}")
        scenarios = _split(args.scenarios)
        known = load_scenarios()
        for scenario in scenarios:
            if scenario not in known:
                raise SystemExit(f"bench run: --scenarios {scenario!r}: choose from {', '.join(known)}")
        if args.repeats < 1:
            raise SystemExit("bench run: --repeats must be at least 1")
        if args.duration is not None and args.duration <= 0:
            raise SystemExit("bench run: --duration must be positive")
        profiles = _split(args.profiles)
        if any(p != "local" for p in profiles) and "local" not in profiles:
            profiles.insert(0, "local")  # guests are always reported next to the host they run on
        placement = {p: _placement(p) for p in profiles}
        host_settings = (
            MeasureSettings.with_duration(args.duration) if args.duration else MeasureSettings.quick()
        )
        host_settings = MeasureSettings(
            **{
                **host_settings.__dict__,
                "locust_workers": args.locust_workers,
                "request_timeout_s": args.request_timeout,
            }
        )
        quick_guests = args.quick or args.duration is None
        settings = {p: host_settings if p == "local" or not quick_guests else MeasureSettings.guest_quick()
                    for p in profiles}  # fmt: skip
        vm_repeats = args.vm_repeats if args.vm_repeats is not None else (1 if quick_guests else args.repeats)
        repeats = {p: args.repeats if p == "local" else vm_repeats for p in profiles}
        seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big") % 1_000_000
        plan = expand_plan(
            clients=clients,
            protocols={c: protocol_of(c) for c in clients},
            scenarios=scenarios,
            profiles=profiles,
            repeats=repeats,
            seed=seed,
            settings=settings,
            placement=placement,
        )
        run_id = _new_run_id()
        options = {
            "clients": clients,
            "scenarios": scenarios,
            "profiles": profiles,
            "repeats": args.repeats,
            "seed": seed,
            "steal_threshold_pct": args.steal_threshold,
            "max_reruns": args.max_reruns,
            "rerun_budget": max(0, round(args.rerun_budget * len(plan))),
            "settings": {p: v.__dict__ for p, v in settings.items()},
            "repeats_by_profile": repeats,
            "placement": {p: {"target_cpu": t, "generator_cpu": g} for p, (t, g) in placement.items()},
            "libvirt_uri": args.libvirt_uri,
        }
        manifest = collect_manifest(run_id=run_id, options=options, started_at=time.time(), status="running")
        run_dir = args.results_dir / run_id
        if not args.dry_run:
            _check_space(args.results_dir, len(plan))
            try:
                run_dir.mkdir(parents=True)
                write_json(run_dir / "plan.json", [c.to_json() for c in plan])
                write_json(run_dir / "manifest.json", manifest)
            except OSError as exc:
                raise SystemExit(f"bench run: cannot create {run_dir}: {exc} (use --results-dir)") from exc
        return cls(run_dir, manifest, plan)

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        try:
            manifest = json.loads((run_dir / "manifest.json").read_text())
            plan = [CellSpec.from_json(c) for c in json.loads((run_dir / "plan.json").read_text())]
        except FileNotFoundError as exc:
            raise SystemExit(f"bench: {run_dir} is not a run directory ({exc.filename} missing)") from exc
        return cls(run_dir, manifest, plan)

    def finished_cells(self) -> dict[str, dict[str, Any]]:
        """cell_id -> its final index line (a cell is finished once its final attempt is indexed)."""
        index = self.dir / "cells.jsonl"
        done: dict[str, dict[str, Any]] = {}
        if index.exists():
            for line in index.read_text().splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash: that attempt is simply re-run
                if record.get("final"):
                    done[record["cell_id"]] = record
        return done

    # ---- execution -------------------------------------------------------------------------------------
    def execute(self, progress: Callable[[str, CellOutcome | None], None]) -> list[CellOutcome]:
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

    def _run_guest_block(self, block: list[CellSpec]) -> list[CellOutcome]:
        """Cells of a VM profile, measured inside one guest; steal re-runs don't apply (the guest is emulated
        or shares the host, and its steal is reported by the guest record instead)."""
        from bench.vm_cells import run_guest_block

        profile = block[0].profile
        guests = self.dir / "guests"
        guests.mkdir(exist_ok=True)
        number = len(list(guests.glob(f"{profile}-*.json"))) + 1
        started = time.monotonic()
        result = run_guest_block(
            block, self.dir / f".guest-{profile}-{number}", uri=self.options.get("libvirt_uri")
        )
        firmware = result.accel.get("firmware")
        record = {"cells": [s.cell_id for s in block], "firmware": firmware, **result.guest}
        write_json(guests / f"{profile}-{number}.json", record)
        if result.accel:
            self.manifest.setdefault("accel", {})[profile] = result.accel
            write_json(self.dir / "manifest.json", self.manifest)
        per_cell = (time.monotonic() - started) / len(block)
        outcomes = []
        for spec in block:
            cell_dir = self.dir / "cells" / spec.cell_id
            cell_dir.mkdir(parents=True, exist_ok=True)
            attempt = len([p for p in cell_dir.glob("attempt-*") if p.is_dir()]) + 1
            final_dir = cell_dir / f"attempt-{attempt}"
            source = result.outputs.get(spec.cell_id)
            if source is not None:
                shutil.move(str(source), final_dir)
            else:
                final_dir.mkdir()
                write_json(
                    final_dir / "cell.json",
                    {"status": "failed", "reason": result.reasons.get(spec.cell_id), "spec": spec.to_json()},
                )
            fsync_dir(cell_dir)
            cell = _read_cell_json(final_dir) or {}
            outcome = CellOutcome(
                cell_id=spec.cell_id,
                attempt=attempt,
                status=str(cell.get("status", "failed")),
                reason=cell.get("reason"),
                max_steal_pct=float(cell.get("max_steal_pct", 0.0)),
                generator_limited=bool(cell.get("generator_limited", False)),
                flagged=False,
                final=True,
                wall_s=per_cell,
            )
            append_line(self.dir / "cells.jsonl", outcome.record())
            outcomes.append(outcome)
        batch = self.dir / f".guest-{profile}-{number}"
        if (batch / "vm-guest").is_dir():
            # Domain XML, serial log and QEMU log of this guest stay beside its results.
            shutil.move(str(batch / "vm-guest"), guests / f"{profile}-{number}")
        shutil.rmtree(batch, ignore_errors=True)
        return outcomes

    def _run_with_reruns(self, spec: CellSpec) -> CellOutcome:
        threshold = float(self.options["steal_threshold_pct"])
        attempts = 1 + int(self.options["max_reruns"])
        cell_dir = self.dir / "cells" / spec.cell_id
        previous = [p for p in cell_dir.glob("attempt-*") if p.is_dir()] if cell_dir.exists() else []
        first = len(previous) + 1
        outcome: CellOutcome | None = None
        for attempt in range(first, first + attempts):
            outcome = self._attempt(spec, attempt)
            noisy = outcome.status == "ok" and outcome.max_steal_pct > threshold
            last = attempt == first + attempts - 1 or self._reruns_left() <= 0
            outcome.final = not noisy or last
            outcome.flagged = noisy and last
            append_line(self.dir / "cells.jsonl", outcome.record())
            if outcome.final:
                break
        assert outcome is not None
        return outcome

    def _reruns_left(self) -> int:
        """Steal re-runs still allowed in this run (counted from the index, so a resume keeps the budget)."""
        budget = int(self.options.get("rerun_budget", len(self.plan)))
        index = self.dir / "cells.jsonl"
        lines = index.read_text().splitlines() if index.exists() else []
        used = sum(1 for line in lines if line.strip() and not json.loads(line).get("final", True))
        return budget - used

    def _attempt(self, spec: CellSpec, attempt: int) -> CellOutcome:
        cell_dir = self.dir / "cells" / spec.cell_id
        cell_dir.mkdir(parents=True, exist_ok=True)
        final_dir = cell_dir / f"attempt-{attempt}"
        partial = cell_dir / f".attempt-{attempt}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        spec_path = partial / "spec.json"
        spec_path.write_text(spec.dumps())
        started = time.monotonic()
        status, reason = _run_local_cell(spec_path, partial, _cell_timeout(spec))
        cell = _read_cell_json(partial)
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
        fsync_dir(cell_dir)
        return CellOutcome(
            cell_id=spec.cell_id,
            attempt=attempt,
            status=str(cell.get("status", "failed")),
            reason=cell.get("reason"),
            max_steal_pct=float(cell.get("max_steal_pct", 0.0)),
            generator_limited=bool(cell.get("generator_limited", False)),
            flagged=False,
            final=True,
            wall_s=time.monotonic() - started,
        )

    def finish(self, status: str) -> None:
        self.manifest["status"] = status
        self.manifest["ended_at"] = time.time()
        write_json(self.dir / "manifest.json", self.manifest)


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
        raise SystemExit(
            f"bench run: cannot create results in {results_dir}: {exc} (use --results-dir)"
        ) from exc
    free = shutil.disk_usage(results_dir).free
    needed = _BYTES_FIXED + cells * _BYTES_PER_CELL
    if free < needed:
        raise SystemExit(
            f"bench run: {results_dir} has {free // 2**20} MiB free, this run needs about "
            f"{needed // 2**20} MiB "
            f"({cells} cells); free some space or use --results-dir"
        )


def _cell_timeout(spec: CellSpec) -> float:
    s = spec.settings
    expected = s.warmup_s + len(s.closed_users) * (s.level_s + 0.5) + len(s.open_fractions) * (s.open_s + 0.5)
    return 60.0 + 3 * expected


def _read_cell_json(directory: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((directory / "cell.json").read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


_current_cell: subprocess.Popen[bytes] | None = None


def _run_local_cell(spec_path: Path, out: Path, timeout_s: float) -> tuple[str, str | None]:
    """Run `python -m bench.cell` in its own session, so a hang or Ctrl-C can end its whole process group."""
    global _current_cell
    argv = [sys.executable, "-m", "bench.cell", "--spec", str(spec_path), "--out", str(out)]
    with open(out / "cell.log", "ab") as log:
        # Own session: a hang or Ctrl-C ends the whole group. Death signal: if this runner is killed outright,
        # the cell (and, through its own death signal, its target) goes too instead of running on orphaned.
        process = subprocess.Popen(
            argv, stdout=log, stderr=log, cwd=REPO, start_new_session=True, env=child_env()
        )
    _current_cell = process
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return "failed", f"timeout: the cell did not finish within {timeout_s:.0f} s"
    finally:
        _current_cell = None
    if process.returncode not in (0, 1):
        return "failed", f"cell process exited with code {process.returncode} (see cell.log)"
    return ("ok" if process.returncode == 0 else "failed"), None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
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


def _print_plan(run: Run) -> None:
    print(f"run {run.manifest['run_id']}: {len(run.plan)} cells, seed {run.options['seed']}")
    for spec in run.plan:
        target = "-" if spec.target_cpu is None else spec.target_cpu
        generator = "-" if spec.generator_cpu is None else spec.generator_cpu
        print(f"  {spec.cell_id:40} target cpu {target}  generator cpu {generator}")
    for profile in run.options["profiles"]:
        if profile != "local":
            from bench.vm_cells import dry_run_guest

            dry_run_guest(profile, uri=run.options.get("libvirt_uri"))


def run(args: argparse.Namespace) -> int:
    from bench.manifest import protobuf_backend

    if protobuf_backend() == "python" and not args.allow_python_protobuf:
        print(
            "bench run: protobuf uses its pure-Python backend, which would make gRPC look ~10x slower; "
            "install the upb wheel (pip install --force-reinstall protobuf) or pass --allow-python-protobuf",
            file=sys.stderr,
        )
        return 2
    run_obj = Run.load(args.results_dir / args.resume) if args.resume else Run.create(args)
    if args.dry_run:
        _print_plan(run_obj)
        return 0
    lock = _lock_run(run_obj.dir)
    try:
        return _execute(run_obj, build_report=not args.no_report)
    finally:
        os.close(lock)


def _lock_run(directory: Path) -> int:
    """One runner per run directory: a resume while the first runner still lives would measure twice."""
    import fcntl

    fd = os.open(directory / "run.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(
            f"bench run: {directory.name} is being run by another process (run.lock is held)"
        ) from None
    return fd


def _execute(run_obj: Run, *, build_report: bool) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, soft_wrap=True)  # never wrap paths and commands the user may copy
    total = len(run_obj.plan)
    done = len(run_obj.finished_cells())
    console.print(
        f"[bold]bench run[/] {run_obj.manifest['run_id']} -> {run_obj.dir}  ({total} cells, {done} done)"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    interrupted = False
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("cells", total=total, completed=done)

        def progress(cell_id: str, outcome: CellOutcome | None) -> None:
            if outcome is None:
                bar.update(task, description=f"{cell_id:36}")
                return
            bar.advance(task)
            note = []
            if outcome.status != "ok":
                note.append(f"[red]failed[/]: {outcome.reason}")
            if outcome.flagged:
                note.append(f"[yellow]steal {outcome.max_steal_pct:.1f}% (flagged)[/]")
            if outcome.generator_limited:
                note.append("[yellow]generator-limited[/]")
            if note:
                bar.console.print(f"  {cell_id}: " + "; ".join(note))

        try:
            run_obj.execute(progress)
        except KeyboardInterrupt:
            interrupted = True
            if _current_cell is not None:
                _kill_group(_current_cell)
        except RawFileError as exc:
            console.print(
                f"[red]bench run: {exc}[/] — finished cells are safe; fix it and resume with "
                f"bench run --resume {run_obj.manifest['run_id']}"
            )
            return 1
    if interrupted:
        run_obj.finish("interrupted")
        console.print(
            f"[yellow]interrupted[/]: finished cells are on disk; complete the run with\n"
            f"  bench run --resume {run_obj.manifest['run_id']}"
        )
        return 130
    run_obj.finish("complete")
    if not build_report:
        return 0
    from bench.report import build_report as make_report

    path = make_report(run_obj.dir)
    console.print(f"report: {path}")
    return 0
