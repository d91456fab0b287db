"""CPU placement for benchmarks: the target on one CPU, the load generator (this process) on another."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

__all__ = ["Pinning", "Placement", "choose_placement", "parse_cpus"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the target and the generator run; None means "not pinned" (fewer than two usable CPUs)."""

    target_cpu: int | None
    generator_cpu: int | None
    generator_cpus: tuple[
        int, ...
    ] = ()  # every CPU of the generator (`--generator-cpus`); () = generator_cpu

    @property
    def generators(self) -> tuple[int, ...]:
        if self.generator_cpus:
            return self.generator_cpus
        return () if self.generator_cpu is None else (self.generator_cpu,)

    @property
    def pinned(self) -> bool:
        return self.target_cpu is not None and self.generator_cpu is not None

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 CPUs)"
        cpus = ", ".join(str(c) for c in self.generators)
        plural = "s" if len(self.generators) > 1 else ""
        return f"target on CPU {self.target_cpu}, generator on CPU{plural} {cpus}"


def parse_cpus(text: str) -> tuple[int, ...]:
    """'0', '0,2,3' or '0-3' -> CPU numbers (ValueError on anything else)."""
    cpus: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{text!r}: expected CPU numbers like 0,2,3 or 0-3")
        cpus += range(int(first), int(last) + 1) if dash else [int(first)]
    return tuple(dict.fromkeys(cpus))


def choose_placement(target: str = "auto", generator: str = "auto") -> Placement:
    """Where to put the target and the load generator: 'auto', 'none' or CPU number(s) for each (the
    generator may have several: '0,2,3' - its tools then run a thread per CPU).

    'auto' puts the target on the last usable CPU and the generator on the first other one; every command
    that starts targets (bench run, calibrate, the locustfile, the micro-benchmarks) places them this way.
    With fewer than two usable CPUs 'auto' pins nothing.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if target == "none" or (len(cpus) < 2 and target == "auto" and generator == "auto"):
        return Placement(None, None)
    generators = () if generator == "auto" else parse_cpus(generator)
    unusable = [c for c in generators if c not in cpus]
    if unusable:
        raise ValueError(f"generator CPU(s) {unusable} not usable here (usable: {cpus})")
    target_cpu = next(c for c in reversed(cpus) if c not in generators) if target == "auto" else int(target)
    if target_cpu in generators:
        raise ValueError(f"target and generator must not share CPU {target_cpu}")
    if not generators:
        generators = (next(c for c in cpus if c != target_cpu),)
    return Placement(target_cpu, generators[0], generators if len(generators) > 1 else ())


def _thread_ids() -> list[int]:
    return [int(tid) for tid in os.listdir("/proc/self/task")]


class Pinning:
    """Pin every thread of this process (not only the caller: grpc and relay threads may exist already).

    `os.sched_setaffinity(0, …)` changes the calling thread only; threads started later inherit the mask of
    the thread that starts them, so threads that already exist are pinned one by one.
    """

    def __init__(self, cpus: set[int]) -> None:
        self.cpus = cpus
        self._original = os.sched_getaffinity(0)

    def __enter__(self) -> Pinning:
        self._apply(self.cpus)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Give every thread (those started while pinned too) the mask the process had before."""
        self._apply(self._original)

    @staticmethod
    def _apply(cpus: set[int]) -> None:
        for tid in _thread_ids():
            with contextlib.suppress(ProcessLookupError):  # the thread ended between listing and pinning
                os.sched_setaffinity(tid, cpus)
