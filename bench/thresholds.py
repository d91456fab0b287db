"""The measurement rules' numbers, in one place: every module, report text and test reads them from here."""

from __future__ import annotations

__all__ = [
    "BUSY_HOST_PCT",
    "GENERATOR_LIMIT_PCT",
    "OPEN_LATE_DISPATCH_LIMIT",
    "STEAL_THRESHOLD_PCT",
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
