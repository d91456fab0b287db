"""Latency distributions for the report: decode the HdrHistograms of ops.json, merge, read percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

__all__ = ["EMPTY", "Dist", "Spectrum", "decode", "merge", "spectrum"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Dist:
    """A latency distribution in µs: the non-empty HdrHistogram buckets (highest equivalent value, count)."""

    values: IntArray  # ascending, unique
    counts: IntArray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float | None:
        """The value at percentile `q` by HdrHistogram's rule (nearest rank, highest equivalent value)."""
        total = self.total
        if total == 0:
            return None
        target = max(1, int(min(q, 100.0) * total / 100 + 0.5))
        index = int(np.searchsorted(np.cumsum(self.counts), target))
        return float(self.values[min(index, len(self.values) - 1)])


EMPTY = Dist(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def decode(encoded: str | None) -> Dist:
    """One encoded histogram (base64 of the compressed HdrHistogram) -> Dist; None or "" -> EMPTY."""
    if not encoded:
        return EMPTY
    histogram = HdrHistogram.decode(encoded.encode())
    # hdrh's iterators walk every bucket up to the maximum in Python (~40 ms per histogram, and a run has
    # thousands); reading the counts array once with numpy and converting only the non-empty buckets is ~10x
    # faster. tests/report checks the result against hdrh's get_value_at_percentile.
    counts = np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len]
    nonzero = np.flatnonzero(counts)
    values = np.fromiter(
        (histogram.get_highest_equivalent_value(histogram.get_value_from_index(int(i))) for i in nonzero),
        dtype=np.int64,
        count=len(nonzero),
    )
    return Dist(values, counts[nonzero].astype(np.int64))


def merge(dists: Iterable[Dist]) -> Dist:
    """The distribution of all samples of `dists` together (histograms add bucket by bucket)."""
    parts = [d for d in dists if d.total]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    values = np.concatenate([d.values for d in parts])
    counts = np.concatenate([d.counts for d in parts])
    unique, inverse = np.unique(values, return_inverse=True)
    merged = np.zeros(len(unique), dtype=np.int64)
    np.add.at(merged, inverse, counts)
    return Dist(unique.astype(np.int64), merged)


@dataclass(frozen=True)
class Spectrum:
    """A percentile spectrum drawn as steps: x in "nines" (-log10(1 - p/100)), percentile p, latency in ms."""

    nines: list[float]
    percentiles: list[float]
    latency_ms: list[float]
    samples: int


def _nines(fraction: float) -> float:
    return -math.log10(1.0 - fraction)


def spectrum(dist: Dist, *, resolution: float = 0.01) -> Spectrum:
    """Step points of the percentile curve: each bucket's value from the percentile where it starts.

    Consecutive buckets within `resolution` (relative) of the last kept one are dropped, which keeps the file
    small; the drawn curve is then at most that much below the true one. The curve ends at the last
    percentile the sample count resolves, 1 - 1/N.
    """
    total = dist.total
    if total == 0:
        return Spectrum([], [], [], 0)
    starts = (np.cumsum(dist.counts) - dist.counts) / total
    nines: list[float] = []
    percentiles: list[float] = []
    latency: list[float] = []
    last_value = -1.0
    for start, value in zip(starts.tolist(), dist.values.tolist(), strict=True):
        if last_value > 0 and value <= last_value * (1 + resolution):
            continue
        nines.append(round(_nines(start), 4))
        percentiles.append(round(100 * start, 4))
        latency.append(round(value / 1000, 4))
        last_value = value
    end = max(math.log10(total), nines[-1])
    nines.append(round(end, 4))
    percentiles.append(round(100 * (1 - 10**-end), 4))
    latency.append(round(float(dist.values[-1]) / 1000, 4))
    return Spectrum(nines, percentiles, latency, total)
