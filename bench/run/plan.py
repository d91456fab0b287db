"""The benchmark matrix: cell specs (what one cell measures, as data) and the seeded, interleaved order.

A run compares *arms*: a protocol's target driven by the native engine (server capacity, latency under
load), or a client kind driven by the python engine (what a Python caller experiences). One arm is
scheduled twice, as two independent arms (the A/A twin): whatever separates them is noise, and the report
uses that spread as the smallest difference worth reporting.

Cells:
    pilot   one per native arm and scenario, first: the closed-model concurrency that saturates the target
            and its capacity, from which every native cell's open-model rates are set (equal absolute rates
            for every protocol, as fractions of the slowest arm's capacity, plus each arm's own fractions)
    load    arm x scenario x profile x repetition
    floor   per profile and repetition: the loopback floor, the CPU probe, and each native tool's own floor
            against a null server
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Arm", "CellSpec", "MeasureSettings", "expand_plan"]


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how hard each cell measures; `--quick`, `--duration` and `--thorough` choose these."""

    # python engine (client experience)
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
    # native engine (server capacity and latency under load)
    native_warmup_s: float = 0.5  # after the pre-flight calls; each open window also runs 0.3 s ahead
    native_window_s: float = 1.5
    capacity_levels: tuple[int, ...] = (4, 16, 64)  # the pilot's closed-model search (concurrency)
    equal_fractions: tuple[float, ...] = (0.5, 0.75)  # of the slowest arm's capacity: the same rates for all
    own_fractions: tuple[float, ...] = (0.9,)  # of each arm's own capacity: the shape of its curve
    floor_rate: float = 1000.0  # open-model rate of each native tool against the null server

    @classmethod
    def quick(cls) -> MeasureSettings:
        return cls(
            warmup_s=0.8, closed_users=(1, 4, 16), level_s=1.2, open_fractions=(0.25, 0.5, 0.75), open_s=1.2
        )

    @classmethod
    def thorough(cls) -> MeasureSettings:
        """Publication-grade windows: longer, more load levels (p99.9 gets enough samples at higher rates)."""
        return cls(
            warmup_s=2.0, level_s=5.0, open_s=5.0, native_warmup_s=2.0, native_window_s=5.0,
            capacity_levels=(4, 16, 64, 128), equal_fractions=(0.25, 0.5, 0.75),
            own_fractions=(0.25, 0.5, 0.75, 0.9),
        )  # fmt: skip

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
        warmup = min(10.0, max(1.0, seconds / 2))
        return cls(
            warmup_s=warmup, level_s=seconds, open_s=seconds, native_warmup_s=warmup, native_window_s=seconds
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasureSettings:
        known = {f.name for f in fields(cls)}
        raw: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known
        }
        return cls(**raw)


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: an engine driving one protocol's target (with one client kind)."""

    name: str  # native: the protocol ("grpc"); python: the client kind ("rest-lean"); the twin: "<name>-aa";
    # another implementation: "@<impl>" appended ("grpc@node"; an external target: "grpc@<its name>")
    engine: str  # native | python
    protocol: str
    client: str  # python: the client kind; native: ""
    twin_of: str = ""  # the A/A twin repeats this arm's configuration as an independent arm
    impl: str = "python"  # who serves the target: python, node, go (started by the cell), or a --target name
    address: str = ""  # host:port of a target the harness did not start ("" when the cell starts one)
    backend: str = ""  # split topology: the protocol between the gateway and its services ("": one process)


@dataclass(frozen=True)
class CellSpec:
    """Everything one cell needs; written as JSON next to its results so a cell can be re-run alone."""

    cell_id: str
    kind: str  # load | pilot | floor
    client: str  # client kind of python cells; "" otherwise
    protocol: str
    scenario: str
    profile: str
    repetition: int
    seed: int
    target_cpu: int | None
    generator_cpu: int | None
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    engine: str = "python"  # native | python ("" for floor cells)
    arm: str = ""  # the arm this cell measures ("" = its client, for runs made before arms existed)
    twin_of: str = ""
    # Native load cells, resolved by the runner from the pilot cells just before the cell runs:
    concurrency: int | None = None  # closed-model concurrency that saturated the target in the pilot
    rates: tuple[tuple[str, float], ...] = ()  # open-model windows: (label, requests per second)
    impl: str = "python"  # the implementation the cell starts (targets.implementations), or a --target name
    address: str = ""  # a running target the harness did not start: the cell measures it where it is
    backend: str = ""  # split topology: the gateway's backend protocol (the load goes to the gateway)
    inject_delay_us: float = 0.0  # a deliberately slowed target (`bench run --inject-delay`): demonstrations
    generator_cpus: tuple[int, ...] = ()  # several generator CPUs (`--generator-cpus`); () = generator_cpu

    @property
    def generators(self) -> tuple[int, ...]:
        """Every CPU of the generator: native tools run a thread per CPU, the python engine a worker."""
        if self.generator_cpus:
            return self.generator_cpus
        return () if self.generator_cpu is None else (self.generator_cpu,)

    @property
    def arm_name(self) -> str:
        return self.arm or self.client

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellSpec:
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in data.items() if k in known}
        raw["settings"] = MeasureSettings.from_json(data.get("settings", {}))
        raw["rates"] = tuple((str(label), float(rate)) for label, rate in raw.get("rates", ()))
        raw["generator_cpus"] = tuple(int(c) for c in raw.get("generator_cpus", ()))
        return cls(**raw)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def pilot_id(arm: str, scenario: str, profile: str) -> str:
    return f"pilot-{arm}-{scenario}-{profile}"


def expand_plan(
    *,
    arms: list[Arm],
    scenarios: dict[str, list[str]],
    profiles: list[str],
    repeats: dict[tuple[str, str], int],
    seed: int,
    settings: dict[str, MeasureSettings],
    placement: dict[str, tuple[int | None, int | None]],
) -> list[CellSpec]:
    """Pilots first, then arm x scenario x profile x repetition plus floor cells, interleaved.

    `scenarios[engine]` are the scenarios an engine runs; `repeats[(engine, profile)]` its repetitions
    ("floor" for floor cells). Order: the pilots of the host first (the open-model rates depend on them);
    then profiles form blocks (a guest boots once per block), blocks in seeded random order, and inside a
    block every cell of every repetition is shuffled together, so slow drifts of a noisy host spread over all
    arms instead of biasing one. Guests run python cells only (native tools under emulation would measure
    the emulator). `placement[profile]` is (target CPU, generator CPU).
    """
    rng = random.Random(seed)
    pilots: list[CellSpec] = []
    blocks: list[list[CellSpec]] = []
    for profile in profiles:
        target_cpu, generator_cpu = placement[profile]
        cell = functools.partial(
            CellSpec,
            profile=profile,
            target_cpu=target_cpu,
            generator_cpu=generator_cpu,
            settings=settings[profile],
        )
        engines = ["python"] if profile != "local" else ["native", "python"]
        block: list[CellSpec] = []
        if profile == "local":
            for arm in arms:
                if arm.engine == "native" and not arm.twin_of:
                    for scenario in scenarios.get("native", []):
                        pilots.append(
                            cell(
                                cell_id=pilot_id(arm.name, scenario, profile),
                                kind="pilot",
                                client="",
                                protocol=arm.protocol,
                                scenario=scenario,
                                repetition=0,
                                seed=rng.randrange(2**31),
                                engine="native",
                                arm=arm.name,
                                impl=arm.impl,
                                address=arm.address,
                                backend=arm.backend,
                                # A target someone else started runs where it runs: nothing is pinned there.
                                target_cpu=None if arm.address else target_cpu,
                            )
                        )
        for rep in range(1, repeats.get(("floor", profile), 0) + 1):
            block.append(
                cell(
                    cell_id=f"floor-{profile}-r{rep}",
                    kind="floor",
                    client="",
                    protocol="tcp",
                    scenario="floor",
                    repetition=rep,
                    seed=rng.randrange(2**31),
                    engine="",
                )
            )
        for engine in engines:
            for rep in range(1, repeats.get((engine, profile), 0) + 1):
                for scenario in scenarios.get(engine, []):
                    for arm in arms:
                        # Other implementations and external targets are measured on the host only.
                        elsewhere = profile != "local" and (arm.impl != "python" or bool(arm.address))
                        if arm.engine != engine or elsewhere:
                            continue
                        block.append(
                            cell(
                                cell_id=f"{arm.name}-{engine}-{scenario}-{profile}-r{rep}",
                                kind="load",
                                client=arm.client,
                                protocol=arm.protocol,
                                scenario=scenario,
                                repetition=rep,
                                seed=rng.randrange(2**31),
                                engine=engine,
                                arm=arm.name,
                                twin_of=arm.twin_of,
                                impl=arm.impl,
                                address=arm.address,
                                backend=arm.backend,
                                # A target someone else started runs where it runs: nothing is pinned there.
                                target_cpu=None if arm.address else target_cpu,
                            )
                        )
        rng.shuffle(block)
        blocks.append(block)
    rng.shuffle(pilots)
    rng.shuffle(blocks)
    return pilots + [cell for block in blocks for cell in block]
