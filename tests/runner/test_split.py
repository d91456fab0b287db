"""`bench run --topology split`: the gateway over its two services, one arm per backend protocol."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.analysis.tidy import build_tidy
from bench.report.build import build_report
from tests.runner.test_runner import bench, finals, processes_mentioning, run_dirs

pytestmark = pytest.mark.slow


def _cell(run: Path, cell_id: str) -> dict[str, object]:
    final = next(c for c in finals(run) if c["cell_id"] == cell_id)
    data: dict[str, object] = json.loads(
        (run / "cells" / cell_id / f"attempt-{final['attempt']}" / "cell.json").read_text()
    )
    return data


def test_split_run_compares_backend_protocols_end_to_end(tmp_path: Path) -> None:
    args = ["run", "--topology", "split", "--backend-protocols", "grpc,soap", "--repeats", "1",
            "--python-repeats", "1", "--python-scenarios", "read-heavy", "--duration", "0.4", "--seed", "6",
            "--no-report"]  # fmt: skip
    done = bench(*args, results=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    ids = {str(c["cell_id"]) for c in finals(run)}
    assert {"gw-grpc-native-getbook-local-r1", "gw-soap-native-getbook-local-r1",
            "gw-grpc-aa-native-getbook-local-r1", "gw-grpc-python-read-heavy-local-r1"} <= ids  # fmt: skip
    native = _cell(run, "gw-grpc-native-getbook-local-r1")
    assert native["status"] == "ok", native.get("reason")
    windows = native["windows"]  # type: ignore[index]
    for window in windows:  # type: ignore[union-attr]
        # The services' counters, summed, agree with the tool (ReserveCopy and friends left out).
        assert window["counters_ok"], window.get("counter_reason")
        cpu = window["process_cpu_s"]
        assert set(cpu) == {"gateway", "books", "circulation"} and cpu["gateway"] > 0 and cpu["books"] > 0
    python = _cell(run, "gw-soap-python-read-heavy-local-r1")
    assert python["status"] == "ok", python.get("reason")
    hops = python["hops"]  # type: ignore[index]
    timing = hops["timing"]["GetBook"]  # type: ignore[index]
    assert timing["client"] >= timing["total"] >= timing["books"] > 0  # the gateway's parts, nested
    sent, answered = hops["bytes"]["ListBooksByCategory"]["gateway->books"]  # type: ignore[index]
    assert sent > 0 and answered > 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["options"]["topology"]["kind"] == "split"
    tidy = build_tidy(run)
    assert {"cpu_us_per_request_gateway", "hop_books", "hop_response_bytes"} <= set(tidy["metric"])
    document = build_report(run).read_text()
    assert '<section id="topology">' in document and 'id="fig-hops-read-heavy"' in document
    assert "could not be built" not in document
    assert processes_mentioning(run.name) == []


def test_a_backend_killed_mid_cell_fails_its_calls_and_the_cell_records_the_outage(tmp_path: Path) -> None:
    args = ["run", "--topology", "split", "--backend-protocols", "rest", "--engine", "python",
            "--python-repeats", "1", "--python-scenarios", "read-heavy", "--duration", "1.5", "--seed", "7",
            "--no-report"]  # fmt: skip
    env = {**os.environ, "BENCH_FAULT": "kill-books:closed", "BENCH_FAULT_OUTAGE_S": "2"}
    done = bench(*args, results=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (run,) = run_dirs(tmp_path)
    cell = _cell(run, "gw-rest-python-read-heavy-local-r1")
    assert cell["status"] == "ok", cell.get("reason")
    fault = cell["fault"]  # type: ignore[index]
    assert fault["process"] == "books" and fault["ready_at"] > fault["restarted_at"] > fault["killed_at"]
    ops = json.loads((run / "cells" / cell["spec"]["cell_id"] / "attempt-1" / "ops.json").read_text())  # type: ignore[index]
    closed = ops["closed"]["u1"]  # the outage (2 s) outlasts the warm-up (1 s): it reaches the window
    # Book reads failed fast with 503 (Unavailable) while books was down; user reads went on.
    assert closed["GetBook"]["errors"].get("Unavailable", 0) > 0
    assert closed["GetUser"]["failures"] == 0 and closed["GetUser"]["requests"] > 0
    assert processes_mentioning(run.name) == []
