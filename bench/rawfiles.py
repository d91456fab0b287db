"""Durable raw files: written once, atomically (temp file + fsync + rename + fsync of the directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["RawFileError", "append_line", "fsync_dir", "write_atomic", "write_json"]


class RawFileError(OSError):
    """A results file could not be written durably (full disk, read-only or missing directory)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a torn write; the rename survives a crash."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RawFileError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync (append-only index files)."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    try:
        with open(path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise RawFileError(exc.errno, f"cannot append to {path}: {exc.strerror or exc}") from exc
