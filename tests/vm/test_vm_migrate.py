"""`bench vm migrate` for real (marked `vm`): private libvirtd daemons, a TCG guest migrated under load, and
the failure paths (destination unreachable, timeout, Ctrl-C). Each test runs the command in its own short
TMPDIR, so every daemon and QEMU it started can be found by that path, and none may be left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.vm.test_vm_guests import _missing

pytestmark = pytest.mark.vm

if (_reason := _missing()) is not None:
    pytest.skip(_reason, allow_module_level=True)
if not Path("/usr/sbin/libvirtd").is_file() or shutil.which("mksquashfs") is None:
    pytest.skip("needs libvirtd (libvirt-daemon) and mksquashfs (squashfs-tools)", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("the private daemons run as libvirt-qemu, which needs root", allow_module_level=True)

from bench.vm.migrate.daemons import DaemonPair, reap_stale_daemons  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# One vCPU, 512 MiB, TCG: the least memory to copy, and no multi-threaded TCG (see the README on guests
# that dirty memory fast under MTTCG).
SMALL_PROFILE = """\
name = "{name}"
description = "migration test guest"
firmware = "seabios"
vcpus = 1
memory_mib = 512
accel = "tcg"
boot_timeout_s = 240
"""


def _processes_under(path: Path) -> list[str]:
    """libvirtd and QEMU processes whose command line or environment names `path` (ours alone)."""
    found = []
    marker = str(path).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            program = Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name
            if program != "libvirtd" and not program.startswith("qemu-system"):
                continue
            if marker in cmdline or marker in (proc / "environ").read_bytes():
                text = cmdline.replace(b"\0", b" ")[:160].decode(errors="replace")
                found.append(f"{proc.name}: {text}")
        except OSError:
            continue
    return found


def _assert_nothing_left(tmpdir: Path) -> None:
    deadline = time.monotonic() + 15
    while _processes_under(tmpdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_under(tmpdir) == [], "a daemon or QEMU outlived the command"
    base = tmpdir / "bench-libvirtd"
    assert not base.exists() or list(base.iterdir()) == [], "the daemons' directories were left behind"


@pytest.fixture
def short_tmpdir() -> Iterator[Path]:
    """A TMPDIR short enough for libvirt's monitor sockets (pytest's tmp_path is too deep)."""
    path = Path(tempfile.mkdtemp(prefix="b", dir="/tmp"))
    path.chmod(0o755)
    yield path
    _assert_nothing_left(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def profile_file(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(SMALL_PROFILE.format(name=name))
        return path

    return make


def _migrate(tmpdir: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "vm", "migrate", *argv]


def _env(tmpdir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmpdir)}


def _records(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "migrations.jsonl").read_text().splitlines()]


def test_daemon_pair_starts_two_distinct_hosts_and_stops_them_by_pid(short_tmpdir: Path) -> None:
    from bench.vm.connection import Hypervisor

    with DaemonPair(base=short_tmpdir / "bench-libvirtd") as pair:
        pids = [daemon.pid for daemon in pair.daemons.values()]
        assert all(pids) and len(_processes_under(short_tmpdir)) == 2
        uuids = set()
        for daemon in pair.daemons.values():
            hv = Hypervisor(daemon.spec.uri, pid_dir=daemon.spec.pid_dir)
            uuids.add(hv.host_uuid())
            assert hv.versions()["libvirt"]
            hv.close()
        assert uuids == {d.spec.host_uuid for d in pair.daemons.values()} and len(uuids) == 2
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


def test_daemons_of_a_killed_bench_process_are_reaped(short_tmpdir: Path) -> None:
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from bench.vm.migrate.daemons import DaemonPair\n"
        f"pair = DaemonPair(base=Path({str(short_tmpdir / 'bench-libvirtd')!r})).__enter__()\n"
        "print(pair.root, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert owner.stdout is not None
        root = Path(owner.stdout.readline().strip())
        assert root.is_relative_to(short_tmpdir) and root.is_dir()
        assert len(_processes_under(short_tmpdir)) == 2
    finally:
        owner.kill()  # SIGKILL: the owner cannot clean up
        owner.wait()
    reap_stale_daemons(short_tmpdir / "bench-libvirtd")  # what the next `bench vm migrate` does first
    assert not root.exists()


def test_migration_smoke(short_tmpdir: Path, profile_file: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    done = subprocess.run(
        _migrate(short_tmpdir, str(profile_file("migsmoke")), "--repeats", "1", "--loads", "busy",
                 "--window", "2", "--out", str(out), "--seed", "1"),
        env=_env(short_tmpdir), cwd=REPO, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = _records(out)
    assert record["outcome"] == "ok", record
    assert record["emulated"] is True and record["accel"] == "tcg"
    assert record["guest_side"] == "destination" and record["left_running"] == []
    assert isinstance(record["total_ms"], int) and record["total_ms"] > 0
    assert isinstance(record["downtime_ms"], int) and record["downtime_ms"] >= 0
    assert isinstance(record["transferred_mb"], float) and record["transferred_mb"] > 1
    assert isinstance(record["iterations"], int) and record["iterations"] >= 1
    assert isinstance(record["gap_ms"], float) and record["gap_ms"] > 0, "a gap between the two sides"
    assert isinstance(record["pause_events_ms"], float) and isinstance(record["resume_to_line_ms"], float)
    # The gap seen from outside holds the pause: the source's last line came before the pause began.
    assert record["gap_ms"] >= record["pause_events_ms"]
    assert record["lost_lines"] == 0 and record["during_requests"]
    marks = record["marks"]
    assert isinstance(marks, dict)
    assert 0 < marks["source_paused_s"] < marks["destination_resumed_s"] <= marks["api_return_s"]
    rep = out / "busy" / "rep-001"
    sides = {line.split(",")[1] for line in (rep / "timeline.csv").read_text().splitlines()[1:]}
    assert sides == {"source", "destination"}, "the load ran on both sides of the migration"
    for name in ("source.xml", "destination.xml", "jobstats.jsonl", "serial.source.log"):
        assert (rep / name).is_file(), name
    assert ET.parse(rep / "source.xml").getroot().find("devices/filesystem") is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["accel"]["emulated"] is True
    assert manifest["transport"] == "unix" and manifest["daemon_account"] == "libvirt-qemu"
    report = (out / "report.html").read_text()
    assert 'id="migration-busy-1"' in report and "emulated" in report and "What moves" in report
    assert (out / "daemons" / "source" / "libvirtd.log").is_file()
    print(f"migration smoke: {time.monotonic() - started:.0f} s")


def test_unreachable_destination_is_a_clear_error_before_any_guest(
    short_tmpdir: Path, profile_file: Callable[[str], Path], tmp_path: Path
) -> None:
    missing = short_tmpdir / "nowhere" / "libvirt-sock"
    done = subprocess.run(
        _migrate(short_tmpdir, str(profile_file("migunreach")), "--repeats", "1", "--loads", "idle",
                 "--to", f"qemu+unix:///session?socket={missing}", "--out", str(tmp_path / "out")),
        env=_env(short_tmpdir), cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "bench vm migrate: cannot reach the destination libvirt" in done.stderr
    assert str(missing) in done.stderr
    assert not (tmp_path / "out" / "migrations.jsonl").exists(), "no guest was started"


@pytest.mark.slow
def test_a_migration_that_does_not_finish_in_time_is_aborted(
    short_tmpdir: Path, profile_file: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # 1 MiB/s cannot move the guest's ~100 MB of touched memory in 4 s.
    done = subprocess.run(
        _migrate(short_tmpdir, str(profile_file("migslow")), "--repeats", "1", "--loads", "idle",
                 "--window", "1", "--bandwidth", "1", "--timeout", "4", "--max-downtime", "50",
                 "--out", str(out), "--no-report"),
        env=_env(short_tmpdir), cwd=REPO, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    (record,) = _records(out)
    assert record["outcome"] == "timeout", record
    reason = str(record["reason"])
    assert "did not finish within --timeout 4 s and was aborted" in reason and "max downtime 50 ms" in reason
    assert record["guest_side"] == "source" and record["left_running"] == []
    assert record["max_downtime_ms"] == 50
    assert "timeout: the migration did not finish" in done.stderr


@pytest.mark.slow
def test_ctrl_c_during_a_migration_leaves_the_guest_on_one_side_then_nothing(
    short_tmpdir: Path, profile_file: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = subprocess.Popen(
        _migrate(short_tmpdir, str(profile_file("migint")), "--repeats", "1", "--loads", "idle",
                 "--window", "1", "--bandwidth", "1", "--timeout", "300", "--out", str(out)),
        env=_env(short_tmpdir), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        name = None
        while time.monotonic() < deadline and command.poll() is None:
            xml = next(out.glob("idle/rep-001/source.xml"), None)
            name = ET.parse(xml).getroot().findtext("name") if xml else None
            qemus = [
                p for p in _processes_under(short_tmpdir) if "qemu-system" in p and f"guest={name}," in p
            ]
            if name and len(qemus) == 2:  # the destination QEMU is up: the migration is under way
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the migration never started: {command.communicate()}")
        time.sleep(1)
        command.send_signal(signal.SIGINT)
        _, err = command.communicate(timeout=120)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == 130, err[-3000:]
    assert "interrupted: aborting the migration" in err
    assert "after the abort the guest runs on: source" in err
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
