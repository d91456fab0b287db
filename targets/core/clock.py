"""Injectable clocks, so that "overdue" is deterministic in tests and identical across targets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "parse_clock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "system"


class FixedClock:
    """Always returns the same instant (tests, reproducible conformance runs)."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._instant = instant.astimezone(UTC)

    def now(self) -> datetime:
        return self._instant

    def __repr__(self) -> str:
        return f"fixed:{self._instant.isoformat()}"


def parse_clock(spec: str) -> Clock:
    """`system` or `fixed:<ISO 8601 instant with offset>` (e.g. `fixed:2026-01-15T12:00:00+00:00`)."""
    if spec == "system":
        return SystemClock()
    if spec.startswith("fixed:"):
        text = spec.removeprefix("fixed:").replace("Z", "+00:00")
        try:
            instant = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"clock {spec!r}: {text!r} is not an ISO 8601 instant") from exc
        if instant.tzinfo is None:
            raise ValueError(f"clock {spec!r}: give a UTC offset, e.g. {text}+00:00")
        return FixedClock(instant)
    raise ValueError(f"clock {spec!r}: expected 'system' or 'fixed:<ISO 8601 instant>'")
