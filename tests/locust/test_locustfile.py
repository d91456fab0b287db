"""The locustfile as users run it: headless against `bench serve` targets, self-started targets, dashboard."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.clients import CLIENT_KINDS
from bench.load.processes import TargetProcess
from bench.load.scenarios import load_scenarios

REPO = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "load" / "locustfile.py")]
Start = Callable[..., TargetProcess]
# Not imported from bench.load.locustfile: importing locust would monkey-patch this pytest process for gevent.
FIRST_ITEM = " · first item"

pytestmark = pytest.mark.slow


def read_stats(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_stats.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", list(CLIENT_KINDS))
def test_headless_against_a_served_target_covers_the_scenario_without_failures(
    kind: str, start: Start, tmp_path: Path
) -> None:
    target = start(kind.split("-")[0], dataset="small")
    prefix = tmp_path / "run"
    done = subprocess.run(
        [*LOCUST, "--headless", "-u", "20", "-r", "20", "-t", "6s", "--protocol", kind, "--scenario", "mixed",
         "--host", target.address, "--csv", str(prefix), "--only-summary"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_stats(prefix)
    names = {row["Name"] for row in rows if row["Type"] == kind}
    operations = set(load_scenarios()["mixed"].operations)
    assert operations <= names, f"missing operations: {operations - names}"
    # stats are named by operation, never by URL; streams also report their time to first item
    assert not any("/" in name for name in names)
    assert f"ListBooksByCategory{FIRST_ITEM}" in names
    aggregated = next(row for row in rows if row["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) > 0
    assert int(aggregated["Failure Count"]) == 0, done.stderr[-2000:]


def test_without_host_the_locustfile_starts_and_stops_its_own_target(tmp_path: Path) -> None:
    prefix = tmp_path / "self"
    done = subprocess.run(
        [*LOCUST, "--headless", "-u", "4", "-r", "4", "-t", "4s", "--protocol", "rest-lean", "--scenario",
         "getbook", "--csv", str(prefix), "--only-summary"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "started rest target" in done.stderr
    rows = read_stats(prefix)
    assert any(row["Name"] == "GetBook" and int(row["Request Count"]) > 0 for row in rows)
    pid = int(re.search(r"pid (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    assert not Path(f"/proc/{pid}").exists(), "the target it started is gone"


def test_unknown_scenario_or_protocol_is_a_clear_error() -> None:
    for args, words in ((["--scenario", "nope"], "--scenario 'nope'"), (["--protocol", "corba"], "corba")):
        done = subprocess.run(
            [*LOCUST, "--headless", "-u", "1", "-t", "1s", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert words in done.stderr + done.stdout


def test_dashboard_offers_every_user_class() -> None:
    port = "18089"
    process = subprocess.Popen(
        [*LOCUST, "--web-host", "127.0.0.1", "--web-port", port, "--class-picker", "--scenario", "getbook"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        page = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        for name in ("GrpcUser", "RestUser", "RestLeanUser", "SoapUser", "SoapLeanUser"):
            assert name in page, f"{name} is not offered by the dashboard"
    finally:
        process.terminate()
        process.wait(30)


def _template_args(page: str) -> dict[str, object]:
    match = re.search(r"window\.templateArgs = (\{.*?\})\n", page)
    assert match, "no templateArgs in the dashboard page"
    args: dict[str, object] = json.loads(match.group(1))
    return args


def _dashboard_page(port: str, args: list[str]) -> tuple[str, subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*LOCUST, "--web-host", "127.0.0.1", "--web-port", port, *args],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.read().decode(), process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise AssertionError("the dashboard did not answer within 60 s")


def test_dashboard_without_host_shows_the_target_it_started() -> None:
    page, process = _dashboard_page("18090", ["--protocol", "rest-lean", "--scenario", "getbook"])
    try:
        args = _template_args(page)
        assert args["missing_host_warning"] is False, "locust says a user class has no host"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", str(args["host"])), args["host"]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    started = re.search(r"started rest target at (\S+) \(pid (\d+)", stderr)
    assert started and started.group(1) == args["host"], stderr[-2000:]
    assert not Path(f"/proc/{started.group(2)}").exists(), "the target it started is gone"


def test_ctrl_c_stops_the_users_before_their_targets(tmp_path: Path) -> None:
    """Targets stopped first would add refused calls, which never happened in the test, to the final stats."""
    prefix = tmp_path / "interrupted"
    process = subprocess.Popen(
        [*LOCUST, "--headless", "-u", "8", "-r", "8", "-t", "60s", "--protocol", "rest-lean", "--scenario",
         "getbook", "--csv", str(prefix), "--only-summary"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(6)  # users are running
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    # The final statistics locust prints at shutdown (the CSV files were written before it).
    summary = stderr[stderr.index("Response time percentiles") :]
    assert re.search(r"rest-lean GetBook\s", summary), summary[:2000]
    assert "transport:refused" not in summary, summary[-2000:]
