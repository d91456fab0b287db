"""`bench power`: the verdict rule simulated - its power to find a difference, its rate of false verdicts."""

from bench.analysis.power.simulation import Design, design_from_run, false_verdict_rate, power, power_table

__all__ = ["Design", "design_from_run", "false_verdict_rate", "power", "power_table"]
