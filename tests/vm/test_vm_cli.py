"""`bench vm` commands that start nothing: xml, profiles, boot planning, --dry-run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.vm import connection
from bench.vm.boottime import plan_boots, summarise
from bench.vm.profiles import load_profiles

TWO_CPUS = frozenset({0, 1})


def test_xml_command_prints_the_domain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vm", "xml", "qboot-pinned"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<domain") and "<name>bench-qboot-pinned-00000000</name>" in out
    assert "qboot.rom" in out


def test_xml_of_unknown_profile_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vm", "xml", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no profile named 'nope'" in err and "seabios-pinned" in err


def test_plan_interleaves_and_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_COREBOOT_ROM", raising=False)
    profiles = list(load_profiles(cpus=TWO_CPUS).values())
    plan = plan_boots(profiles, 3, seed=7)
    assert "local" in plan.skipped and "coreboot-pinned" in plan.skipped
    assert "set BENCH_COREBOOT_ROM" in plan.skipped["coreboot-pinned"]
    names = {p.name for p in plan.profiles}
    assert len(plan.order) == 3 * len(names)
    for round_start in range(0, len(plan.order), len(names)):  # every round boots every profile once
        assert set(plan.order[round_start : round_start + len(names)]) == names
    assert plan_boots(profiles, 3, seed=7).order == plan.order


def test_summary_median_and_iqr() -> None:
    records: list[dict[str, object]] = [
        {"profile": "a", "outcome": "ok", "accel": "tcg", "ready_s": v, "firmware_s": None}
        for v in (1.0, 2.0, 3.0)
    ]
    records.append({"profile": "a", "outcome": "timeout", "accel": "tcg", "ready_s": None})
    entry = summarise(records)["a"]
    assert entry["n"] == 4 and entry["ok"] == 3
    assert entry["ready_s"] == (1.5, 2.0, 2.5)
    assert entry["firmware_s"] is None


def test_dry_run_prints_plan_and_xml_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_libvirt(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("--dry-run must not connect to libvirt")

    monkeypatch.setattr(connection, "connect", no_libvirt)
    monkeypatch.setattr(connection.Hypervisor, "__init__", no_libvirt)
    out_dir = tmp_path / "out"
    code = main(["vm", "boot", "--profiles", "seabios,qboot-pinned,coreboot-pinned", "--repeats", "2",
                 "--dry-run", "--out", str(out_dir), "--seed", "1"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "boot order (seed 1):" in out
    assert out.count("<domain ") == 2
    assert "skipped: coreboot-pinned: no coreboot ROM at" in out
    assert not out_dir.exists()


def test_dry_run_in_a_subprocess_creates_no_libvirt_state(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.cli", "vm", "boot", "--profiles", "seabios", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "<domain " in completed.stdout and "placeholder" in completed.stdout
    assert not (tmp_path / "cache" / "libvirt").exists()
