"""The tidy table: raw cell files -> one pandas row per cell × phase × level × operation × metric.

    import bench.analysis.tidy
    df = bench.analysis.tidy.load("20261127-053300-ab12")  # results/<run_id>/tidy.parquet, rebuilt if missing

Schema (one row per measured value):
    run_id, cell_id, attempt, kind (load|floor), client, protocol, scenario, profile, repetition,
    phase (closed|open|wire|floor|cell), level (u<users> | f<percent> | ""), operation (name or "*"),
    metric, value (float), unit,
    steal_pct (of the window), generator_limited (window), flagged (cell steal above threshold after re-runs),
    emulated (guest under TCG), accel (none|kvm|tcg), status (ok|failed)

Metrics: see METRICS below (name -> unit, meaning). Latencies are in microseconds, bytes per call in bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.paths import run_dir
from bench.rawfiles import write_atomic
from bench.rundir import MANIFEST, arm_label, attempt_dir, final_attempts, read_index

__all__ = ["METRICS", "build_tidy", "load", "write_tidy"]

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
PERCENTILE_KEYS = {"p50": "50", "p90": "90", "p99": "99", "p999": "999"}
METRICS: dict[str, tuple[str, str]] = {
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
    "max_closed_rps": ("req/s", "highest closed-model throughput of the cell"),
    "floor_p50": ("µs", "loopback TCP round trip, median"),
    "floor_p99": ("µs", "loopback TCP round trip, 99th percentile"),
    "cpu_probe_target": ("µs", "fixed pure-Python workload on the target CPU (host speed; lower is faster)"),
    "cpu_probe_generator": ("µs", "fixed pure-Python workload on the generator CPU"),
}


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


def _cell_rows(cell: dict[str, Any], ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one cell attempt (without the identifying columns)."""
    rows: list[dict[str, Any]] = []
    windows = {(w["phase"], w["label"]): w for w in cell.get("windows", [])}

    def add(
        phase: str, level: str, operation: str, metric: str, value: Any, window: dict[str, Any] | None
    ) -> None:
        if value is None:
            return
        rows.append(
            {
                "phase": phase,
                "level": level,
                "operation": operation,
                "metric": metric,
                "value": float(value),
                "steal_pct": (window or {}).get("steal_pct"),
                "generator_limited": bool((window or {}).get("generator_limited", False)),
            }
        )

    if "p50_us" in cell:  # floor cell
        window = windows.get(("floor", "tcp"))
        add("floor", "", "*", "floor_p50", cell["p50_us"], window)
        add("floor", "", "*", "floor_p99", cell["p99_us"], window)
        for side, value in cell.get("cpu_probe_us", {}).items():
            add("floor", "", "*", f"cpu_probe_{side}", value, window)
        return rows
    add("cell", "", "*", "max_closed_rps", cell.get("max_closed_rps"), None)
    for (phase, level), window in windows.items():
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
    for operation, data in ops.get("wire", {}).items():
        if data["bytes_samples"]:
            add("wire", "", operation, "request_bytes", data["request_bytes"] / data["bytes_samples"], None)
            add("wire", "", operation, "response_bytes", data["response_bytes"] / data["bytes_samples"], None)
    for level, per_op in ops.get("closed", {}).items():
        window = windows.get(("closed", level))
        wall = window["wall_s"] if window else None
        for operation, stats in per_op.items():
            for metric, value in _op_rows(stats, wall):
                add("closed", level, operation, metric, value, window)
    for level, data in ops.get("open", {}).items():
        window = windows.get(("open", level))
        wall = window["wall_s"] if window else None
        for operation, stats in data["uncorrected"].items():
            for metric, value in _op_rows(stats, wall):
                add("open", level, operation, metric, value, window)
            for metric, value in _op_rows(stats, None, prefix="uncorrected"):
                add("open", level, operation, metric, value, window)
        for operation, stats in data["corrected"].items():
            for metric, value in _op_rows(stats, None, prefix="corrected"):
                add("open", level, operation, metric, value, window)
    return rows


def build_tidy(directory: Path) -> pd.DataFrame:
    """Read every final cell attempt's raw files into the tidy table (nothing but raw files is read)."""
    manifest = json.loads((directory / MANIFEST).read_text())
    accel = manifest.get("accel", {})
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
            "client": arm_label(spec["client"], spec.get("impl", "python")),
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
            records.append(
                {
                    **ident,
                    "phase": "cell",
                    "level": "",
                    "operation": "*",
                    "metric": "failed",
                    "value": 1.0,
                    "steal_pct": None,
                    "generator_limited": False,
                }
            )
            continue
        for row in _cell_rows(cell, ops):
            records.append({**ident, **row})
    columns = [
        "run_id", "cell_id", "attempt", "kind", "client", "protocol", "scenario", "profile", "repetition",
        "phase", "level", "operation", "metric", "value", "unit", "steal_pct", "generator_limited", "flagged",
        "emulated", "accel", "status",
    ]  # fmt: skip
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["unit"] = frame["metric"].map(lambda m: METRICS.get(m, ("", ""))[0])
    frame = frame[columns].sort_values(["cell_id", "phase", "level", "operation", "metric"], kind="stable")
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
