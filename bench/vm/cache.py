"""Where bench.vm keeps downloaded kernels, built initramfs images, the libvirt root and probe results."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["boot_id", "cache_root", "project_root"]


def cache_root() -> Path:
    """`$BENCH_CACHE` if set, else `$XDG_CACHE_HOME/library-bench` (default `~/.cache/library-bench`)."""
    explicit = os.environ.get("BENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser().resolve() / "library-bench"


def boot_id() -> str:
    """Identity of the current host boot, so probe results are reused until the host reboots."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def project_root() -> Path:
    """The checkout containing the `bench` package; guests see it at the same path (host root via 9p)."""
    return Path(__file__).resolve().parents[2]
