"""libvirt domain XML for a profile + guest artifacts, built as an element tree (never by string pasting)."""

from __future__ import annotations

import os
import socket
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.vm.cache import boot_id
from bench.vm.errors import ProfileError
from bench.vm.firmware import OVMF_CODE, OVMF_VARS, QBOOT_ROM
from bench.vm.guest import GuestArtifacts, Mode, kernel_cmdline
from bench.vm.profiles import VmProfile

__all__ = [
    "DOMAIN_PREFIX",
    "HOSTROOT_TAG",
    "METADATA_NS",
    "RESULTS_TAG",
    "DomainRuntime",
    "build_domain",
    "domain_xml",
    "new_runtime",
    "placeholder_runtime",
]

# Every domain this project defines carries its name prefix and a metadata element in its namespace, which is
# how the connection layer finds (and only ever destroys) its own domains.
METADATA_NS = "https://library-bench.invalid/vm/1"
DOMAIN_PREFIX = "bench-"

Accel = Literal["kvm", "tcg"]

# 9p mount tags the guest init mounts (bench/vm/init_script.py).
HOSTROOT_TAG = "hostroot"
RESULTS_TAG = "bench"

ET.register_namespace("bench", METADATA_NS)


@dataclass(frozen=True)
class DomainRuntime:
    """Everything about one guest that is not in the profile: identity, accelerator, host paths."""

    name: str
    uuid: str
    accel: Accel
    mode: Mode
    serial_log: Path
    share_dir: Path
    nvram: Path | None
    owner_pid: int
    owner_host: str
    owner_boot_id: str
    # A migratable guest (bench vm migrate) has no 9p shares: its software is this read-only image, its
    # results leave through a virtio-serial port written to `load_log`, and `cmdline_extra` carries the
    # workload's parameters (bench_<name>=<word> tokens).
    image: Path | None = None
    load_log: Path | None = None
    load_port: str = ""
    cmdline_extra: tuple[str, ...] = ()


def new_runtime(
    profile: VmProfile, *, accel: Accel, mode: Mode, workdir: Path, share_dir: Path
) -> DomainRuntime:
    """A fresh unique identity; per-guest files (serial log, OVMF vars) go into `workdir`."""
    guest_uuid = str(uuid.uuid4())
    name = f"{DOMAIN_PREFIX}{profile.name}-{guest_uuid[:8]}"
    return DomainRuntime(
        name=name,
        uuid=guest_uuid,
        accel=accel,
        mode=mode,
        serial_log=workdir / "serial.log",
        share_dir=share_dir,
        nvram=workdir / "OVMF_VARS.fd" if profile.firmware == "ovmf" else None,
        owner_pid=os.getpid(),
        owner_host=socket.gethostname(),
        owner_boot_id=boot_id(),
    )


def placeholder_runtime(profile: VmProfile, *, accel: Accel = "tcg", mode: Mode = "run") -> DomainRuntime:
    """Deterministic stand-in identity and paths, for `bench vm xml` and the golden tests."""
    name = f"{DOMAIN_PREFIX}{profile.name}-00000000"
    workdir = Path("/RESULTS/vm-guest")
    return DomainRuntime(
        name=name,
        uuid="00000000-0000-4000-8000-000000000000",
        accel=accel,
        mode=mode,
        serial_log=workdir / "serial.log",
        share_dir=Path("/RESULTS"),
        nvram=workdir / "OVMF_VARS.fd" if profile.firmware == "ovmf" else None,
        owner_pid=0,
        owner_host="HOST",
        owner_boot_id="BOOT-ID",
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _why(parent: ET.Element, text: str) -> None:
    """An XML comment saying why the next element is there (kept in the printed and saved XML)."""
    parent.append(ET.Comment(f" {text} "))


def _check_cpu_mode(profile: VmProfile, accel: Accel) -> None:
    if accel == "tcg" and profile.cpu_mode in ("host-passthrough", "host-model"):
        raise ProfileError(
            f"{profile.source or profile.name}: key 'cpu_mode': {profile.cpu_mode!r} needs KVM, but this "
            "guest runs under TCG (software emulation); use 'maximum' (every feature the accelerator offers)"
        )


def build_domain(profile: VmProfile, guest: GuestArtifacts, rt: DomainRuntime) -> ET.Element:
    if not profile.is_vm:
        raise ProfileError(
            f"profile {profile.name!r} has firmware = 'none': it runs on the host, there is no VM"
        )
    _check_cpu_mode(profile, rt.accel)
    domain = ET.Element("domain", {"type": "kvm" if rt.accel == "kvm" else "qemu"})
    _sub(domain, "name", rt.name)
    _sub(domain, "uuid", rt.uuid)
    _sub(domain, "title", f"bench guest, profile {profile.name}")
    _sub(domain, "description", profile.description)

    metadata = _sub(domain, "metadata")
    _why(metadata, "who started this guest: lets a later bench run destroy it if that process died")
    ET.SubElement(
        metadata,
        f"{{{METADATA_NS}}}owner",
        {
            "profile": profile.name,
            "mode": rt.mode,
            "pid": str(rt.owner_pid),
            "host": rt.owner_host,
            "boot-id": rt.owner_boot_id,
        },
    )

    _sub(domain, "memory", str(profile.memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(profile.vcpus), placement="static")
    if profile.vcpu_pins or profile.emulator_pin:
        cputune = _sub(domain, "cputune")
        for index, cpuset in enumerate(profile.vcpu_pins):
            _sub(cputune, "vcpupin", vcpu=str(index), cpuset=cpuset)
        if profile.emulator_pin:
            _why(cputune, "QEMU's main loop and I/O threads (9p, serial) run here, not on the vCPUs' CPUs")
            _sub(cputune, "emulatorpin", cpuset=profile.emulator_pin)

    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=profile.machine)
    if profile.firmware == "seabios":
        _why(
            os_el,
            "no <loader>: QEMU's default firmware is SeaBIOS (firmware='bios' autoselect fails on Debian)",
        )
        _why(os_el, "useserial adds sgabios, which mirrors SeaBIOS' screen text to ttyS0: the firmware phase")
        _sub(os_el, "bios", useserial="yes")
    elif profile.firmware == "ovmf":
        _why(os_el, "OVMF without Secure Boot (SB builds need SMM and a signed kernel); per-guest NVRAM copy")
        _sub(os_el, "loader", str(OVMF_CODE), readonly="yes", secure="no", type="pflash")
        assert rt.nvram is not None
        _sub(os_el, "nvram", str(rt.nvram), template=str(OVMF_VARS))
    elif profile.firmware in ("qboot", "coreboot"):
        rom = QBOOT_ROM if profile.firmware == "qboot" else profile.coreboot_rom_path()
        _why(os_el, f"{profile.firmware} replaces SeaBIOS as the system ROM")
        _sub(os_el, "loader", str(rom), type="rom")
    _why(os_el, "direct kernel boot: the firmware still runs first, then loads this kernel via fw_cfg")
    _sub(os_el, "kernel", str(guest.kernel))
    _sub(os_el, "initrd", str(guest.initrd))
    _sub(os_el, "cmdline", kernel_cmdline(rt.mode, rt.cmdline_extra))

    features = _sub(domain, "features")
    _why(features, "ACPI: the guest powers itself off through it, and OVMF requires it")
    _sub(features, "acpi")

    if profile.cpu_mode == "custom":
        cpu = _sub(domain, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu, "model", profile.cpu_model, fallback="forbid")
    else:
        if profile.cpu_mode == "maximum":
            _why(domain, "maximum: every CPU feature the accelerator offers (host-passthrough needs KVM)")
        _sub(domain, "cpu", mode=profile.cpu_mode, check="none")
    _sub(domain, "clock", offset="utc")
    _why(domain, "the guest ends itself: power-off, reset (init failure, panic=-1) and crash all stop it")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "destroy")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    if rt.image is not None:
        _image_devices(devices, rt)
    else:
        _shared_folders(devices, rt)
    _why(devices, "ttyS0 to a file: firmware, kernel and init output, tailed by the host to time the boot")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(rt.serial_log), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=str(rt.serial_log), append="off")
    _sub(console, "target", type="serial", port="0")
    _why(devices, "no network interface at all (libvirt starts QEMU with -nodefaults); work uses loopback")
    _why(devices, "no USB controller and no balloon: nothing in the guest uses them, and they cost boot time")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    return domain


def _shared_folders(devices: ET.Element, rt: DomainRuntime) -> None:
    _why(
        devices,
        "9p rather than virtiofs: no virtiofsd and no shared-memory backing, and it works under TCG. "
        "The host root, read-only, so the guest sees the project, its venv and /root at the same paths; "
        "multidevs=remap keeps inode numbers unique across the host's several filesystems",
    )
    root_fs = _sub(devices, "filesystem", type="mount", accessmode="passthrough", multidevs="remap")
    _sub(root_fs, "source", dir="/")
    _sub(root_fs, "target", dir=HOSTROOT_TAG)
    _sub(root_fs, "readonly")
    _why(devices, "the results directory, read-write; the guest mounts it at the same path as on the host")
    results_fs = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
    _sub(results_fs, "source", dir=str(rt.share_dir))
    _sub(results_fs, "target", dir=RESULTS_TAG)


def _image_devices(devices: ET.Element, rt: DomainRuntime) -> None:
    assert rt.image is not None and rt.load_log is not None
    _why(
        devices,
        "the guest's software: a read-only squashfs image that both ends of a migration open (shared "
        "storage); no 9p, as QEMU refuses to migrate a guest with a 9p export mounted. Read-only, so "
        "libvirt considers the migration safe without cache='none'",
    )
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=str(rt.image))
    _sub(disk, "target", dev="vda", bus="virtio")
    _sub(disk, "readonly")
    _why(
        devices,
        "the workload's lines leave on a virtio-serial port (whole lines per write, unlike the 16550 UART's "
        "byte-by-byte exits); each end of a migration writes its own file",
    )
    _sub(devices, "controller", type="virtio-serial", index="0")
    channel = _sub(devices, "channel", type="file")
    _sub(channel, "source", path=str(rt.load_log), append="off")
    _sub(channel, "target", type="virtio", name=rt.load_port)


def domain_xml(profile: VmProfile, guest: GuestArtifacts, rt: DomainRuntime) -> str:
    tree = build_domain(profile, guest, rt)
    ET.indent(tree, space="  ")
    return ET.tostring(tree, encoding="unicode") + "\n"
