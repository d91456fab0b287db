"""Profile validation: every error names the file, the key and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench.vm.errors import ProfileError
from bench.vm.profiles import FIRMWARES, load_profile, load_profiles, parse_cpuset, profiles_dir

TWO_CPUS = frozenset({0, 1})

WriteProfile = Callable[..., Path]


def test_shipped_profiles_load_and_cover_the_matrix() -> None:
    profiles = load_profiles(cpus=TWO_CPUS)
    assert {"local", "seabios", "seabios-pinned", "ovmf-pinned", "qboot-pinned", "coreboot-pinned",
            "overcommit"} <= set(profiles)  # fmt: skip
    assert profiles["local"].firmware == "none" and not profiles["local"].is_vm
    overcommit = profiles["overcommit"]
    pinned_cpus = set().union(*(parse_cpuset(pin) for pin in overcommit.vcpu_pins))
    assert overcommit.vcpus > len(pinned_cpus)
    for name in ("seabios-pinned", "ovmf-pinned", "qboot-pinned", "coreboot-pinned"):
        assert profiles[name].vcpu_pins == ("0", "1")
        assert profiles[name].emulator_pin == "0-1"


def test_every_shipped_file_is_named_after_its_profile() -> None:
    for path in profiles_dir().glob("*.toml"):
        assert load_profile(path, cpus=TWO_CPUS).name == path.stem


def test_unknown_key_is_an_error_naming_file_and_key(write_profile: WriteProfile) -> None:
    path = write_profile(extra="vcpu_count = 3\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path, cpus=TWO_CPUS)
    message = str(info.value)
    assert str(path) in message and "'vcpu_count'" in message and "allowed keys" in message
    assert "vcpus" in message


def test_bad_firmware_lists_allowed_values(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'firmware = "seabios"': 'firmware = "uefi"'})
    with pytest.raises(ProfileError) as info:
        load_profile(path, cpus=TWO_CPUS)
    message = str(info.value)
    assert str(path) in message and "'firmware'" in message and "'uefi'" in message
    for firmware in FIRMWARES:
        assert firmware in message


def test_coreboot_rom_that_does_not_exist_is_an_error(write_profile: WriteProfile, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "coreboot.rom"
    path = write_profile(
        replace={'firmware = "seabios"': 'firmware = "coreboot"'}, extra=f'coreboot_rom = "{missing}"\n'
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path, cpus=TWO_CPUS)
    message = str(info.value)
    assert str(path) in message and "'coreboot_rom'" in message and "does not exist" in message
    assert "BENCH_COREBOOT_ROM" in message


def test_coreboot_rom_must_be_a_regular_file(write_profile: WriteProfile, tmp_path: Path) -> None:
    path = write_profile(
        replace={'firmware = "seabios"': 'firmware = "coreboot"'}, extra=f'coreboot_rom = "{tmp_path}"\n'
    )
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile(path, cpus=TWO_CPUS)


def test_coreboot_without_rom_is_skipped_with_reason(
    write_profile: WriteProfile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BENCH_COREBOOT_ROM", raising=False)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    profile = load_profile(
        write_profile(replace={'firmware = "seabios"': 'firmware = "coreboot"'}), cpus=TWO_CPUS
    )
    reason = profile.skip_reason()
    assert (
        reason
        == f"no coreboot ROM at {tmp_path / 'cache' / 'firmware' / 'coreboot.rom'} (set BENCH_COREBOOT_ROM)"
    )


def test_coreboot_rom_from_environment_wins(
    write_profile: WriteProfile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rom = tmp_path / "my.rom"
    rom.write_bytes(b"\0" * 16)
    monkeypatch.setenv("BENCH_COREBOOT_ROM", str(rom))
    profile = load_profile(
        write_profile(replace={'firmware = "seabios"': 'firmware = "coreboot"'}), cpus=TWO_CPUS
    )
    assert profile.coreboot_rom_path() == rom
    assert profile.skip_reason() is None


def test_nonexistent_host_cpu_is_an_error(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'vcpu_pins = ["0", "1"]': 'vcpu_pins = ["0", "7"]'})
    with pytest.raises(ProfileError) as info:
        load_profile(path, cpus=TWO_CPUS)
    message = str(info.value)
    assert str(path) in message and "'vcpu_pins[1]'" in message
    assert "host CPU 7 does not exist" in message and "0-1" in message


def test_nonexistent_host_cpu_in_emulator_pin(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'emulator_pin = "0-1"': 'emulator_pin = "0-3"'})
    with pytest.raises(ProfileError, match=r"'emulator_pin'.*host CPU 2, 3 does not exist"):
        load_profile(path, cpus=TWO_CPUS)


@pytest.mark.parametrize("pin", ['"1-0"', '"^1"', '"a"', '""'])
def test_bad_cpu_list_syntax(write_profile: WriteProfile, pin: str) -> None:
    path = write_profile(replace={'emulator_pin = "0-1"': f"emulator_pin = {pin}"})
    with pytest.raises(ProfileError, match="'emulator_pin'"):
        load_profile(path, cpus=TWO_CPUS)


def test_one_pin_per_vcpu(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'vcpu_pins = ["0", "1"]': 'vcpu_pins = ["0"]'})
    with pytest.raises(ProfileError, match="has 1 entries but vcpus = 2"):
        load_profile(path, cpus=TWO_CPUS)


def test_guest_cpus_must_exist_inside_the_guest(write_profile: WriteProfile) -> None:
    path = write_profile(replace={"guest_target_cpu = 1": "guest_target_cpu = 2"})
    with pytest.raises(ProfileError, match="'guest_target_cpu': CPU 2 does not exist inside the guest"):
        load_profile(path, cpus=TWO_CPUS)


def test_vm_keys_are_refused_without_a_vm(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'firmware = "seabios"': 'firmware = "none"'})
    with pytest.raises(ProfileError, match="only apply to a VM"):
        load_profile(path, cpus=TWO_CPUS)


def test_custom_cpu_mode_needs_a_model(write_profile: WriteProfile) -> None:
    path = write_profile(replace={'cpu_mode = "maximum"': 'cpu_mode = "custom"'})
    with pytest.raises(ProfileError, match="'cpu_model': is required"):
        load_profile(path, cpus=TWO_CPUS)
    path = write_profile(replace={'cpu_mode = "maximum"': 'cpu_mode = "custom"\ncpu_model = "qemu64"'})
    assert load_profile(path, cpus=TWO_CPUS).cpu_model == "qemu64"


def test_name_must_match_file(write_profile: WriteProfile) -> None:
    path = write_profile("a", replace={'name = "a"': 'name = "b"'})
    with pytest.raises(ProfileError, match="differs from the file name"):
        load_profile(path, cpus=TWO_CPUS)


def test_wrong_types_and_ranges(write_profile: WriteProfile) -> None:
    for old, new, key in [
        ("vcpus = 2", 'vcpus = "2"', "vcpus"),
        ("memory_mib = 1024", "memory_mib = 16", "memory_mib"),
        ('accel = "tcg"', 'accel = "hvf"', "accel"),
        ('machine = "pc"', 'machine = "virt"', "machine"),
    ]:
        with pytest.raises(ProfileError, match=f"'{key}'.*allowed"):
            load_profile(write_profile(replace={old: new}), cpus=TWO_CPUS)


def test_invalid_toml_names_the_file(write_profile: WriteProfile) -> None:
    path = write_profile(body="name = \n")
    with pytest.raises(ProfileError, match=f"{path}: not valid TOML"):
        load_profile(path, cpus=TWO_CPUS)
