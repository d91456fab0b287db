"""A run directory written by hand: native-engine cells whose values and flags a test chooses, so the tidy
table, the verdicts and the claims can be checked against known answers (no measurement involved)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["CraftedRun"]


def _stats(p50_us: float, samples: int) -> dict[str, Any]:
    summary = {"p50": p50_us, "p90": 1.5 * p50_us, "p99": 3 * p50_us, "p999": 5 * p50_us,
               "mean": 1.2 * p50_us, "ttfi_p50": None, "ttfi_p99": None}  # fmt: skip
    return {"requests": samples, "failures": 0, "summary": summary, "items": samples, "max_gap_s": 0.0}


class CraftedRun:
    def __init__(self, directory: Path, protocols: tuple[str, ...] = ("grpc", "rest", "soap")) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.index: list[dict[str, Any]] = []
        options = {"steal_threshold_pct": 5.0, "protocols": list(protocols),
                   "engine_scenarios": {"native": ["getbook"], "python": []}}  # fmt: skip
        manifest = {"run_id": directory.name, "options": options}
        (directory / "manifest.json").write_text(json.dumps(manifest))
        (directory / "plan.json").write_text("[]")

    def native_cell(
        self,
        arm: str,
        repetition: int,
        *,
        capacity_rps: float,
        p50_us: float,
        protocol: str | None = None,
        twin_of: str = "",
        server_bound: bool = True,
        host_busy: bool = False,
        counters_ok: bool = True,
        pacing_distorted: bool = False,
        samples: int = 5000,
        flagged: bool = False,
    ) -> str:
        """One native load cell: a capacity window (c16) and an equal-load window (eq50) of GetBook."""
        protocol = protocol or arm.removesuffix("-aa")
        cell_id = f"{arm}-native-getbook-local-r{repetition}"
        spec = {"cell_id": cell_id, "kind": "load", "engine": "native", "arm": arm, "twin_of": twin_of,
                "client": "", "protocol": protocol, "scenario": "getbook", "profile": "local",
                "repetition": repetition}  # fmt: skip
        common = {"steal_pct": 0.0, "other_target_cpu_pct": 30.0 if host_busy else 0.0,
                  "other_generator_cpu_pct": 0.0, "counters_ok": counters_ok, "wall_s": 1.5,
                  "generator_limited": False}  # fmt: skip
        closed = {**common, "phase": "closed", "label": "c16", "ok_rps": capacity_rps,
                  "throughput_rps": capacity_rps, "concurrency": 16, "server_bound": server_bound,
                  "target_cpu_us_per_request": 1e6 / capacity_rps,
                  "target_cpu_pct": 99.0 if server_bound else 50.0, "generator_cpu_pct": 20.0}  # fmt: skip
        opened = {**common, "phase": "open", "label": "eq50", "offered_rate": 1000.0,
                  "target_call_rate": 1000.0, "pacing_distorted": pacing_distorted,
                  "throughput_rps": 1000.0}  # fmt: skip
        status = "server-bound" if server_bound else "not measured: target not saturated"
        cell = {"spec": spec, "status": "ok", "windows": [closed, opened],
                "capacity": {"rps": capacity_rps, "concurrency": 16, "status": status}}  # fmt: skip
        ops = {
            "closed": {"c16": {"GetBook": _stats(p50_us, samples)}},
            "open": {"eq50": {"corrected": {"GetBook": _stats(p50_us, samples)},
                              "uncorrected": {"GetBook": _stats(p50_us * 0.9, samples)}}},
        }  # fmt: skip
        where = self.dir / "cells" / cell_id / "attempt-1"
        where.mkdir(parents=True)
        (where / "cell.json").write_text(json.dumps(cell))
        (where / "ops.json").write_text(json.dumps(ops))
        self.index.append(
            {"cell_id": cell_id, "attempt": 1, "status": "ok", "final": True, "flagged": flagged}
        )
        (self.dir / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.index))
        return cell_id
