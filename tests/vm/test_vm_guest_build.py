"""Initramfs pieces that need no VM: the cpio writer, module dependency resolution, the init script."""

from __future__ import annotations

import re
import stat
import struct
from pathlib import Path

import pytest

from bench.vm.cpio import CpioArchive
from bench.vm.errors import GuestBuildError
from bench.vm.guest import kernel_cmdline
from bench.vm.init_script import INIT_SCRIPT
from bench.vm.kmod import load_order


def _read_newc(data: bytes) -> list[tuple[str, int, bytes, int, int]]:
    """A reader written from the format description, to check the writer."""
    entries = []
    offset = 0
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rdevmajor, rdevminor, namesize = (
            fields[1],
            fields[6],
            fields[9],
            fields[10],
            fields[11],
        )
        name_start = offset + 110
        name = data[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        body = data[data_start : data_start + filesize]
        offset = data_start + filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            assert offset == len(data)
            return entries
        entries.append((name, mode, body, rdevmajor, rdevminor))


def test_cpio_newc_round_trip_and_determinism() -> None:
    def build() -> bytes:
        archive = CpioArchive()
        archive.directory("bin")
        archive.file("bin/hello", b"abcde", perm=0o755)
        archive.symlink("bin/sh", "hello")
        archive.char_device("dev/console", 5, 1)
        return archive.to_bytes()

    data = build()
    assert data == build()
    entries = {name: (mode, body, major, minor) for name, mode, body, major, minor in _read_newc(data)}
    assert stat.S_ISDIR(entries["bin"][0])
    assert entries["bin/hello"][1] == b"abcde" and entries["bin/hello"][0] & 0o777 == 0o755
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"hello"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2:] == (5, 1)


def test_cpio_refuses_duplicates() -> None:
    archive = CpioArchive()
    archive.directory("bin")
    with pytest.raises(ValueError, match="duplicate"):
        archive.directory("/bin")


def _fake_module(depends: str) -> bytes:
    """A minimal ELF64 object with only a .modinfo section and the section-name table."""
    modinfo = f"license=GPL\0depends={depends}\0vermagic=6.1.0 SMP\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    header_size, sh_size = 64, 64
    modinfo_off = header_size
    shstr_off = modinfo_off + len(modinfo)
    shoff = shstr_off + len(shstrtab)
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, sh_size, 3, 2)

    def section(name: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, 1, 0, 0, offset, size, 0, 0, 1, 0)

    sections = (
        section(0, 0, 0) + section(1, modinfo_off, len(modinfo)) + section(10, shstr_off, len(shstrtab))
    )
    return header + modinfo + shstrtab + sections


def test_module_dependencies_come_first(tmp_path: Path) -> None:
    tree = tmp_path / "kernel"
    (tree / "fs").mkdir(parents=True)
    (tree / "fs" / "9p.ko").write_bytes(_fake_module("9pnet,netfs"))
    (tree / "fs" / "netfs.ko").write_bytes(_fake_module(""))
    (tree / "fs" / "9pnet.ko").write_bytes(_fake_module("builtin_thing"))
    order = load_order(tmp_path, ["9p"], builtin={"builtin_thing"})
    assert [m.name for m in order] == ["9pnet", "netfs", "9p"]


def test_missing_module_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.ko").write_bytes(_fake_module("gone"))
    with pytest.raises(GuestBuildError, match="'gone' \\(needed by a\\) not found"):
        load_order(tmp_path, ["a"], builtin=set())


def test_kernel_cmdline_is_fixed_tokens() -> None:
    assert kernel_cmdline("boot").endswith("bench_mode=boot")
    assert "console=ttyS0,115200" in kernel_cmdline("run").split()


def test_init_script_markers_and_loopback() -> None:
    # The host's phase parser and run_in_guest depend on these lines.
    for needle in (
        "BENCH-INIT uptime=",
        "BENCH-READY uptime=",
        "BENCH-FAIL",
        "ip link set lo up",
        "poweroff -f",
    ):
        assert needle in INIT_SCRIPT
    assert not re.search(r"\beval\b", INIT_SCRIPT)  # values from files and /proc/cmdline stay data
