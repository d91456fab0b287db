"""Which CPUs each process of the split topology runs on: `--cpu N` for all three, or `--placement` to give
each its own (`gateway=0,books=1,circulation=2-3`)."""

from __future__ import annotations

import os

from bench.errors import UsageError

__all__ = ["ROLES", "cpus_for", "parse_placement", "pin"]

ROLES = ("books", "circulation", "gateway")


def _cpu_list(role: str, text: str) -> set[int]:
    first, dash, last = text.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()):
        raise UsageError(f"--placement {role}={text}: give a CPU number or a range like 2-3")
    low, high = int(first), int(last) if dash else int(first)
    if high < low:
        raise UsageError(f"--placement {role}={text}: the range is empty")
    return set(range(low, high + 1))


def parse_placement(text: str) -> dict[str, set[int]]:
    """`gateway=0,books=1,circulation=2-3` -> {"gateway": {0}, "books": {1}, "circulation": {2, 3}}."""
    placement: dict[str, set[int]] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, equals, cpus = part.partition("=")
        if not equals or role not in ROLES:
            raise UsageError(f"--placement {part!r}: expected ROLE=CPUS with ROLE one of {', '.join(ROLES)}")
        if role in placement:
            raise UsageError(f"--placement names {role} twice")
        placement[role] = _cpu_list(role, cpus)
    return placement


def cpus_for(role: str, cpu: int | None, placement: dict[str, set[int]]) -> set[int] | None:
    """The CPUs `role` is pinned to: its --placement entry, else --cpu, else None (not pinned)."""
    if role in placement:
        return placement[role]
    return None if cpu is None else {cpu}


def pin(role: str, cpus: set[int] | None) -> None:
    if cpus is None:
        return
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, OverflowError) as exc:
        usable = sorted(os.sched_getaffinity(0))
        raise UsageError(
            f"cannot pin the {role} process to CPUs {sorted(cpus)} (usable: {usable}): {exc}"
        ) from exc
