"""Every operation x every client kind against the real targets, with the bare stacks right beside them.

A bare-stack case runs right after the adapter case it is compared with (same client kind, same operation),
so both see the same machine conditions as far as possible; `bench.micro.summary` puts them side by side.
"""

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
# What the bare stacks serve (bench/micro/bare.py): a unary read and the server-streamed list.
BARE = {
    ("GetBook", None),
    ("ListBooksByCategory", 1),
    ("ListBooksByCategory", 100),
    ("ListBooksByCategory", 1000),
}
CASES = [
    (op, size, bare) for op, size in VARIANTS for bare in (False, True) if not bare or (op, size) in BARE
]


def _case_id(case: tuple[str, int | None, bool]) -> str:
    operation, size, bare = case
    return operation + ("" if size is None else f"-{size}") + ("-bare" if bare else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("kind", KINDS)
def test_operation(benchmark: Benchmark, micro: Micro, kind: str, case: tuple[str, int | None, bool]) -> None:
    operation, size, bare = case
    micro.run(benchmark, kind=kind, operation=operation, size=size, bare=bare)
