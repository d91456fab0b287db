"""Domain XML: golden files per shipped profile, plus the properties that must always hold."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.vm.domain_xml import build_domain, domain_xml, placeholder_runtime
from bench.vm.errors import ProfileError
from bench.vm.guest import kernel_cmdline, placeholder_guest
from bench.vm.profiles import load_profile, load_profiles

GOLDEN = Path(__file__).parent / "golden"
# Regenerate with: BENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/vm/test_vm_domain_xml.py
UPDATE = os.environ.get("BENCH_UPDATE_GOLDEN") == "1"
TWO_CPUS = frozenset({0, 1})
VM_PROFILES = sorted(name for name, p in load_profiles(cpus=TWO_CPUS).items() if p.is_vm)


@pytest.fixture(autouse=True)
def _fixed_coreboot_rom(monkeypatch: pytest.MonkeyPatch) -> None:
    # The golden XML must not depend on this machine's cache directory.
    monkeypatch.setenv("BENCH_COREBOOT_ROM", "/COREBOOT/coreboot.rom")


def _xml(name: str, **runtime: str) -> str:
    profile = load_profiles(cpus=TWO_CPUS)[name]
    return domain_xml(profile, placeholder_guest(), placeholder_runtime(profile, **runtime))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", VM_PROFILES)
def test_golden_domain_xml(name: str) -> None:
    golden = GOLDEN / f"{name}.xml"
    text = _xml(name)
    if UPDATE:
        golden.write_text(text)
    assert golden.is_file(), f"missing {golden}; run with BENCH_UPDATE_GOLDEN=1 to create it"
    assert text == golden.read_text(), (
        f"{name}: XML changed; if intended, regenerate with BENCH_UPDATE_GOLDEN=1"
    )


def test_every_golden_file_has_a_profile() -> None:
    assert sorted(path.stem for path in GOLDEN.glob("*.xml")) == VM_PROFILES


@pytest.mark.parametrize("name", VM_PROFILES)
def test_no_network_and_guest_always_ends(name: str) -> None:
    root = ET.fromstring(_xml(name))
    assert root.find("devices/interface") is None
    assert root.find("devices/controller[@type='usb']").get("model") == "none"  # type: ignore[union-attr]
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        assert root.findtext(event) == "destroy"
    assert root.find("features/acpi") is not None
    assert root.findtext("os/cmdline") == kernel_cmdline("run")
    fs = root.findall("devices/filesystem")
    assert [f.find("target").get("dir") for f in fs] == ["hostroot", "bench"]  # type: ignore[union-attr]
    assert fs[0].find("readonly") is not None and fs[1].find("readonly") is None
    assert root.find("devices/serial").get("type") == "file"  # type: ignore[union-attr]


def test_accel_selects_domain_type() -> None:
    assert ET.fromstring(_xml("seabios", accel="tcg")).get("type") == "qemu"
    assert ET.fromstring(_xml("seabios", accel="kvm")).get("type") == "kvm"


def test_pinning_elements() -> None:
    root = ET.fromstring(_xml("overcommit"))
    assert root.findtext("vcpu") == "4"
    pins = [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")]
    assert pins == [("0", "0"), ("1", "1"), ("2", "0"), ("3", "1")]
    assert root.find("cputune/emulatorpin").get("cpuset") == "0-1"  # type: ignore[union-attr]
    assert ET.fromstring(_xml("seabios")).find("cputune") is None


def test_firmware_elements() -> None:
    ovmf = ET.fromstring(_xml("ovmf-pinned"))
    loader = ovmf.find("os/loader")
    assert loader is not None and loader.get("type") == "pflash" and loader.get("secure") == "no"
    assert loader.text is not None and "secboot" not in loader.text
    assert ovmf.find("os/nvram") is not None
    qboot = ET.fromstring(_xml("qboot-pinned")).find("os/loader")
    assert qboot is not None and qboot.get("type") == "rom" and qboot.text == "/usr/share/qemu/qboot.rom"
    seabios = ET.fromstring(_xml("seabios-pinned"))
    assert seabios.find("os/loader") is None and seabios.find("os/bios").get("useserial") == "yes"  # type: ignore[union-attr]
    coreboot = ET.fromstring(_xml("coreboot-pinned")).find("os/loader")
    assert coreboot is not None and coreboot.text == "/COREBOOT/coreboot.rom"


def test_host_passthrough_is_refused_under_tcg(write_profile: Callable[..., Path]) -> None:
    path = write_profile(replace={'cpu_mode = "maximum"': 'cpu_mode = "host-passthrough"'})
    profile = load_profile(path, cpus=TWO_CPUS)
    with pytest.raises(ProfileError, match=r"needs KVM.*use 'maximum'"):
        build_domain(profile, placeholder_guest(), placeholder_runtime(profile, accel="tcg"))
    root = build_domain(profile, placeholder_guest(), placeholder_runtime(profile, accel="kvm"))
    assert root.find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]


def test_profile_values_stay_data(write_profile: Callable[..., Path]) -> None:
    # A description full of XML/shell metacharacters ends up as escaped text, never as markup.
    path = write_profile(
        replace={'description = "test profile"': 'description = "</description><x/>$(reboot)"'}
    )
    profile = load_profile(path, cpus=TWO_CPUS)
    root = ET.fromstring(domain_xml(profile, placeholder_guest(), placeholder_runtime(profile)))
    assert root.findtext("description") == "</description><x/>$(reboot)"
    assert root.find("x") is None


def test_local_profile_has_no_domain() -> None:
    local = load_profiles(cpus=TWO_CPUS)["local"]
    with pytest.raises(ProfileError, match="runs on the host"):
        build_domain(local, placeholder_guest(), placeholder_runtime(local))
