"""The adapters' own cost: each target beside its bare stack under the native tool, windows interleaved.

    bench calibrate --adapters [--protocols rest] [--duration 5] [--repeats 5] [--json OUT]

For each protocol the target (`python -m targets serve <protocol>`, dataset small, seed 42) and its bare stack
(`python -m bench.micro._bare_server <protocol>`: the same server library answering with prebuilt replies of
the same records, bench/micro/bare.py) both run pinned to the target CPU. The native engine drives GetBook as
`bench calibrate` does (wrk for REST and SOAP, h2load for gRPC: `bench.calibrate.windows.EngineWindows`)
from the generator CPU, alternating between the two servers in a seeded random order, with calibrate's re-run
policy for noisy windows (`measure_protocol`). The bare stack is started by its entry module rather than
through `bench.micro.bare`: `bench.calibrate` and `bench.micro` are independent layers.

Per protocol the table shows each server's median request rate and adapter / bare with a percentile-bootstrap
95 % CI; each server's CPU time per request (from its own CPU time over the window) and bare / adapter of
those, the same ratio from the work done rather than from the rate, which a host busy with other processes
disturbs less; the servers' and the generator's CPU use; and calibrate's notes. When each server has at least
two quiet windows (steal and other processes' CPU under the thresholds), only those are compared: a busy
window measures the host's share of the CPU as much as the server. A benchmark, not a test: nothing passes or
fails on a number.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.thresholds import BUSY_HOST_PCT, GENERATOR_LIMIT_PCT

if TYPE_CHECKING:
    from bench.calibrate.windows import WindowFn
    from bench.load.placement import Placement
    from bench.load.processes import TargetProcess

__all__ = ["Row", "format_table", "print_dry_run", "run", "summarize"]

DATASET = "small"  # what the bare stacks serve (bench.micro.bare.reference_books)
# Quiet windows (steal and other processes under their thresholds) each stack needs for the comparison to
# use only those.
MIN_QUIET_WINDOWS = 2


def run(args: argparse.Namespace, protocols: list[str], placement: Placement) -> int:
    """`bench calibrate --adapters`, once `bench calibrate` has checked the options and the tools."""
    # Before anything imports grpc: servers are started with fork (see bench/micro/conftest.py), and grpc's
    # fork handlers can abort the child.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    return _run_protocols(args, protocols, placement)


def _bare_argv(protocol: str, cpu: int | None) -> list[str]:
    # The entry module that bench.micro.bare.start_bare runs (prints READY bare-<protocol> host:port).
    return [
        sys.executable,
        "-m",
        "bench.micro._bare_server",
        protocol,
        *(["--cpu", str(cpu)] if cpu is not None else []),
    ]


def print_dry_run(args: argparse.Namespace, protocols: list[str], placement: Placement) -> None:
    from bench.calibrate.windows import NATIVE_TOOL

    print(f"bench calibrate adapter-cost: {placement.describe()}")
    for protocol in protocols:
        target = ["python", "-m", "targets", "serve", protocol, "--dataset", DATASET]
        target += ["--cpu", str(placement.target_cpu)] if placement.target_cpu is not None else []
        print(f"{protocol} adapter: {shlex.join(target)}")
        print(
            f"{protocol} bare:    {shlex.join(['python', *_bare_argv(protocol, placement.target_cpu)[1:]])}"
        )
        print(
            f"{protocol} load:    {NATIVE_TOOL[protocol]} as in `bench calibrate --dry-run --protocols "
            f"{protocol}`, {args.users} users, {args.duration} s windows, alternating between the two"
        )


def _run_protocols(args: argparse.Namespace, protocols: list[str], placement: Placement) -> int:
    from bench.calibrate.windows import NATIVE_TOOL, EngineWindows, measure_as_asked
    from bench.load.native.engine import NativeEngine
    from bench.load.placement import Pinning
    from bench.load.processes import start_ready_process, start_target
    from bench.load.scenarios import load_scenarios
    from bench.rawfiles import append_line

    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    print(
        f"adapter cost: {placement.describe()}; {args.repeats} x {args.duration} s per server, "
        f"{args.users} users, seed {args.seed}"
    )
    records: list[dict[str, Any]] = []
    failed = False
    # This process only waits for the tool; keep it off the servers' CPU.
    pinning = Pinning({placement.generator_cpu}) if placement.generator_cpu is not None else None
    if pinning is not None:
        pinning.__enter__()
    try:
        for index, protocol in enumerate(protocols):
            servers: dict[str, TargetProcess] = {}
            try:
                servers["adapter"] = start_target(
                    protocol, dataset=DATASET, cpu=placement.target_cpu, metrics=True
                )
                servers["bare"] = start_ready_process(
                    _bare_argv(protocol, placement.target_cpu), name=f"bare-{protocol}"
                )
                windows: dict[str, WindowFn] = {}
                for stack, server in servers.items():
                    getbook = load_scenarios()["getbook"]
                    cpu = placement.generator_cpu
                    engine = NativeEngine(
                        protocol, server.address, getbook, cpu=cpu, seed=args.seed, timeout_s=10.0
                    )
                    native = EngineWindows(
                        engine, protocol=protocol, client=NATIVE_TOOL[protocol], target=server,
                        users=args.users, target_cpu=placement.target_cpu,
                        generator_cpu=placement.generator_cpu, steal_threshold_pct=args.steal_threshold,
                    )  # fmt: skip
                    windows[stack] = _labelled(native.window, stack=stack, pid=server.pid)
                measured = measure_as_asked(windows, args, round_index=index, progress=_print_window)
            except Exception as exc:
                print(f"adapter cost: {protocol}: {exc}", file=sys.stderr)
                failed = True
                continue
            finally:
                for server in servers.values():
                    server.stop()  # our own children, by pid
            for record in measured:
                record.update(
                    run_id=run_id,
                    users=args.users,
                    target_cpu=placement.target_cpu,
                    generator_cpu=placement.generator_cpu,
                )
            records += measured
    finally:
        if pinning is not None:
            pinning.restore()
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
        "\nrate = median req/s (adapter / bare, bootstrap 95 % CI over windows); CPU/request = median target "
        "CPU µs per request (bare / adapter, the same ratio from the work done); server CPU = % of its core; "
        "windows = windows compared (adapter+bare; 'quiet': busy or stolen windows left out); "
        f"generator-limited = tool CPU >= {GENERATOR_LIMIT_PCT:.0f} % of its core"
    )
    if args.json is not None:
        print(f"raw windows appended to {args.json}")
    return 1 if failed or not rows else 0


def _labelled(window: WindowFn, *, stack: str, pid: int) -> WindowFn:
    def labelled(duration_s: int) -> dict[str, Any]:
        return {**window(duration_s), "stack": stack, "server_pid": pid}

    return labelled


def _print_window(record: dict[str, Any]) -> None:
    label = "warm-up" if record["phase"] == "warmup" else f"r{record['repeat'] + 1}"
    rerun = " (noisy: re-run)" if record["phase"] == "measure" and record["superseded"] else ""
    per_request = record["target_cpu_us_per_request"]
    print(
        f"  {record['protocol']:<5} {record['stack']:<8} {label:<8} {record['rps']:>9,.0f} req/s  "
        f"server CPU {record['target_cpu_pct']:5.1f} % ({per_request or 0:6.1f} µs/request)  "
        f"{record['generator']} CPU {record['generator_cpu_pct']:5.1f} %  "
        f"steal {record['steal_pct']:4.1f} %  other CPU {record['other_cpu_pct']:5.1f} %  "
        f"failures {record['failures']}{rerun}",
        flush=True,
    )


# ---- summary -----------------------------------------------------------------------------------------------
@dataclass
class Row:
    protocol: str
    tool: str
    adapter_rps: float
    bare_rps: float
    ratio: float  # adapter / bare request rate
    ratio_low: float
    ratio_high: float
    adapter_us: float  # server CPU µs per request
    bare_us: float
    cpu_ratio: float  # bare / adapter CPU per request: the adapter's share of the bare stack's rate
    cpu_ratio_low: float
    cpu_ratio_high: float
    adapter_cpu_pct: float
    bare_cpu_pct: float
    generator_cpu_pct: float
    steal_median_pct: float
    steal_max_pct: float
    other_cpu_median_pct: float
    windows: str  # the windows compared, adapter+bare ("5+4 quiet of 9+9": busy ones left out)
    notes: list[str] = field(default_factory=list)


def summarize(
    records: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    steal_threshold: float = 5.0,
    busy_threshold: float = BUSY_HOST_PCT,
) -> list[Row]:
    """One row per protocol from the kept measured windows (superseded re-runs and warm-ups left out)."""
    import numpy as np

    from bench.calibrate.windows import ratio_ci

    def median(values: Sequence[float]) -> float:
        return float(np.median(values))

    rows = []
    kept = [r for r in records if r["phase"] == "measure" and not r["superseded"]]
    for protocol in dict.fromkeys(r["protocol"] for r in kept):
        mine = [r for r in kept if r["protocol"] == protocol]
        # A server shares its CPU with whatever else runs there: its rate in a busy window says as much
        # about the host as about the server. Quiet windows decide when each stack has enough of them.
        quiet = [
            r for r in mine if r["other_cpu_pct"] <= busy_threshold and r["steal_pct"] <= steal_threshold
        ]
        all_adapter = [r for r in mine if r["stack"] == "adapter"]
        all_bare = [r for r in mine if r["stack"] == "bare"]
        adapter = [r for r in quiet if r["stack"] == "adapter"]
        bare = [r for r in quiet if r["stack"] == "bare"]
        quiet_only = len(adapter) >= MIN_QUIET_WINDOWS and len(bare) >= MIN_QUIET_WINDOWS
        if not quiet_only:
            adapter, bare = all_adapter, all_bare
        if not adapter or not bare:
            continue
        ratio, low, high = ratio_ci([r["rps"] for r in adapter], [r["rps"] for r in bare], seed=seed)
        adapter_us = [r["target_cpu_us_per_request"] for r in adapter if r["target_cpu_us_per_request"]]
        bare_us = [r["target_cpu_us_per_request"] for r in bare if r["target_cpu_us_per_request"]]
        cpu_ratio, cpu_low, cpu_high = (
            ratio_ci(bare_us, adapter_us, seed=seed)
            if adapter_us and bare_us
            else (math.nan, math.nan, math.nan)
        )
        steal = [r["steal_pct"] for r in mine]
        windows = f"{len(adapter)}+{len(bare)}" + (" quiet" if quiet_only else "")
        if len(adapter) + len(bare) < len(mine):
            windows += f" of {len(all_adapter)}+{len(all_bare)}"
        row = Row(
            protocol=protocol,
            tool=adapter[0]["generator"],
            adapter_rps=median([r["rps"] for r in adapter]),
            bare_rps=median([r["rps"] for r in bare]),
            ratio=ratio,
            ratio_low=low,
            ratio_high=high,
            adapter_us=median(adapter_us) if adapter_us else math.nan,
            bare_us=median(bare_us) if bare_us else math.nan,
            cpu_ratio=cpu_ratio,
            cpu_ratio_low=cpu_low,
            cpu_ratio_high=cpu_high,
            adapter_cpu_pct=median([r["target_cpu_pct"] for r in adapter]),
            bare_cpu_pct=median([r["target_cpu_pct"] for r in bare]),
            generator_cpu_pct=median([r["generator_cpu_pct"] for r in mine]),
            steal_median_pct=median(steal),
            steal_max_pct=float(max(steal)),
            other_cpu_median_pct=median([r["other_cpu_pct"] for r in mine]),
            windows=windows,
        )
        if row.generator_cpu_pct >= GENERATOR_LIMIT_PCT:
            row.notes.append("generator-limited")
        if not quiet_only and len(quiet) < len(mine):
            row.notes.append(
                f"noisy host: fewer than {MIN_QUIET_WINDOWS} quiet windows per server (steal up to "
                f"{row.steal_max_pct:.1f} %, other processes ~{row.other_cpu_median_pct:.0f} % of a CPU)"
            )
        if any(r["failures"] for r in mine):
            row.notes.append(
                "errors: " + ", ".join(f"{r['stack']} {r['failures']}" for r in mine if r["failures"])
            )
        rows.append(row)
    return rows


def _with_ci(point: float, low: float, high: float) -> str:
    ci = "n/a" if math.isnan(low) else f"{low:.2f}-{high:.2f}"
    return f"{point:.2f} [{ci}]"


def format_table(rows: Sequence[Row]) -> str:
    header = (
        "protocol", "tool", "adapter req/s", "bare req/s", "rate adapter/bare [95% CI]",
        "CPU µs/req (adapter / bare)", "CPU bare/adapter [95% CI]", "server CPU % (adapter / bare)",
        "tool CPU %", "steal % med (max)", "other CPU %", "windows", "notes",
    )  # fmt: skip
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.protocol,
                r.tool,
                f"{r.adapter_rps:,.0f}",
                f"{r.bare_rps:,.0f}",
                _with_ci(r.ratio, r.ratio_low, r.ratio_high),
                f"{r.adapter_us:.1f} / {r.bare_us:.1f}",
                _with_ci(r.cpu_ratio, r.cpu_ratio_low, r.cpu_ratio_high),
                f"{r.adapter_cpu_pct:.0f} / {r.bare_cpu_pct:.0f}",
                f"{r.generator_cpu_pct:.0f}",
                f"{r.steal_median_pct:.1f} ({r.steal_max_pct:.1f})",
                f"{r.other_cpu_median_pct:.0f}",
                r.windows,
                "; ".join(r.notes) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
