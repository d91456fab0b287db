"""The python engine's open loop against real targets that misbehave: a stalled server, an overloaded one,
and a client that blocks its own event loop. Each window runs in its own gevent process (_open_probe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def probe(**spec: Any) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tests.load._open_probe", json.dumps(spec)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_stalled_server_is_charged_to_the_step_not_to_its_setup_call() -> None:
    # write-heavy: every ReturnLoan step first creates the loan it returns (a setup CreateLoan call).
    out = probe(protocol="rest", client="rest-lean", scenario="write-heavy", rate=100, duration_s=2.0,
                stall_s=0.4)  # fmt: skip
    corrected, uncorrected = out["corrected"], out["uncorrected"]
    served = out["record"]["counters"]["calls"]
    # Setup calls reach the server but never an operation's histogram ...
    assert corrected["CreateLoan"]["n"] < served["CreateLoan"]
    assert corrected["CreateLoan"]["n"] + corrected["ReturnLoan"]["n"] <= served["CreateLoan"]
    # ... and the stall lands on the steps that waited for it, timed from their intended start: the step due
    # when the server stopped waited the whole stall, whatever its operation.
    assert max(c["p99_us"] for c in corrected.values()) >= 0.8 * 400_000, corrected
    for op in ("ReturnLoan", "CreateLoan", "AddBook"):
        assert corrected[op]["p99_us"] >= uncorrected[op]["p99_us"], op
    assert out["record"]["counters_ok"], out["record"]["counter_reason"]
    assert out["lateness_p99_us"] is not None  # every window records the generator's send lateness


def test_an_overloaded_server_shows_queueing_only_in_the_corrected_latency() -> None:
    # Every call busy-waits 5 ms in the server: at most ~200 calls/s, offered 320/s.
    out = probe(protocol="grpc", client="grpc", scenario="getbook", rate=320, duration_s=2.0, delay_us=5000,
                connections=4)  # fmt: skip
    corrected, uncorrected = out["corrected"]["GetBook"], out["uncorrected"]["GetBook"]
    assert uncorrected["p50_us"] >= 5000  # the injected delay is in every call
    assert corrected["p99_us"] > 4 * uncorrected["p99_us"]  # the queue is in the corrected figure only
    record = out["record"]
    assert record["achieved_rate"] < 0.85 * record["offered_rate"]
    assert record["counters_ok"], record["counter_reason"]


def test_a_client_that_blocks_its_event_loop_is_flagged_generator_limited() -> None:
    # Every 20th call the client spins 30 ms without yielding: the schedule slips, not the server.
    out = probe(protocol="rest", client="rest-lean", scenario="getbook", rate=200, duration_s=2.0,
                block_s=0.03, block_every=20)  # fmt: skip
    record = out["record"]
    assert record["late_dispatches"] > 0.05 * record["scheduled"]
    assert record["generator_limited"] and record["pacing_distorted"]
    assert record["pacing_p99_us"] >= 20_000
