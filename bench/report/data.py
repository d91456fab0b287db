"""What the report reads: a run's raw files (manifest, plan, index, cells, guests) and its tables."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.stats import bootstrap_ci
from bench.analysis.verdicts import Comparison, comparisons
from bench.report.hdr import EMPTY, Dist, decode, merge
from bench.rundir import GUESTS_DIR, MANIFEST, PLAN, attempt_dir, final_attempts, read_index
from targets.core.operations import STREAMED_RESPONSES

__all__ = [
    "SEED",
    "STREAM_OPERATIONS",
    "CellInfo",
    "GuestInfo",
    "RunData",
    "Summary",
    "load_run",
    "summarize",
]

SEED = 0  # every bootstrap in the report uses it, so rebuilding gives the same bytes
STREAM_OPERATIONS = STREAMED_RESPONSES
_GUEST_FILE = re.compile(r"^(?P<profile>.+)-(?P<number>\d+)\.json$")


@dataclass(frozen=True)
class Summary:
    """A value over repetitions: median, range, and a 95 % percentile-bootstrap CI of the median."""

    n: int
    median: float
    low: float  # smallest repetition
    high: float  # largest repetition
    ci_low: float  # nan when n < 2
    ci_high: float


def summarize(values: Sequence[float], *, seed: int = SEED) -> Summary | None:
    """Median of the repetitions with its bootstrap CI (bench.analysis.stats); None without values."""
    data = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return None
    median = float(np.median(data))
    if data.size < 2:
        return Summary(1, median, median, median, math.nan, math.nan)
    low, high = bootstrap_ci([data.tolist()], np.median, seed=seed)
    return Summary(int(data.size), median, float(data.min()), float(data.max()), low, high)


def _native(value: Any) -> Any:
    """numpy scalars from a DataFrame -> Python scalars (so the records are plain, typed values)."""
    return value.item() if isinstance(value, np.generic) else value


def _records(frame: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [{name: _native(record[name]) for name in names} for record in frame.to_dict("records")]


@dataclass
class CellInfo:
    """The final attempt of one cell: identity from its spec, flags from the index, raw files on disk."""

    cell_id: str
    attempt: int
    kind: str
    engine: str  # native | python ("" for floor cells)
    arm: str
    twin_of: str
    client: str
    protocol: str
    scenario: str
    profile: str
    repetition: int
    status: str
    reason: str | None
    flagged: bool
    generator_limited: bool
    emulated: bool
    max_steal_pct: float
    wall_s: float | None
    path: Path
    cell: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def windows(self, phase: str) -> dict[str, dict[str, Any]]:
        return {w["label"]: w for w in self.cell.get("windows", []) if w.get("phase") == phase}


@dataclass
class GuestInfo:
    """One guests/<profile>-<n>.json record (a booted guest, or the error that kept it from starting)."""

    name: str
    profile: str
    number: int
    record: dict[str, Any]

    @property
    def error(self) -> str | None:
        error = self.record.get("error")
        return str(error) if error else None


@dataclass
class RunData:
    directory: Path
    manifest: dict[str, Any]
    plan: list[dict[str, Any]]
    attempts: list[dict[str, Any]]  # every line of cells.jsonl, re-runs included
    cells: dict[str, CellInfo]  # final attempts, by cell id (sorted)
    guests: list[GuestInfo]
    tidy: pd.DataFrame
    comparisons: list[Comparison]  # bench.analysis.verdicts.comparisons: the report's whole family
    _ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    _dists: dict[tuple[str, ...], Dist] = field(default_factory=dict)

    # ---- identity of the run --------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.directory.name))

    @property
    def options(self) -> dict[str, Any]:
        options = self.manifest.get("options")
        return options if isinstance(options, dict) else {}

    def _ordered(self, option: str, attribute: str) -> list[str]:
        """Values in the order the run was asked for, then any others found in the cells (sorted)."""
        wanted = [str(v) for v in self.options.get(option, [])]
        found = sorted({getattr(c, attribute) for c in self.cells.values() if c.kind == "load"} - set(wanted))
        return wanted + found

    @property
    def aa(self) -> list[Comparison]:
        """The A/A comparisons (an arm against its twin): whatever they find is noise."""
        return [c for c in self.comparisons if c.kind == "aa"]

    @property
    def clients(self) -> list[str]:
        """The python engine's arms (client kinds), in the order the run was asked for."""
        wanted = [str(v) for v in self.options.get("clients", [])]
        found = {c.client for c in self.cells.values() if c.kind == "load" and c.engine == "python"}
        return [c for c in wanted if c in found] + sorted(found - set(wanted))

    @property
    def native_arms(self) -> list[str]:
        """The native engine's arms: protocols in the order asked for, A/A twins after their original."""
        found = {c.arm: c for c in self.cells.values() if c.kind == "load" and c.engine == "native"}
        order = [str(p) for p in self.options.get("protocols", [])]
        names = sorted(found, key=lambda a: (order.index(found[a].protocol) if found[a].protocol in order
                                             else len(order), a))  # fmt: skip
        return names

    def arm_protocol(self, arm: str) -> str:
        return next((c.protocol for c in self.cells.values() if c.arm == arm), "")

    @property
    def scenarios(self) -> list[str]:
        return self._ordered("scenarios", "scenario")

    def scenarios_of(self, engine: str) -> list[str]:
        """The scenarios an engine ran (old runs: every scenario)."""
        asked = self.options.get("engine_scenarios", {}).get(engine)
        found = sorted({c.scenario for c in self.cells.values() if c.kind == "load" and c.engine == engine})
        if isinstance(asked, list):
            # Every scenario asked for, measured or not (a section then says it has no data for it).
            return [str(s) for s in asked] + [s for s in found if s not in asked]
        return found

    @property
    def profiles(self) -> list[str]:
        profiles = self._ordered("profiles", "profile")
        return sorted(profiles, key=lambda p: (p != "local", profiles.index(p)))

    @property
    def main_profile(self) -> str:
        """The profile of the main sections: the host ("local") when it has cells, else the first with any."""
        with_cells = {c.profile for c in self.cells.values() if c.ok}
        for profile in self.profiles:
            if profile in with_cells:
                return profile
        return self.profiles[0] if self.profiles else "local"

    def emulated_profile(self, profile: str) -> bool:
        accel = self.manifest.get("accel", {}).get(profile, {})
        if isinstance(accel, dict) and (accel.get("accel") == "tcg" or accel.get("emulated")):
            return True
        return any(g.record.get("emulated") for g in self.guests if g.profile == profile)

    def load_cells(
        self, *, scenario: str, profile: str, client: str | None = None, engine: str = "python"
    ) -> list[CellInfo]:
        """Measured load cells of one configuration and engine, by arm then repetition."""
        cells = [
            c
            for c in self.cells.values()
            if c.ok
            and c.kind == "load"
            and c.engine == engine
            and c.scenario == scenario
            and c.profile == profile
        ]
        if client is not None:
            cells = [c for c in cells if c.client == client]
        return sorted(cells, key=lambda c: (c.arm, c.repetition))

    def floor_cells(self, profile: str) -> list[CellInfo]:
        cells = [c for c in self.cells.values() if c.ok and c.kind == "floor" and c.profile == profile]
        return sorted(cells, key=lambda c: c.repetition)

    # ---- raw per-operation histograms -----------------------------------------------------------------
    def ops(self, cell_id: str) -> dict[str, Any]:
        if cell_id not in self._ops:
            path = self.cells[cell_id].path / "ops.json"
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
            self._ops[cell_id] = data if isinstance(data, dict) else {}
        return self._ops[cell_id]

    def op_stats(self, cell_id: str, phase: str, level: str, variant: str = "") -> dict[str, Any]:
        """{operation: OpStats JSON} of one window: closed (variant "") or open (corrected|uncorrected)."""
        data = self.ops(cell_id).get(phase, {})
        if phase == "wire":
            return data if isinstance(data, dict) else {}
        level_data = data.get(level, {}) if isinstance(data, dict) else {}
        if phase == "open":
            level_data = level_data.get(variant or "corrected", {})
        return level_data if isinstance(level_data, dict) else {}

    def dist(
        self, cell_id: str, phase: str, level: str, operation: str, variant: str = "", *, ttfi: bool = False
    ) -> Dist:
        """The decoded histogram of one operation in one window (cached)."""
        key = (cell_id, phase, level, operation, variant, "ttfi" if ttfi else "latency")
        if key not in self._dists:
            stats = self.op_stats(cell_id, phase, level, variant).get(operation)
            encoded = (
                None if not isinstance(stats, dict) else stats.get("ttfi_hdr" if ttfi else "latency_hdr")
            )
            self._dists[key] = decode(encoded) if isinstance(encoded, str) else EMPTY
        return self._dists[key]

    def window_dist(self, cell_id: str, phase: str, level: str, variant: str = "") -> Dist:
        """All operations of one window together (the scenario's mix)."""
        operations = sorted(self.op_stats(cell_id, phase, level, variant))
        return merge(self.dist(cell_id, phase, level, op, variant) for op in operations)


# ---- loading -------------------------------------------------------------------------------------------
def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return default


def _cells(directory: Path, attempts: list[dict[str, Any]], emulated: set[str]) -> dict[str, CellInfo]:
    cells: dict[str, CellInfo] = {}
    for cell_id, final in sorted(final_attempts(attempts).items()):
        attempt = int(final.get("attempt", 1))
        path = attempt_dir(directory, cell_id, attempt)
        cell = _read_json(path / "cell.json", {})
        spec = cell.get("spec", {}) if isinstance(cell, dict) else {}
        status = str(cell.get("status", final.get("status", "failed"))) if cell else "failed"
        reason = cell.get("reason") or final.get("reason") if cell else "cell.json missing or unreadable"
        profile = str(spec.get("profile", ""))
        cells[cell_id] = CellInfo(
            cell_id=cell_id,
            attempt=attempt,
            kind=str(spec.get("kind", "load")),
            engine=str(spec.get("engine", "python")) if spec.get("kind") != "floor" else "",
            arm=str(spec.get("arm") or spec.get("client", "")),
            twin_of=str(spec.get("twin_of", "")),
            client=str(spec.get("client", "")),
            protocol=str(spec.get("protocol", "")),
            scenario=str(spec.get("scenario", "")),
            profile=profile,
            repetition=int(spec.get("repetition", 0)),
            status=status,
            reason=None if reason is None else str(reason),
            flagged=bool(final.get("flagged")),
            generator_limited=bool(final.get("generator_limited") or cell.get("generator_limited")),
            emulated=profile in emulated,
            max_steal_pct=float(final.get("max_steal_pct") or cell.get("max_steal_pct") or 0.0),
            wall_s=final.get("wall_s"),
            path=path,
            cell=cell if isinstance(cell, dict) else {},
        )
    return cells


def _guests(directory: Path) -> list[GuestInfo]:
    guests = []
    folder = directory / GUESTS_DIR
    if not folder.is_dir():
        return []
    for path in folder.glob("*.json"):
        match = _GUEST_FILE.match(path.name)
        record = _read_json(path, None)
        if match is None or not isinstance(record, dict):
            continue
        profile = str(record.get("profile") or match["profile"])
        guests.append(GuestInfo(path.stem, profile, int(match["number"]), record))
    return sorted(guests, key=lambda g: (g.profile, g.number))


def _emulated_profiles(manifest: dict[str, Any], guests: list[GuestInfo]) -> set[str]:
    accel = manifest.get("accel", {})
    found = {
        p for p, a in accel.items() if isinstance(a, dict) and (a.get("accel") == "tcg" or a.get("emulated"))
    }
    return found | {g.profile for g in guests if g.record.get("emulated")}


def load_run(directory: Path, tidy: pd.DataFrame) -> RunData:
    """Everything the report shows, from the run's raw files and the tidy table built from them."""
    manifest = _read_json(directory / MANIFEST, {})
    plan = _read_json(directory / PLAN, [])
    attempts = read_index(directory)
    guests = _guests(directory)
    cells = _cells(directory, attempts, _emulated_profiles(manifest, guests))
    return RunData(
        directory=directory,
        manifest=manifest if isinstance(manifest, dict) else {},
        plan=plan if isinstance(plan, list) else [],
        attempts=attempts,
        cells=cells,
        guests=guests,
        tidy=tidy,
        comparisons=comparisons(tidy),
    )
