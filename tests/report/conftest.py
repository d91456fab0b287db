"""Fixtures for the report tests: one small real run per session (two clients, two short repetitions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `bench run`: grpc and rest-lean, 2 repetitions, 0.5 s windows (tests change only copies)."""
    results = tmp_path_factory.mktemp("results")
    argv = [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        "--impls",
        "python",
        "--clients",
        "grpc,rest-lean",
        "--repeats",
        "2",
        "--duration",
        "0.5",
        "--results-dir",
        str(results),
        "--no-report",
        "--seed",
        "3",
        # A steal re-run on a noisy host would change the index's shape from run to run; the tests that
        # need re-runs synthesize them (synth.flag_cell), so this fixture is the same on every machine.
        "--max-reruns",
        "0",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
