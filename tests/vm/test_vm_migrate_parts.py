"""`bench vm migrate` pieces that start no guest: daemon configuration, domain XML, the load series, the
guest image, the plan and its --dry-run."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.cli import main
from bench.vm.domain_xml import domain_xml, placeholder_runtime
from bench.vm.guest import kernel_cmdline, placeholder_guest
from bench.vm.migrate import _load, timeline
from bench.vm.migrate.daemons import new_spec
from bench.vm.migrate.guest import MIGRATE_INIT_SCRIPT
from bench.vm.migrate.image import _Tree
from bench.vm.migrate.live import MigrationRequest
from bench.vm.profiles import load_profiles
from bench.vm.serial import SerialLine

TWO_CPUS = frozenset({0, 1})


def test_each_daemon_has_its_own_host_uuid_socket_and_directories(tmp_path: Path) -> None:
    source, destination = new_spec("source", tmp_path), new_spec("destination", tmp_path)
    assert source.host_uuid != destination.host_uuid
    assert source.socket != destination.socket and source.socket.is_relative_to(source.root)
    assert source.uri == f"qemu+unix:///session?socket={source.socket}"
    for spec in (source, destination):
        env = spec.environment()
        for key in ("HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME"):
            assert Path(env[key]).is_relative_to(spec.root), key
        libvirtd_conf, qemu_conf = (spec.config_files()[p] for p in sorted(spec.config_files()))
        assert f'host_uuid = "{spec.host_uuid}"' in libvirtd_conf
        assert f'unix_sock_dir = "{spec.socket.parent}"' in libvirtd_conf
        assert 'auth_unix_rw = "none"' in libvirtd_conf
        assert 'stdio_handler = "file"' in qemu_conf
        # migration_address = 127.0.0.1 is refused by libvirt 9; the listen address goes per call instead.
        assert "migration_address" not in qemu_conf and "migration_host" not in qemu_conf
    low_s, high_s = source.migration_ports
    low_d, high_d = destination.migration_ports
    assert high_s < low_d or high_d < low_s, "the two daemons' migration port ranges overlap"


def _migrate_runtimes() -> tuple[object, object, object]:
    profile = load_profiles(cpus=TWO_CPUS)["seabios-pinned"]
    base = placeholder_runtime(profile, mode="migrate")
    source = dataclasses.replace(
        base,
        serial_log=Path("/G/serial.source.log"),
        load_log=Path("/G/load.source.log"),
        image=Path("/F/image.squashfs"),
        load_port=_load.LOAD_PORT,
        cmdline_extra=("bench_load=busy", "bench_protocol=grpc"),
    )
    destination = dataclasses.replace(
        source, serial_log=Path("/G/serial.destination.log"), load_log=Path("/G/load.destination.log")
    )
    return profile, source, destination


def test_a_migratable_guest_has_a_readonly_image_and_no_9p() -> None:
    profile, source, _ = _migrate_runtimes()
    root = ET.fromstring(domain_xml(profile, placeholder_guest(), source))  # type: ignore[arg-type]
    assert root.findall("devices/filesystem") == []  # QEMU cannot migrate a guest with a 9p export
    (disk,) = root.findall("devices/disk")
    assert disk.find("source").get("file") == "/F/image.squashfs"  # type: ignore[union-attr]
    assert disk.find("readonly") is not None and disk.find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    (channel,) = root.findall("devices/channel")
    assert channel.find("target").get("name") == _load.LOAD_PORT  # type: ignore[union-attr]
    assert channel.find("source").get("path") == "/G/load.source.log"  # type: ignore[union-attr]
    assert root.findtext("os/cmdline") == kernel_cmdline(
        "migrate", ("bench_load=busy", "bench_protocol=grpc")
    )
    assert root.find("devices/interface") is None


def test_the_destination_xml_differs_only_in_the_files_it_writes() -> None:
    profile, source, destination = _migrate_runtimes()
    guest = placeholder_guest()
    text_source = domain_xml(profile, guest, source)  # type: ignore[arg-type]
    text_destination = domain_xml(profile, guest, destination)  # type: ignore[arg-type]
    assert text_source != text_destination
    assert text_destination.replace("destination.log", "source.log") == text_source


def test_kernel_command_line_takes_only_bench_words() -> None:
    assert kernel_cmdline("migrate", ("bench_load=idle",)).endswith("bench_mode=migrate bench_load=idle")
    for bad in ("bench_load=idle init=/bin/sh", "rdinit=/bin/sh", "bench_load=$(reboot)", "bench_x=A"):
        with pytest.raises(ValueError, match="not bench_<name>=<word>"):
            kernel_cmdline("migrate", (bad,))


def test_the_init_script_mounts_the_image_and_starts_the_workload() -> None:
    assert "mount -t squashfs -o ro /dev/vda /newroot" in MIGRATE_INIT_SCRIPT
    assert "-m bench.vm.migrate._load" in MIGRATE_INIT_SCRIPT
    assert "mount -t 9p" not in MIGRATE_INIT_SCRIPT
    for marker in ("BENCH-INIT", "BENCH-READY", "BENCH-FAIL"):
        assert marker in MIGRATE_INIT_SCRIPT


def test_load_parameters_come_from_the_kernel_command_line() -> None:
    cmdline = "console=ttyS0 bench_mode=migrate bench_load=dirty bench_protocol=rest bench_target_cpu=1"
    params = _load._parameters(cmdline)
    assert params["level"] == "dirty" and params["protocol"] == "rest" and params["target_cpu"] == "1"
    assert params["generator_cpu"] == "0" and params["dirty_mib_s"] == str(_load.DEFAULT_DIRTY_MIB_S)
    with pytest.raises(SystemExit, match="bad parameters"):
        _load._parameters("bench_load=flood")


def _line(t: float, text: str) -> SerialLine:
    return SerialLine(t, text)


def test_lines_of_both_ends_make_one_series_and_show_the_pause() -> None:
    source = [
        _line(9.0, "R 99 1 2"),  # before the start marker (the warm-up call): ignored
        _line(10.0, "BENCH-LOAD-START level=busy protocol=grpc t=1000000"),
        _line(10.010, "R 1 1010000 9000"),
        _line(10.015, "H 2 1015000"),
        _line(10.020, "H 3 1020000"),
        _line(10.021, "R 4"),  # cut short by the switchover: malformed, and so lost
    ]
    destination = [
        _line(10.300, "R 5 1030000 12000"),  # 280 ms after the source's last line, 10 ms of guest time
        _line(10.310, "E 7 1040000 5000 transport:refused"),  # line 6 lost
    ]
    src_events, bad_src = timeline.parse_lines(source, "source")
    dst_events, bad_dst = timeline.parse_lines(destination, "destination")
    assert (bad_src, bad_dst) == (1, 0)
    events, lost = timeline.merge(dst_events, src_events)
    assert [e.seq for e in events] == [1, 2, 3, 5, 7] and lost == 2
    assert events[-1].kind == "E" and events[-1].error == "transport:refused"
    pause = timeline.switchover_gap(events)
    assert pause is not None and (pause.before.seq, pause.after.seq) == (3, 5)
    assert (pause.before.side, pause.after.side) == ("source", "destination")
    assert pause.host_s == pytest.approx(0.280)
    assert timeline.switchover_gap(src_events) is None  # never reached the destination
    assert timeline.line_interval_s(events, 10.0, 10.1) == pytest.approx(0.005)
    summary = timeline.latency_summary(events, 10.0, 11.0)
    assert summary["requests"] == 3 and summary["errors"] == 1 and summary["max_ms"] == 12.0
    assert summary["median_ms"] == 10.5


def test_timeline_csv_has_host_seconds_since_the_call(tmp_path: Path) -> None:
    events, _ = timeline.parse_lines(
        [_line(5.0, "BENCH-LOAD-START"), _line(7.5, "R 1 2000000 1500")], "source"
    )
    timeline.write_csv(tmp_path / "t.csv", events, 5.0)
    assert (tmp_path / "t.csv").read_text().splitlines() == [
        "host_s,side,kind,seq,guest_s,latency_ms,error",
        "2.5000,source,R,1,2.000000,1.500,",
    ]


def test_image_tree_keeps_symlinked_directories_as_links(tmp_path: Path) -> None:
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libx.so.1").write_bytes(b"\x7fELF")
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "usr" / "lib" / "libx.so").symlink_to("libx.so.1")
    tree = _Tree()
    tree.add(str(tmp_path / "lib" / "libx.so"))
    entries = tree.entries
    assert entries[str(tmp_path / "lib")] == ("link", "usr/lib")
    assert entries[str(tmp_path / "usr" / "lib" / "libx.so")] == ("link", "libx.so.1")
    assert entries[str(tmp_path / "usr" / "lib" / "libx.so.1")][0] == "file"
    before = tree.key("grpc")
    (tmp_path / "usr" / "lib" / "libx.so.1").write_bytes(b"\x7fELF changed")
    tree = _Tree()
    tree.add(str(tmp_path / "lib" / "libx.so"))
    assert tree.key("grpc") != before, "a changed file must give a new image"


def test_migration_request_is_live_peer_to_peer_with_the_listen_address_per_call() -> None:
    request = MigrationRequest(
        dconnuri="qemu+unix:///session?socket=/x", migrate_uri="tcp://127.0.0.1", listen_address="127.0.0.1",
        dest_xml="<domain/>", max_downtime_ms=None, bandwidth_mib_s=8, timeout_s=10,
    )  # fmt: skip
    assert request.flag_names() == ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER"]
    items = request.param_items()
    assert items["VIR_MIGRATE_PARAM_LISTEN_ADDRESS"] == "127.0.0.1"
    assert items["VIR_MIGRATE_PARAM_BANDWIDTH"] == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--loads", "flood"], "--loads 'flood': choose from idle, busy, dirty"),
        (["--to", "qemu:///embed?root=/tmp/x"], "an embedded libvirt driver cannot take part"),
        (["--to", "qemu+ssh://h/system", "--transport", "tcp"], "--transport applies to the two private"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["local"], "firmware = 'none': there is no guest to migrate"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = [] if argv == ["local"] else ["seabios-pinned"]
    assert main(["vm", "migrate", *(argv if profile else []), *profile, *([] if profile else argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench vm migrate: ") and message in err, err


def test_dry_run_prints_daemons_call_and_both_xmls_and_starts_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "vm", "migrate", "seabios-pinned", "--dry-run", "--seed", "4"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "order (seed 4): " in out
    assert out.count("/usr/sbin/libvirtd") == 2 and out.count('auth_unix_rw = "none"') == 2
    assert "VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER" in out and "VIR_MIGRATE_PARAM_URI = unix://" in out
    assert out.count("<domain xmlns") == 2 and "serial.destination.log" in out
    assert "mksquashfs" in out
    assert list((tmp_path / "tmp").iterdir()) == [] and not (tmp_path / "cache").exists()


@pytest.mark.skipif(shutil.which("mksquashfs") is None, reason="squashfs-tools not installed")
def test_guest_image_holds_the_interpreter_and_is_cached(tmp_path: Path) -> None:
    from bench.vm.migrate.image import ensure_image

    first = ensure_image("grpc", cache=tmp_path)
    again = ensure_image("grpc", cache=tmp_path)
    assert again == first and first.path.is_file() and first.size_bytes == first.path.stat().st_size
    listing = subprocess.run(
        ["unsquashfs", "-lls", str(first.path)], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split(" squashfs-root", 1)[1].split(" -> ")[0] for line in listing.splitlines()
             if " squashfs-root/" in line}  # fmt: skip
    assert sys.executable in names and "/.bench/python" in names
    assert str(Path(sys.executable).resolve()) in names  # the interpreter the venv's link points to
    assert any(name.endswith("/grpc/__init__.py") for name in names)
    assert any(name.endswith("/bench/vm/migrate/_load.py") for name in names)
    assert not any("/test/" in name or name.endswith(".opt-1.pyc") for name in names)
    assert any(Path(name).name.startswith("libc.so") for name in names)  # from ldd
