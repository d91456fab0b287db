"""Exception tree of `bench.vm` (a branch of bench.errors); every error names what failed, where, and what
to do. `bench` reports any of them with exit code 2."""

from __future__ import annotations

from bench.errors import BenchError

__all__ = [
    "AccelError",
    "BootError",
    "DaemonError",
    "DestinationUnreachable",
    "GuestBuildError",
    "LibvirtUnavailable",
    "MigrationError",
    "MigrationTimeout",
    "ProfileError",
    "ProfileSkipped",
    "VmError",
]


class VmError(BenchError):
    """Base class of every error raised by `bench.vm`."""

    exit_code = 2


class ProfileError(VmError):
    """A profile file is invalid: the message names the file, the key and the allowed values."""


class ProfileSkipped(VmError):
    """A valid profile that cannot run on this machine (e.g. no coreboot ROM); the message is the reason."""


class GuestBuildError(VmError):
    """Building the guest kernel/initramfs failed (apt-get download, dpkg -x, a missing module)."""


class LibvirtUnavailable(VmError):
    """libvirt-python, the QEMU driver or the connection URI cannot be used."""


class BootError(VmError):
    """A guest could not be started or did not behave (never ready, timed out, crashed)."""


class AccelError(VmError):
    """The requested accelerator cannot be used (e.g. accel = "kvm" but KVM guests hang)."""


class DaemonError(VmError):
    """A private libvirtd (the source or destination of a local migration) could not be started or stopped."""


class MigrationError(VmError):
    """A live migration failed or was aborted; the message says why and on which side the guest was left."""


class DestinationUnreachable(MigrationError):
    """The destination libvirt cannot be reached (no daemon at the URI, refused, no route)."""


class MigrationTimeout(MigrationError):
    """A live migration did not finish within --timeout (it did not converge) and was aborted."""
