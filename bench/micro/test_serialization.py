"""Serialization only (no network): protobuf vs JSON vs SOAP XML, encode and decode, 1 / 100 / 1,000 Books."""

from __future__ import annotations

import pytest

from bench.micro._support import Benchmark
from bench.micro.bare import reference_books
from bench.micro.codecs import CODECS, FORMATS
from targets.core import category_name

SIZES = (1, 100, 1000)


@pytest.mark.parametrize("items", SIZES)
@pytest.mark.parametrize("direction", ["encode", "decode"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_serialization(benchmark: Benchmark, fmt: str, direction: str, items: int) -> None:
    codec = CODECS[fmt]
    books = reference_books()[category_name(items)]  # the records a target streams for category size-N
    data = codec.encode(books)
    benchmark.group = f"serialize-{direction}[{items}]"
    benchmark.extra_info.update(
        format=fmt, direction=direction, items=items, bytes=len(data), codec=codec.how
    )
    if direction == "encode":
        assert benchmark(codec.encode, books) == data
    else:
        assert benchmark(codec.decode, data) == books
