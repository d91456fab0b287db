"""The exception tree of `topology` (part of `bench`'s: `bench.cli` prints them as one message).

bench.errors.BenchError
├── bench.errors.UsageError      a bad option (names it and the allowed values)
└── TopologyError                a split-topology process could not start or serve
    └── BackendNotAnswering      a backend gave no answer before the start-up deadline
"""

from __future__ import annotations

from bench.errors import BenchError

__all__ = ["BackendNotAnswering", "TopologyError"]


class TopologyError(BenchError):
    """A service of the split topology could not start or serve (the message says which and why)."""


class BackendNotAnswering(TopologyError):
    """The gateway's start-up probe got no answer from a backend in time."""
