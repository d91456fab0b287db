"""The report never crashes on partial runs: each missing piece gets a "no data" note instead of a section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.report.build import build_report
from tests.report.synth import add_vm_profile, copy_run, drop_cells, fail_cell, flag_cell, read_index


@pytest.fixture
def run(real_run: Path, tmp_path: Path) -> Path:
    return copy_run(real_run, tmp_path / real_run.name)


def build(run: Path) -> str:
    document = build_report(run).read_text()
    assert "could not be built" not in document  # every section handled its missing data itself
    return document


def section(document: str, anchor: str) -> str:
    start = document.index(f'<section id="{anchor}">')
    return document[start : document.index("</section>", start)]


def test_single_arm_has_no_comparisons(run: Path) -> None:
    drop_cells(run, lambda cell_id: cell_id.startswith(("rest-", "grpc-aa-", "grpc-native", "pilot-")))
    document = build(run)
    assert "No comparisons: a comparison needs two arms" in section(document, "verdicts")
    assert "not measured" in section(document, "claims")
    assert 'id="fig-throughput-latency-mixed"' in document  # the single arm's figures are still there
    # The plan asked for native cells: the section says which scenario has no capacity, not "no cells".
    assert "No native-engine capacity for scenario getbook on local." in section(document, "capacity")


def test_one_repetition_is_not_assessable_and_says_why(run: Path) -> None:
    drop_cells(run, lambda cell_id: cell_id.endswith("-r2"))
    document = build(run)
    assert "not assessable" in section(document, "noise")
    verdicts = section(document, "verdicts")
    assert "1 assessable repetitions" in verdicts or "0 assessable repetitions" in verdicts
    assert 'class="verdict-better"' not in verdicts and 'class="verdict-worse"' not in verdicts
    assert "not assessable" in section(document, "claims")


def test_without_an_aa_twin_the_noise_section_says_so(run: Path) -> None:
    drop_cells(run, lambda cell_id: cell_id.startswith("grpc-aa-"))
    assert "No A/A comparison: the run had no A/A twin" in section(build(run), "noise")


def test_failed_and_unfinished_cells_are_listed(run: Path) -> None:
    fail_cell(run, "grpc-python-mixed-local-r2", "CellFailed: grpc target exited with code 1: <boom>")
    drop_cells(run, lambda cell_id: cell_id == "rest-lean-python-mixed-local-r2", keep_in_plan=True)
    document = build(run)
    failures = section(document, "failures")
    assert "CellFailed: grpc target exited with code 1: &lt;boom&gt;" in failures
    assert "1 planned cells never finished" in failures and "rest-lean-python-mixed-local-r2" in failures
    banner = document[document.index('<div class="banner bad">') :]
    planned = len(json.loads((run / "plan.json").read_text()))
    assert f"of {planned} cells failed" in banner[:2000]


def test_flagged_cells_and_steal_reruns_are_marked(run: Path) -> None:
    flag_cell(run, "grpc-python-mixed-local-r1", 12.5)
    document = build(run)
    assert "cells stayed noisy after their re-runs" in document
    assert "Attempts re-run because the host was noisy" in section(document, "failures")
    assert 'class="badge badge-steal"' in section(document, "verdicts")


def test_missing_floor_cells(run: Path) -> None:
    drop_cells(run, lambda cell_id: cell_id.startswith("floor-"))
    assert "No floor cells measured on local." in section(build(run), "floor")


def test_missing_ops_file(run: Path) -> None:
    for cell_id in ("grpc-python-mixed-local-r1", "grpc-native-getbook-local-r1"):
        record = next(r for r in read_index(run) if r["cell_id"] == cell_id)
        (run / "cells" / cell_id / f"attempt-{record['attempt']}" / "ops.json").unlink()
    build(run)


def test_run_without_any_cell(run: Path) -> None:
    """Interrupted before the first cell finished: only the manifest and the plan exist."""
    (run / "cells.jsonl").unlink()
    shutil.rmtree(run / "cells")
    document = build(run)
    for anchor, text in (
        ("verdicts", "No comparisons"),
        ("noise", "No A/A comparison"),
        ("capacity", "No native-engine capacity for scenario getbook"),
        ("load-latency", "No open-model windows for scenario getbook"),
        ("counters", "No window of this run was checked"),
        ("spectra", "No open-model"),
        ("throughput", "No closed- or open-model"),
        ("wire", "No wire-bytes"),
        ("cpu", "No server CPU"),
        ("streaming", "No streamed operations"),
        ("floor", "No floor cells"),
        ("failures", "planned cells never finished"),
    ):
        assert text in section(document, anchor), anchor
    assert 'name="report-figures" content=""' in document


def test_vm_profile_section(run: Path) -> None:
    add_vm_profile(run, "seabios-pinned", skipped="coreboot-pinned")
    document = build(run)
    vm = section(document, "virtualization")
    assert "direct kernel boot still runs the chosen firmware" in vm
    assert 'id="fig-boot-phases"' in vm and 'id="fig-vm-profiles-mixed"' in vm
    assert 'class="badge badge-tcg"' in vm
    assert '"firmware (to first kernel output)"' in vm and "firmware (to first kernel output) +" not in vm
    assert "seabios-pinned" in section(document, "verdicts")  # profile-vs-host rows in the summary
    assert "ProfileSkipped: profile &#x27;coreboot-pinned&#x27; skipped: no ROM" in section(
        document, "failures"
    )
    assert "ran in software-emulated (TCG) guests" in document


def test_vm_boot_phase_missing_milestone_is_merged(run: Path) -> None:
    add_vm_profile(run, "seabios-pinned", skipped="coreboot-pinned")
    for path in (run / "guests").glob("seabios-pinned-*.json"):
        record = json.loads(path.read_text())
        record["kernel_s"] = None
        path.write_text(json.dumps(record))
    vm = section(build(run), "virtualization")
    assert '"firmware (to first kernel output) + kernel decompression"' in vm


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        build_report(tmp_path)
