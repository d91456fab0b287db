"""Virtualization layer: VM profiles, domain XML, guest build, boot timing, run-in-guest, live migration.

Public surface (imported lazily so `bench --help` stays fast):

    run_in_guest(profile, argv, *, results_dir, timeout_s, uri=None, env=None) -> GuestRun
    load_profile(path) / load_profiles(dir) / find_profile(name) -> VmProfile
    ensure_guest() -> GuestArtifacts

Exceptions (bench.vm.errors):

    VmError
    ├── ProfileError          invalid profile file (names the file, the key, the allowed values)
    ├── ProfileSkipped        valid profile that cannot run here (e.g. no coreboot ROM)
    ├── GuestBuildError       kernel download / initramfs build failed
    ├── LibvirtUnavailable    libvirt-python, the QEMU driver or the URI cannot be used
    ├── BootError             a guest could not be started
    ├── AccelError            accel = "kvm" but KVM guests do not work on this host
    ├── DaemonError           a private libvirtd of `bench vm migrate` could not be started or stopped
    └── MigrationError        a live migration failed or was aborted (says where the guest was left)
        ├── DestinationUnreachable   the destination libvirt cannot be reached
        └── MigrationTimeout         the migration did not finish within --timeout
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.vm.errors import (
        AccelError,
        BootError,
        GuestBuildError,
        LibvirtUnavailable,
        ProfileError,
        ProfileSkipped,
        VmError,
    )
    from bench.vm.guest import GuestArtifacts, ensure_guest
    from bench.vm.profiles import VmProfile, find_profile, load_profile, load_profiles
    from bench.vm.run import GuestRun, run_in_guest

__all__ = [
    "AccelError",
    "BootError",
    "GuestArtifacts",
    "GuestBuildError",
    "GuestRun",
    "LibvirtUnavailable",
    "ProfileError",
    "ProfileSkipped",
    "VmError",
    "VmProfile",
    "ensure_guest",
    "find_profile",
    "load_profile",
    "load_profiles",
    "run_in_guest",
]

_HOMES = {
    "bench.vm.errors": ["AccelError", "BootError", "GuestBuildError", "LibvirtUnavailable", "ProfileError",
                        "ProfileSkipped", "VmError"],
    "bench.vm.guest": ["GuestArtifacts", "ensure_guest"],
    "bench.vm.profiles": ["VmProfile", "find_profile", "load_profile", "load_profiles"],
    "bench.vm.run": ["GuestRun", "run_in_guest"],
}  # fmt: skip
_WHERE = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bench.vm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
