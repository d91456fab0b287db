"""The adapter-cost benchmark: its summary of windows, its bad input, and a short real run per protocol."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.calibrate.adapter_cost import format_table, summarize
from bench.cli import main

REPO = Path(__file__).resolve().parents[2]
TOOL = {"grpc": "h2load", "rest": "wrk", "soap": "wrk"}


def _window(stack: str, rps: float, us: float, **changes: Any) -> dict[str, Any]:
    return {
        "protocol": "rest",
        "generator": "wrk",
        "stack": stack,
        "phase": "measure",
        "superseded": False,
        "rps": rps,
        "target_cpu_us_per_request": us,
        "target_cpu_pct": 99.0,
        "generator_cpu_pct": 40.0,
        "steal_pct": 0.0,
        "other_cpu_pct": 2.0,
        "failures": 0,
        **changes,
    }


def test_summary_compares_rates_and_cpu_per_request_of_the_kept_windows() -> None:
    records = [
        _window("adapter", 900.0, 30.0, phase="warmup", superseded=True),  # warm-ups never count
        _window("adapter", 1.0, 99.0, superseded=True),  # nor do superseded (noisy, re-run) windows
        *(_window("adapter", rps, us) for rps, us in [(880.0, 31.0), (900.0, 30.0), (920.0, 29.0)]),
        *(_window("bare", rps, us) for rps, us in [(990.0, 27.5), (1000.0, 27.0), (1010.0, 26.5)]),
    ]
    (row,) = summarize(records)
    assert (row.adapter_rps, row.bare_rps) == (900.0, 1000.0)
    assert row.ratio == pytest.approx(0.9) and row.ratio_low <= 0.9 <= row.ratio_high
    assert (row.adapter_us, row.bare_us) == (30.0, 27.0)
    assert row.cpu_ratio == pytest.approx(0.9) and row.cpu_ratio_low <= 0.9 <= row.cpu_ratio_high
    assert row.notes == []
    table = format_table([row])
    assert re.search(
        r"^rest\s+wrk\s+900\s+1,000\s+0\.90 \[[\d.]+-[\d.]+\]\s+30\.0 / 27\.0\s+0\.90 \[", table, re.M
    )


def test_summary_notes_errors_and_a_busy_host_and_needs_both_stacks() -> None:
    records = [_window("adapter", 900.0, 30.0, failures=3), _window("bare", 1000.0, 27.0, other_cpu_pct=80.0)]
    (row,) = summarize(records, busy_threshold=25.0)
    assert math.isnan(row.ratio_low)  # one window per stack: no interval
    assert "errors: adapter 3" in row.notes and any(n.startswith("noisy host") for n in row.notes)
    assert summarize([_window("adapter", 900.0, 30.0)]) == []


def test_busy_windows_are_left_out_when_each_server_has_two_quiet_ones() -> None:
    busy = {"other_cpu_pct": 90.0}
    records = [
        *(_window("adapter", rps, 30.0) for rps in (900.0, 910.0)),
        _window("adapter", 300.0, 40.0, **busy),
        *(_window("bare", rps, 27.0) for rps in (1000.0, 1010.0)),
        _window("bare", 200.0, 35.0, **busy),
        _window("bare", 1005.0, 27.0, steal_pct=9.0),  # steal makes a window noisy too
    ]
    (row,) = summarize(records, busy_threshold=25.0, steal_threshold=5.0)
    assert (row.adapter_rps, row.bare_rps, row.adapter_us, row.bare_us) == (905.0, 1005.0, 30.0, 27.0)
    assert row.windows == "2+2 quiet of 3+4" and row.notes == []


def test_bad_input_is_one_message_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--adapters", "--protocols", "corba"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench calibrate: --protocols 'corba': choose from"), err


def test_dry_run_names_both_servers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--adapters", "--protocols", "rest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-m targets serve rest --dataset small" in out and "-m bench.micro._bare_server rest" in out


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["rest", "grpc", "soap"])
def test_a_short_run_measures_both_servers_without_errors(protocol: str, tmp_path: Path) -> None:
    if shutil.which(TOOL[protocol]) is None:
        pytest.skip(f"{TOOL[protocol]} is not installed (apt-get install -y wrk nghttp2-client)")
    out = tmp_path / "windows.jsonl"
    argv = [
        sys.executable,
        "-m",
        "bench.cli",
        "calibrate",
        "--adapters",
        "--protocols",
        protocol,
        "--duration",
        "1",
    ]
    argv += ["--repeats", "1", "--warmup", "0", "--users", "4", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    row = (
        rf"^{protocol}\s+{TOOL[protocol]}\s+[\d,]+\s+[\d,]+\s+\d+\.\d\d \[n/a\]\s+[\d.]+ / [\d.]+\s+\d+\.\d\d"
    )
    assert re.search(row, done.stdout, re.M), done.stdout
    assert "errors" not in done.stdout  # gRPC: h2load answers without a Book count as errors
    records = [json.loads(line) for line in out.read_text().splitlines()]
    kept = [r for r in records if not r["superseded"]]
    assert sorted(r["stack"] for r in kept) == ["adapter", "bare"]
    assert len({r["server_pid"] for r in kept}) == 2
    assert all(r["requests"] > 0 and r["failures"] == 0 for r in records)
