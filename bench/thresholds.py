"""The measurement rules' numbers, in one place: every module, report text and test reads them from here."""

from __future__ import annotations

__all__ = [
    "BUSY_HOST_PCT",
    "GENERATOR_HEADROOM_PCT",
    "GENERATOR_LIMIT_PCT",
    "OPEN_LATE_DISPATCH_LIMIT",
    "PACING_DISTORTION_LIMIT",
    "STEAL_THRESHOLD_PCT",
    "TARGET_BOUND_PCT",
    "min_samples",
]

# Closed model: a load generator at or above this share of its CPU(s) sets the pace, not the server.
GENERATOR_LIMIT_PCT = 90.0
# Open model: more than this share of requests dispatched > 1 ms late means the generator cannot keep up.
OPEN_LATE_DISPATCH_LIMIT = 0.05
# Other processes using more than this share of a CPU during a window: a shared host disturbs the figures
# (they take CPU time from the pinned target and generator without it showing as steal).
BUSY_HOST_PCT = 25.0
# CPU steal above this share of a window: the hypervisor took enough CPU to distort it (default of
# --steal-threshold).
STEAL_THRESHOLD_PCT = 5.0

# Capacity comes only from server-bound closed-model windows: the target uses at least this share of its CPU
# while the generator stays at or below GENERATOR_HEADROOM_PCT of its CPU(s).
TARGET_BOUND_PCT = 90.0
GENERATOR_HEADROOM_PCT = 60.0
# Open model: a window whose generator pacing error (actual minus intended dispatch) moves a reported
# latency percentile by more than this share is flagged (its percentiles would be the generator's).
PACING_DISTORTION_LIMIT = 0.10


def min_samples(percentile: float) -> int:
    """Fewest samples a window needs before its `percentile` (e.g. 99.0) is reported: 10 / (1 - q)."""
    return round(10.0 / (1.0 - percentile / 100.0))
