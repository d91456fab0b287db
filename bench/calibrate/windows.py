"""calibrate's windows: the two load engines against one target, interleaved, with re-runs.

A thin view over the machinery of `bench run`: for each protocol one target is started on the target CPU
(with its counters), and closed-model windows of the native engine (wrk for REST and SOAP, h2load for gRPC)
and of the python engine (locust users of the default client; scenario `getbook`) alternate in a randomized
order on the generator CPU. Each window is `bench.run.windows.measure_window` - the same record, the same
server-counter check, the same noise measures as a cell's window; the table compares medians, with a
bootstrap 95 % CI of the ratio (bench.analysis.stats.bootstrap_ci).
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.run.reruns import decide
from bench.thresholds import BUSY_HOST_PCT, GENERATOR_LIMIT_PCT

if TYPE_CHECKING:
    from bench.load.engine import LoadEngine
    from bench.load.processes import TargetProcess

__all__ = [
    "NATIVE_TOOL",
    "EngineWindows",
    "Row",
    "WindowFn",
    "format_table",
    "measure_as_asked",
    "measure_protocol",
    "print_window",
    "ratio_ci",
    "summarize",
]

NATIVE_TOOL = {"grpc": "h2load", "rest": "wrk", "soap": "wrk"}  # scenario getbook's closed-model tools


def ratio_ci(
    locust: Sequence[float], native: Sequence[float], *, seed: int = 0
) -> tuple[float, float, float]:
    """median(locust) / median(native) and a percentile-bootstrap 95 % CI (NaN bounds with < 2 windows each).

    With 3 windows per arm the bootstrap distribution is coarse; the CI shows the spread, not a fine bound.
    """
    import numpy as np

    from bench.analysis.stats import bootstrap_ci

    def statistic(a: Any, b: Any, axis: int = -1) -> Any:
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    point = float(np.median(locust) / np.median(native))
    low, high = bootstrap_ci([list(locust), list(native)], statistic, seed=seed)
    return point, low, high


@dataclass
class Row:
    protocol: str
    native_tool: str
    locust_client: str
    native_rps: float
    locust_rps: float
    ratio: float
    ratio_low: float
    ratio_high: float
    native_generator_cpu_pct: float
    locust_generator_cpu_pct: float
    steal_median_pct: float
    steal_max_pct: float
    other_cpu_median_pct: float
    notes: list[str] = field(default_factory=list)


def summarize(
    records: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    steal_threshold: float = 5.0,
    busy_threshold: float = BUSY_HOST_PCT,
) -> list[Row]:
    """One row per protocol from the kept measured windows (superseded re-runs and warm-ups left out)."""
    import numpy as np

    rows = []
    kept = [r for r in records if r["phase"] == "measure" and not r["superseded"]]
    for protocol in dict.fromkeys(r["protocol"] for r in kept):
        mine = [r for r in kept if r["protocol"] == protocol]
        native = [r for r in mine if r["generator"] != "locust"]
        locust = [r for r in mine if r["generator"] == "locust"]
        if not native or not locust:
            continue
        ratio, low, high = ratio_ci([r["rps"] for r in locust], [r["rps"] for r in native], seed=seed)
        steal = [r["steal_pct"] for r in mine]
        row = Row(
            protocol=protocol,
            native_tool=native[0]["generator"],
            locust_client=locust[0]["client"],
            native_rps=float(np.median([r["rps"] for r in native])),
            locust_rps=float(np.median([r["rps"] for r in locust])),
            ratio=ratio,
            ratio_low=low,
            ratio_high=high,
            native_generator_cpu_pct=float(np.median([r["generator_cpu_pct"] for r in native])),
            locust_generator_cpu_pct=float(np.median([r["generator_cpu_pct"] for r in locust])),
            steal_median_pct=float(np.median(steal)),
            steal_max_pct=float(max(steal)),
            other_cpu_median_pct=float(np.median([r["other_cpu_pct"] for r in mine])),
        )
        if row.locust_generator_cpu_pct >= GENERATOR_LIMIT_PCT:
            row.notes.append("generator-limited")
        if row.native_generator_cpu_pct >= GENERATOR_LIMIT_PCT:
            row.notes.append(f"{row.native_tool} generator-limited")
        if row.steal_max_pct > steal_threshold:
            row.notes.append(f"noisy (steal > {steal_threshold:g} %)")
        if row.other_cpu_median_pct > busy_threshold:
            row.notes.append(f"busy host (other processes ~{row.other_cpu_median_pct:.0f} % of a CPU)")
        if any(r.get("counters_ok") is False for r in mine):
            row.notes.append(
                "server counters disagree: "
                + "; ".join(
                    f"{r['generator']} {r.get('counter_reason')}"
                    for r in mine
                    if r.get("counters_ok") is False
                )
            )
        if any(r["failures"] for r in mine):
            row.notes.append(
                "errors: " + ", ".join(f"{r['generator']} {r['failures']}" for r in mine if r["failures"])
            )
        rows.append(row)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = (
        "protocol", "native", "native rps", "locust client", "locust rps", "locust/native [95% CI]",
        "gen CPU % (native/locust)", "steal % med (max)", "other CPU %", "notes",
    )  # fmt: skip
    lines = [header]
    for r in rows:
        ci = "n/a" if math.isnan(r.ratio_low) else f"{r.ratio_low:.2f}-{r.ratio_high:.2f}"
        lines.append(
            (
                r.protocol,
                r.native_tool,
                f"{r.native_rps:,.0f}",
                r.locust_client,
                f"{r.locust_rps:,.0f}",
                f"{r.ratio:.2f} [{ci}]",
                f"{r.native_generator_cpu_pct:.0f} / {r.locust_generator_cpu_pct:.0f}",
                f"{r.steal_median_pct:.1f} ({r.steal_max_pct:.1f})",
                f"{r.other_cpu_median_pct:.0f}",
                "; ".join(r.notes) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


WindowFn = Callable[[int], dict[str, Any]]


def measure_protocol(
    generators: dict[str, WindowFn],
    *,
    duration_s: int,
    repeats: int,
    warmup_s: float,
    steal_threshold: float,
    max_reruns: int,
    busy_threshold: float = math.inf,
    seed: int,
    progress: Callable[[dict[str, Any]], None] = lambda record: None,
) -> list[dict[str, Any]]:
    """Warm up each generator, then `repeats` rounds of one window per generator in a randomized order.

    A noisy window (CPU steal over `steal_threshold` %, or other processes over `busy_threshold` % of a CPU)
    is re-run up to `max_reruns` times (bench.run.reruns, the policy `bench run` uses); earlier attempts
    stay in the records, marked superseded, and the last attempt is kept even if it is still noisy (its
    `noise` field says why).
    """
    rng = random.Random(seed)
    names = list(generators)
    records: list[dict[str, Any]] = []
    if warmup_s > 0:
        for name in names:
            record = generators[name](max(1, math.ceil(warmup_s)))
            record.update(phase="warmup", repeat=None, attempt=0, superseded=True)
            records.append(record)
            progress(record)
    for repeat in range(repeats):
        order = names[:]
        rng.shuffle(order)
        for position, name in enumerate(order):
            attempt = 0
            while True:
                record = generators[name](duration_s)
                noise = (
                    "steal"
                    if record["steal_pct"] > steal_threshold
                    else "busy"
                    if record["other_cpu_pct"] > busy_threshold
                    else None
                )
                decision = decide(noisy=noise is not None, reruns_done=attempt, max_reruns=max_reruns)
                record.update(
                    phase="measure",
                    repeat=repeat,
                    position=position,
                    attempt=attempt,
                    noise=noise,
                    superseded=not decision.final,
                )
                records.append(record)
                progress(record)
                if decision.final:
                    break
                attempt += 1
    return records


def measure_as_asked(
    generators: dict[str, WindowFn],
    args: argparse.Namespace,
    *,
    round_index: int,
    progress: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """`measure_protocol` with the window options every calibrate command shares (--duration, --repeats,
    --warmup, --steal-threshold, --busy-threshold, --max-reruns, --seed); each protocol's round gets its own
    seed (`--seed` + its index)."""
    return measure_protocol(
        generators,
        duration_s=args.duration,
        repeats=args.repeats,
        warmup_s=args.warmup,
        steal_threshold=args.steal_threshold,
        busy_threshold=args.busy_threshold,
        max_reruns=args.max_reruns,
        seed=args.seed + round_index,
        progress=progress,
    )


def print_window(record: dict[str, Any]) -> None:
    label = "warm-up" if record["phase"] == "warmup" else f"r{record['repeat'] + 1}"
    extra = (
        f" (noisy: {record['noise']}, re-run)"
        if record["phase"] == "measure" and record["superseded"]
        else ""
    )
    print(
        f"  {record['protocol']:<5} {record['generator']:<7} {label:<8} {record['rps']:>9,.0f} req/s  "
        f"steal {record['steal_pct']:4.1f} %  generator CPU {record['generator_cpu_pct']:5.1f} %  "
        f"target CPU {record['target_cpu_pct']:5.1f} %  other CPU {record['other_cpu_pct']:5.1f} %  "
        f"failures {record['failures']}{extra}",
        flush=True,
    )


# ---- the engines' windows (used inside `run`, after the python engine has patched the process) ---------
class EngineWindows:
    """Closed-model windows of one engine against one target, as calibrate's flat records."""

    def __init__(
        self,
        engine: LoadEngine,
        *,
        protocol: str,
        client: str,
        target: TargetProcess,
        users: int,
        target_cpu: int | None,
        generator_cpu: int | None,
        steal_threshold_pct: float,
    ) -> None:
        self.engine = engine
        self.protocol = protocol
        self.client = client
        self.target = target
        self.users = users
        self.cpus = (target_cpu, generator_cpu)
        self.steal_threshold_pct = steal_threshold_pct

    def window(self, duration_s: int) -> dict[str, Any]:
        from bench.run.windows import measure_window

        # Not imported to check: importing the python engine patches the process for gevent, which only the
        # process that runs it may do (and first).
        python: Any = self.engine if self.engine.name == "python" else None
        if python is not None:
            python.ramp(self.users)  # the users' first calls open connections, outside the window
        try:
            measured = measure_window(
                lambda: self.engine.closed(self.users, duration_s),
                phase="closed",
                label=f"c{self.users}",
                target=self.target,
                target_cpu=self.cpus[0],
                generator_cpu=self.cpus[1],
                generator_pids=self.engine.generator_pids,
                steal_threshold_pct=self.steal_threshold_pct,
                begin=python.begin_window if python is not None else None,
            )
        finally:
            if python is not None:
                python.stop_users()  # nothing of this engine runs during the other engine's window
        record = measured.record
        return {
            **record,
            "protocol": self.protocol,
            "generator": "locust" if python is not None else record["tool"],
            "client": self.client,
            "duration_s": duration_s,
            "rps": record["ok_rps"],
            "other_cpu_pct": max(
                record.get("other_target_cpu_pct") or 0.0, record.get("other_generator_cpu_pct") or 0.0
            ),
        }
