"""The migratable guest: an initramfs whose init mounts the read-only guest image and starts the workload."""

from __future__ import annotations

from collections.abc import Callable

from bench.vm.guest import GuestArtifacts, InitramfsSpec, ensure_guest
from bench.vm.init_script import INIT_COMMON

__all__ = ["MIGRATE_INITRAMFS", "MIGRATE_INIT_SCRIPT", "ensure_migration_guest"]

# virtio_pci: the PCI transport of every virtio device; virtio_blk + squashfs: the guest image;
# virtio_console: the virtio-serial port the workload writes its lines to.
MIGRATE_MODULES = ("virtio_pci", "virtio_blk", "virtio_console", "squashfs")

MIGRATE_INIT_SCRIPT = (
    r"""#!/bin/sh
# PID 1 of a migratable bench guest (bench vm migrate), run by busybox ash from the harness-built initramfs.
# No 9p: QEMU refuses to migrate a guest with a 9p export mounted. The software comes from a read-only
# squashfs image on the first virtio disk (the host's own files at their host paths), and results leave on
# a virtio-serial port and this serial console. The workload runs until the host destroys the guest.
# Values read from files are only ever used as quoted data, never evaluated.

"""
    + INIT_COMMON
    + r"""
mount -t squashfs -o ro /dev/vda /newroot || die "mounting the guest image (/dev/vda, squashfs) failed"
if [ -f /newroot/.bench/tmpfs ]; then
    while read -r dir; do
        mount -t tmpfs -o mode=1777 tmpfs "/newroot/$dir" || die "tmpfs /$dir failed"
    done < /newroot/.bench/tmpfs
fi
mount -t proc proc /newroot/proc || die "proc failed"
mount -t sysfs sysfs /newroot/sys || die "sysfs failed"
mount -t devtmpfs devtmpfs /newroot/dev || die "devtmpfs failed"

echo "BENCH-READY uptime=$(uptime_now)"

read -r python < /newroot/.bench/python || die "no /.bench/python in the guest image"
chroot /newroot "$python" -m bench.vm.migrate._load
status=$?
echo "BENCH-EXIT status=$status uptime=$(uptime_now)"
die "the guest workload ended with status $status"
"""
)

MIGRATE_INITRAMFS = InitramfsSpec(MIGRATE_MODULES, MIGRATE_INIT_SCRIPT, "guest-migrate")


def ensure_migration_guest(log: Callable[[str], None] | None = None) -> GuestArtifacts:
    """Kernel + the migratable guest's initramfs (cached by content, beside the 9p guests' one)."""
    return ensure_guest(log=log, spec=MIGRATE_INITRAMFS)
