"""`bench calibrate`: locust's request rate next to wrk / h2load against the same target, CPUs and duration.

See bench.calibrate.windows for how windows are scheduled and compared. A benchmark, not a test: nothing here
passes or fails on a number.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import MissingTool, UsageError
from bench.options import (
    add_allow_python_protobuf,
    add_dry_run,
    add_max_reruns,
    add_repeats,
    add_seed,
    add_steal_threshold,
    split_list,
)
from bench.thresholds import BUSY_HOST_PCT

if TYPE_CHECKING:
    from bench.load.placement import Placement

__all__ = ["add_arguments", "run"]

PROTOCOLS = ("grpc", "rest", "soap")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapters",
        action="store_true",
        help="instead: each target beside its bare stack (the same server library answering prebuilt "
        "replies) under the native engine: what the project's adapter costs (calibrate/adapter_cost.py)",
    )
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help="comma-separated (default: grpc,rest,soap)"
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per window, whole seconds for wrk (default: 5)"
    )
    add_repeats(parser, unit="native + locust window pairs per protocol")
    parser.add_argument(
        "--users",
        type=int,
        default=16,
        help="locust users = wrk connections = h2load streams on one connection (default: 16)",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of each generator before a protocol's windows"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="append raw per-window records (JSON lines)"
    )
    parser.add_argument("--target-cpu", default="auto", help="CPU of the target ('auto': the last CPU)")
    parser.add_argument("--generator-cpu", default="auto", help="CPU of the generators ('auto': another CPU)")
    add_steal_threshold(parser)
    parser.add_argument(
        "--busy-threshold",
        type=float,
        default=BUSY_HOST_PCT,
        help=f"re-run a window in which other processes used more than this %% of a CPU "
        f"(default: {BUSY_HOST_PCT:g})",
    )
    add_max_reruns(parser, what="window (steal or busy host)")
    add_seed(parser, what="the window order and the bootstrap")
    add_allow_python_protobuf(parser)
    add_dry_run(parser, what="the generator command lines")


def run(args: argparse.Namespace) -> int:
    from bench.calibrate import adapter_cost
    from bench.calibrate.windows import NATIVE_TOOL
    from bench.load.native.tools import APT_HINT
    from bench.load.placement import choose_placement

    protocols = split_list(args.protocols)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise UsageError(f"--protocols {args.protocols!r}: choose from {', '.join(PROTOCOLS)}")
    if args.duration < 1 or args.repeats < 1 or args.users < 1:
        raise UsageError("--duration, --repeats and --users must be >= 1")
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    try:
        placement = choose_placement(args.target_cpu, args.generator_cpu)
    except (ValueError, StopIteration) as exc:
        raise UsageError(f"CPU placement: {exc}") from exc
    if args.dry_run:
        if args.adapters:
            adapter_cost.print_dry_run(args, protocols, placement)
        else:
            _print_dry_run(args, protocols, placement.generator_cpu)
        return 0
    missing = sorted({NATIVE_TOOL[p] for p in protocols if shutil.which(NATIVE_TOOL[p]) is None})
    if placement.pinned and shutil.which("taskset") is None:
        missing.append("taskset")
    if missing:
        raise MissingTool(f"{', '.join(missing)} not found; install with: {APT_HINT}")
    if "grpc" in protocols:
        from bench.run.manifest import require_fast_protobuf

        require_fast_protobuf(allow_python=args.allow_python_protobuf)
    if args.adapters:
        return adapter_cost.run(args, protocols, placement)
    return _run_protocols(args, protocols, placement)


def _print_dry_run(args: argparse.Namespace, protocols: list[str], generator_cpu: int | None) -> None:
    from bench.clients import DEFAULT_CLIENT
    from bench.load.native.engine import preview
    from bench.load.scenarios import load_scenarios

    scenario = load_scenarios()["getbook"]
    for protocol in protocols:
        closed = preview(protocol, scenario, cpu=generator_cpu, seconds=args.duration)[0]
        print(f"{protocol}: native {closed.replace('<connections>', str(args.users))}")
        print(
            f"{protocol}: python engine: locust users of the {DEFAULT_CLIENT[protocol]} client, scenario "
            f"getbook, -u {args.users}, {args.duration} s per window (in this process, on the generator CPU)"
        )


def _run_protocols(args: argparse.Namespace, protocols: list[str], placement: Placement) -> int:
    # The python engine patches the process for gevent on import: before any socket or channel exists.
    from bench.load.python_engine import PythonEngine  # isort: skip
    from bench.calibrate.windows import (
        NATIVE_TOOL,
        EngineWindows,
        WindowFn,
        format_table,
        measure_as_asked,
        print_window,
        summarize,
    )
    from bench.clients import DEFAULT_CLIENT
    from bench.load.native.engine import NativeEngine
    from bench.load.placement import Pinning
    from bench.load.processes import start_target
    from bench.load.scenarios import load_scenarios
    from bench.rawfiles import append_line
    from bench.thresholds import GENERATOR_LIMIT_PCT

    scenario = load_scenarios()["getbook"]
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    print(
        f"bench calibrate: {placement.describe()}; "
        f"{args.repeats} x {args.duration} s per engine, {args.users} users/connections, seed {args.seed}"
    )
    records: list[dict[str, Any]] = []
    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="bench-calibrate-"))
    pinning = Pinning({placement.generator_cpu}) if placement.generator_cpu is not None else None
    if pinning is not None:
        pinning.__enter__()
    try:
        for index, protocol in enumerate(protocols):
            target = start_target(protocol, dataset=scenario.dataset, cpu=placement.target_cpu, metrics=True)
            python: PythonEngine | None = None
            try:
                client = DEFAULT_CLIENT[protocol]
                common = {
                    "protocol": protocol,
                    "target": target,
                    "users": args.users,
                    "target_cpu": placement.target_cpu,
                    "generator_cpu": placement.generator_cpu,
                    "steal_threshold_pct": args.steal_threshold,
                }
                native = NativeEngine(
                    protocol,
                    target.address,
                    scenario,
                    cpu=placement.generator_cpu,
                    seed=args.seed,
                    timeout_s=10.0,
                )
                python = PythonEngine(
                    client, target.address, scenario, seed=args.seed, timeout_s=10.0, hook=lambda m: None,
                    log_dir=workdir,
                )  # fmt: skip
                generators: dict[str, WindowFn] = {
                    NATIVE_TOOL[protocol]: EngineWindows(
                        native, client=NATIVE_TOOL[protocol], **common
                    ).window,
                    "locust": EngineWindows(python, client=client, **common).window,
                }
                windows = measure_as_asked(generators, args, round_index=index, progress=print_window)
            except Exception as exc:
                print(f"bench calibrate: {protocol}: {exc}", file=sys.stderr)
                failed = True
                continue
            finally:
                if python is not None:
                    python.close()
                target.stop()  # our own child, by pid
            for record in windows:
                record.update(
                    run_id=run_id,
                    users=args.users,
                    target_cpu=placement.target_cpu,
                    generator_cpu=placement.generator_cpu,
                    target_pid=target.pid,
                )
            records += windows
    finally:
        if pinning is not None:
            pinning.restore()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None and records:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for record in records:
            append_line(args.json, record)
    rows = summarize(
        records, seed=args.seed, steal_threshold=args.steal_threshold, busy_threshold=args.busy_threshold
    )
    print()
    print(format_table(rows))
    print(
        "\nratio = median locust rps / median native rps (bootstrap 95 % CI over windows); "
        f"generator-limited = generator CPU >= {GENERATOR_LIMIT_PCT:.0f} % of its core; "
        "other CPU = % of a CPU used by other processes on the pinned CPUs (median over windows); every "
        "window is checked against the target's own counters"
    )
    if args.json is not None:
        print(f"raw windows appended to {args.json}")
    return 1 if failed or not rows else 0
