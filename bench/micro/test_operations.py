"""Every operation of the contract x every client kind, against the real targets (one process each)."""

from __future__ import annotations

import pytest

from bench.micro._support import KINDS, Benchmark, Micro

# (operation, payload size): None = the operation's natural size (1 record, or the dataset's overdue loans);
# ListBooksByCategory streams 1, 100 and 1,000 books (the dataset's size-N categories).
VARIANTS: list[tuple[str, int | None]] = [
    ("AddBook", None),
    ("GetBook", None),
    ("DeleteBook", None),
    ("ListBooksByCategory", 1),
    ("ListBooksByCategory", 100),
    ("ListBooksByCategory", 1000),
    ("BulkAddBooks", 100),
    ("AddUser", None),
    ("GetUser", None),
    ("CreateLoan", None),
    ("ReturnLoan", None),
    ("GetLoan", None),
    ("GetOverdueLoans", None),
    ("UpdateLoanStatus", 10),
]


def _variant_id(variant: tuple[str, int | None]) -> str:
    operation, size = variant
    return operation if size is None else f"{operation}-{size}"


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("kind", KINDS)
def test_operation(benchmark: Benchmark, micro: Micro, kind: str, variant: tuple[str, int | None]) -> None:
    operation, size = variant
    micro.run(benchmark, kind=kind, operation=operation, size=size)
