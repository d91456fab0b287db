"""Flags are data: from a window's record to every tidy row, out of the verdicts, into the claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analysis.tidy import COLUMNS, build_tidy
from bench.analysis.verdicts import NOT_ASSESSABLE, comparisons
from bench.report.data import load_run
from bench.report.markdown import markdown_summary
from bench.report.sections.claims import claims
from tests.analysis.crafted import CraftedRun

FAST = [10_000.0, 10_100.0, 9_900.0, 10_050.0, 9_950.0]
SLOW = [5_000.0, 5_050.0, 4_950.0, 5_025.0, 4_975.0]


def _run(tmp_path: Path, **rest_flags: object) -> CraftedRun:
    run = CraftedRun(tmp_path / "crafted")
    for rep, (fast, slow) in enumerate(zip(FAST, SLOW, strict=True), start=1):
        run.native_cell("grpc", rep, capacity_rps=fast, p50_us=1e6 / fast)
        run.native_cell("grpc-aa", rep, capacity_rps=FAST[-rep], p50_us=1e6 / FAST[-rep], twin_of="grpc")
        run.native_cell("rest", rep, capacity_rps=slow, p50_us=1e6 / slow, **rest_flags)  # type: ignore[arg-type]
    return run


def _claim(tmp_path: Path, run: CraftedRun, text: str) -> tuple[str, str]:
    data = load_run(run.dir, build_tidy(run.dir))
    found = [c for c in claims(data) if c.claim == text]
    assert found, [c.claim for c in claims(data)]
    return found[0].verdict, found[0].evidence


def test_every_row_carries_every_flag_column(tmp_path: Path) -> None:
    tidy = build_tidy(_run(tmp_path).dir)
    assert list(tidy.columns) == COLUMNS
    flags = ("noisy", "host_busy", "server_bound", "counters_ok", "pacing_distorted", "insufficient_samples",
             "generator_limited", "emulated", "not_assessable")  # fmt: skip
    for column in flags:
        assert tidy[column].notna().all() or column in ("server_bound", "counters_ok"), column
    throughput = tidy[tidy["metric"] == "throughput_rps"]
    assert not throughput.empty and (throughput["not_assessable"] == "").all()


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"host_busy": True}, "host busy"),
        ({"counters_ok": False}, "server counters disagree"),
        ({"server_bound": False}, "not-server-bound"),
        ({"samples": 50}, "insufficient samples"),
        ({"flagged": True}, "cell noisy after its re-runs"),
    ],
)
def test_a_flag_excludes_its_rows_and_the_verdict_says_why(
    tmp_path: Path, flags: dict[str, object], reason: str
) -> None:
    run = _run(tmp_path, **flags)
    tidy = build_tidy(run.dir)
    rest = tidy[tidy["arm"] == "rest"]
    if reason == "not-server-bound":
        capacity = rest[rest["metric"] == "capacity_rps"]
        assert (capacity["not_assessable"] == "not server-bound").all()
        reason = "not server-bound"
    elif reason == "insufficient samples":
        p99 = rest[rest["metric"] == "corrected_p99"]
        assert p99["insufficient_samples"].all() and p99["not_assessable"].str.startswith(reason).all()
    else:
        assert rest["not_assessable"].str.contains(reason).all()
    rows = [c for c in comparisons(tidy) if c.kind == "protocol"]
    judged = [c for c in rows if reason in c.reason]
    assert judged, [c.reason for c in rows]
    assert all(c.verdict.startswith(NOT_ASSESSABLE) and reason in c.verdict for c in judged)
    # The other arms' comparisons are untouched: grpc vs its twin is still judged.
    assert all(c.assessable for c in comparisons(tidy) if c.kind == "aa")


def test_capacity_claim_follows_the_assessable_rows(tmp_path: Path) -> None:
    text = "gRPC serves more requests per second than REST (rest)"
    verdict, evidence = _claim(tmp_path, _run(tmp_path), text)
    assert verdict == "supported" and "higher in 1 of 1" in evidence
    verdict, evidence = _claim(tmp_path / "2", _run(tmp_path / "2", server_bound=False), text)
    assert verdict == "not assessable" and "not server-bound" in evidence


def test_claim_contradicted_and_aa_quiet(tmp_path: Path) -> None:
    run = CraftedRun(tmp_path / "crafted")
    for rep, (fast, slow) in enumerate(zip(FAST, SLOW, strict=True), start=1):
        run.native_cell("grpc", rep, capacity_rps=slow, p50_us=1e6 / slow)
        run.native_cell("grpc-aa", rep, capacity_rps=SLOW[-rep], p50_us=1e6 / SLOW[-rep], twin_of="grpc")
        run.native_cell("rest", rep, capacity_rps=fast, p50_us=1e6 / fast)
    verdict, _ = _claim(tmp_path, run, "gRPC serves more requests per second than REST (rest)")
    assert verdict == "contradicted"
    verdict, _ = _claim(tmp_path, run, "gRPC answers faster than REST (rest) at the same offered load")
    assert verdict == "contradicted"
    data = load_run(run.dir, build_tidy(run.dir))
    assert [c.verdict for c in data.aa if c.headline == "capacity"] == ["no significant difference"]


def test_markdown_summary_quotes_the_same_verdicts(tmp_path: Path) -> None:
    run = _run(tmp_path)
    text = markdown_summary(load_run(run.dir, build_tidy(run.dir)))
    assert f"`bench report --markdown {run.dir.name}`" in text
    assert "| grpc | 10,000\xa0req/s |" in text  # fmt keeps number and unit together
    assert "| gRPC serves more requests per second than REST (rest) | supported |" in text
    assert "A/A: 0 of" in text
