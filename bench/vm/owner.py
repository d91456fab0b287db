"""Which bench process owns a libvirt state directory, and killing the guests a dead owner left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from bench.vm.cache import boot_id

__all__ = ["OWNER_FILE", "kill_guests_of", "owner_alive", "proc_start_time", "write_owner"]

OWNER_FILE = "owner.json"


def proc_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_owner(directory: Path) -> None:
    """Mark `directory` as owned by this process (pid, its start time and the host boot)."""
    record = {"pid": os.getpid(), "start_time": proc_start_time(os.getpid()), "boot_id": boot_id()}
    (directory / OWNER_FILE).write_text(json.dumps(record))


def owner_alive(directory: Path) -> bool:
    """Whether the process that wrote `directory`'s owner file is still running (pids get reused)."""
    try:
        owner = json.loads((directory / OWNER_FILE).read_text())
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        # No owner file: a directory being set up right now, or an old one; judge by age.
        try:
            return time.time() - directory.stat().st_mtime < 60
        except OSError:
            return False
    if owner.get("boot_id") != boot_id():
        return False
    return bool(proc_start_time(pid) == owner.get("start_time"))


def kill_guests_of(pid_dir: Path) -> list[str]:
    """SIGKILL the QEMU of every domain with a pid file in libvirt's `pid_dir`; returns their names.

    Only a QEMU started for that very domain is killed (its command line names the guest): pids get reused.
    """
    killed = []
    for pid_file in pid_dir.glob("*.pid"):
        if pid_file.name == "driver.pid":
            continue
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(arg.startswith(f"guest={pid_file.stem}".encode()) for arg in cmdline):
            print(f"bench vm: killing QEMU {pid} of orphaned guest {pid_file.stem}", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid_file.stem)
    return killed
