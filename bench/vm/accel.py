"""Choose KVM or TCG by actually booting a probe guest under KVM; cached per host boot and libvirt URI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from bench.vm.cache import boot_id, cache_root
from bench.vm.connection import Hypervisor
from bench.vm.domain_xml import Accel
from bench.vm.errors import AccelError, BootError
from bench.vm.guest import GuestArtifacts
from bench.vm.launch import boot_once
from bench.vm.profiles import VmProfile

__all__ = ["AccelChoice", "KvmProbe", "probe_kvm", "resolve_accel"]

# Under KVM the probe guest is ready in a second or two; here a KVM guest hangs after the firmware,
# so the probe must give up quickly.
PROBE_TIMEOUT_S = 20.0

_PROBE_PROFILE = VmProfile(
    name="accel-probe",
    description="tiny guest that checks whether KVM guests boot on this host",
    firmware="seabios",
    vcpus=1,
    memory_mib=512,
    cpu_mode="maximum",
    guest_target_cpu=0,
    guest_generator_cpu=0,
)


@dataclass(frozen=True)
class AccelChoice:
    accel: Accel
    reason: str  # why, for the manifest and the report

    @property
    def emulated(self) -> bool:
        """TCG is software emulation: every figure from such a guest is labelled emulated."""
        return self.accel == "tcg"


@dataclass(frozen=True)
class KvmProbe:
    kvm_usable: bool
    reason: str
    boot_id: str
    uri: str
    probed_at: float


def _cache_file(host_key: str, cache: Path) -> Path:
    key = hashlib.sha256(host_key.encode()).hexdigest()[:12]
    return cache / "accel" / f"{boot_id()}-{key}.json"


def probe_kvm(
    hv: Hypervisor, guest: GuestArtifacts, *, cache: Path | None = None, refresh: bool = False
) -> KvmProbe:
    """Boot a 1-vCPU guest with KVM; usable only if its init prints the ready marker in time."""
    cache = cache or cache_root()
    path = _cache_file(hv.host_key, cache)
    if not refresh:
        try:
            return KvmProbe(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            pass
    probe = _run_probe(hv, guest, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(probe), indent=2) + "\n")
    return probe


def _run_probe(hv: Hypervisor, guest: GuestArtifacts, cache: Path) -> KvmProbe:
    def result(usable: bool, reason: str) -> KvmProbe:
        return KvmProbe(usable, reason, boot_id(), hv.uri, time.time())

    if hv.embedded and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return result(False, "/dev/kvm is missing or not accessible")
    (cache / "accel").mkdir(parents=True, exist_ok=True)
    share = Path(tempfile.mkdtemp(prefix="probe-", dir=cache / "accel"))
    try:
        record = boot_once(
            hv, _PROBE_PROFILE, guest, accel="kvm", mode="boot", share_dir=share, timeout_s=PROBE_TIMEOUT_S
        )
    except BootError as exc:
        # QEMU's stderr is multi-line; keep its last words on one line for the manifest.
        detail = " ".join(str(exc).split())
        return result(False, f"a KVM guest could not be started: …{detail[-240:]}")
    finally:
        shutil.rmtree(share, ignore_errors=True)
    if record.outcome == "ok":
        return result(True, f"a KVM probe guest reached its ready marker in {record.phases.ready_s:.1f} s")
    last = "firmware ran, kernel never printed" if record.phases.kernel_s is None else "kernel started"
    return result(
        False, f"a KVM probe guest did not become ready ({record.outcome}: {record.reason}; {last})"
    )


def resolve_accel(
    requested: Literal["auto", "kvm", "tcg"],
    hv: Hypervisor,
    guest: GuestArtifacts,
    *,
    profile: VmProfile | None = None,
    cache: Path | None = None,
) -> AccelChoice:
    """'tcg' as asked; 'kvm' only if a KVM guest really boots here; 'auto' = KVM if it works, else TCG."""
    if requested == "tcg":
        return AccelChoice("tcg", "profile asks for tcg (software emulation)")
    probe = probe_kvm(hv, guest, cache=cache)
    if probe.kvm_usable:
        return AccelChoice("kvm", f"kvm: {probe.reason}")
    if requested == "kvm":
        where = f"{profile.source}: key 'accel': " if profile and profile.source else ""
        raise AccelError(
            f"{where}'kvm' requested, but KVM guests do not work on this host ({probe.reason}); "
            "use accel = 'auto' (falls back to TCG) or 'tcg'"
        )
    return AccelChoice("tcg", f"tcg (emulated): {probe.reason}")
