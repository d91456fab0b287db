"""The suite holds at least 30 hostile cases per protocol (known failures not counted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HOSTILE_DIR = Path(__file__).resolve().parent
MINIMUM = 30


def test_at_least_thirty_cases_per_protocol() -> None:
    # Collected in a child pytest, so the count is the whole suite's even when this test runs alone or -k
    # narrowed the selection; the line is the one the suite prints at the end of every run.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(HOSTILE_DIR)],
        capture_output=True,
        text=True,
        cwd=HOSTILE_DIR.parents[1],
        timeout=120,
    )
    match = re.search(r"hostile cases: grpc (\d+), rest (\d+), soap (\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr[-2000:]
    counts = dict(zip(("grpc", "rest", "soap"), map(int, match.groups()), strict=True))
    assert all(n >= MINIMUM for n in counts.values()), counts
