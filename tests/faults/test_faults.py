"""Faults during a run: a target killed or hung mid-cell, a results disk that is read-only or fills up.

Each fault is injected into a real `bench run` on loopback; the run must record the failure with its reason,
go on with the other cells, lose nothing already finished, and leave no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.test_runner import finals, processes_mentioning, run_dirs, wait_for_final_cells

REPO = Path(__file__).resolve().parents[2]
ONE_CELL = ["--engine", "python", "--clients", "grpc", "--python-repeats", "1", "--duration", "0.3",
            "--seed", "5", "--no-report"]  # fmt: skip
NATIVE = ["--engine", "native", "--protocols", "grpc", "--aa-arm", "none", "--repeats", "1",
          "--duration", "0.3", "--seed", "5", "--no-report"]  # fmt: skip

pytestmark = pytest.mark.slow


def bench_run(
    results: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", *args, "--results-dir", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cells_by_id(run: Path) -> dict[str, dict[str, object]]:
    return {str(c["cell_id"]): c for c in finals(run)}


def test_target_killed_mid_cell_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    result = bench_run(tmp_path, *ONE_CELL, env={"BENCH_FAULT": "kill-target:closed"})
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path)
    cells = cells_by_id(run)
    assert cells["grpc-python-mixed-local-r1"]["status"] == "failed"
    assert "target exited with code -9" in str(cells["grpc-python-mixed-local-r1"]["reason"])
    assert cells["floor-local-r1"]["status"] == "ok", "the other cells still ran"
    assert "failed" in result.stderr  # shown on the console as it happens
    assert processes_mentioning(run.name) == []


def test_native_cell_whose_target_dies_says_so_and_its_dependants_say_why(tmp_path: Path) -> None:
    result = bench_run(tmp_path, *NATIVE, env={"BENCH_FAULT": "kill-target:closed"})
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path)
    cells = cells_by_id(run)
    pilot = cells["pilot-grpc-getbook-local"]
    assert pilot["status"] == "failed" and "target exited with code -9" in str(pilot["reason"])
    load = cells["grpc-native-getbook-local-r1"]
    assert load["status"] == "failed" and "pilot-grpc-getbook-local" in str(load["reason"])
    assert cells["floor-local-r1"]["status"] == "ok"
    assert processes_mentioning(run.name) == []


def test_native_cell_of_a_hung_target_fails_by_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    result = bench_run(tmp_path, *NATIVE, "--request-timeout", "1", env={"BENCH_FAULT": "stop-target:closed"})
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 150
    (run,) = run_dirs(tmp_path)
    pilot = cells_by_id(run)["pilot-grpc-getbook-local"]
    assert pilot["status"] == "failed" and "no request completed successfully" in str(pilot["reason"])
    assert processes_mentioning(run.name) == [], "the stopped target was killed"


def test_hung_target_times_out_and_the_cell_fails(tmp_path: Path) -> None:
    started = time.monotonic()
    result = bench_run(
        tmp_path, *ONE_CELL, "--request-timeout", "1", env={"BENCH_FAULT": "stop-target:closed"}
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 120, "a hang must end by timeout, not by waiting forever"
    (run,) = run_dirs(tmp_path)
    cell = cells_by_id(run)["grpc-python-mixed-local-r1"]
    assert cell["status"] == "failed"
    reason = str(cell["reason"])
    # Whichever notices first: the calls timing out, or the server's counters not answering.
    assert ("no request completed successfully" in reason and "transport:timeout" in reason) or (
        "cannot read the target's counters" in reason and "timed out" in reason
    ), reason
    assert processes_mentioning(run.name) == [], "the stopped target was killed"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small dedicated filesystem (root only): lets the test fill the disk or make it read-only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root with CAP_SYS_ADMIN"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_read_only_results_dir_is_refused_before_any_work(tmpfs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    result = bench_run(tmpfs, *ONE_CELL)
    assert result.returncode != 0
    assert "cannot create results" in result.stderr and "Read-only file system" in result.stderr


def test_too_little_space_is_refused_before_any_work(tmpfs: Path) -> None:
    filler = tmpfs / "filler"
    subprocess.run(["fallocate", "-l", "30m", str(filler)], check=True)
    result = bench_run(tmpfs, *ONE_CELL)
    assert result.returncode != 0
    assert "MiB free" in result.stderr and "needs about" in result.stderr


def test_disk_full_mid_run_stops_cleanly_and_the_run_resumes(tmpfs: Path) -> None:
    args = ["--engine", "python", "--clients", "grpc,rest-lean", "--python-repeats", "2", "--duration", "0.3",
            "--seed", "9", "--no-report"]  # fmt: skip
    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", *args, "--results-dir", str(tmpfs)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    filler = tmpfs / "filler"
    try:
        run = wait_for_final_cells(tmpfs, 1)
        done_before = {cid: c for cid, c in cells_by_id(run).items()}
        # Fill the disk completely: the next raw file cannot be written.
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False)
        _, err = runner.communicate(timeout=240)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 1, err
    assert "No space left on device" in err and f"bench run --resume {run.name}" in err
    for cell_id, cell in done_before.items():
        assert cells_by_id(run)[cell_id] == cell, "a finished cell was lost"
        attempt = run / "cells" / cell_id / f"attempt-{cell['attempt']}" / "cell.json"
        assert json.loads(attempt.read_text())["status"] == cell["status"]
    assert processes_mentioning(run.name) == []

    filler.unlink()
    resumed = bench_run(tmpfs, "--resume", run.name, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    plan = [c["cell_id"] for c in json.loads((run / "plan.json").read_text())]
    assert sorted(cells_by_id(run)) == sorted(plan)
    assert len(finals(run)) == len(plan), "no cell was repeated"
