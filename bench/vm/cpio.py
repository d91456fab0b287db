"""Deterministic cpio "newc" archive writer (the format the Linux kernel unpacks as an initramfs)."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

__all__ = ["CpioArchive"]

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


@dataclass
class CpioArchive:
    """Collects entries in memory and serialises them; mtimes are 0 so equal inputs give equal bytes."""

    _entries: list[tuple[str, int, bytes, int, int]] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def _add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.lstrip("/")
        if not name or name in self._names:
            raise ValueError(f"cpio: empty or duplicate entry name {name!r}")
        self._names.add(name)
        self._entries.append((name, mode, data, rdev[0], rdev[1]))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._add(name, stat.S_IFDIR | perm)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._add(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        # Device nodes are only headers, so building them needs no privileges; /dev/console must exist
        # before devtmpfs is mounted or the kernel starts init without stdout.
        self._add(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def to_bytes(self) -> bytes:
        out = bytearray()
        entries = [*self._entries, (_TRAILER, 0, b"", 0, 0)]
        for ino, (name, mode, data, rmajor, rminor) in enumerate(entries, start=1):
            encoded = name.encode() + b"\0"
            nlink = 2 if stat.S_ISDIR(mode) else 1
            fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(encoded), 0)
            header = _MAGIC + b"".join(b"%08X" % value for value in fields)
            out += header + encoded + _pad4(len(header) + len(encoded))
            out += data + _pad4(len(data))
        return bytes(out)
