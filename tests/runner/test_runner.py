"""`bench run` end to end on loopback: plan, interruption and resume, durability, compare."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis.tidy import build_tidy

REPO = Path(__file__).resolve().parents[2]
# Tiny but real: two clients, two repetitions, 0.3 s windows (each cell ~5 s), fixed seed.
TINY = [
    "--impls",
    "python",
    "--clients",
    "grpc,rest-lean",
    "--repeats",
    "2",
    "--duration",
    "0.3",
    "--seed",
    "11",
    "--no-report",
]

pytestmark = pytest.mark.slow


def bench(*args: str, results: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args, "--results-dir", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,  # type: ignore[arg-type]
    )


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir())


def finals(run: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in (run / "cells.jsonl").read_text().splitlines() if line.strip()]
    return [line for line in lines if line["final"]]


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + file.read_bytes())
    return digest.hexdigest()


def wait_for_final_cells(run_parent: Path, count: int, timeout_s: float = 240) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = run_dirs(run_parent)
        if runs and (runs[0] / "cells.jsonl").exists() and len(finals(runs[0])) >= count:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} cells finished within {timeout_s} s")


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    result = bench("run", *TINY, "--dry-run", results=tmp_path)
    assert result.returncode == 0, result.stderr
    # 2 clients x 2 repetitions + 2 floor cells, each with its CPU placement
    assert result.stdout.count("-local-r") == 6
    assert "grpc-mixed-local-r1" in result.stdout and "floor-local-r2" in result.stdout
    assert run_dirs(tmp_path) == []


def test_bad_options_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    for args, words in [
        (["--protocols", "corba"], "--protocols 'corba'"),
        (["--clients", "grpc,telnet"], "--clients 'telnet'"),
        (["--scenarios", "nope"], "--scenarios 'nope'"),
        (["--repeats", "0"], "--repeats"),
        (["--profiles", "no-such-profile"], "no-such-profile"),
    ]:
        result = bench("run", *args, "--dry-run", results=tmp_path)
        assert result.returncode != 0
        assert words in result.stderr, result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_without_losing_or_repeating_cells(
    tmp_path: Path, sig: signal.Signals
) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", *TINY, "--results-dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = wait_for_final_cells(tmp_path, 2)
        before = {str(c["cell_id"]): tree_digest(run / "cells" / str(c["cell_id"])) for c in finals(run)}
        runner.send_signal(sig)
        code = runner.wait(60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    # Nothing this run started survives it: not the cell process, not its target (death signals).
    deadline = time.monotonic() + 15
    while processes_mentioning(run.name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(run.name) == []
    if sig == signal.SIGINT:
        assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"

    resumed = bench("run", "--resume", run.name, "--no-report", results=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    plan = [c["cell_id"] for c in json.loads((run / "plan.json").read_text())]
    final_ids = [str(c["cell_id"]) for c in finals(run)]
    assert sorted(final_ids) == sorted(plan), "every planned cell finished exactly once"
    assert len(final_ids) == len(set(final_ids)), "no cell was repeated"
    for cell_id, digest in before.items():
        assert tree_digest(run / "cells" / cell_id) == digest, f"{cell_id} was rewritten by the resume"
    assert not list(run.glob("cells/*/.attempt-*.partial")), "no partial attempt left behind"
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    results = tmp_path_factory.mktemp("results")
    for seed in ("21", "22"):
        args = [a if a != "11" else seed for a in TINY]
        done = bench("run", *args, results=results)
        assert done.returncode == 0, done.stderr
    first, second = run_dirs(results)
    return first, second


def test_same_seed_gives_the_same_plan(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    first, _ = two_runs
    again = bench("run", *[a if a != "11" else "21" for a in TINY], "--dry-run", results=tmp_path)
    planned = [line.split()[0] for line in again.stdout.splitlines()[1:] if "-r" in line]
    assert planned == [c["cell_id"] for c in json.loads((first / "plan.json").read_text())]


def test_tidy_table_has_every_cell_and_documented_columns(two_runs: tuple[Path, Path]) -> None:
    run, _ = two_runs
    tidy = build_tidy(run)
    assert set(tidy["cell_id"]) == {c["cell_id"] for c in json.loads((run / "plan.json").read_text())}
    assert {"closed", "open", "wire", "floor", "cell"} <= set(tidy["phase"])
    for metric in [
        "latency_p50", "corrected_p99", "uncorrected_p99", "request_bytes", "target_cpu_us_per_request",
        "floor_p50", "max_closed_rps", "ttfi_p50",
    ]:  # fmt: skip
        assert metric in set(tidy["metric"]), metric
    assert (tidy["unit"] != "").all()
    import bench.analysis.tidy

    loaded = bench.analysis.tidy.load(run)  # one call, from the parquet file written on first load
    assert (run / "tidy.parquet").exists() and len(loaded) == len(tidy)


def _with_repetitions(tidy: pd.DataFrame, repeats: int, factor: float) -> pd.DataFrame:
    """The tidy table with its repetitions copied up to `repeats` (±1 % jitter) and latencies × factor."""
    import numpy as np

    rng = np.random.default_rng(0)
    parts = []
    for rep in range(1, repeats + 1):
        part = tidy[tidy["repetition"] == 1 + (rep - 1) % 2].copy()
        part["repetition"] = rep
        part["value"] *= rng.uniform(0.99, 1.01, len(part))
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    latency = out["metric"].str.startswith(("latency_", "corrected_", "uncorrected_"))
    out.loc[latency, "value"] *= factor
    return out


def test_compare_prints_deltas_and_fails_only_on_a_real_regression(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    results = first.parent
    same = bench("compare", first.name, second.name, "--fail-on-regression", "1000", results=results)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no significant difference" in same.stdout
    # Synthetic runs with 5 repetitions each (2 cannot reach p < 0.05): B three times slower than A.
    tidy = pd.read_parquet(first / "tidy.parquet")
    for name, factor in (("base5", 1.0), ("slow5", 3.0), ("same5", 1.0)):
        (results / name).mkdir()
        _with_repetitions(tidy, 5, factor).to_parquet(results / name / "tidy.parquet", index=False)
    worse = bench("compare", "base5", "slow5", "--fail-on-regression", "50", results=results)
    assert worse.returncode == 1, worse.stdout
    assert "significant regression" in worse.stdout
    fine = bench("compare", "base5", "same5", "--fail-on-regression", "50", results=results)
    assert fine.returncode == 0, fine.stdout


def test_unwritable_results_dir_fails_before_any_work(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() == 0:
            pytest.skip("root ignores directory permissions; covered by the disk-full test in tests/faults")
        result = bench("run", *TINY, results=locked)
        assert result.returncode != 0 and "cannot create" in result.stderr
    finally:
        locked.chmod(0o700)


def _cell(run: Path, cell_id: str) -> dict[str, object]:
    final = cells_by_id_(run)[cell_id]
    path = run / "cells" / cell_id / f"attempt-{final['attempt']}" / "cell.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def cells_by_id_(run: Path) -> dict[str, dict[str, object]]:
    return {str(c["cell_id"]): c for c in finals(run)}


def test_closed_model_on_locust_master_and_local_workers(tmp_path: Path) -> None:
    args = [
        "--clients",
        "rest-lean",
        "--repeats",
        "1",
        "--duration",
        "0.4",
        "--locust-workers",
        "2",
        "--no-report",
    ]
    done = bench("run", *args, results=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    cell = _cell(run, "rest-lean-mixed-local-r1")
    assert cell["status"] == "ok", cell.get("reason")
    closed = [w for w in cell["windows"] if w["phase"] == "closed"]  # type: ignore[union-attr,index]
    assert all(w["requests"] > 0 for w in closed), "the workers' histograms reached the master"
    logs = list((run / "cells" / "rest-lean-mixed-local-r1").glob("attempt-1/locust-worker-*.log"))
    assert len(logs) == 2


def test_remote_workers_connect_to_a_fixed_master_port(tmp_path: Path) -> None:
    """A "remote" worker on loopback, started exactly as the README tells users to start one elsewhere."""
    with socket_port() as port:
        pass
    worker = subprocess.Popen(
        ["bash", "-c", f"while true; do {sys.executable} -m locust -f bench/load/locustfile.py --worker "
         f"--master-host 127.0.0.1 --master-port {port} --scenario mixed --protocol rest-lean "
         "--loglevel WARNING; sleep 0.2; done"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        args = ["--clients", "rest-lean", "--repeats", "1", "--duration", "0.4", "--no-report"]
        done = bench("run", *args, "--remote-workers", "1", "--master-port", str(port), results=tmp_path)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    assert _cell(run, "rest-lean-mixed-local-r1")["status"] == "ok"


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    """A port that was free a moment ago (the master binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port
