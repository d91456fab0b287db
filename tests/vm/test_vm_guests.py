"""Real guests under TCG (marked `vm`): run a command, time out, never become ready, Ctrl-C, orphans."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm

_QEMU_DRIVER = Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")


def _missing() -> str | None:
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed (Debian package qemu-system-x86)"
    if not _QEMU_DRIVER.is_file():
        return f"{_QEMU_DRIVER} not installed (Debian package libvirt-daemon-driver-qemu)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python not installed (pip install -e '.[vm]')"
    return None


if (_reason := _missing()) is not None:
    pytest.skip(_reason, allow_module_level=True)

from bench.vm import domain_xml as domain_xml_module  # noqa: E402
from bench.vm.accel import resolve_accel  # noqa: E402
from bench.vm.connection import connect, reap_stale_roots  # noqa: E402
from bench.vm.guest import ensure_guest  # noqa: E402
from bench.vm.profiles import load_profile  # noqa: E402
from bench.vm.run import run_in_guest  # noqa: E402

VENV_PYTHON = sys.executable


def _qemu_pids(domain: str) -> list[int]:
    """QEMU processes of one domain we created (matched by its unique name, never by a broad pattern)."""
    completed = subprocess.run(
        ["pgrep", "-f", f"guest={domain},"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in completed.stdout.split()]


def _assert_gone(domain: str) -> None:
    deadline = time.monotonic() + 10
    while _qemu_pids(domain) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _qemu_pids(domain) == [], f"QEMU of {domain} still running"


@pytest.fixture(scope="module")
def guest_built() -> None:
    ensure_guest()  # first run downloads the kernel; later runs reuse the cache


@pytest.fixture
def tcg_profile(write_profile: Callable[..., Path], guest_built: None) -> Callable[..., Path]:
    def make(name: str = "t", **replace: str) -> Path:
        # Unpinned, so a guest is not stuck behind other work pinned on the same host CPU.
        body = {'vcpu_pins = ["0", "1"]\n': "", 'emulator_pin = "0-1"\n': ""}
        body.update(replace)
        return write_profile(name, replace=body)

    return make


def test_run_in_guest_brings_a_file_back(tcg_profile: Callable[..., Path], tmp_path: Path) -> None:
    profile = load_profile(tcg_profile("runfile"))
    results = tmp_path / "results"
    code = (
        "import grpc, json, os, socket, sys\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"  # loopback must be up inside the guest
        "client = socket.create_connection(server.getsockname())\n"
        "payload = {'grpc': grpc.__version__, 'cwd': os.getcwd(), 'cpus': os.cpu_count(),\n"
        "           'profile': os.environ['BENCH_VM_PROFILE'], 'token': os.environ['TOKEN'],\n"
        "           'in_guest': os.environ['BENCH_IN_GUEST'], 'exe': sys.executable}\n"
        "open(sys.argv[1] + '/out.json', 'w').write(json.dumps(payload))\n"
    )
    run = run_in_guest(
        profile,
        [VENV_PYTHON, "-c", code, str(results)],
        results_dir=results,
        timeout_s=240,
        env={"TOKEN": "t0k3n"},
    )
    assert run.reason is None and run.ok, (run.reason, run.stderr_log.read_text(errors="replace"))
    assert run.exit_code == 0
    assert run.accel == "tcg" and run.emulated
    out = json.loads((results / "out.json").read_text())
    assert out["token"] == "t0k3n" and out["in_guest"] == "1" and out["profile"] == "runfile"
    assert out["cwd"] == str(Path(__file__).resolve().parents[2])  # the project root, same path as host
    assert out["cpus"] == 2
    assert run.phases.ready_s is not None and run.phases.kernel_s is not None
    assert run.phases.guest_uptime_ready_s is not None
    assert run.serial_log.is_file() and "BENCH-READY" in run.serial_log.read_text(errors="replace")
    assert ET.parse(run.domain_xml).getroot().findtext("name") == run.domain
    assert json.loads((results / "vm-guest" / "guest-run.json").read_text())["exit_code"] == 0
    _assert_gone(run.domain)


def test_nonzero_exit_is_reported(tcg_profile: Callable[..., Path], tmp_path: Path) -> None:
    profile = load_profile(tcg_profile("exit3"))
    run = run_in_guest(
        profile, ["/bin/sh", "-c", "echo to-stderr >&2; exit 3"], results_dir=tmp_path / "r", timeout_s=180
    )
    assert run.exit_code == 3 and run.reason == "exit code 3" and not run.ok
    assert run.stderr_log.read_text() == "to-stderr\n"
    _assert_gone(run.domain)


def test_command_timeout_destroys_the_guest(tcg_profile: Callable[..., Path], tmp_path: Path) -> None:
    profile = load_profile(tcg_profile("sleeper"))
    started = time.monotonic()
    run = run_in_guest(profile, ["sleep", "600"], results_dir=tmp_path / "r", timeout_s=45)
    assert time.monotonic() - started < 90
    assert run.exit_code is None and run.reason is not None
    assert run.reason.startswith(("timeout:", "never-ready:")), run.reason
    assert "destroyed" in run.reason
    _assert_gone(run.domain)


@pytest.fixture
def hanging_init(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A shell as PID 1 waits forever on a console with no input: the ready marker never comes.
    original = domain_xml_module.kernel_cmdline
    monkeypatch.setattr(
        domain_xml_module, "kernel_cmdline", lambda mode, extra=(): original(mode, extra) + " rdinit=/bin/sh"
    )
    yield


def test_guest_that_never_becomes_ready_is_destroyed(
    tcg_profile: Callable[..., Path], tmp_path: Path, hanging_init: None
) -> None:
    profile = load_profile(tcg_profile("hang", **{'accel = "tcg"\n': 'accel = "tcg"\nboot_timeout_s = 25\n'}))
    run = run_in_guest(profile, ["true"], results_dir=tmp_path / "r", timeout_s=120)
    assert run.reason is not None and run.reason.startswith("never-ready: no ready marker within 25 s")
    assert run.exit_code is None
    assert run.phases.kernel_s is not None and run.phases.ready_s is None
    _assert_gone(run.domain)


def _start_boot(profile: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "vm", "boot", "--profiles", str(profile), "--repeats", "3",
         "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _wait_for_guest(out: Path, proc: subprocess.Popen[str]) -> str:
    """Name of the first guest once its QEMU runs and its serial log has output."""
    deadline = time.monotonic() + 120
    xml = serial = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        xml = next(out.glob("*/boot-001/vm-guest/domain.xml"), None)
        serial = xml.parent / "serial.log" if xml else None
        if xml and serial and serial.is_file() and serial.stat().st_size > 0:
            name = ET.parse(xml).getroot().findtext("name")
            assert name and _qemu_pids(name), "guest not running yet"
            return name
        time.sleep(0.1)
    raise AssertionError(f"no guest started under {out}")


def test_sigint_to_bench_vm_boot_leaves_no_domain_and_no_qemu(
    tcg_profile: Callable[..., Path], tmp_path: Path
) -> None:
    proc = _start_boot(tcg_profile("ctrlc"), tmp_path / "out")
    name = _wait_for_guest(tmp_path / "out", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    _assert_gone(name)
    root = Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "library-bench") / "libvirt"
    assert not (root / f"p{proc.pid}").exists()  # its embedded libvirt root (domain state) is gone too


def test_guest_of_a_killed_bench_process_is_reaped(tcg_profile: Callable[..., Path], tmp_path: Path) -> None:
    proc = _start_boot(tcg_profile("orphan"), tmp_path / "out")
    name = _wait_for_guest(tmp_path / "out", proc)
    proc.kill()  # SIGKILL: no cleanup can run in that process
    proc.communicate(timeout=30)
    reap_stale_roots()  # what the next bench process does when it opens libvirt
    _assert_gone(name)


def test_accel_auto_probes_once_per_host_boot(guest_built: None) -> None:
    hv = connect()
    guest = ensure_guest()
    first = resolve_accel("auto", hv, guest)
    started = time.monotonic()
    again = resolve_accel("auto", hv, guest)
    assert time.monotonic() - started < 1.0  # cached, not re-probed
    assert again == first
    assert first.accel in ("kvm", "tcg") and first.reason
    assert first.emulated == (first.accel == "tcg")
    assert resolve_accel("tcg", hv, guest).emulated
