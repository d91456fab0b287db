"""`bench run` with a VM profile (marked `vm`): one tiny cell in a TCG guest, next to the local profile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.analysis.tidy import build_tidy
from tests.vm.test_vm_guests import _missing

pytestmark = [pytest.mark.vm, pytest.mark.slow]

if (_reason := _missing()) is not None:
    pytest.skip(_reason, allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]


def qemu_processes() -> list[str]:
    done = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if "bench-" in line]


def test_a_tiny_cell_runs_inside_a_guest_and_is_labelled_emulated(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--engine", "python", "--profiles", "seabios-pinned",
         "--clients", "grpc", "--scenarios", "getbook", "--python-repeats", "1", "--vm-repeats", "1",
         "--seed", "3", "--no-report", "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 300, f"the VM smoke took {elapsed:.0f} s"
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    finals = [json.loads(line) for line in (run / "cells.jsonl").read_text().splitlines()]
    by_id = {c["cell_id"]: c for c in finals if c["final"]}
    assert by_id["grpc-python-getbook-seabios-pinned-r1"]["status"] == "ok", by_id
    assert by_id["grpc-python-getbook-local-r1"]["status"] == "ok", "the local profile runs beside the guest"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["accel"]["seabios-pinned"]["accel"] in {"tcg", "kvm"}
    guest_records = list((run / "guests").glob("seabios-pinned-*.json"))
    assert guest_records, "the guest's boot record is kept with the results"
    xml_files = list((run / "guests").glob("seabios-pinned-*/*.xml"))
    assert xml_files and "<domain" in xml_files[0].read_text(), "so is the domain XML it booted"
    tidy = build_tidy(run)
    guest_rows = tidy[tidy["profile"] == "seabios-pinned"]
    assert not guest_rows.empty
    assert guest_rows["emulated"].all() == (manifest["accel"]["seabios-pinned"]["accel"] == "tcg")
    assert set(tidy["profile"]) == {"local", "seabios-pinned"}
    assert qemu_processes() == [], "no QEMU outlives the run"


def test_ctrl_c_while_a_guest_runs_leaves_no_domain_or_qemu(tmp_path: Path) -> None:
    import signal

    runner = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", "--engine", "python", "--profiles", "seabios-pinned",
         "--clients", "grpc", "--scenarios", "getbook", "--python-repeats", "1", "--vm-repeats", "1",
         "--seed", "3", "--no-report", "--results-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not qemu_processes() and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.2)
        assert qemu_processes(), "a guest was running"
        time.sleep(2)  # somewhere inside boot or the cell
        runner.send_signal(signal.SIGINT)
        code = runner.wait(120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert code == 130
    deadline = time.monotonic() + 15
    while qemu_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert qemu_processes() == [], "no QEMU outlives Ctrl-C"
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
