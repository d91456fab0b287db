"""What `bench vm migrate` will do: the profile, the load levels, the interleaved repeats, the two ends."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from bench.errors import UsageError
from bench.vm.migrate._load import DEFAULT_DIRTY_MIB_S
from bench.vm.profiles import VmProfile

__all__ = ["MigratePlan", "Transport", "plan_migrations"]

Transport = Literal["unix", "tcp"]


@dataclass(frozen=True)
class MigratePlan:
    profile: VmProfile
    levels: tuple[str, ...]
    repeats: int
    order: list[tuple[str, int]]  # (level, repeat) in run order
    seed: int
    protocol: str
    source_uri: str | None  # None: a private session daemon started here
    destination_uri: str | None  # None: likewise
    transport: Transport | None  # None: libvirt's choice (an end we did not start)
    max_downtime_ms: int | None
    bandwidth_mib_s: int | None
    timeout_s: float
    window_s: float
    dirty_mib_s: int = DEFAULT_DIRTY_MIB_S

    @property
    def local_pair(self) -> bool:
        return self.source_uri is None and self.destination_uri is None


def plan_migrations(
    profile: VmProfile,
    *,
    levels: tuple[str, ...],
    repeats: int,
    seed: int | None,
    protocol: str,
    source_uri: str | None,
    destination_uri: str | None,
    transport: Transport | None,
    max_downtime_ms: int | None,
    bandwidth_mib_s: int | None,
    timeout_s: float,
    window_s: float,
    dirty_mib_s: int = DEFAULT_DIRTY_MIB_S,
) -> MigratePlan:
    """Validate the options and interleave the repeats: every round runs each level once, shuffled."""
    if not profile.is_vm:
        raise UsageError(f"profile {profile.name!r} has firmware = 'none': there is no guest to migrate")
    reason = profile.skip_reason()
    if reason is not None:
        raise UsageError(f"profile {profile.name!r} cannot run here: {reason}")
    for uri, option in ((source_uri, "--libvirt-uri"), (destination_uri, "--to")):
        if uri is not None and uri.startswith("qemu:///embed"):
            raise UsageError(
                f"{option} {uri}: an embedded libvirt driver cannot take part in a migration (nothing "
                "outside this process can connect to it); leave the option out to use private daemons"
            )
    if transport is not None and (source_uri or destination_uri):
        raise UsageError(
            "--transport applies to the two private daemons only; with --to or --libvirt-uri "
            "libvirt picks the migration transport"
        )
    if source_uri is None and destination_uri is None and transport is None:
        transport = "unix"
    if repeats < 1:
        raise UsageError("--repeats must be at least 1")
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    order: list[tuple[str, int]] = []
    for repeat in range(1, repeats + 1):
        names = list(levels)
        rng.shuffle(names)
        order.extend((level, repeat) for level in names)
    return MigratePlan(
        profile=profile,
        levels=levels,
        repeats=repeats,
        order=order,
        seed=seed,
        protocol=protocol,
        source_uri=source_uri,
        destination_uri=destination_uri,
        transport=transport,
        max_downtime_ms=max_downtime_ms,
        bandwidth_mib_s=bandwidth_mib_s,
        timeout_s=timeout_s,
        window_s=window_s,
        dirty_mib_s=dirty_mib_s,
    )
