"""How often the verdict rule is wrong, by simulating whole runs through the rule itself.

    false_verdict_rate(design)   runs with no real difference anywhere: the share of runs in which at least
                                 one comparison (A/A included) gets a verdict
    power(design, effect_pct)    runs in which one comparison differs by effect_pct: the share in which that
                                 comparison gets the right verdict
    design_from_run(run_dir)     the family, spread and background effects a real run measured

A simulated run is a family of comparisons like a report's: `comparisons` protocol comparisons whose true
relative effects are `background_pct` (0 for none), plus one A/A comparison, all of one metric; each arm gets
`repeats` values drawn around its true value with the metric's between-repetition spread (`cv_pct`,
log-normal).
Every simulated comparison goes through `verdicts.comparison_of` and `verdicts.judge` - the code that judges
real runs - so what is simulated is the rule as shipped: Mann-Whitney + Hodges-Lehmann, Benjamini-Hochberg
over the family, the A/A spread as the minimum effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.analysis.verdicts import (
    BY_KEY,
    NO_DIFFERENCE,
    NOT_ASSESSABLE,
    NOT_MEANINGFUL,
    Comparison,
    Where,
    comparison_of,
    judge,
)

__all__ = ["Design", "design_from_run", "false_verdict_rate", "power", "power_table"]

_HEADLINE = BY_KEY["p50_eq"]  # lower is better: a positive effect makes arm "a" slower
_WHERE = Where("sim", "local", "local", "eq50", "GetBook")


@dataclass(frozen=True)
class Design:
    repeats: int = 5
    cv_pct: float = 3.0  # between-repetition coefficient of variation of the metric, in %
    comparisons: int = 24  # protocol comparisons in the family (the A/A comparison comes on top)
    background_pct: tuple[float, ...] = ()  # true effects of the other comparisons (cycled); () = none


def _arm(rng: np.random.Generator, repeats: int, cv_pct: float, effect_pct: float) -> list[float]:
    sigma = math.sqrt(math.log(1.0 + (cv_pct / 100.0) ** 2))
    values = 100.0 * (1.0 + effect_pct / 100.0) * rng.lognormal(0.0, sigma, repeats)
    return [float(v) for v in values]


def _run(rng: np.random.Generator, design: Design, effects: list[float]) -> list[Comparison]:
    """One simulated run: a comparison per true effect (index 0 is the one under study) and the A/A one."""
    rows = [
        comparison_of(
            _HEADLINE,
            "protocol",
            _arm(rng, design.repeats, design.cv_pct, effect),
            _arm(rng, design.repeats, design.cv_pct, 0.0),
            name_a=f"a{i}",
            name_b=f"b{i}",
            where=_WHERE,
        )
        for i, effect in enumerate(effects)
    ]
    rows.append(
        comparison_of(
            _HEADLINE,
            "aa",
            _arm(rng, design.repeats, design.cv_pct, 0.0),
            _arm(rng, design.repeats, design.cv_pct, 0.0),
            name_a="twin",
            name_b="original",
            where=_WHERE,
        )
    )
    return judge(rows)


def _effects(design: Design, first: float) -> list[float]:
    others = [design.background_pct[i % len(design.background_pct)] if design.background_pct else 0.0
              for i in range(design.comparisons - 1)]  # fmt: skip
    return [first, *others]


def false_verdict_rate(design: Design, *, runs: int = 1000, seed: int = 0) -> float:
    """Share of simulated runs without any real difference in which some comparison still got a verdict."""
    rng = np.random.default_rng(seed)
    null = replace(design, background_pct=())
    wrong = 0
    for _ in range(runs):
        rows = _run(rng, null, _effects(null, 0.0))
        wrong += any(not c.verdict.startswith((NO_DIFFERENCE, NOT_MEANINGFUL, NOT_ASSESSABLE)) for c in rows)
    return wrong / runs


def power(design: Design, effect_pct: float, *, runs: int = 1000, seed: int = 0) -> float:
    """Share of simulated runs in which a comparison with a true `effect_pct` % shift got the right verdict
    ("a slower" for a positive effect, "a faster" for a negative one)."""
    rng = np.random.default_rng(seed)
    right = f"a0 {_HEADLINE.words[1] if effect_pct > 0 else _HEADLINE.words[0]}"
    hits = 0
    for _ in range(runs):
        hits += _run(rng, design, _effects(design, effect_pct))[0].verdict == right
    return hits / runs


def power_table(
    design: Design, effect_pct: float, repeats: list[int], *, runs: int = 1000, seed: int = 0
) -> list[tuple[int, float, float]]:
    """(repeats, power, false-verdict rate) for each number of repetitions."""
    return [
        (
            n,
            power(replace(design, repeats=n), effect_pct, runs=runs, seed=seed),
            false_verdict_rate(replace(design, repeats=n), runs=runs, seed=seed),
        )
        for n in repeats
    ]


def design_from_run(run: Path, *, headline: str = "p50_eq", operation: str = "GetBook") -> Design:
    """The family size, the metric's between-repetition spread and the background effects of a real run."""
    from bench.analysis.tidy import load
    from bench.analysis.verdicts import comparisons, headline_values

    tidy = load(run)
    rows = comparisons(tidy)
    if headline not in BY_KEY:
        raise ValueError(f"--headline {headline!r}: choose one of {', '.join(BY_KEY)}")
    values = headline_values(tidy, BY_KEY[headline])
    values = values[(values["not_assessable"] == "") & (values["operation"].isin([operation, "*"]))]
    cvs = [
        100.0 * float(np.std(group["value"], ddof=1) / np.mean(group["value"]))
        for _, group in values.groupby(["arm", "scenario", "profile", "level"])
        if len(group) >= 2 and float(np.mean(group["value"])) > 0
    ]
    if not cvs:
        raise ValueError(
            f"{run.name}: no assessable {headline} repetitions of {operation} to take a spread from"
        )
    background = tuple(c.rel_diff_pct for c in rows if c.kind == "protocol" and c.assessable)
    return Design(
        repeats=int(np.median([c.n_a for c in rows if c.assessable] or [5])),
        cv_pct=float(np.median(cvs)),
        comparisons=max(1, sum(c.kind != "aa" for c in rows)),
        background_pct=background,
    )
