"""The locustfile as users run it: headless against `bench serve` targets, self-started targets, dashboard."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.clients import CLIENT_KINDS
from bench.scenarios import load_scenarios
from bench.targets_process import TargetProcess

REPO = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locustfile.py")]
Start = Callable[..., TargetProcess]
# Not imported from bench.locustfile: importing locust would monkey-patch this pytest process for gevent.
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
