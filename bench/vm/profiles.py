"""VM profiles: one TOML file each under vm_profiles/, validated on load into `VmProfile`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from bench.vm.cache import cache_root, project_root
from bench.vm.errors import ProfileError
from bench.vm.firmware import COREBOOT_ENV, missing_firmware

__all__ = [
    "ACCELS",
    "CPU_MODES",
    "FIRMWARES",
    "MACHINES",
    "VmProfile",
    "host_cpus",
    "load_profile",
    "load_profiles",
    "parse_cpuset",
    "profiles_dir",
]

Firmware = Literal["seabios", "ovmf", "qboot", "coreboot", "none"]
Accel = Literal["auto", "kvm", "tcg"]
CpuMode = Literal["maximum", "host-passthrough", "host-model", "custom"]
Machine = Literal["pc", "q35"]

FIRMWARES: tuple[str, ...] = get_args(Firmware)
ACCELS: tuple[str, ...] = get_args(Accel)
CPU_MODES: tuple[str, ...] = get_args(CpuMode)
# microvm is left out: it has no PCI bus, and libvirt 9 has no virtio-mmio 9p to share folders with it.
MACHINES: tuple[str, ...] = get_args(Machine)

PROFILES_ENV = "BENCH_VM_PROFILES"

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_CPU_MODEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# key -> (what the value must be, keys only meaningful for a VM)
_KEYS: dict[str, tuple[str, bool]] = {
    "name": ("a lowercase name [a-z0-9-] equal to the file name", False),
    "description": ("a string", False),
    "firmware": (" | ".join(FIRMWARES), False),
    "guest_target_cpu": ("a CPU index (inside the guest, or on the host when firmware = 'none')", False),
    "guest_generator_cpu": ("a CPU index (inside the guest, or on the host when firmware = 'none')", False),
    "machine": (" | ".join(MACHINES), True),
    "vcpus": ("an integer from 1 to 64", True),
    "memory_mib": ("an integer from 256 to 65536", True),
    "vcpu_pins": ('a list with one host CPU list per vCPU, e.g. ["0", "1"] or ["0-1"]', True),
    "emulator_pin": ('a host CPU list, e.g. "0" or "0-1"', True),
    "cpu_mode": (" | ".join(CPU_MODES), True),
    "cpu_model": ("a QEMU CPU model name (only with cpu_mode = 'custom'), e.g. 'qemu64'", True),
    "accel": (" | ".join(ACCELS), True),
    "coreboot_rom": (
        f"path to an existing coreboot ROM (firmware = 'coreboot' only; ${COREBOOT_ENV} wins)",
        True,
    ),
    "boot_timeout_s": ("a number of seconds from 5 to 3600", True),
}


def profiles_dir() -> Path:
    return Path(os.environ.get(PROFILES_ENV) or project_root() / "vm_profiles")


def parse_cpuset(text: str) -> frozenset[int]:
    """'0-1,3' -> {0, 1, 3}; raises ValueError on anything else (libvirt's ^N exclusions included)."""
    if not _CPUSET.match(text):
        raise ValueError(text)
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(text)
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def host_cpus() -> frozenset[int]:
    """CPUs present on this host (what libvirt can pin to)."""
    try:
        return parse_cpuset(Path("/sys/devices/system/cpu/present").read_text().strip())
    except (OSError, ValueError):
        return frozenset(range(os.cpu_count() or 1))


def _describe_cpus(cpus: Iterable[int]) -> str:
    ordered = sorted(cpus)
    return (
        f"{ordered[0]}-{ordered[-1]}" if ordered == list(range(ordered[0], ordered[-1] + 1)) else str(ordered)
    )


@dataclass(frozen=True)
class VmProfile:
    """One virtualization choice. firmware = 'none' means: run on the host, no VM."""

    name: str
    description: str
    firmware: Firmware
    source: Path | None = None
    machine: Machine = "pc"
    vcpus: int = 2
    memory_mib: int = 1024
    vcpu_pins: tuple[str, ...] = ()
    emulator_pin: str | None = None
    cpu_mode: CpuMode = "maximum"
    cpu_model: str | None = None
    accel: Accel = "auto"
    coreboot_rom: Path | None = None
    guest_target_cpu: int = 1
    guest_generator_cpu: int = 0
    boot_timeout_s: float = 180.0

    @property
    def is_vm(self) -> bool:
        return self.firmware != "none"

    def coreboot_rom_path(self) -> Path | None:
        """The ROM to use: `$BENCH_COREBOOT_ROM`, else the profile's coreboot_rom, else the cache default."""
        if self.firmware != "coreboot":
            return None
        explicit = os.environ.get(COREBOOT_ENV)
        if explicit:
            return Path(explicit).expanduser()
        return self.coreboot_rom or cache_root() / "firmware" / "coreboot.rom"

    def skip_reason(self) -> str | None:
        """Why this (valid) profile cannot run on this machine, or None if it can."""
        return missing_firmware(self.firmware, coreboot_rom=self.coreboot_rom_path())


def _fail(source: Path, key: str, problem: str) -> ProfileError:
    expected = _KEYS.get(key, ("", False))[0]
    allowed = f"; allowed: {expected}" if expected else ""
    return ProfileError(f"{source}: key {key!r}: {problem}{allowed}")


def _int(source: Path, data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(source, key, f"got {value!r}")
    return value


def _choice(source: Path, data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if value not in allowed:
        raise _fail(source, key, f"got {value!r}")
    return cast(str, value)


def _cpuset(source: Path, key: str, value: Any, cpus: frozenset[int]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _fail(source, key, f'got {value!r}, expected a string such as "0" or "0-1"')
    try:
        wanted = parse_cpuset(value)
    except ValueError:
        raise _fail(source, key, f'{value!r} is not a CPU list like "1", "0-1" or "0,2"') from None
    missing = sorted(wanted - cpus)
    if missing:
        raise ProfileError(
            f"{source}: key {key!r}: host CPU {', '.join(map(str, missing))} does not exist on this machine "
            f"(it has CPUs {_describe_cpus(cpus)}); pin to existing CPUs or use another profile"
        )
    return value


def parse_profile(data: dict[str, Any], source: Path, *, cpus: frozenset[int] | None = None) -> VmProfile:
    """Validate one profile's data; every error names the file, the key and what is allowed."""
    cpus = cpus if cpus is not None else host_cpus()
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ProfileError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: "
                           f"{', '.join(_KEYS)}")  # fmt: skip
    for key in ("name", "description", "firmware"):
        if key not in data:
            raise _fail(source, key, "is required")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(source, "name", f"got {name!r}")
    if source.suffix == ".toml" and name != source.stem:
        raise _fail(source, "name", f"{name!r} differs from the file name {source.stem!r}")
    if not isinstance(data["description"], str):
        raise _fail(source, "description", f"got {data['description']!r}")
    firmware = cast(Firmware, _choice(source, data, "firmware", FIRMWARES))
    if firmware == "none":
        vm_only = sorted(key for key in data if _KEYS[key][1])
        if vm_only:
            raise ProfileError(
                f"{source}: key(s) {', '.join(map(repr, vm_only))} only apply to a VM, but firmware = 'none' "
                "runs on the host; remove them or pick a firmware"
            )
    fields: dict[str, Any] = {"name": name, "description": data["description"], "firmware": firmware}

    vcpus = _int(source, data, "vcpus", 1, 64)
    if vcpus is not None:
        fields["vcpus"] = vcpus
    vcpus = vcpus or VmProfile.vcpus
    memory = _int(source, data, "memory_mib", 256, 65536)
    if memory is not None:
        fields["memory_mib"] = memory
    for key, allowed in (("machine", MACHINES), ("cpu_mode", CPU_MODES), ("accel", ACCELS)):
        value = _choice(source, data, key, allowed)
        if value is not None:
            fields[key] = value

    if "vcpu_pins" in data:
        pins = data["vcpu_pins"]
        if not isinstance(pins, list):
            raise _fail(source, "vcpu_pins", f"got {pins!r}")
        if pins and len(pins) != vcpus:
            raise _fail(
                source, "vcpu_pins", f"has {len(pins)} entries but vcpus = {vcpus}; give one per vCPU"
            )
        fields["vcpu_pins"] = tuple(
            _cpuset(source, f"vcpu_pins[{index}]", pin, cpus) for index, pin in enumerate(pins)
        )
    if "emulator_pin" in data:
        fields["emulator_pin"] = _cpuset(source, "emulator_pin", data["emulator_pin"], cpus)

    cpu_mode = fields.get("cpu_mode", VmProfile.cpu_mode)
    if "cpu_model" in data:
        model = data["cpu_model"]
        if cpu_mode != "custom":
            raise _fail(
                source, "cpu_model", f"is only used with cpu_mode = 'custom' (cpu_mode is {cpu_mode!r})"
            )
        if not isinstance(model, str) or not _CPU_MODEL.match(model):
            raise _fail(source, "cpu_model", f"got {model!r}")
        fields["cpu_model"] = model
    elif cpu_mode == "custom":
        raise _fail(source, "cpu_model", "is required when cpu_mode = 'custom'")

    if "coreboot_rom" in data:
        if firmware != "coreboot":
            raise _fail(
                source, "coreboot_rom", f"is only used with firmware = 'coreboot' (firmware is {firmware!r})"
            )
        rom = data["coreboot_rom"]
        if not isinstance(rom, str) or not rom:
            raise _fail(source, "coreboot_rom", f"got {rom!r}")
        rom_path = Path(rom).expanduser()
        # A ROM named in the profile must be there; with no ROM named, the profile is skipped instead.
        if not rom_path.is_file():
            problem = "is not a regular file" if rom_path.exists() else "does not exist"
            raise _fail(
                source,
                "coreboot_rom",
                f"{str(rom_path)!r} {problem}; build coreboot for QEMU and point coreboot_rom (or "
                f"${COREBOOT_ENV}) at the ROM, or remove the key to have the profile skipped",
            )
        fields["coreboot_rom"] = rom_path

    if "boot_timeout_s" in data:
        timeout = data["boot_timeout_s"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 5 <= timeout <= 3600:
            raise _fail(source, "boot_timeout_s", f"got {timeout!r}")
        fields["boot_timeout_s"] = float(timeout)

    guest_cpus = frozenset(range(vcpus)) if firmware != "none" else cpus
    where = "inside the guest" if firmware != "none" else "on this host"
    for key in ("guest_target_cpu", "guest_generator_cpu"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value not in guest_cpus:
                raise ProfileError(
                    f"{source}: key {key!r}: CPU {value!r} does not exist {where} "
                    f"(CPUs {_describe_cpus(guest_cpus)})"
                )
            fields[key] = value
        elif getattr(VmProfile, key) not in guest_cpus:
            fields[key] = 0  # a 1-CPU guest: both sides share CPU 0
    return VmProfile(source=source, **fields)


def load_profile(path: Path, *, cpus: frozenset[int] | None = None) -> VmProfile:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_profile(data, path, cpus=cpus)


def load_profiles(
    directory: Path | None = None, *, cpus: frozenset[int] | None = None
) -> dict[str, VmProfile]:
    """Every profile in `directory` (default: vm_profiles/ or $BENCH_VM_PROFILES), by name."""
    directory = directory or profiles_dir()
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise ProfileError(f"{directory}: no *.toml profiles found")
    return {profile.name: profile for profile in (load_profile(p, cpus=cpus) for p in paths)}


def find_profile(name_or_path: str, *, cpus: frozenset[int] | None = None) -> VmProfile:
    """A profile by name (from the profiles directory) or by path to a .toml file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        return load_profile(candidate, cpus=cpus)
    path = profiles_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in profiles_dir().glob("*.toml"))) or "none"
        raise ProfileError(f"no profile named {name_or_path!r} in {profiles_dir()} (known: {known})")
    return load_profile(path, cpus=cpus)
