"""Firmware files from Debian's packages, and which firmware prints anything on the serial console."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "COREBOOT_ENV",
    "FIRMWARE_OUTPUT",
    "OVMF_CODE",
    "OVMF_VARS",
    "QBOOT_ROM",
    "SEABIOS",
    "missing_firmware",
]

COREBOOT_ENV = "BENCH_COREBOOT_ROM"  # a coreboot ROM path; wins over a profile's coreboot_rom

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


def _required(firmware: str) -> list[Path]:
    return {
        "seabios": [SEABIOS, SGABIOS],
        "ovmf": [OVMF_CODE, OVMF_VARS],
        "qboot": [QBOOT_ROM],
    }.get(firmware, [])


def missing_firmware(firmware: str, *, coreboot_rom: Path | None = None) -> str | None:
    """Reason `firmware` (a profile's; coreboot with its ROM path) is not available on this host, or None."""
    if firmware == "coreboot":
        if coreboot_rom is None or not coreboot_rom.is_file():
            return f"no coreboot ROM at {coreboot_rom} (set {COREBOOT_ENV})"
        return None
    for path in _required(firmware):
        if not path.is_file():
            return f"{path} is missing (install the Debian package {_PACKAGES[path]})"
    return None
