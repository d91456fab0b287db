"""The re-run policy for noisy measurements, as a pure function (bench run's cells, calibrate's windows)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RerunDecision", "decide"]


@dataclass(frozen=True)
class RerunDecision:
    final: bool  # keep this attempt (the tables use it)
    flagged: bool  # kept although still noisy: no re-run was left


def decide(
    *, noisy: bool, reruns_done: int, max_reruns: int, budget_left: int | None = None
) -> RerunDecision:
    """A noisy attempt is re-run while this measurement has re-runs left (`max_reruns`) and the run's budget
    (`budget_left`, None = unbounded) is not spent; otherwise it is kept, flagged when still noisy."""
    can_rerun = reruns_done < max_reruns and (budget_left is None or budget_left > 0)
    if noisy and can_rerun:
        return RerunDecision(final=False, flagged=False)
    return RerunDecision(final=True, flagged=noisy)
