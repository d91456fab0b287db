"""bench calibrate: tool output parsing, window scheduling, the summary table, and a short real run."""

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

from bench.calibrate.windows import format_table, measure_protocol, ratio_ci, summarize
from bench.load.native.runs import lua_long_string
from bench.load.native.tools import parse_h2load, parse_wrk

REPO = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:43103/books/999
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   520.64us    1.20ms  16.23ms   94.53%
    Req/Sec    13.73k     4.31k   18.46k    60.00%
  13640 requests in 1.00s, 3.37MB read
  Non-2xx or 3xx responses: 13640
Requests/sec:  13599.32
Transfer/sec:      3.36MB
"""

H2LOAD_OUTPUT = """finished in 1.00s, 3211.00 req/s, 369.78KB/s
requests: 3211 total, 3215 started, 3211 done, 3211 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 3211 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 369.78KB (378652) total, 9.48KB (9708) headers (space savings 96.27%), 185.01KB (189449) data
"""


def test_parse_wrk_counts_non_2xx_as_failures() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert (result.requests, result.failures, result.rps) == (13640, 13640, 13599.32)


def test_parse_h2load_reads_rate_and_data_bytes() -> None:
    result = parse_h2load(H2LOAD_OUTPUT)
    assert (result.requests, result.failures, result.rps, result.data_bytes) == (3211, 0, 3211.0, 189449)


def test_parse_rejects_foreign_output() -> None:
    with pytest.raises(ValueError):
        parse_wrk("command not found")
    with pytest.raises(ValueError):
        parse_h2load("")


def test_lua_long_strings_survive_closing_brackets_in_the_body() -> None:
    assert lua_long_string(b"<a>]]</a>") == "[=[<a>]]</a>]=]"
    assert lua_long_string(b"<a>]=]</a>") == "[[<a>]=]</a>]]"  # "]=]" closes only a level-1 string
    assert lua_long_string(b'{"x": 1}') == '[[{"x": 1}]]'
    assert lua_long_string(b"[1, [2]]") == "[=[[1, [2]]]=]"  # "]]" inside would close [[ early
    assert lua_long_string(b"ends with ]") == "[=[ends with ]]=]"  # so would the body's own last "]"
    with pytest.raises(ValueError, match="leading newline"):
        lua_long_string(b"\n<a/>")


def _fake(name: str, rps: float, steal: list[float]) -> Any:
    """A generator whose windows report `rps` and the given steal values in turn (then 0)."""
    calls: list[int] = []

    def window(duration_s: int) -> dict[str, Any]:
        calls.append(duration_s)
        return {
            "protocol": "rest",
            "generator": name,
            "client": name,
            "rps": rps,
            "steal_pct": steal.pop(0) if steal else 0.0,
            "failures": 0,
            "generator_cpu_pct": 50.0 if name == "wrk" else 95.0,
            "other_cpu_pct": 1.0,
        }

    window.calls = calls  # type: ignore[attr-defined]
    return window


def test_noisy_windows_are_rerun_and_the_first_attempt_is_kept_as_superseded() -> None:
    wrk, locust = _fake("wrk", 1000.0, [0.0, 9.0, 8.0]), _fake("locust", 500.0, [])
    records = measure_protocol(
        {"wrk": wrk, "locust": locust},
        duration_s=3,
        repeats=3,
        warmup_s=0.5,
        steal_threshold=5.0,
        max_reruns=1,
        seed=1,
    )
    assert [r["phase"] for r in records[:2]] == ["warmup", "warmup"]
    assert wrk.calls[0] == 1  # warm-up rounded up to whole seconds (wrk's unit)
    measured = [r for r in records if r["phase"] == "measure"]
    wrk_windows = [r for r in measured if r["generator"] == "wrk"]
    # (the warm-up took the first value) steal 9 % -> re-run (steal 8 %) -> kept although still noisy
    assert [(r["steal_pct"], r["superseded"]) for r in wrk_windows] == [
        (9.0, True), (8.0, False), (0.0, False), (0.0, False),
    ]  # fmt: skip
    assert len([r for r in measured if r["generator"] == "locust"]) == 3
    rows = summarize(records, steal_threshold=5.0)
    assert len(rows) == 1
    row = rows[0]
    assert (row.native_rps, row.locust_rps, row.ratio) == (1000.0, 500.0, 0.5)
    assert "generator-limited" in row.notes and any("noisy" in n for n in row.notes)
    assert "0.50 [0.50-0.50]" in format_table(rows)


def test_windows_of_a_busy_host_are_rerun_too() -> None:
    wrk = _fake("wrk", 1000.0, [])
    records = measure_protocol(
        {"wrk": wrk},
        duration_s=1,
        repeats=1,
        warmup_s=0,
        steal_threshold=5.0,
        busy_threshold=0.5,  # the fake's other processes use 1 % of a CPU
        max_reruns=2,
        seed=0,
    )
    assert [(r["noise"], r["superseded"]) for r in records] == [
        ("busy", True),
        ("busy", True),
        ("busy", False),
    ]


def test_window_order_is_randomized_but_reproducible() -> None:
    def order(seed: int) -> list[str]:
        records = measure_protocol(
            {"wrk": _fake("wrk", 1.0, []), "locust": _fake("locust", 1.0, [])},
            duration_s=1,
            repeats=8,
            warmup_s=0,
            steal_threshold=5.0,
            max_reruns=0,
            seed=seed,
        )
        return [r["generator"] for r in records]

    assert order(3) == order(3)
    firsts = order(3)[::2]
    assert set(firsts) == {"wrk", "locust"}


def test_ratio_ci_brackets_the_point_estimate() -> None:
    point, low, high = ratio_ci([480.0, 500.0, 530.0], [950.0, 1000.0, 1040.0])
    assert point == pytest.approx(0.5)
    assert low <= point <= high
    point, low, high = ratio_ci([1.0], [2.0])
    assert point == 0.5 and math.isnan(low) and math.isnan(high)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_calibrate_runs_and_prints_a_ratio(tmp_path: Path) -> None:
    out = tmp_path / "windows.jsonl"
    argv = [sys.executable, "-m", "bench.cli", "calibrate", "--protocols", "rest", "--duration", "1"]
    argv += ["--repeats", "1", "--warmup", "0", "--users", "4", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^rest\s+wrk\s+[\d,]+\s+rest-lean\s+[\d,]+\s+\d+\.\d\d \[", done.stdout, re.M), (
        done.stdout
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["generator"] for r in records} == {"wrk", "locust"}
    assert all(r["requests"] > 0 and r["failures"] == 0 for r in records)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("h2load") is None, reason="h2load is not installed (apt-get install -y nghttp2-client)"
)
def test_calibrate_grpc_answers_are_checked(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bench.cli", "calibrate", "--protocols", "grpc", "--duration", "1"]
    argv += ["--repeats", "1", "--warmup", "0", "--users", "4"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^grpc\s+h2load\s+[\d,]+\s+grpc\s+[\d,]+\s+\d+\.\d\d \[", done.stdout, re.M), (
        done.stdout
    )
    assert "errors" not in done.stdout
