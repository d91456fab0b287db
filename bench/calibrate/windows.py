"""calibrate's windows: native-tool and locust windows against one target, interleaved, with re-runs.

For each protocol one target is started on the target CPU; windows of the native tool (wrk for REST and SOAP,
h2load for gRPC) and of locust (the lean REST/SOAP clients, the gRPC client; scenario `getbook`) alternate in
a randomized order, all on the generator CPU. Every window records its request rate, CPU steal, and the
generator's and the target's CPU use; the table compares medians, with a bootstrap 95 % CI of the ratio.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.clients import DEFAULT_CLIENT
from bench.load.native_tools import (
    h2load_command,
    parse_h2load,
    parse_wrk,
    tool_version,
    wrk_command,
    wrk_script,
)
from bench.run.reruns import decide
from bench.thresholds import BUSY_HOST_PCT, GENERATOR_LIMIT_PCT

if TYPE_CHECKING:
    from bench.load.processes import TargetProcess
    from bench.load.scenarios import Scenario

__all__ = [
    "BOOK_ID",
    "GRPC_METHOD",
    "LOCUST_KIND",
    "NATIVE_TOOL",
    "Locust",
    "Native",
    "Row",
    "format_table",
    "measure_protocol",
    "print_window",
    "ratio_ci",
    "summarize",
]

NATIVE_TOOL = {"grpc": "h2load", "rest": "wrk", "soap": "wrk"}
LOCUST_KIND = DEFAULT_CLIENT
GRPC_METHOD = "/library.v1.Library/GetBook"
BOOK_ID = 1
SETTLE_S = 0.5  # after locust's users are spawned: their first calls open connections, not measured


def ratio_ci(
    locust: Sequence[float], native: Sequence[float], *, seed: int = 0
) -> tuple[float, float, float]:
    """median(locust) / median(native) and a percentile-bootstrap 95 % CI (NaN bounds with < 2 windows each).

    With 3 windows per arm the bootstrap distribution is coarse; the CI shows the spread, not a fine bound.
    """
    import numpy as np
    from scipy import stats

    point = float(np.median(locust) / np.median(native))
    if len(locust) < 2 or len(native) < 2:
        return point, math.nan, math.nan

    def statistic(a: Any, b: Any, axis: int = -1) -> Any:
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    result = stats.bootstrap(
        (np.asarray(locust, dtype=float), np.asarray(native, dtype=float)),
        statistic,
        n_resamples=9999,
        method="percentile",  # BCa needs more than a handful of windows to be defined
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


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


def _window_record(
    *, protocol: str, generator: str, client: str, duration_s: int, requests: int, failures: int, rps: float,
    wall_s: float, steal_pct: float, generator_cpu_s: float, target_cpu_s: float, host_busy_s: float,
    started_at: float, command: list[str] | None,
) -> dict[str, Any]:  # fmt: skip
    from bench.load.hostload import other_cpu_pct
    from bench.load.sysmetrics import window_record

    return {
        "protocol": protocol,
        "generator": generator,
        "client": client,
        "duration_s": duration_s,
        "rps": rps,
        **window_record(
            wall_s=wall_s,
            steal_pct=steal_pct,
            target_cpu_s=target_cpu_s,
            generator_cpu_s=generator_cpu_s,
            started_at=started_at,
            requests=requests,
            failures=failures,
        ),
        # CPU that neither the target nor the generator used (other processes on a shared host), % of a CPU.
        "other_cpu_pct": other_cpu_pct(host_busy_s, target_cpu_s, generator_cpu_s, wall_s),
        "command": command,
    }


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


# ---- the generators (used inside `run`, after locust has patched the process for gevent) -----------------
class Native:
    """wrk or h2load against one target, pinned with taskset; CPU from the child's rusage."""

    def __init__(
        self,
        protocol: str,
        target: TargetProcess,
        *,
        args: argparse.Namespace,
        cpu: int | None,
        workdir: Path,
    ) -> None:
        from bench.clients import make_client
        from bench.load.wiretap import Wiretap

        self.protocol = protocol
        self.tool = NATIVE_TOOL[protocol]
        self.target = target
        self.args = args
        self.pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.expected_data_bytes: int | None = None
        self.version = tool_version(self.tool)
        url = f"http://{target.address}"
        if protocol == "rest":
            self.url, self.files = f"{url}/books/{BOOK_ID}", {}
        elif protocol == "soap":
            # The exact request the lean client sends (captured at the socket): both generators ask the same.
            with Wiretap((target.host, target.port), capture=True) as tap:
                client = make_client(LOCUST_KIND[protocol], tap.address)
                client.get_book(BOOK_ID)
                client.close()
                raw = bytes(tap.captured_sent)
            head, _, body = raw.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
            headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
            script = workdir / "getbook.lua"
            script.write_text(wrk_script(body, headers))
            self.url, self.files = f"{url}/", {"script": script}
        else:
            from targets.grpc.wire import book_to_pb, pb

            message = pb.GetBookRequest(id=BOOK_ID).SerializeToString()
            data = workdir / "getbook.grpc"
            data.write_bytes(b"\x00" + len(message).to_bytes(4, "big") + message)
            client = make_client("grpc", target.address)
            answer = book_to_pb(client.get_book(BOOK_ID)).SerializeToString()
            client.close()
            self.expected_data_bytes = 5 + len(answer)  # DATA payload of one successful GetBook answer
            self.url, self.files = f"{url}{GRPC_METHOD}", {"data": data}

    def command(self, duration_s: int) -> list[str]:
        if self.tool == "wrk":
            argv = wrk_command(
                self.url, duration_s=duration_s, connections=self.args.users, script=self.files.get("script")
            )
        else:
            streams = math.ceil(self.args.users / self.args.h2load_connections)
            argv = h2load_command(
                self.url,
                duration_s=duration_s,
                connections=self.args.h2load_connections,
                streams=streams,
                data_file=self.files["data"],
            )
        return self.pin + argv

    def window(self, duration_s: int) -> dict[str, Any]:
        import resource
        import subprocess

        from bench.load.hostload import HostBusy
        from bench.load.sysmetrics import Window

        argv = self.command(duration_s)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with Window(self.target.pid) as window, HostBusy() as busy:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr[-800:]}")
        result = parse_wrk(done.stdout) if self.tool == "wrk" else parse_h2load(done.stdout)
        failures = result.failures
        if self.expected_data_bytes is not None and result.data_bytes is not None:
            # gRPC errors travel in trailers with HTTP 200, so h2load counts them as successes; an answer
            # without the expected DATA payload is not a GetBook answer.
            answered = result.data_bytes // self.expected_data_bytes
            failures = max(failures, result.requests - answered)
        assert window.result is not None
        record = _window_record(
            protocol=self.protocol,
            generator=self.tool,
            client=self.tool,
            duration_s=duration_s,
            requests=result.requests,
            failures=failures,
            rps=result.rps,
            wall_s=window.result.wall_s,
            steal_pct=window.result.steal_pct,
            # taskset execs the tool, so the child's rusage is the tool's CPU time.
            generator_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            target_cpu_s=window.result.target_cpu_s,
            # The calibrate process itself waits meanwhile; its (small) CPU time counts as "other".
            host_busy_s=busy.seconds,
            started_at=window.result.started_at,
            command=argv,
        )
        record["tool_version"] = self.version
        return record


class Locust:
    """locust as a library (as bench.run.cell drives it), in this process, pinned to the generator CPU."""

    def __init__(
        self, protocol: str, target: TargetProcess, *, users: int, scenario: Scenario, seed: int
    ) -> None:
        from locust.env import Environment

        from bench.load import locustfile as lf

        self.protocol = protocol
        self.kind = LOCUST_KIND[protocol]
        self.target = target
        self.users = users
        self.env = Environment(user_classes=[lf.USER_CLASSES[self.kind]], host=target.address)
        lf.use_context(self.env, lf.LoadContext(scenario=scenario, timeout_s=10.0, seed=seed, slot=0))
        self.runner = self.env.create_local_runner()

    def window(self, duration_s: int) -> dict[str, Any]:
        import gevent

        from bench.load.hostload import HostBusy
        from bench.load.sysmetrics import Window

        self.runner.start(self.users, spawn_rate=min(self.users, 100))  # locust warns above 100 users/s
        deadline = time.monotonic() + 30
        while self.runner.user_count < self.users and time.monotonic() < deadline:
            gevent.sleep(0.05)
        gevent.sleep(SETTLE_S)
        self.env.stats.reset_all()
        with Window(self.target.pid) as window, HostBusy() as busy:
            gevent.sleep(duration_s)
            requests = self.env.stats.total.num_requests
            failures = self.env.stats.total.num_failures
        self.runner.stop()
        assert window.result is not None
        wall = window.result.wall_s
        return _window_record(
            protocol=self.protocol,
            generator="locust",
            client=self.kind,
            duration_s=duration_s,
            requests=requests,
            failures=failures,
            rps=requests / wall if wall > 0 else 0.0,
            wall_s=wall,
            steal_pct=window.result.steal_pct,
            generator_cpu_s=window.result.generator_cpu_s,
            target_cpu_s=window.result.target_cpu_s,
            host_busy_s=busy.seconds,
            started_at=window.result.started_at,
            command=None,
        )

    def close(self) -> None:
        self.runner.quit()
