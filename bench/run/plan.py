"""The benchmark matrix: cell specs (what one cell measures, as data) and the seeded, interleaved order."""

from __future__ import annotations

import functools
import json
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.rundir import arm_label

__all__ = ["Arm", "CellSpec", "MeasureSettings", "expand_plan"]


@dataclass(frozen=True)
class Arm:
    """One compared thing: a client kind against an implementation (started by the cell, or at `address`)."""

    client: str
    protocol: str
    impl: str = "python"
    address: str = ""

    @property
    def label(self) -> str:
        return arm_label(self.client, self.impl)


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how hard each cell measures; `--quick` and `--duration` choose these."""

    warmup_s: float = 1.0
    closed_users: tuple[int, ...] = (1, 4, 16)  # the closed-model ramp (saturation curve)
    level_s: float = 2.0  # measured seconds per ramp level
    open_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)  # open-model rates, as fractions of closed max
    open_s: float = 2.0
    open_connections: int = 32
    wire_calls: int = 5  # sequential calls per operation through the wire-bytes relay
    floor_round_trips: int = 2000
    locust_workers: int = 0  # local locust worker processes (closed model as master + workers)
    remote_workers: int = 0  # workers started elsewhere that connect to master_bind:master_port
    master_bind: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port (local workers only)
    request_timeout_s: float = 10.0  # a call slower than this is a failure ("timeout"), never a hang

    @classmethod
    def quick(cls) -> MeasureSettings:
        return cls(
            warmup_s=0.8, closed_users=(1, 4, 16), level_s=1.2, open_fractions=(0.25, 0.5, 0.75), open_s=1.2
        )

    @classmethod
    def guest_quick(cls) -> MeasureSettings:
        """A small cell for emulated guests, where everything runs ~10x slower than on the host."""
        return cls(
            warmup_s=1.0, closed_users=(1, 4), level_s=2.0, open_fractions=(0.5,), open_s=2.0,
            open_connections=8, wire_calls=3, floor_round_trips=300,
        )  # fmt: skip

    @classmethod
    def with_duration(cls, seconds: float) -> MeasureSettings:
        """Each measured window lasts `seconds` (warm-up scales with it, capped at 10 s)."""
        return cls(warmup_s=min(10.0, max(1.0, seconds / 2)), level_s=seconds, open_s=seconds)


@dataclass(frozen=True)
class CellSpec:
    """Everything one cell needs; written as JSON next to its results so a cell can be re-run alone."""

    cell_id: str
    kind: str  # "load" (a client kind against its target) or "floor" (TCP ping-pong)
    client: str  # client kind (grpc, rest, rest-lean, soap, soap-lean); "" for floor cells
    protocol: str
    scenario: str
    profile: str
    repetition: int
    seed: int
    target_cpu: int | None
    generator_cpu: int | None
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    # Which implementation serves the target: "python" (targets/), "node" (targets/node), or the name of an
    # external target the harness did not start, at `address` (host:port; "" when the cell starts it).
    impl: str = "python"
    address: str = ""

    @property
    def arm(self) -> str:
        """What the cell measures, as tables and reports name it: the client kind, @ the implementation
        unless it is the Python one (grpc, grpc@node, rest-lean@mine)."""
        return arm_label(self.client, self.impl)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellSpec:
        known = {f.name for f in fields(MeasureSettings)}
        raw = {k: v for k, v in data["settings"].items() if k in known}
        raw["closed_users"] = tuple(raw.get("closed_users", ()))
        raw["open_fractions"] = tuple(raw.get("open_fractions", ()))
        return cls(**{**data, "settings": MeasureSettings(**raw)})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def expand_plan(
    *,
    arms: list[Arm],
    scenarios: list[str],
    profiles: list[str],
    repeats: dict[str, int],
    seed: int,
    settings: dict[str, MeasureSettings],
    placement: dict[str, tuple[int | None, int | None]],
) -> list[CellSpec]:
    """arm × scenario × profile × repetition, plus one floor cell per profile × repetition.

    Arms of other implementations than the Python one run on the host ("local") only.

    Order: profiles form blocks (a guest boots once per block), blocks in seeded random order, and inside a
    block every cell of every repetition is shuffled together, so slow drifts of a noisy host spread over all
    arms instead of biasing one. `placement[profile]` is (target CPU, generator CPU); `repeats` and `settings`
    are per profile too (guests get fewer, shorter cells).
    """
    rng = random.Random(seed)
    blocks: list[list[CellSpec]] = []
    for profile in profiles:
        target_cpu, generator_cpu = placement[profile]
        block: list[CellSpec] = []
        for rep in range(1, repeats[profile] + 1):
            cell = functools.partial(
                CellSpec,
                profile=profile,
                repetition=rep,
                target_cpu=target_cpu,
                generator_cpu=generator_cpu,
                settings=settings[profile],
            )
            block.append(
                cell(
                    cell_id=f"floor-{profile}-r{rep}",
                    kind="floor",
                    client="",
                    protocol="tcp",
                    scenario="floor",
                    seed=rng.randrange(2**31),
                )
            )
            for scenario in scenarios:
                for arm in arms:
                    if arm.impl != "python" and profile != "local":
                        continue
                    block.append(
                        cell(
                            cell_id=f"{arm.label}-{scenario}-{profile}-r{rep}",
                            kind="load",
                            client=arm.client,
                            protocol=arm.protocol,
                            scenario=scenario,
                            seed=rng.randrange(2**31),
                            impl=arm.impl,
                            address=arm.address,
                        )
                    )
        rng.shuffle(block)
        blocks.append(block)
    rng.shuffle(blocks)
    return [cell for block in blocks for cell in block]
