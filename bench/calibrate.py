"""`bench calibrate`: locust's request rate next to wrk / h2load against the same target, CPUs and duration.

For each protocol one target is started on the target CPU; windows of the native tool (wrk for REST and SOAP,
h2load for gRPC) and of locust (the lean REST/SOAP clients, the gRPC client; scenario `getbook`) alternate in
a randomized order, all on the generator CPU. Every window records its request rate, CPU steal, and the
generator's and the target's CPU use; the table compares medians, with a bootstrap 95 % CI of the ratio.
A benchmark, not a test: nothing here passes or fails on a number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.rawfiles import append_line

if TYPE_CHECKING:
    from bench.micro.affinity import Placement
    from bench.targets_process import TargetProcess

__all__ = [
    "GENERATOR_LIMIT_PCT",
    "LOCUST_KIND",
    "NATIVE_TOOL",
    "NativeResult",
    "add_arguments",
    "h2load_command",
    "parse_h2load",
    "parse_wrk",
    "ratio_ci",
    "run",
    "summarize",
    "wrk_command",
    "wrk_script",
]

PROTOCOLS = ("grpc", "rest", "soap")
NATIVE_TOOL = {"grpc": "h2load", "rest": "wrk", "soap": "wrk"}
LOCUST_KIND = {"grpc": "grpc", "rest": "rest-lean", "soap": "soap-lean"}
GENERATOR_LIMIT_PCT = 90.0  # generator CPU at or above this share of its core: the generator limits the rate
# Other processes using more than this share of a CPU during a window: a shared host that disturbs the figures
# (they take CPU time from the pinned target and generator without it showing as steal).
BUSY_HOST_PCT = 25.0
GRPC_METHOD = "/library.v1.Library/GetBook"
BOOK_ID = 1
SETTLE_S = 0.5  # after locust's users are spawned: their first calls open connections, not measured
APT_HINT = "apt-get install -y wrk nghttp2-client"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help="comma-separated (default: grpc,rest,soap)"
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per window, whole seconds for wrk (default: 5)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="native + locust window pairs per protocol (default: 3)"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=16,
        help="locust users = wrk connections = h2load concurrent streams (default: 16)",
    )
    parser.add_argument(
        "--h2load-connections",
        type=int,
        default=1,
        help="h2load connections; streams = users / connections (default: 1)",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of each generator before a protocol's windows"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="append raw per-window records (JSON lines)"
    )
    parser.add_argument("--target-cpu", default="auto", help="CPU of the target ('auto': the last CPU)")
    parser.add_argument("--generator-cpu", default="auto", help="CPU of the generators ('auto': another CPU)")
    parser.add_argument(
        "--steal-threshold",
        type=float,
        default=5.0,
        help="re-run a window whose CPU steal exceeds this %% (default: 5)",
    )
    parser.add_argument(
        "--busy-threshold",
        type=float,
        default=BUSY_HOST_PCT,
        help="re-run a window in which other processes used more than this %% of a CPU (default: 25)",
    )
    parser.add_argument(
        "--reruns",
        type=int,
        default=1,
        help="re-runs of a noisy window (steal or busy host) before keeping it",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the window order and of the bootstrap")
    parser.add_argument(
        "--allow-python-protobuf",
        action="store_true",
        help="measure gRPC even on protobuf's pure-Python backend",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the generator command lines and exit")


# ---- native tools: command lines (as data) and their output ----------------------------------------------
def wrk_script(body: bytes, headers: dict[str, str]) -> str:
    """A wrk Lua script that POSTs `body` with `headers` (Lua long brackets: the XML needs no escaping)."""
    level = "=" * next(n for n in range(1, 64) if f"]{'=' * n}]" not in body.decode())
    lines = ['wrk.method = "POST"', f"wrk.body = [{level}[{body.decode()}]{level}]"]
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def wrk_command(url: str, *, duration_s: int, connections: int, script: Path | None = None) -> list[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s"]  # one thread: the generator has one CPU
    if script is not None:
        argv += ["-s", str(script)]
    return [*argv, url]


def h2load_command(
    url: str, *, duration_s: int, connections: int, streams: int, data_file: Path
) -> list[str]:
    return [
        "h2load",
        "-t1",  # one thread: the generator has one CPU
        f"-c{connections}",
        f"-m{streams}",
        "-D",
        str(duration_s),
        "-d",
        str(data_file),  # a POST body: the 5-byte gRPC prefix + GetBookRequest
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",  # gRPC servers require it (trailers carry grpc-status)
        url,
    ]


@dataclass
class NativeResult:
    requests: int
    failures: int
    rps: float
    data_bytes: int | None = None  # h2load: DATA frame payload bytes received (0 when every call failed)


_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(\w+)")
_WRK_RPS = re.compile(r"Requests/sec:\s*([\d.]+)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> NativeResult:
    requests = _WRK_REQUESTS.search(output)
    rps = _WRK_RPS.search(output)
    if requests is None or rps is None:
        raise ValueError(f"unexpected wrk output:\n{output[-800:]}")
    non_2xx = _WRK_NON_2XX.search(output)
    socket_errors = _WRK_SOCKET.search(output)
    failures = int(non_2xx.group(1)) if non_2xx else 0
    # A read error is how wrk reports a connection the server closed; each may have cost a request.
    failures += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return NativeResult(int(requests.group(1)), failures, float(rps.group(1)))


_H2_FINISHED = re.compile(r"finished in [\d.]+\w+, ([\d.]+) req/s")
_H2_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)
_H2_DATA = re.compile(r"traffic: .*?, .*? headers .*?\), [\d.]+\w*B? \((\d+)\) data")


def parse_h2load(output: str) -> NativeResult:
    finished = _H2_FINISHED.search(output)
    counts = _H2_REQUESTS.search(output)
    if finished is None or counts is None:
        raise ValueError(f"unexpected h2load output:\n{output[-800:]}")
    done, succeeded = int(counts.group(3)), int(counts.group(4))
    data = _H2_DATA.search(output)
    return NativeResult(
        done, done - succeeded, float(finished.group(1)), int(data.group(1)) if data else None
    )


# ---- statistics --------------------------------------------------------------------------------------------
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


# ---- the run -----------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        print(
            f"bench calibrate: --protocols {args.protocols!r}: choose from {', '.join(PROTOCOLS)}",
            file=sys.stderr,
        )
        return 2
    if args.duration < 1 or args.repeats < 1 or args.users < 1 or args.h2load_connections < 1:
        print(
            "bench calibrate: --duration, --repeats, --users and --h2load-connections must be >= 1",
            file=sys.stderr,
        )
        return 2
    from bench.micro.affinity import choose_placement

    try:
        placement = choose_placement(args.target_cpu, args.generator_cpu)
    except (ValueError, StopIteration) as exc:
        print(f"bench calibrate: CPU placement: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        _print_dry_run(args, protocols, placement.generator_cpu)
        return 0
    missing = sorted({NATIVE_TOOL[p] for p in protocols if shutil.which(NATIVE_TOOL[p]) is None})
    if placement.pinned and shutil.which("taskset") is None:
        missing.append("taskset")
    if missing:
        print(f"bench calibrate: {', '.join(missing)} not found; install with: {APT_HINT}", file=sys.stderr)
        return 2
    # Before anything imports grpc: targets are started with fork (see bench/micro/conftest.py), and grpc's
    # fork handlers can abort the child.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    return _run_protocols(args, protocols, placement)


def _print_dry_run(args: argparse.Namespace, protocols: list[str], generator_cpu: int | None) -> None:
    pin = ["taskset", "-c", str(generator_cpu)] if generator_cpu is not None else []
    streams = math.ceil(args.users / args.h2load_connections)
    for protocol in protocols:
        url = "http://127.0.0.1:<port>"
        if protocol == "rest":
            argv = wrk_command(f"{url}/books/{BOOK_ID}", duration_s=args.duration, connections=args.users)
        elif protocol == "soap":
            argv = wrk_command(
                f"{url}/", duration_s=args.duration, connections=args.users, script=Path("<getbook.lua>")
            )
        else:
            argv = h2load_command(
                f"{url}{GRPC_METHOD}",
                duration_s=args.duration,
                connections=args.h2load_connections,
                streams=streams,
                data_file=Path("<getbook.grpc>"),
            )
        print(f"{protocol}: {shlex.join(pin + argv)}")
        print(
            f"{protocol}: locust -f bench/locustfile.py --headless --protocol {LOCUST_KIND[protocol]}"
            f" --scenario getbook --host 127.0.0.1:<port> -u {args.users} -r {args.users}"
            f" -t {args.duration}s  (in-process, same CPU)"
        )


WindowFn = Callable[[int], dict[str, Any]]


def measure_protocol(
    generators: dict[str, WindowFn],
    *,
    duration_s: int,
    repeats: int,
    warmup_s: float,
    steal_threshold: float,
    reruns: int,
    busy_threshold: float = math.inf,
    seed: int,
    progress: Callable[[dict[str, Any]], None] = lambda record: None,
) -> list[dict[str, Any]]:
    """Warm up each generator, then `repeats` rounds of one window per generator in a randomized order.

    A noisy window (CPU steal over `steal_threshold` %, or other processes over `busy_threshold` % of a CPU)
    is re-run up to `reruns` times; earlier attempts stay in the records, marked superseded, and the last
    attempt is kept even if it is still noisy (its `noise` field says why).
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
            for attempt in range(reruns + 1):
                record = generators[name](duration_s)
                noise = (
                    "steal"
                    if record["steal_pct"] > steal_threshold
                    else "busy"
                    if record["other_cpu_pct"] > busy_threshold
                    else None
                )
                record.update(
                    phase="measure",
                    repeat=repeat,
                    position=position,
                    attempt=attempt,
                    noise=noise,
                    superseded=noise is not None and attempt < reruns,
                )
                records.append(record)
                progress(record)
                if not record["superseded"]:
                    break
    return records


def _window_record(
    *, protocol: str, generator: str, client: str, duration_s: int, requests: int, failures: int, rps: float,
    wall_s: float, steal_pct: float, generator_cpu_s: float, target_cpu_s: float, host_busy_s: float,
    started_at: float, command: list[str] | None,
) -> dict[str, Any]:  # fmt: skip
    from bench.micro.hostload import other_cpu_pct

    generator_cpu_pct = 100.0 * generator_cpu_s / wall_s if wall_s > 0 else 0.0
    return {
        "protocol": protocol,
        "generator": generator,
        "client": client,
        "duration_s": duration_s,
        "started_at": started_at,
        "wall_s": wall_s,
        "requests": requests,
        "failures": failures,
        "rps": rps,
        "steal_pct": steal_pct,
        "generator_cpu_s": generator_cpu_s,
        "generator_cpu_pct": generator_cpu_pct,
        "generator_limited": generator_cpu_pct >= GENERATOR_LIMIT_PCT,
        "target_cpu_pct": 100.0 * target_cpu_s / wall_s if wall_s > 0 else 0.0,
        "target_cpu_us_per_request": 1e6 * target_cpu_s / requests if requests else None,
        # CPU that neither the target nor the generator used (other processes on a shared host), % of a CPU.
        "other_cpu_pct": other_cpu_pct(host_busy_s, target_cpu_s, generator_cpu_s, wall_s),
        "command": command,
    }


def _progress(record: dict[str, Any]) -> None:
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
class _Native:
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
        from bench.wiretap import Wiretap

        self.protocol = protocol
        self.tool = NATIVE_TOOL[protocol]
        self.target = target
        self.args = args
        self.pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.expected_data_bytes: int | None = None
        self.version = _tool_version(self.tool)
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

        from bench.micro.hostload import HostBusy
        from bench.sysmetrics import Window

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


def _tool_version(tool: str) -> str:
    import subprocess

    flag = "--version" if tool == "h2load" else "-v"
    done = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


class _Locust:
    """locust as a library (as bench/cell.py drives it), in this process, pinned to the generator CPU."""

    def __init__(self, protocol: str, target: TargetProcess, *, users: int) -> None:
        from locust.env import Environment

        from bench import locustfile as lf

        self.protocol = protocol
        self.kind = LOCUST_KIND[protocol]
        self.target = target
        self.users = users
        self.env = Environment(user_classes=[lf.USER_CLASSES[self.kind]], host=target.address)
        self.runner = self.env.create_local_runner()

    def window(self, duration_s: int) -> dict[str, Any]:
        import gevent

        from bench.micro.hostload import HostBusy
        from bench.sysmetrics import Window

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


def _run_protocols(args: argparse.Namespace, protocols: list[str], placement: Placement) -> int:
    # locust monkey-patches the process for gevent on import and the locustfile puts gRPC on gevent: both
    # must happen before any socket or channel exists.
    from bench import locustfile as lf
    from bench.micro.affinity import Pinning
    from bench.scenarios import load_scenarios
    from bench.targets_process import start_target

    scenario = load_scenarios()["getbook"]
    lf.settings.update(scenario=scenario, timeout_s=10.0, seed=args.seed, slot=0)
    if "grpc" in protocols and not args.allow_python_protobuf:
        from google.protobuf.internal import api_implementation

        if api_implementation.Type() == "python":
            print(
                "bench calibrate: protobuf runs on its pure-Python backend; pass --allow-python-protobuf",
                file=sys.stderr,
            )
            return 2
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    print(
        f"bench calibrate: {placement.describe()}; "
        f"{args.repeats} x {args.duration} s per generator, {args.users} users"
    )
    records: list[dict[str, Any]] = []
    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="bench-calibrate-"))
    pinning = Pinning({placement.generator_cpu}) if placement.generator_cpu is not None else None
    if pinning is not None:
        pinning.__enter__()
    try:
        for index, protocol in enumerate(protocols):
            target = start_target(protocol, dataset=scenario.dataset, cpu=placement.target_cpu)
            locust: _Locust | None = None
            try:
                native = _Native(protocol, target, args=args, cpu=placement.generator_cpu, workdir=workdir)
                locust = _Locust(protocol, target, users=args.users)
                windows = measure_protocol(
                    {native.tool: native.window, "locust": locust.window},
                    duration_s=args.duration,
                    repeats=args.repeats,
                    warmup_s=args.warmup,
                    steal_threshold=args.steal_threshold,
                    busy_threshold=args.busy_threshold,
                    reruns=args.reruns,
                    seed=args.seed + index,
                    progress=_progress,
                )
            except Exception as exc:
                print(f"bench calibrate: {protocol}: {exc}", file=sys.stderr)
                failed = True
                continue
            finally:
                if locust is not None:
                    locust.close()
                target.stop()  # our own child, by pid
            for record in windows:
                record.update(
                    run_id=run_id,
                    users=args.users,
                    target_cpu=placement.target_cpu,
                    generator_cpu=placement.generator_cpu,
                    target_pid=target.pid,
                )
            records += windows
    finally:
        if pinning is not None:
            pinning.restore()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None and records:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for record in records:
            append_line(args.json, record)
    rows = summarize(
        records, seed=args.seed, steal_threshold=args.steal_threshold, busy_threshold=args.busy_threshold
    )
    print()
    print(format_table(rows))
    print(
        "\nratio = median locust rps / median native rps (bootstrap 95 % CI over windows); "
        f"generator-limited = generator CPU >= {GENERATOR_LIMIT_PCT:.0f} % of its core; "
        "other CPU = % of a CPU used by other processes (median over windows)"
    )
    if args.json is not None:
        print(f"raw windows appended to {args.json}")
    return 1 if failed or not rows else 0
