"""Firmware files from Debian's packages, and which firmware prints anything on the serial console."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.vm.profiles import COREBOOT_ENV

if TYPE_CHECKING:
    from bench.vm.profiles import VmProfile

__all__ = ["FIRMWARE_OUTPUT", "OVMF_CODE", "OVMF_VARS", "QBOOT_ROM", "SEABIOS", "missing_firmware"]

SEABIOS = Path("/usr/share/seabios/bios-256k.bin")  # package seabios; QEMU loads it when no loader is given
SGABIOS = Path("/usr/share/qemu/sgabios.bin")  # package qemu-system-data; mirrors BIOS text to serial
# The 4 MB build without Secure Boot (package ovmf): SB builds need SMM and signed kernels.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
QBOOT_ROM = Path("/usr/share/qemu/qboot.rom")  # package qemu-system-data

# What each firmware writes to the serial console before the kernel, i.e. whether the
# "firmware first output" phase can be measured at all.
FIRMWARE_OUTPUT = {
    "seabios": "banner via sgabios (<bios useserial='yes'/>)",
    "ovmf": "console escape sequences from its serial console driver",
    "qboot": "nothing: qboot has no console output, so the firmware phase is unavailable",
    "coreboot": "depends on the ROM's build (CONFIG_CONSOLE_SERIAL)",
    "none": "no VM",
}

_PACKAGES = {SEABIOS: "seabios", SGABIOS: "qemu-system-data", OVMF_CODE: "ovmf", OVMF_VARS: "ovmf",
             QBOOT_ROM: "qemu-system-data"}  # fmt: skip


def _required(profile: VmProfile) -> list[Path]:
    return {
        "seabios": [SEABIOS, SGABIOS],
        "ovmf": [OVMF_CODE, OVMF_VARS],
        "qboot": [QBOOT_ROM],
    }.get(profile.firmware, [])


def missing_firmware(profile: VmProfile) -> str | None:
    """Reason the profile's firmware is not available on this host, or None."""
    if profile.firmware == "coreboot":
        rom = profile.coreboot_rom_path()
        if rom is None or not rom.is_file():
            return f"no coreboot ROM at {rom} (set {COREBOOT_ENV})"
        return None
    for path in _required(profile):
        if not path.is_file():
            return f"{path} is missing (install the Debian package {_PACKAGES[path]})"
    return None
