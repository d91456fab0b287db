"""Boot phases from timestamped serial lines, and the tailer that stamps them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bench.vm.serial import SerialLine, SerialTail, parse_phases, power_down_t


def test_seabios_phases() -> None:
    lines = [
        SerialLine(10.5, "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)"),
        SerialLine(10.6, "Booting from ROM..."),
        SerialLine(10.7, "PPrroobbiinngg  EEDDDD  ((eedddd==ooffff  ttoo  ddiissaabbllee))......  ookk"),
        SerialLine(11.0, "\x1bc[    0.000000] Linux version 6.1.0-56-amd64 (x)", marks=((3, 13.0),)),
        SerialLine(15.0, "BENCH-INIT uptime=2.50"),
        SerialLine(16.0, "BENCH-READY uptime=3.55"),
        SerialLine(16.1, "[    3.600000] reboot: Power down"),
    ]
    phases = parse_phases(lines, 10.0)
    assert phases.firmware_s == 0.5
    assert phases.kernel_s == 0.7
    assert phases.kernel_main_s == 3.0  # the part of the line after the escape arrived later
    assert (phases.init_s, phases.ready_s, phases.guest_uptime_ready_s) == (5.0, 6.0, 3.55)
    assert phases.failure is None
    assert power_down_t(lines) == 16.1


def test_qboot_prints_nothing_before_the_kernel() -> None:
    lines = [
        SerialLine(1.2, "PPrroobbiinngg  EEDDDD ... ookk"),
        SerialLine(3.0, "[    0.000000] Linux version 6.1"),
    ]
    phases = parse_phases(lines, 1.0)
    assert phases.firmware_s is None and phases.kernel_s == 0.2 and phases.kernel_main_s == 2.0


def test_ovmf_escape_sequences_then_efi_stub_on_one_line() -> None:
    text = "\x1b[2J\x1b[01;01HEFI stub: Loaded initrd"
    lines = [SerialLine(2.0, text, marks=((text.index("EFI"), 6.0),))]
    phases = parse_phases(lines, 1.0)
    assert phases.firmware_s == 1.0 and phases.kernel_s == 5.0


def test_failure_marker() -> None:
    phases = parse_phases([SerialLine(1.0, "BENCH-FAIL mounting the host root failed")], 0.0)
    assert phases.failure == "mounting the host root failed" and phases.ready_s is None


def test_tail_stamps_lines_as_they_are_written(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"

    def writer() -> None:
        time.sleep(0.05)
        with path.open("w") as handle:
            handle.write("first")
            handle.flush()
            time.sleep(0.2)
            handle.write(" line\nBENCH-READY uptime=1.00\n")
            handle.flush()

    with SerialTail(path, poll_s=0.005) as tail:
        thread = threading.Thread(target=writer)
        thread.start()
        ready = tail.wait_for("BENCH-READY", timeout_s=5)
        thread.join()
    assert ready is not None
    first = tail.lines()[0]
    assert first.text == "first line"
    assert first.marks and first.time_at(6) - first.t >= 0.15  # " line" arrived ~0.2 s after "first"
    assert tail.wait_for("never", timeout_s=0.01) is None


def test_host_cpu_share_from_proc_stat_samples() -> None:
    from bench.vm.launch import host_cpu_share

    # user nice system idle iowait irq softirq steal
    before = [100, 0, 50, 800, 0, 0, 0, 50]
    after = [200, 0, 100, 850, 0, 0, 0, 100]  # +100 user, +50 system, +50 idle, +50 steal of 250
    assert host_cpu_share(before, after) == {"host_steal_pct": 20.0, "host_busy_pct": 60.0}
    assert host_cpu_share([], after) == {"host_steal_pct": None, "host_busy_pct": None}
