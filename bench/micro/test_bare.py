"""Bare stacks (prebuilt answers, no core, no adapter), grouped with the adapter's operation for comparison."""

from __future__ import annotations

import pytest

from bench.micro._support import KINDS, Benchmark, Micro

VARIANTS: list[tuple[str, int | None]] = [
    ("GetBook", None),
    ("ListBooksByCategory", 1),
    ("ListBooksByCategory", 100),
    ("ListBooksByCategory", 1000),
]


def _variant_id(variant: tuple[str, int | None]) -> str:
    operation, size = variant
    return operation if size is None else f"{operation}-{size}"


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("kind", KINDS)
def test_bare(benchmark: Benchmark, micro: Micro, kind: str, variant: tuple[str, int | None]) -> None:
    operation, size = variant
    micro.run(benchmark, kind=kind, operation=operation, size=size, bare=True)
