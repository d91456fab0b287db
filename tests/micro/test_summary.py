"""`bench micro summary`: adapters against bare stacks, from a pytest-benchmark JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.micro.summary import compare, per_item


def _bench(group: str, stack: str, kind: str, median_s: float) -> dict[str, Any]:
    return {
        "group": group,
        "extra_info": {"stack": stack, "client_kind": kind},
        "stats": {"median": median_s},
    }


DATA = {
    "benchmarks": [
        _bench("GetBook", "adapter", "grpc", 600e-6),
        _bench("GetBook", "bare", "grpc", 500e-6),
        _bench("GetUser", "adapter", "grpc", 500e-6),  # no bare counterpart: not compared
        _bench("ListBooksByCategory[1]", "adapter", "grpc", 1e-3),
        _bench("ListBooksByCategory[1000]", "adapter", "grpc", 1e-3 + 999 * 70e-6),
        _bench("ListBooksByCategory[1]", "bare", "grpc", 1e-3),
        _bench("ListBooksByCategory[1000]", "bare", "grpc", 1e-3 + 999 * 60e-6),
        {"group": "serialize-encode[1]", "extra_info": {"format": "json"}, "stats": {"median": 1e-6}},
    ]
}


def test_compare_flags_adapters_over_budget() -> None:
    rows = {row["group"]: row for row in compare(DATA)}
    assert set(rows) == {"GetBook", "ListBooksByCategory[1]", "ListBooksByCategory[1000]"}
    assert rows["GetBook"]["overhead_pct"] == pytest.approx(20.0)
    assert rows["GetBook"]["over_budget"] and not rows["ListBooksByCategory[1]"]["over_budget"]


def test_cost_per_streamed_item() -> None:
    (row,) = per_item(DATA)
    assert row["adapter_us_per_item"] == pytest.approx(70.0)
    assert row["bare_us_per_item"] == pytest.approx(60.0)


def test_main_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(DATA))
    assert main(["micro", "summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "> budget" in out and "70.0" in out
