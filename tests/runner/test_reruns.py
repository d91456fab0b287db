"""The steal policy of the runner: re-run noisy cells a bounded number of times, then keep and flag them.

The cells themselves are replaced by a stand-in that reports a chosen CPU steal: the policy is what is under
test here (tests/runner/test_runner.py runs real cells).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run.plan import Arm, CellSpec, MeasureSettings, expand_plan
from bench.run.runner import CellOutcome, Run


def make_run(tmp_path: Path, *, cells: int, max_reruns: int, budget: int) -> Run:
    plan = expand_plan(
        arms=[Arm("grpc", "grpc")],
        scenarios=["getbook"],
        profiles=["local"],
        repeats={"local": cells // 2},
        seed=1,
        settings={"local": MeasureSettings()},
        placement={"local": (1, 0)},
    )
    options = {"steal_threshold_pct": 5.0, "max_reruns": max_reruns, "rerun_budget": budget}
    manifest = {"run_id": "test", "options": options}
    return Run(tmp_path, manifest, plan)


def fake_attempts(run: Run, steal_by_attempt: dict[int, float]) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def attempt(spec: CellSpec, number: int) -> CellOutcome:
        calls.append((spec.cell_id, number))
        steal = steal_by_attempt.get(number, 0.0)
        return CellOutcome(spec.cell_id, number, "ok", None, steal, False, False, True, 0.1)

    run._attempt = attempt  # type: ignore[method-assign]
    return calls


def index(run: Run) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run.dir / "cells.jsonl").read_text().splitlines()]


def test_a_noisy_cell_is_rerun_then_kept_and_flagged(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=2, max_reruns=1, budget=10)
    calls = fake_attempts(run, {1: 30.0, 2: 30.0})
    outcome = run._run_with_reruns(run.plan[0])
    assert [n for _, n in calls] == [1, 2]
    assert outcome.final and outcome.flagged
    lines = index(run)
    assert [line["final"] for line in lines] == [False, True]


def test_a_quiet_rerun_is_kept_unflagged(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=2, max_reruns=3, budget=10)
    calls = fake_attempts(run, {1: 30.0, 2: 1.0})
    outcome = run._run_with_reruns(run.plan[0])
    assert [n for _, n in calls] == [1, 2]
    assert outcome.final and not outcome.flagged


@pytest.mark.parametrize("budget", [0, 1])
def test_the_run_wide_budget_bounds_reruns(tmp_path: Path, budget: int) -> None:
    run = make_run(tmp_path, cells=6, max_reruns=2, budget=budget)
    calls = fake_attempts(run, {1: 30.0, 2: 30.0, 3: 30.0})
    for spec in run.plan:
        run._run_with_reruns(spec)
    reruns = sum(1 for _, n in calls if n > 1)
    assert reruns == budget
    finals = [line for line in index(run) if line["final"]]
    assert len(finals) == len(run.plan) and all(line["flagged"] for line in finals)
