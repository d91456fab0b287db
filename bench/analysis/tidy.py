"""The tidy table: raw cell files -> one pandas row per cell × phase × level × operation × metric.

    import bench.analysis.tidy
    df = bench.analysis.tidy.load("20261127-053300-ab12")  # results/<run_id>/tidy.parquet, rebuilt if missing

Schema (one row per measured value):
    run_id, cell_id, attempt, kind (load|pilot|floor), engine (native|python), arm, twin_of, client,
    protocol, scenario, profile, repetition,
    phase (closed|open|wire|floor|cell|hops),
    level (c<concurrency> | u<users> | eq<pct> | own<pct> | f<pct> | a hop "gateway->books" | ""),
    operation (name or "*"), metric, value (float), unit, offered_rate (open model, req/s), samples,
    and the flags, as columns on every row:
    steal_pct, noisy (steal above the run's threshold), host_busy (other processes on the pinned CPUs),
    generator_limited, server_bound (closed native windows and capacity), counters_ok (the server's counts
    agree), pacing_distorted (open model: the generator's slip moves this row's percentile by > 10 %),
    insufficient_samples (a percentile from too few samples),
    flagged (the cell stayed noisy after its re-runs), emulated (guest under TCG), accel, status,
    not_assessable: "" when the row may back a verdict, else the reasons ("; "-joined).

Metrics: see METRICS below (name -> unit, meaning). Latencies are in microseconds, bytes per call in bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.paths import run_dir
from bench.rawfiles import write_atomic
from bench.rundir import MANIFEST, attempt_dir, final_attempts, read_index
from bench.thresholds import BUSY_HOST_PCT, PACING_DISTORTION_LIMIT, STEAL_THRESHOLD_PCT, min_samples

__all__ = ["COLUMNS", "METRICS", "PERCENTILES", "build_tidy", "load", "write_tidy"]

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
PERCENTILE_KEYS = {"p50": "50", "p90": "90", "p99": "99", "p999": "999"}
SPLIT_PROCESSES = ("gateway", "books", "circulation")
_HOP_TIMINGS = {
    "client": "end to end at the client",
    "total": "the gateway's total",
    "own": "the gateway's own time",
    "books": "the gateway waiting on books",
    "circulation": "the gateway waiting on circulation",
    "books_total": "books' own total",
    "circulation_total": "circulation's own total",
    "circulation_books": "circulation waiting on books",
}
METRICS: dict[str, tuple[str, str]] = {
    "capacity_rps": ("req/s", "native: the highest throughput of a server-bound closed-model window"),
    "capacity_cpu_us_per_request": ("µs", "native: the target's CPU time per call in that window"),
    "throughput_rps": ("req/s", "completed calls per second (operation or whole cell)"),
    "requests": ("calls", "calls completed in the window"),
    "failures": ("calls", "calls that ended in an error"),
    "error_rate": ("ratio", "failures / requests"),
    **{f"latency_{k}": ("µs", f"{v}th percentile of call latency") for k, v in PERCENTILES.items()},
    "latency_mean": ("µs", "mean call latency"),
    **{
        f"corrected_{k}": ("µs", f"{v}th percentile from the intended send time (open model)")
        for k, v in PERCENTILES.items()
    },
    **{
        f"uncorrected_{k}": ("µs", f"{v}th percentile from the actual send time (open model)")
        for k, v in PERCENTILES.items()
    },
    "ttfi_p50": ("µs", "median time to the first streamed item"),
    "ttfi_p99": ("µs", "99th percentile time to the first streamed item"),
    "items_per_call": ("items", "streamed (or batch) items per call"),
    "max_gap": ("µs", "largest gap between two streamed items"),
    "request_bytes": ("bytes", "bytes sent per call, counted at the socket"),
    "response_bytes": ("bytes", "bytes received per call, counted at the socket"),
    "target_cpu_us_per_request": ("µs", "target process CPU time per completed call"),
    "target_cpu_pct": ("%", "target process CPU use (of one CPU)"),
    "generator_cpu_pct": ("%", "load generator CPU use (of one CPU)"),
    "steal_pct": ("%", "CPU time stolen by the hypervisor, all CPUs"),
    "target_call_rate": ("req/s", "open model: intended call rate"),
    "late_starts": ("steps", "open model: steps that started >1 ms after their intended time"),
    "late_dispatches": ("steps", "open model: steps the generator itself dispatched >1 ms late"),
    "pacing_p50": ("µs", "open model: median of the generator's dispatch minus intended send time"),
    "pacing_p99": ("µs", "open model: 99th percentile of the generator's pacing error"),
    "max_closed_rps": ("req/s", "python: highest closed-model throughput of the cell"),
    "floor_p50": ("µs", "loopback TCP round trip, median"),
    "floor_p99": ("µs", "loopback TCP round trip, 99th percentile"),
    "engine_floor_max_rps": ("req/s", "a native tool's rate against a null server (its own ceiling)"),
    "engine_floor_p50": ("µs", "the open-model generator's latency against a null server, median"),
    "engine_floor_p99": ("µs", "the open-model generator's latency against a null server, 99th pct"),
    **{
        f"cpu_us_per_request_{role}": ("µs", f"split topology: {role}'s CPU time per completed call")
        for role in SPLIT_PROCESSES
    },
    **{
        f"hop_{key}": ("µs", f"split topology, sequential calls: {text} (services' own timings, median)")
        for key, text in _HOP_TIMINGS.items()
    },
    "hop_request_bytes": ("bytes", "split topology: caller -> callee bytes per call on the hop (level)"),
    "hop_response_bytes": ("bytes", "split topology: callee -> caller bytes per call on the hop (level)"),
    "cpu_probe_target": ("µs", "fixed pure-Python workload on the target CPU (host speed; lower is faster)"),
    "cpu_probe_generator": ("µs", "fixed pure-Python workload on the generator CPU"),
}
COLUMNS = [
    "run_id", "cell_id", "attempt", "kind", "engine", "arm", "twin_of", "client", "protocol", "scenario",
    "profile", "repetition", "phase", "level", "operation", "metric", "value", "unit", "offered_rate",
    "samples", "steal_pct", "noisy", "host_busy", "generator_limited", "server_bound", "counters_ok",
    "pacing_distorted", "insufficient_samples", "flagged", "emulated", "accel", "status", "not_assessable",
]  # fmt: skip


def _op_rows(stats: dict[str, Any], wall_s: float | None, prefix: str = "latency") -> list[tuple[str, float]]:
    """Metrics of one operation in one window, from the summary stored with its histograms."""
    requests = stats["requests"]
    if requests == 0:
        return []
    summary = stats["summary"]
    rows: list[tuple[str, float]] = [(f"{prefix}_{k}", summary[f"p{v}"]) for k, v in PERCENTILE_KEYS.items()]
    if prefix != "latency":
        return rows
    rows += [
        ("requests", requests),
        ("failures", stats["failures"]),
        ("error_rate", stats["failures"] / requests),
    ]
    rows.append(("latency_mean", summary["mean"]))
    if wall_s:
        rows.append(("throughput_rps", requests / wall_s))
    if summary.get("ttfi_p50") is not None:
        rows += [("ttfi_p50", summary["ttfi_p50"]), ("ttfi_p99", summary["ttfi_p99"])]
        rows.append(("max_gap", stats["max_gap_s"] * 1e6))
    if stats["items"]:
        rows.append(("items_per_call", stats["items"] / requests))
    return rows


def _percentile_of(metric: str) -> float | None:
    for key, q in PERCENTILES.items():
        if metric.endswith(f"_{key}"):
            return q
    return None


def _distorted(window: dict[str, Any] | None, q: float | None) -> bool:
    """Whether the generator's pacing moves this row's percentile by more than the limit: a median by the
    window's p50 distortion, a tail percentile by its p99 one (a row that is no percentile: not at all)."""
    distortion = (window or {}).get("pacing_distortion") or {}
    if q is None or not distortion:
        return False
    return float(distortion.get("p50" if q <= 50 else "p99", 0.0)) > PACING_DISTORTION_LIMIT


def _window_flags(window: dict[str, Any] | None, steal_threshold: float) -> dict[str, Any]:
    w = window or {}
    steals = [w.get(k) for k in ("steal_pct", "steal_target_cpu_pct", "steal_generator_cpu_pct")]
    others = [w.get(k) for k in ("other_target_cpu_pct", "other_generator_cpu_pct")]
    return {
        "steal_pct": w.get("steal_pct"),
        "noisy": any(v is not None and v > steal_threshold for v in steals),
        "host_busy": any(v is not None and v > BUSY_HOST_PCT for v in others),
        "generator_limited": bool(w.get("generator_limited", False)),
        "server_bound": w.get("server_bound"),
        "counters_ok": w.get("counters_ok"),
        "offered_rate": w.get("offered_rate"),
    }


_AT_CAPACITY = ("capacity_rps", "capacity_cpu_us_per_request")  # from the server-bound window only


def _reasons(row: dict[str, Any]) -> str:
    """Why a row cannot back a verdict ("" when it can); which flags count depends on what the row is."""
    reasons = []
    if row["status"] != "ok":
        reasons.append("cell failed")
    if row["emulated"]:
        reasons.append("emulated (TCG)")
    if row["noisy"]:
        reasons.append("CPU steal")
    if row["host_busy"]:
        reasons.append("host busy (other processes on the pinned CPUs)")
    if row["flagged"] and not (row["noisy"] or row["host_busy"]):
        # Another window of the cell was noisy and re-runs did not clear it: the cell is suspect as a whole.
        reasons.append("cell noisy after its re-runs")
    if row["counters_ok"] is False:
        reasons.append("server counters disagree")
    native = row["engine"] == "native"
    if native and row["metric"] in _AT_CAPACITY and row["server_bound"] is not True:
        reasons.append("not server-bound")
    if native and row["phase"] == "open":
        if row["generator_limited"]:
            reasons.append("generator dispatched late")
        if row["pacing_distorted"]:
            reasons.append("generator pacing error distorts the percentiles")
    if not native and row["generator_limited"] and row["phase"] in ("closed", "open"):
        reasons.append("generator-limited")
    if row["insufficient_samples"]:
        reasons.append(f"insufficient samples ({row['samples']:.0f})")
    return "; ".join(reasons)


def _cell_rows(cell: dict[str, Any], ops: dict[str, Any], steal_threshold: float) -> list[dict[str, Any]]:
    """Rows of one cell attempt (without the identifying columns)."""
    rows: list[dict[str, Any]] = []
    windows = {(w["phase"], w["label"]): w for w in cell.get("windows", [])}

    def add(
        phase: str,
        level: str,
        operation: str,
        metric: str,
        value: Any,
        window: dict[str, Any] | None,
        samples: int | None = None,
        **overrides: Any,
    ) -> None:
        if value is None:
            return
        q = _percentile_of(metric)
        rows.append(
            {
                "phase": phase,
                "level": level,
                "operation": operation,
                "metric": metric,
                "value": float(value),
                "samples": samples,
                "insufficient_samples": q is not None and samples is not None and samples < min_samples(q),
                **_window_flags(window, steal_threshold),
                "pacing_distorted": _distorted(window, q),
                **overrides,
            }
        )

    if "p50_us" in cell:  # floor cell
        window = windows.get(("floor", "tcp"))
        add("floor", "", "*", "floor_p50", cell["p50_us"], window)
        add("floor", "", "*", "floor_p99", cell["p99_us"], window)
        for side, value in cell.get("cpu_probe_us", {}).items():
            add("floor", "", "*", f"cpu_probe_{side}", value, window)
        for family, floor in cell.get("engine_floors", {}).items():
            add("floor", family, "*", "engine_floor_max_rps", floor.get("max_rps"), window)
            samples = floor.get("samples")
            add("floor", family, "*", "engine_floor_p50", floor.get("latency_p50_us"), window, samples)
            add("floor", family, "*", "engine_floor_p99", floor.get("latency_p99_us"), window, samples)
        return rows
    capacity = cell.get("capacity")
    if isinstance(capacity, dict):
        best = next(
            (
                w
                for w in windows.values()
                if w.get("phase") == "closed" and w.get("ok_rps") == capacity["rps"]
            ),
            None,
        )
        server_bound = capacity.get("status") == "server-bound"
        add("cell", "", "*", "capacity_rps", capacity.get("rps"), best, server_bound=server_bound)
        if best is not None:
            cpu = best.get("target_cpu_us_per_request")
            add("cell", "", "*", "capacity_cpu_us_per_request", cpu, best, server_bound=server_bound)
    add("cell", "", "*", "max_closed_rps", cell.get("max_closed_rps"), None)
    hops: dict[str, Any] = cell["hops"] if isinstance(cell.get("hops"), dict) else {}
    for operation, timing in sorted(hops.get("timing", {}).items()):
        for key, value in sorted(timing.items()):
            if key != "samples" and f"hop_{key.replace('.', '_')}" in METRICS:
                add(
                    "hops",
                    "timing",
                    operation,
                    f"hop_{key.replace('.', '_')}",
                    value,
                    None,
                    timing.get("samples"),
                )
    for operation, per_hop in sorted(hops.get("bytes", {}).items()):
        for hop, (sent, received) in sorted(per_hop.items()):
            add("hops", hop, operation, "hop_request_bytes", sent, None)
            add("hops", hop, operation, "hop_response_bytes", received, None)
    for (phase, level), window in windows.items():
        for role, seconds in sorted((window.get("process_cpu_s") or {}).items()):
            calls = window.get("requests") or 0
            if seconds is not None and calls:
                add(phase, level, "*", f"cpu_us_per_request_{role}", 1e6 * seconds / calls, window)
        for metric in (
            "throughput_rps",
            "target_cpu_us_per_request",
            "target_cpu_pct",
            "generator_cpu_pct",
            "steal_pct",
        ):
            add(phase, level, "*", metric, window.get(metric), window)
        if phase == "open":
            add(phase, level, "*", "target_call_rate", window.get("target_call_rate"), window)
            add(phase, level, "*", "late_starts", window.get("late_starts"), window)
            add(phase, level, "*", "late_dispatches", window.get("late_dispatches"), window)
            add(phase, level, "*", "pacing_p50", window.get("pacing_p50_us"), window)
            add(phase, level, "*", "pacing_p99", window.get("pacing_p99_us"), window)
    for operation, data in ops.get("wire", {}).items():
        if data["bytes_samples"]:
            add("wire", "", operation, "request_bytes", data["request_bytes"] / data["bytes_samples"], None)
            add("wire", "", operation, "response_bytes", data["response_bytes"] / data["bytes_samples"], None)
    for level, per_op in ops.get("closed", {}).items():
        window = windows.get(("closed", level))
        wall = window["wall_s"] if window else None
        for operation, stats in per_op.items():
            for metric, value in _op_rows(stats, wall):
                add("closed", level, operation, metric, value, window, stats["requests"])
    for level, data in ops.get("open", {}).items():
        window = windows.get(("open", level))
        wall = window["wall_s"] if window else None
        for operation, stats in data["uncorrected"].items():
            for metric, value in _op_rows(stats, wall):
                add("open", level, operation, metric, value, window, stats["requests"])
            for metric, value in _op_rows(stats, None, prefix="uncorrected"):
                add("open", level, operation, metric, value, window, stats["requests"])
        for operation, stats in data["corrected"].items():
            for metric, value in _op_rows(stats, None, prefix="corrected"):
                add("open", level, operation, metric, value, window, stats["requests"])
    return rows


def build_tidy(directory: Path) -> pd.DataFrame:
    """Read every final cell attempt's raw files into the tidy table (nothing but raw files is read)."""
    manifest = json.loads((directory / MANIFEST).read_text())
    accel = manifest.get("accel", {})
    steal_threshold = float(manifest.get("options", {}).get("steal_threshold_pct", STEAL_THRESHOLD_PCT))
    records: list[dict[str, Any]] = []
    for cell_id, final in sorted(final_attempts(read_index(directory)).items()):
        where = attempt_dir(directory, cell_id, final["attempt"])
        cell = json.loads((where / "cell.json").read_text())
        ops_path = where / "ops.json"
        ops = json.loads(ops_path.read_text()) if ops_path.exists() else {}
        spec = cell["spec"]
        profile_accel = accel.get(spec["profile"], {}).get("accel", "none")
        ident = {
            "run_id": manifest["run_id"],
            "cell_id": cell_id,
            "attempt": final["attempt"],
            "kind": spec["kind"],
            "engine": spec.get("engine", "python") if spec["kind"] != "floor" else "",
            "arm": spec.get("arm") or spec["client"],
            "twin_of": spec.get("twin_of", ""),
            "client": spec["client"],
            "protocol": spec["protocol"],
            "scenario": spec["scenario"],
            "profile": spec["profile"],
            "repetition": spec["repetition"],
            "flagged": bool(final.get("flagged")),
            "emulated": profile_accel == "tcg",
            "accel": profile_accel,
            "status": cell.get("status", "failed"),
        }
        if cell.get("status") != "ok":
            row = {"phase": "cell", "level": "", "operation": "*", "metric": "failed", "value": 1.0}
            row |= {"samples": None, "insufficient_samples": False, **_window_flags(None, steal_threshold)}
            records.append({**ident, **row})
            continue
        for row in _cell_rows(cell, ops, steal_threshold):
            records.append({**ident, **row})
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    for record in records:
        record["not_assessable"] = _reasons(record)
    frame = pd.DataFrame.from_records(records)
    frame["unit"] = frame["metric"].map(lambda m: METRICS.get(m, ("", ""))[0])
    frame = frame[COLUMNS].sort_values(["cell_id", "phase", "level", "operation", "metric"], kind="stable")
    return frame.reset_index(drop=True)


def write_tidy(directory: Path) -> pd.DataFrame:
    frame = build_tidy(directory)
    write_atomic(directory / "tidy.csv", frame.to_csv(index=False).encode())
    frame.to_parquet(directory / ".tidy.parquet.tmp", index=False)
    (directory / ".tidy.parquet.tmp").replace(directory / "tidy.parquet")
    return frame


def load(run_id: str | Path, *, results_dir: Path | None = None) -> pd.DataFrame:
    """The tidy table of a run, as one DataFrame (built from the raw files if not built yet)."""
    directory = run_dir(run_id, results_dir)
    parquet = directory / "tidy.parquet"
    if parquet.exists():
        return pd.read_parquet(parquet)
    return write_tidy(directory)
