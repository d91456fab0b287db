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
# Tiny but real: the python engine, two clients, two repetitions, 0.3 s windows (each cell ~5 s), fixed seed.
TINY = ["--engine", "python", "--clients", "grpc,rest-lean", "--python-repeats", "2", "--duration", "0.3",
        "--seed", "11", "--no-report"]  # fmt: skip
# Both engines on one protocol: a pilot, a native cell, a python cell and the floor.
TINY_BOTH = ["--protocols", "rest", "--repeats", "1", "--python-repeats", "1", "--aa-arm", "none",
             "--duration", "0.3", "--seed", "12", "--no-report"]  # fmt: skip

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
    # 2 clients x 2 repetitions + 1 floor cell, each with its CPU placement
    assert result.stdout.count("-local-r") == 5
    assert "grpc-python-mixed-local-r1" in result.stdout and "floor-local-r1" in result.stdout
    assert run_dirs(tmp_path) == []


def test_dry_run_of_the_default_run_shows_arms_pilots_and_native_commands(tmp_path: Path) -> None:
    result = bench("run", "--dry-run", "--seed", "1", results=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected = ["pilot-grpc-getbook-local", "grpc-aa-native-getbook-local-r5", "soap-native-getbook-local-r1",
                "rest-lean-python-mixed-local-r4", "floor-local-r1"]  # fmt: skip
    for cell in expected:
        assert cell in out, cell
    # Pilots come first: every load cell takes its rates from them.
    lines = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and "-local" in line]
    assert all(name.startswith("pilot-") for name in lines[:3])
    assert "h2load -t1 -c1 -m<connections>" in out and "wrk -t1 -c<connections>" in out
    assert "gload run --spec <spec.json: model open" in out
    assert run_dirs(tmp_path) == []


def test_bad_options_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    for args, words in [
        (["--protocols", "corba"], "--protocols 'corba'"),
        (["--clients", "grpc,telnet"], "--clients 'telnet'"),
        (["--scenarios", "nope"], "--scenarios 'nope'"),
        (["--repeats", "0"], "--repeats"),
        (["--profiles", "no-such-profile"], "no-such-profile"),
        (["--engine", "turbo"], "argument --engine: invalid choice: 'turbo'"),
        (["--engine", "native", "--native-scenarios", "write-heavy"], "python-only operations"),
        (["--aa-arm", "corba"], "--aa-arm"),
        (["--inject-delay", "-5"], "--inject-delay"),
        (["--topology", "split", "--backend-protocols", "corba"], "--backend-protocols 'corba'"),
    ]:
        result = bench("run", *args, "--dry-run", results=tmp_path)
        assert result.returncode != 0
        assert words in result.stderr, result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_without_losing_or_repeating_cells(
    tmp_path: Path, sig: signal.Signals
) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", *TINY_BOTH, "--results-dir", str(tmp_path)],
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
    # The copies stand for quiet, assessable repetitions: what is under test is compare's rule, not the
    # flags of the (possibly noisy) run they were copied from.
    out["not_assessable"] = ""
    latency = out["metric"].str.startswith(("latency_", "corrected_", "uncorrected_"))
    out.loc[latency, "value"] *= factor
    return out


def test_compare_prints_deltas_and_fails_only_on_a_real_regression(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    results = first.parent
    same = bench("compare", first.name, second.name, "--fail-on-regression", "1000", results=results)
    assert same.returncode == 0, same.stdout + same.stderr
    # 2 repetitions cannot reach p < 0.05 (and a busy host excludes more): not assessable, never a verdict
    assert "not assessable" in same.stdout and "comparisons: " in same.stdout
    # Synthetic runs with 5 repetitions each (2 cannot reach p < 0.05): B three times slower than A.
    tidy = pd.read_parquet(first / "tidy.parquet")
    for name, factor in (("base5", 1.0), ("slow5", 3.0), ("same5", 1.0)):
        (results / name).mkdir()
        _with_repetitions(tidy, 5, factor).to_parquet(results / name / "tidy.parquet", index=False)
    worse = bench("compare", "base5", "slow5", "--fail-on-regression", "50", results=results)
    assert worse.returncode == 1, worse.stdout
    assert "meaningful regression(s) beyond 50" in worse.stdout
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
    args = ["--engine", "python", "--clients", "rest-lean", "--python-repeats", "1", "--duration", "0.4",
            "--locust-workers", "2", "--no-report"]  # fmt: skip
    done = bench("run", *args, results=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    cell = _cell(run, "rest-lean-python-mixed-local-r1")
    assert cell["status"] == "ok", cell.get("reason")
    closed = [w for w in cell["windows"] if w["phase"] == "closed"]  # type: ignore[union-attr,index]
    assert all(w["requests"] > 0 for w in closed), "the workers' histograms reached the master"
    logs = list((run / "cells" / "rest-lean-python-mixed-local-r1").glob("attempt-1/locust-worker-*.log"))
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
        args = ["--engine", "python", "--clients", "rest-lean", "--python-repeats", "1", "--duration", "0.4",
                "--no-report"]  # fmt: skip
        done = bench("run", *args, "--remote-workers", "1", "--master-port", str(port), results=tmp_path)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    cell = _cell(run, "rest-lean-python-mixed-local-r1")
    assert cell["status"] == "ok", cell.get("reason")
    closed = [w for w in cell["windows"] if w["phase"] == "closed"]  # type: ignore[union-attr,index]
    # Every call came from the remote worker (the master runs no users): its histograms reached the master.
    assert closed and all(w["requests"] > 0 for w in closed)


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    """A port that was free a moment ago (the master binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


def test_native_run_reports_capacity_only_from_checked_server_bound_windows(tmp_path: Path) -> None:
    args = ["--engine", "native", "--protocols", "grpc,rest", "--repeats", "1", "--duration", "0.5",
            "--seed", "4", "--no-report"]  # fmt: skip
    done = bench("run", *args, results=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    ids = {str(c["cell_id"]) for c in finals(run)}
    assert ids == {
        "pilot-grpc-getbook-local", "pilot-rest-getbook-local", "grpc-native-getbook-local-r1",
        "grpc-aa-native-getbook-local-r1", "rest-native-getbook-local-r1", "floor-local-r1",
    }  # fmt: skip
    for cell_id in ("grpc-native-getbook-local-r1", "rest-native-getbook-local-r1"):
        cell = _cell(run, cell_id)
        assert cell["status"] == "ok", cell.get("reason")
        windows = cell["windows"]  # type: ignore[index]
        assert {w["phase"] for w in windows} == {"closed", "open"}  # type: ignore[index]
        assert all(w["counters_ok"] is not None and "counters" in w for w in windows)  # type: ignore[index]
        assert {w["tool"] for w in windows} <= {"wrk", "h2load", "gload"}  # type: ignore[index]
        # Equal offered load: both arms' "eq" rates are the same absolute numbers.
        rates = {w["label"]: w["offered_rate"] for w in windows if w["phase"] == "open"}  # type: ignore[index]
        assert {"eq50", "eq75"} <= set(rates)
        status = cell["capacity"]["status"]  # type: ignore[index]
        bound = [w for w in windows if w["phase"] == "closed" and w["server_bound"]]  # type: ignore[index]
        assert (status == "server-bound") == bool(bound), (status, windows)
    eq = [
        {w["label"]: w["offered_rate"] for w in _cell(run, c)["windows"] if w["phase"] == "open"}  # type: ignore[index]
        for c in ("grpc-native-getbook-local-r1", "rest-native-getbook-local-r1")
    ]
    assert eq[0]["eq50"] == eq[1]["eq50"] and eq[0]["eq75"] == eq[1]["eq75"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["native_tools"]) == {"wrk", "h2load", "gload"}
    tidy = build_tidy(run)
    capacity = tidy[tidy["metric"] == "capacity_rps"]
    assert set(capacity["arm"]) == {"grpc", "grpc-aa", "rest"}
    assert (capacity[capacity["not_assessable"] == ""]["server_bound"] == True).all()  # noqa: E712
