"""The guest's PID 1: a busybox sh script, kept as data so it ships inside the package."""

from __future__ import annotations

__all__ = ["INIT_COMMON", "INIT_SCRIPT"]

# The start every guest's PID 1 shares (this one and the migratable guest's, bench/vm/migrate/guest.py):
# the kernel's file systems, the helpers, the first boot marker, the modules of the initramfs in their order,
# and the loopback interface.
INIT_COMMON = r"""
set -f  # nothing read from /proc/cmdline or a file may be glob-expanded
PATH=/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

uptime_now() {
    read -r up _ < /proc/uptime
    echo "$up"
}

finish() {
    sync
    # ACPI power-off ends the domain (<on_poweroff>destroy</on_poweroff>); if it returns, a reset does
    # too (<on_reboot>destroy</on_reboot>).
    poweroff -f
    reboot -f
}

die() {
    echo "BENCH-FAIL $*"
    finish
}

echo "BENCH-INIT uptime=$(uptime_now)"
while read -r module; do
    insmod "/lib/modules/$module" || die "insmod $module failed"
done < /lib/modules/load-order

# Targets and load generators talk over the guest's own loopback; there is no other interface.
ip link set lo up || die "could not bring up the loopback interface"
"""

INIT_SCRIPT = (
    r"""#!/bin/sh
# PID 1 of a bench guest, run by busybox ash from the harness-built initramfs (bench/vm/guest.py).
# It prints firmware/kernel-independent markers on the serial console so the host can time the boot,
# mounts the host's root read-only over 9p (virtme-ng style: same paths as on the host), mounts the
# read-write results share, runs the requested command in that root and powers off.
# Values read from files or /proc/cmdline are only ever used as quoted data, never evaluated.

"""
    + INIT_COMMON
    + r"""
mode=boot
for word in $(cat /proc/cmdline); do
    case "$word" in
        bench_mode=*) mode=${word#bench_mode=} ;;
    esac
done
# Host root, read-only. cache=loose: the tree does not change while a short-lived guest reads it, and
# caching makes Python's many stat/open calls over 9p much cheaper. msize: bigger 9p messages, fewer exits.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /newroot \
    || die "mounting the host root over 9p (tag hostroot) failed"
# A second view of the host root, so host paths under /tmp, /var/tmp or /run (a checkout in /tmp, say)
# can be shown again through the guest's own tmpfs mounts below.
mkdir -p /hostview
mount -o bind /newroot /hostview || die "binding a second view of the host root failed"
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || die "tmpfs /tmp failed"
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp || die "tmpfs /var/tmp failed"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || die "tmpfs /run failed"
mount -t proc proc /newroot/proc || die "proc failed"
mount -t sysfs sysfs /newroot/sys || die "sysfs failed"
mount -t devtmpfs devtmpfs /newroot/dev || die "devtmpfs failed"
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm || die "tmpfs /dev/shm failed"
mount -t devpts devpts /newroot/dev/pts || die "devpts failed"

# Results share, read-write and uncached so every write reaches the host before power-off.
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 bench /share \
    || die "mounting the results share over 9p (tag bench) failed"
read -r mountpoint < /share/vm-guest/mountpoint || die "no vm-guest/mountpoint in the results share"
case "$mountpoint" in
    /*) ;;
    *) die "vm-guest/mountpoint is not an absolute path" ;;
esac
# Host paths the command needs that the tmpfs mounts hid (the project, its venv, the Python it uses).
if [ -f /share/vm-guest/keep ]; then
    while read -r path; do
        case "$path" in
            /tmp/*|/var/tmp/*|/run/*) ;;
            *) continue ;;
        esac
        mkdir -p "/newroot$path" 2>/dev/null
        mount -o bind "/hostview$path" "/newroot$path" || die "keeping $path visible in the guest failed"
    done < /share/vm-guest/keep
fi
# The share appears at the same absolute path as on the host, so paths in argv work unchanged.
mkdir -p "/newroot$mountpoint" 2>/dev/null
mount -o bind /share "/newroot$mountpoint" || die "binding the results share at its host path failed"

echo "BENCH-READY uptime=$(uptime_now)"

if [ "$mode" = run ]; then
    read -r python < /share/vm-guest/python || die "no vm-guest/python in the results share"
    read -r helper < /share/vm-guest/helper || die "no vm-guest/helper in the results share"
    # -I -S: the helper needs only the standard library; skipping site makes it start faster over 9p.
    chroot /newroot "$python" -I -S "$helper" "$mountpoint/vm-guest/request.json"
    status=$?
    echo "$status" > /share/vm-guest/init-status
    echo "BENCH-EXIT status=$status uptime=$(uptime_now)"
fi
finish
"""
)
