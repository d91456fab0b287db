"""Adapters vs bare stacks from a `pytest --benchmark-json` file (`bench micro summary OUT.json` prints it).

For every group that has both an adapter and a bare-stack benchmark of the same client kind: the medians,
the adapter's extra cost in % (more than 15 % means the adapter has work to do) and, for the
streamed list, the cost per additional item ((median at 1,000 items - median at 1 item) / 999).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADAPTER_BUDGET_PCT", "compare", "per_item", "print_summary"]

ADAPTER_BUDGET_PCT = 15.0
_LIST = "ListBooksByCategory"


def _medians(data: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """(group, stack, client kind) -> median seconds, for the network benchmarks."""
    out = {}
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "stack" in info and bench.get("stats"):
            out[(bench["group"], info["stack"], info["client_kind"])] = float(bench["stats"]["median"])
    return out


def compare(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (group, client kind) measured on both stacks."""
    medians = _medians(data)
    rows = []
    for (group, stack, kind), adapter in sorted(medians.items()):
        bare = medians.get((group, "bare", kind))
        if stack != "adapter" or bare is None:
            continue
        overhead = 100.0 * (adapter - bare) / bare
        rows.append(
            {
                "group": group,
                "client": kind,
                "adapter_us": 1e6 * adapter,
                "bare_us": 1e6 * bare,
                "overhead_pct": overhead,
                "over_budget": overhead > ADAPTER_BUDGET_PCT,
            }
        )
    return rows


def per_item(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Cost per additional streamed item, adapter and bare, per client kind."""
    medians = _medians(data)
    rows = []
    for kind in sorted({k for (_, _, k) in medians}):
        row: dict[str, Any] = {"client": kind}
        for stack in ("adapter", "bare"):
            one = medians.get((f"{_LIST}[1]", stack, kind))
            many = medians.get((f"{_LIST}[1000]", stack, kind))
            row[f"{stack}_us_per_item"] = None if one is None or many is None else 1e6 * (many - one) / 999
        rows.append(row)
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_summary(data: dict[str, Any]) -> None:
    """Both tables (adapter vs bare per group; cost per streamed item), as plain aligned text."""
    print(f"{'group':<26} {'client':<10} {'adapter µs':>11} {'bare µs':>10} {'extra %':>8}")
    for row in compare(data):
        flag = "  > budget" if row["over_budget"] else ""
        print(
            f"{row['group']:<26} {row['client']:<10} {row['adapter_us']:>11,.1f} {row['bare_us']:>10,.1f} "
            f"{row['overhead_pct']:>7.0f}%{flag}"
        )
    print(f"\n{_LIST}: cost per additional item (1 -> 1,000 items)")
    print(f"{'client':<10} {'adapter µs/item':>16} {'bare µs/item':>13}")
    for row in per_item(data):
        adapter, bare = _fmt(row["adapter_us_per_item"]), _fmt(row["bare_us_per_item"])
        print(f"{row['client']:<10} {adapter:>16} {bare:>13}")
