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


def make_run(tmp_path: Path, *, cells: int, max_reruns: int, budget: int, pilots: bool = False) -> Run:
    arms = [Arm("grpc-lean", "python", "grpc", "grpc")]
    if pilots:
        arms.append(Arm("grpc", "native", "grpc", ""))
    plan = expand_plan(
        arms=arms,
        scenarios={"python": ["getbook"], "native": ["getbook"] if pilots else []},
        profiles=["local"],
        repeats={("python", "local"): cells, ("native", "local"): 1, ("floor", "local"): 0},
        seed=1,
        settings={"local": MeasureSettings()},
        placement={"local": (1, 0)},
    )
    options = {"steal_threshold_pct": 5.0, "max_reruns": max_reruns, "rerun_budget": budget, "seed": 1}
    manifest = {"run_id": "test", "options": options}
    return Run(tmp_path, manifest, plan)


def fake_attempts(
    run: Run, steal_by_attempt: dict[int, float], *, busy_by_attempt: dict[int, float] | None = None
) -> list[tuple[str, int]]:
    """Replace measuring with outcomes of the given CPU steal (and other processes' CPU) per attempt."""
    calls: list[tuple[str, int]] = []

    def attempt(spec: CellSpec, number: int) -> CellOutcome:
        calls.append((spec.cell_id, number))
        (run.dir / "cells" / spec.cell_id / f"attempt-{number}").mkdir(parents=True)
        steal = steal_by_attempt.get(number, 0.0)
        busy = (busy_by_attempt or {}).get(number, 0.0)
        return CellOutcome(spec.cell_id, number, "ok", None, steal, False, False, True, 0.1, busy)

    run._attempt = attempt  # type: ignore[method-assign]
    run._resolve = lambda spec: (spec, None)  # type: ignore[method-assign]
    return calls


def index(run: Run) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run.dir / "cells.jsonl").read_text().splitlines()]


def execute(run: Run) -> list[CellOutcome]:
    return run.execute(lambda label, outcome: None)


def test_a_noisy_cell_is_rerun_then_kept_and_flagged(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=1, max_reruns=1, budget=10)
    calls = fake_attempts(run, {1: 30.0, 2: 30.0})
    (outcome,) = execute(run)
    assert [n for _, n in calls] == [1, 2]
    assert outcome.final and outcome.flagged
    assert [line["final"] for line in index(run)] == [False, True]


def test_a_quiet_rerun_is_kept_unflagged(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=1, max_reruns=3, budget=10)
    calls = fake_attempts(run, {1: 30.0, 2: 1.0})
    (outcome,) = execute(run)
    assert [n for _, n in calls] == [1, 2]
    assert outcome.final and not outcome.flagged


def test_other_processes_on_the_pinned_cpus_make_a_cell_noisy_too(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=1, max_reruns=1, budget=10)
    calls = fake_attempts(run, {}, busy_by_attempt={1: 60.0})
    (outcome,) = execute(run)
    assert [n for _, n in calls] == [1, 2] and not outcome.flagged


def test_a_noisy_cell_is_requeued_later_not_rerun_at_once(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=8, max_reruns=1, budget=10)
    first = run.plan[0].cell_id
    calls = fake_attempts(run, {})
    original = run._attempt

    def noisy_first(spec: CellSpec, number: int) -> CellOutcome:
        outcome = original(spec, number)
        if spec.cell_id == first and number == 1:
            outcome.max_steal_pct = 30.0
        return outcome

    run._attempt = noisy_first  # type: ignore[method-assign]
    outcomes = execute(run)
    assert len(outcomes) == 8 and all(o.final for o in outcomes)
    order = [cell for cell, _ in calls]
    assert order[0] == first and order.count(first) == 2
    assert order.index(first, 1) > 1, "the re-run waits for other cells (the noise may have passed)"


def test_a_noisy_pilot_is_rerun_before_the_cells_that_need_its_rates(tmp_path: Path) -> None:
    run = make_run(tmp_path, cells=3, max_reruns=1, budget=10, pilots=True)
    assert run.plan[0].kind == "pilot"
    calls = fake_attempts(run, {1: 30.0})  # every first attempt is noisy
    execute(run)
    order = [cell for cell, _ in calls]
    pilot = run.plan[0].cell_id
    assert order[:2] == [pilot, pilot]


@pytest.mark.parametrize("budget", [0, 1])
def test_the_run_wide_budget_bounds_reruns(tmp_path: Path, budget: int) -> None:
    run = make_run(tmp_path, cells=6, max_reruns=2, budget=budget)
    calls = fake_attempts(run, {1: 30.0, 2: 30.0, 3: 30.0})
    execute(run)
    reruns = sum(1 for _, n in calls if n > 1)
    assert reruns == budget
    finals = [line for line in index(run) if line["final"]]
    assert len(finals) == len(run.plan) and all(line["flagged"] for line in finals)
