"""Kernel-module dependency resolution read straight from the .ko files (no depmod/modinfo needed)."""

from __future__ import annotations

import gzip
import lzma
import struct
from dataclasses import dataclass
from pathlib import Path

from bench.vm.errors import GuestBuildError

__all__ = ["KernelModule", "load_order", "module_index", "read_module"]

_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


@dataclass(frozen=True)
class KernelModule:
    name: str
    path: Path
    depends: tuple[str, ...]
    data: bytes  # uncompressed ELF object, ready for insmod


def _module_name(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    # The kernel treats '-' and '_' in module names as the same character.
    return name.replace("-", "_")


def _decompress(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(raw)
    if path.name.endswith(".gz"):
        return gzip.decompress(raw)
    if path.name.endswith(".zst"):
        raise GuestBuildError(
            f"{path}: zstd-compressed kernel modules are not supported (Python 3.11 has no zstd); "
            "use a kernel package whose modules are uncompressed or .xz"
        )
    return raw


def _modinfo(elf: bytes, path: Path) -> dict[str, str]:
    """Return the key=value strings of the ELF64 .modinfo section."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise GuestBuildError(f"{path}: not a little-endian ELF64 kernel module")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name_off = struct.unpack_from("<I", elf, base)[0]
        offset, size = struct.unpack_from("<QQ", elf, base + 0x18)
        return name_off, offset, size

    _, strtab_off, _ = section(shstrndx)
    for index in range(shnum):
        name_off, offset, size = section(index)
        end = elf.index(b"\0", strtab_off + name_off)
        if elf[strtab_off + name_off : end] == b".modinfo":
            info: dict[str, str] = {}
            for item in elf[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    raise GuestBuildError(f"{path}: no .modinfo section; is this a kernel module?")


def read_module(path: Path) -> KernelModule:
    data = _decompress(path)
    info = _modinfo(data, path)
    depends = tuple(dep.replace("-", "_") for dep in info.get("depends", "").split(",") if dep)
    return KernelModule(name=_module_name(path), path=path, depends=depends, data=data)


def module_index(modules_dir: Path) -> dict[str, Path]:
    """Map module name -> file for every module under lib/modules/<version>/kernel."""
    index: dict[str, Path] = {}
    for path in sorted(modules_dir.rglob("*.ko*")):
        if path.name.endswith(_SUFFIXES):
            index.setdefault(_module_name(path), path)
    return index


def load_order(modules_dir: Path, wanted: list[str], *, builtin: set[str]) -> list[KernelModule]:
    """Resolve `wanted` and its dependencies into insmod order (dependencies first).

    Names in `builtin` (from modules.builtin) are compiled into the kernel and are skipped.
    """
    index = module_index(modules_dir)
    ordered: list[KernelModule] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in builtin:
            return
        if name in chain:
            raise GuestBuildError(f"kernel module dependency cycle: {' -> '.join((*chain, name))}")
        path = index.get(name)
        if path is None:
            needed_by = f" (needed by {chain[-1]})" if chain else ""
            raise GuestBuildError(
                f"kernel module {name!r}{needed_by} not found under {modules_dir} "
                "and not listed in modules.builtin; does this kernel flavour build it?"
            )
        module = read_module(path)
        for dep in module.depends:
            visit(dep, (*chain, name))
        seen.add(name)
        ordered.append(module)

    for name in wanted:
        visit(name.replace("-", "_"), ())
    return ordered
