"""A fixed set of raw files gives a fixed report: the digests below change only when the report does.

`fixtures/run-2026-12-01.tar.gz` holds six cells of a real `bench run` (grpc and rest-lean, two repetitions,
with their floor cells; manifest, plan, index, cell.json and ops.json only: all the report reads). The digests
were recorded from the code before the bench/ layout change (commit 59d4b99) and the refactored code gives the
same bytes. A change that alters the report on purpose updates them in the same commit and says why. Changes
since: the header's "Implementations" line (which implementation each arm measured); then the statistics and
native-engine work, which kept every value of the old tidy columns and added columns (engine, arm, twin_of,
offered_rate, samples, the window flags and `not_assessable`) and report sections (A/A arm, capacity,
latency under load, server counters) with verdicts now judged by Hodges-Lehmann, Mann-Whitney and a
discrete Benjamini-Hochberg over the family.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from bench.report.build import build_report

FIXTURE = Path(__file__).with_name("fixtures") / "run-2026-12-01.tar.gz"
REPORT_SHA256 = "fd413b604bafca8e32440064d082b8199bef75047c279d125d04eaa52d6f02f1"
TIDY_SHA256 = "3c1ae9ca228d255d473a5f999d64d736c11935fdff88b456171cb3a448d44bd1"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fixture_run_gives_the_recorded_report_and_tidy_table(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    run = tmp_path / "fixture_run"
    report = build_report(run)
    assert _digest(run / "tidy.csv") == TIDY_SHA256
    assert _digest(report) == REPORT_SHA256
