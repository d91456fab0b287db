"""`bench run` with other implementations: the Node.js target as an arm, and an external target."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.load.processes import TargetProcess
from bench.paths import REPO

pytestmark = pytest.mark.slow
Start = Callable[..., TargetProcess]


def bench_run(*args: str, results: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench.cli", "run", *args, "--results-dir", str(results)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_node_and_go_arms_beside_the_python_ones_on_both_engines(tmp_path: Path) -> None:
    done = bench_run("--impls", "python,node,go", "--repeats", "1", "--python-repeats", "1", "--seed", "4",
                     "--dry-run", results=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    cells = {
        line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ") and "-local" in line
    }
    for arm in ("grpc@node", "grpc@go"):
        assert f"pilot-{arm}-getbook-local" in cells
        assert f"{arm}-native-getbook-local-r1" in cells and f"{arm}-python-mixed-local-r1" in cells
    assert not any(c.startswith(("rest@", "soap@", "rest-lean@", "soap-lean@")) for c in cells), cells


def test_an_external_target_is_verified_measured_and_labelled(start: Start, tmp_path: Path) -> None:
    external = start("grpc", impl="node", dataset="small", clock="system")
    args = ["--protocols", "grpc", "--aa-arm", "none", "--target", f"ext=grpc:{external.address}"]
    args += ["--python-scenarios", "getbook", "--repeats", "1", "--python-repeats", "1", "--duration", "0.3"]
    args += ["--seed", "8", "--no-report"]
    done = bench_run(*args, results=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    for engine in ("native", "python"):
        arm = manifest["options"]["implementations"][f"{engine}:grpc@ext"]
        assert arm["address"] == external.address
        assert arm["verified"].startswith("surface checks and dataset probe: 4 of 4 passed")
        assert any("no CPU pinning" in note for note in arm["uncontrolled"])
    for cell_id in ("grpc@ext-python-getbook-local-r1", "grpc@ext-native-getbook-local-r1"):
        cell = json.loads((run / "cells" / cell_id / "attempt-1" / "cell.json").read_text())
        assert cell["status"] == "ok", cell.get("reason")
        assert cell["spec"]["address"] == external.address and cell["spec"]["target_cpu"] is None
        windows = [w for w in cell["windows"] if w["phase"] == "closed"]
        assert windows and all(w["target_cpu_us_per_request"] is None for w in windows)
        assert all(w["requests"] > 0 for w in windows)
    native = json.loads(
        (run / "cells" / "grpc@ext-native-getbook-local-r1" / "attempt-1" / "cell.json").read_text()
    )
    assert (
        native["capacity"]["status"] == "not measured: the target's CPU is not observable (external target)"
    )
    assert external.alive()  # the harness never stops what it did not start


def test_an_external_target_that_fails_its_checks_is_refused_before_the_run(
    start: Start, tmp_path: Path
) -> None:
    wrong = start("grpc", dataset="tiny", seed=7)  # book 1 exists; a REST client cannot talk to it
    done = bench_run("--engine", "python", "--clients", "grpc", "--target", f"bad=rest:{wrong.address}",
                     "--python-repeats", "1", "--no-report", results=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert "rest-lean@bad fails verification" in done.stderr
    assert not [p for p in tmp_path.iterdir() if p.is_dir()], "no run directory for a refused run"
