"""A fixed set of raw files gives a fixed report: the digests below change only when the report does.

`fixtures/run-2026-12-01.tar.gz` holds six cells of a real `bench run` (grpc and rest-lean, two repetitions,
with their floor cells; manifest, plan, index, cell.json and ops.json only: all the report reads). The digests
were recorded from the code before the bench/ layout change (commit 59d4b99) and the refactored code gives the
same bytes. A change that alters the report on purpose updates them in the same commit and says why: the
header's "Implementations" line (which implementation each arm measured) is the one change since.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from bench.report.build import build_report

FIXTURE = Path(__file__).with_name("fixtures") / "run-2026-12-01.tar.gz"
REPORT_SHA256 = "32fccdea657e33424cd5a1a66c701d6d8a91380e11fd142eb390b8489ffac0fb"
TIDY_SHA256 = "68251da9c68e66f8b4a574002d324e047d6c6a43dff71ad21cf0aac30c9ab738"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fixture_run_gives_the_recorded_report_and_tidy_table(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    run = tmp_path / "fixture_run"
    report = build_report(run)
    assert _digest(run / "tidy.csv") == TIDY_SHA256
    assert _digest(report) == REPORT_SHA256
