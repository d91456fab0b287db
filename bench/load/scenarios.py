"""Scenarios as data (bench/load/scenarios.toml): operation weights, dataset, parameters; validated."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from targets.core import DATASETS, OPERATIONS

__all__ = ["SCENARIO_FILE", "Scenario", "ScenarioError", "load_scenarios"]

SCENARIO_FILE = Path(__file__).with_name("scenarios.toml")
_KEYS = {"description", "dataset", "weights", "list_category", "bulk_size", "update_batch"}


class ScenarioError(ValueError):
    """A scenario file or entry is invalid; the message names the file, the scenario and the key."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    dataset: str
    weights: dict[str, int] = field(hash=False)
    list_category: str = "size-100"
    bulk_size: int = 10
    update_batch: int = 1

    @property
    def operations(self) -> list[str]:
        return [op for op, weight in self.weights.items() if weight > 0]


def _positive_int(where: str, key: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ScenarioError(f"{where}: {key} must be an integer between 1 and {maximum}, got {value!r}")
    return value


def _parse(path: Path, name: str, table: Any) -> Scenario:
    where = f"{path}: [{name}]"
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    dataset = table.get("dataset", "small")
    if dataset not in DATASETS:
        raise ScenarioError(f"{where}: dataset {dataset!r} is not one of {list(DATASETS)}")
    weights = table.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ScenarioError(f"{where}: weights must be a non-empty table of operation = weight")
    for operation, weight in weights.items():
        if operation not in OPERATIONS:
            raise ScenarioError(
                f"{where}: weights.{operation} is not an operation; allowed: {list(OPERATIONS)}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ScenarioError(
                f"{where}: weights.{operation} must be a non-negative integer, got {weight!r}"
            )
    if not any(weights.values()):
        raise ScenarioError(f"{where}: at least one weight must be positive")
    return Scenario(
        name=name,
        description=str(table.get("description", "")),
        dataset=dataset,
        weights=dict(weights),
        list_category=str(table.get("list_category", "size-100")),
        bulk_size=_positive_int(where, "bulk_size", table.get("bulk_size", 10), 10_000),
        update_batch=_positive_int(where, "update_batch", table.get("update_batch", 1), 1_000),
    )


def load_scenarios(path: Path = SCENARIO_FILE) -> dict[str, Scenario]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    return {name: _parse(path, name, table) for name, table in data.items()}
