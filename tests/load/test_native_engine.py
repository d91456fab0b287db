"""The native engine against real targets: what the tools send is what the servers count, a request the
server answers with an error is caught, and a target that shares its CPU is never reported as a capacity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest

from bench.load.counters import check_counts, scrape
from bench.load.native.engine import NativeEngine
from bench.load.native.preflight import PreflightError, preflight
from bench.load.native.requests import request_pool
from bench.load.native.runs import run_h2load
from bench.load.processes import TargetProcess
from bench.load.scenarios import load_scenarios
from bench.run.cell import capacity
from bench.run.windows import measure_window

Start = Callable[..., TargetProcess]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("wrk") and shutil.which("h2load") and shutil.which("go")),
        reason="the native engine needs wrk, h2load and go (apt-get install -y wrk nghttp2-client golang-go "
        "golang-google-grpc-dev)",
    ),
]


def _engine(target: TargetProcess, protocol: str, scenario: str) -> NativeEngine:
    return NativeEngine(
        protocol, target.address, load_scenarios()[scenario], cpu=None, seed=3, timeout_s=10.0
    )


def _window(
    target: TargetProcess, run: Callable[[], object], phase: str, **cpus: int | None
) -> dict[str, object]:
    measured = measure_window(
        run,  # type: ignore[arg-type]
        phase=phase,
        label="test",
        target=target,
        target_cpu=cpus.get("target_cpu"),
        generator_cpu=cpus.get("generator_cpu"),
        steal_threshold_pct=100.0,
    )
    return measured.record


@pytest.mark.parametrize("protocol", ["grpc", "rest", "soap"])
@pytest.mark.parametrize("scenario", ["getbook", "read-heavy", "streaming"])
def test_every_operation_the_tool_sends_is_what_the_server_counts(
    protocol: str, scenario: str, start: Start
) -> None:
    target = start(protocol, dataset="small", metrics=True)
    engine = _engine(target, protocol, scenario)
    engine.preflight()
    operations = set(load_scenarios()[scenario].operations)
    for phase, run in (("closed", lambda: engine.closed(4, 1.0)), ("open", lambda: engine.open(150.0, 1.0))):
        before = scrape(target.metrics_address)
        result = run()
        after = scrape(target.metrics_address)
        served = after - before
        assert set(result.sent) == operations and all(result.sent[op] > 0 for op in operations), result.sent
        for op in operations:
            assert abs(served.calls.get(op, 0) - result.sent[op]) <= result.in_flight, (phase, op)
        assert not served.errors, (phase, served.errors)
        assert result.failures == 0, (phase, result.tool)
        assert check_counts(served, result.sent, in_flight=result.in_flight).ok


def test_h2load_counts_a_not_found_answer_as_done_and_the_counter_check_catches_it(start: Start) -> None:
    target = start("grpc", dataset="small", metrics=True)
    pool = request_pool("grpc", load_scenarios()["getbook"], "GetBook", seed=1)
    missing_id = b"\x08\xbf\x84\x3d"  # GetBookRequest{id: 999999}, protobuf-encoded
    unknown = replace(pool.requests[0], messages=(missing_id,))
    before = scrape(target.metrics_address)
    run = run_h2load(
        url=f"http://{target.address}{unknown.method}",
        request_body=unknown.grpc_frames(),
        headers={"content-type": "application/grpc", "te": "trailers"},
        http1=False,
        connections=1,
        streams=4,
        duration_s=0.5,
        cpu=None,
        operation="GetBook",
    )
    served = scrape(target.metrics_address) - before
    assert run.requests > 0 and run.failures == 0  # HTTP 200 with grpc-status NOT_FOUND: "succeeded"
    check = check_counts(served, run.sent, in_flight=run.in_flight)
    assert not check.ok
    assert "GetBook: the server answered" in (check.reason or "") and "NotFound" in (check.reason or "")
    with pytest.raises(PreflightError, match=r"grpc GetBook: the target refused .* NOT_FOUND"):
        preflight(target.address, [unknown])


def test_a_prepared_http_request_the_target_refuses_fails_preflight_by_name(start: Start) -> None:
    target = start("rest", dataset="small")
    good = request_pool("rest", load_scenarios()["getbook"], "GetBook", seed=1).requests[0]
    preflight(target.address, [good])
    with pytest.raises(PreflightError, match=r"rest GetBook: the target refused .*HTTP 4\d\d"):
        preflight(target.address, [replace(good, path="/books/not-a-number")])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs to pin target and generator apart")
def test_a_target_sharing_its_cpu_with_a_busy_process_is_flagged_not_measured(start: Start) -> None:
    target = start("rest", dataset="small", metrics=True, cpu=1)
    engine = NativeEngine("rest", target.address, load_scenarios()["getbook"], cpu=0, seed=3, timeout_s=10.0)
    hog = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", "while True: pass"])
    try:
        record = _window(target, lambda: engine.closed(16, 2.0), "closed", target_cpu=1, generator_cpu=0)
    finally:
        hog.kill()
        hog.wait()
    assert record["host_busy"] is True
    assert record["other_target_cpu_pct"] > 20  # type: ignore[operator]
    assert record["server_bound"] is False
    assert capacity([record])["status"].startswith("not measured")


def test_an_injected_delay_is_in_every_call(start: Start) -> None:
    target = start("rest", dataset="small", metrics=True, inject_delay_us=2000)
    engine = _engine(target, "rest", "getbook")
    result = engine.open(100.0, 1.0)
    stats = result.corrected["GetBook"]
    assert stats.requests > 50
    assert stats.latency.get_value_at_percentile(1) >= 2000
