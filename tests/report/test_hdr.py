"""Report-side histogram reading agrees with hdrh itself, merges like HdrHistogram.add, draws sane spectra."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from bench.load.recorder import new_histogram
from bench.report.data import summarize
from bench.report.hdr import EMPTY, decode, merge, spectrum


def histogram(seed: int, n: int = 3000) -> HdrHistogram:
    rng = random.Random(seed)
    h = new_histogram()
    for _ in range(n):
        h.record_value(max(1, int(rng.lognormvariate(6.5, 0.8))))  # ~700 µs with a long tail
    return h


@pytest.mark.parametrize("q", [0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 100])
def test_percentile_matches_hdrh(q: float) -> None:
    h = histogram(1)
    assert decode(h.encode().decode()).percentile(q) == h.get_value_at_percentile(q)


def test_merge_matches_hdrh_add() -> None:
    a, b = histogram(2), histogram(3, 500)
    merged = merge([decode(a.encode().decode()), decode(b.encode().decode())])
    a.add(b)
    assert merged.total == a.get_total_count()
    for q in (50, 99, 99.9):
        assert merged.percentile(q) == a.get_value_at_percentile(q)


def test_empty_inputs() -> None:
    assert decode(None) is EMPTY and decode("") is EMPTY
    assert merge([]) is EMPTY and EMPTY.percentile(50) is None
    assert spectrum(EMPTY).samples == 0


def test_spectrum_is_a_rising_step_curve_ending_at_one_over_n() -> None:
    h = histogram(4, 1000)
    curve = spectrum(decode(h.encode().decode()))
    assert curve.samples == 1000
    assert curve.nines == sorted(curve.nines) and curve.latency_ms == sorted(curve.latency_ms)
    assert curve.nines[0] == 0 and curve.nines[-1] == pytest.approx(3.0)  # log10(1000): 99.9th percentile
    assert curve.latency_ms[-1] == h.get_max_value() / 1000


def test_summary_bootstrap_is_seeded() -> None:
    values = [10.0, 12.0, 11.0, 15.0, 9.0]
    first, second = summarize(values), summarize(values)
    assert first == second and first is not None
    assert first.median == 11.0 and first.low == 9.0 and first.high == 15.0
    assert first.ci_low <= first.median <= first.ci_high
    single = summarize([3.0])
    assert (
        single is not None and single.n == 1 and single.ci_low != single.ci_low
    )  # nan: no CI from one value
    assert summarize([]) is None
