"""`python -m topology hops`: every hook read (Server-Timing per hop, CPU per process, bytes per hop)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from topology.hops import measure

REPO = Path(__file__).resolve().parents[2]


def test_hops_reads_every_hook() -> None:
    figures = {f.operation: f for f in measure("rest", calls=4, warmup=1, wire_calls=2, dataset="small")}
    assert list(figures) == ["GetBook", "GetUser", "ListBooksByCategory(100)", "CreateLoan", "ReturnLoan"]
    read, loan = figures["GetBook"], figures["CreateLoan"]
    assert {"total", "own", "books", "books.total"} <= set(read.timing_p50_us)
    assert {"total", "own", "circulation", "circulation.total", "circulation.books"} <= set(
        loan.timing_p50_us
    )
    assert read.cpu_us_per_call["gateway"] > 0 and read.cpu_us_per_call["books"] > 0
    assert loan.cpu_us_per_call["circulation"] > 0
    assert read.bytes_per_call["gateway->books"][1] > 0 and read.bytes_per_call["circulation->books"] == (
        0,
        0,
    )
    assert all(v > 0 for v in loan.bytes_per_call["circulation->books"])
    assert read.bytes_per_call["client->gateway"][0] > 0


def test_bad_options_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "topology", "hops", "--backend-protocols", "corba"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("python -m topology hops: --backend-protocols 'corba': choose from grpc")
