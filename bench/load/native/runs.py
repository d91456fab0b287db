"""One window of a native tool against a target: wrk, h2load or gload, pinned, its output turned into OpStats.

    wrk     closed model over HTTP/1.1 (REST, SOAP): a generated Lua script sends the pools' requests by
            weight and counts them per operation; latency from wrk's own histogram (all operations together)
    h2load  closed model, one operation with one fixed request (gRPC over h2c, or HTTP/1.1 with --h1);
            per-request log (`--log-file`) -> the latency histogram
    gload   open model on every protocol (a fixed schedule; latency from the intended send time and from the
            actual send, the generator's pacing error per request), and the closed model for gRPC windows
            h2load cannot express (a mix of operations, requests that must each differ)

Each returns an `EngineRun` (bench.load.engine): what the tool reports (requests, failures, per-operation
histograms) plus what the harness needs to check it (requests sent per operation, how many could be in
flight, the tool's CPU time).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import resource
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram

from bench.errors import MissingTool
from bench.load.engine import EngineRun
from bench.load.native.build import ensure_gload
from bench.load.native.requests import RequestPool
from bench.load.native.tools import APT_HINT, parse_h2load, parse_wrk, tool_version
from bench.load.recorder import OpStats, new_histogram
from targets.lifetime import child_env

__all__ = [
    "GLOAD_RECORD",
    "Cpus",
    "ToolError",
    "lua_long_string",
    "run_gload",
    "run_h2load",
    "run_wrk",
    "threads_for",
]

GLOAD_RECORD = np.dtype(
    [
        ("op", "<u2"), ("pad", "<u2"), ("status", "<i4"), ("items", "<u4"), ("pad2", "<u4"),
        ("intended", "<i8"), ("dispatch", "<i8"), ("start", "<i8"), ("first", "<i8"), ("end", "<i8"),
    ]
)  # fmt: skip
ALL = "*"  # the operation name of figures a tool reports only for all operations together


class ToolError(RuntimeError):
    """A native tool failed (exit code, unexpected output): the message names the tool and its command."""


Cpus = int | tuple[int, ...] | None  # the generator's CPU(s): None = not pinned


def _cpu_list(cpu: Cpus) -> tuple[int, ...]:
    return () if cpu is None else (cpu,) if isinstance(cpu, int) else cpu


def _pin(cpu: Cpus) -> list[str]:
    cpus = _cpu_list(cpu)
    return ["taskset", "-c", ",".join(str(c) for c in cpus)] if cpus else []


def threads_for(cpu: Cpus, connections: int) -> int:
    """A tool thread per generator CPU (`bench run --generator-cpus`), never more than its connections."""
    return max(1, min(len(_cpu_list(cpu)) or 1, connections))


def _run(argv: list[str], *, timeout_s: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a tool to completion; returns its output and the CPU seconds it used (its rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        # child_env: the tool (gload) ends with this process if it is killed (targets.lifetime).
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=child_env()
        )
    except FileNotFoundError as exc:
        raise MissingTool(f"{argv[0]} not found; install with: {APT_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{' '.join(argv)} did not finish within {timeout_s:.0f} s") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise ToolError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-800:]}")
    return done, cpu


def histogram_of(values_us: np.ndarray) -> HdrHistogram:
    """An HdrHistogram (µs) of many values at once (counts per distinct value, not one call each)."""
    histogram = new_histogram()
    clipped = np.clip(np.rint(values_us), 1, 100_000_000).astype(np.int64)
    distinct, counts = np.unique(clipped, return_counts=True)
    for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
        histogram.record_value(value, count)
    return histogram


def _op_stats(
    latency_us: np.ndarray, failures: int, errors: Counter[str], ttfi_us: np.ndarray | None, items: int
) -> OpStats:
    stats = OpStats(latency=histogram_of(latency_us), requests=int(latency_us.size), failures=failures)
    stats.errors = errors
    stats.items = items
    if ttfi_us is not None and ttfi_us.size:
        stats.ttfi = histogram_of(ttfi_us)
    return stats


# ---- h2load ---------------------------------------------------------------------------------------------
def run_h2load(
    *,
    url: str,
    request_body: bytes | None,
    headers: dict[str, str],
    http1: bool,
    connections: int,
    streams: int,
    duration_s: float,
    cpu: Cpus,
    operation: str,
) -> EngineRun:
    """Closed model: `connections` x `streams` requests in flight, one fixed request, for `duration_s`
    (warm up with a separate, shorter run: the server's counters are read around this one)."""
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
        log = Path(tmp) / "requests.log"
        threads = threads_for(cpu, max(connections, streams))
        # A thread per generator CPU, each with its own connection(s): h2load needs a client per thread.
        clients = max(connections, threads)
        per_client = max(1, math.ceil(connections * streams / clients))
        argv = [*_pin(cpu), "h2load", f"-t{threads}", f"-c{clients}", f"-m{per_client}"]
        # h2load takes whole units only ("1.5s" is refused): milliseconds.
        argv += ["-D", f"{round(duration_s * 1000)}ms", f"--log-file={log}"]
        if http1:
            argv.append("--h1")
        if request_body is not None:
            data = Path(tmp) / "body"
            data.write_bytes(request_body)
            argv += ["-d", str(data)]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        done, cpu_s = _run(argv, timeout_s=duration_s + 60)
        result = parse_h2load(done.stdout)
        rows = np.loadtxt(log, dtype=np.float64, ndmin=2) if log.stat().st_size else np.empty((0, 3))
    durations = rows[:, 2] if rows.size else np.empty(0)
    statuses = rows[:, 1].astype(int) if rows.size else np.empty(0, dtype=int)
    bad = statuses[(statuses < 200) | (statuses >= 300)]
    errors = Counter(f"http:{s}" if s > 0 else "transport" for s in bad.tolist())
    return EngineRun(
        engine="native",
        tool="h2load",
        version=tool_version("h2load"),
        command=argv,
        model="closed",
        wall_s=duration_s,
        generator_cpu_s=cpu_s,
        requests=result.requests,
        failures=result.failures,
        ops={operation: _op_stats(durations, int(bad.size), errors, None, 0)},
        sent={operation: result.requests},
        in_flight=clients * per_client,
    )


# ---- wrk ----------------------------------------------------------------------------------------------
# Percentiles wrk is asked for (its histogram is not readable from Lua): dense enough to rebuild the
# distribution at the resolution the report shows.
_WRK_PERCENTILES = (
    [p / 2 for p in range(0, 199)] + [99 + p / 10 for p in range(0, 10)] + [99.9 + p / 100 for p in range(10)]
)


def lua_long_string(data: bytes) -> str:
    """`data` as a Lua long-bracket string ([==[...]==]): no escaping, whatever the body holds."""
    text = data.decode()
    if text.startswith(("\n", "\r")):
        raise ValueError("a Lua long string drops a leading newline: the body would change")

    def closes_at_end(n: int) -> bool:  # the first "]==]" Lua finds is the one appended
        close = f"]{'=' * n}]"
        return (text + close).find(close) == len(text)

    level = "=" * next(n for n in range(64) if closes_at_end(n))
    return f"[{level}[{text}]{level}]"


def wrk_script(pools: list[RequestPool], out: Path) -> str:
    """A Lua script: pre-formatted requests per operation, chosen by weight, counted per operation."""
    lines = ["local ops = {"]
    for pool in pools:
        lines.append("  {")
        for request in pool.requests:
            headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers.items())
            body = lua_long_string(request.body) if request.body else "nil"
            lines.append(
                f"    {{{json.dumps(request.method)}, {json.dumps(request.path)}, {{{headers}}}, {body}}},"
            )
        lines.append("  },")
    lines.append("}")
    weights = [pool.weight for pool in pools]
    total = sum(weights)
    cumulative = [sum(weights[: i + 1]) / total for i in range(len(weights))]
    unique = ", ".join("true" if pool.unique else "false" for pool in pools)
    lines += [
        f"local cumulative = {{{', '.join(f'{c:.9f}' for c in cumulative)}}}",
        f"local unique = {{{unique}}}",
        f"local out_path = {json.dumps(str(out))}",
        f"local percentiles = {{{', '.join(f'{p:g}' for p in _WRK_PERCENTILES)}}}",
        _WRK_LUA_BODY,
    ]
    return "\n".join(lines) + "\n"


_WRK_LUA_BODY = """
local formatted, next_index = {}, {}
counts = {}
function init(args)
  math.randomseed(tonumber(args[1] or "1"))
  for i, op in ipairs(ops) do
    formatted[i] = {}
    for j, r in ipairs(op) do formatted[i][j] = wrk.format(r[1], r[2], r[3], r[4]) end
    next_index[i] = 0
    counts[i] = 0
  end
end
local function pick()
  if #cumulative == 1 then return 1 end
  local x = math.random()
  for i, c in ipairs(cumulative) do if x < c then return i end end
  return #cumulative
end
function request()
  local i = pick()
  local pool = formatted[i]
  local j = next_index[i]
  next_index[i] = j + 1
  counts[i] = counts[i] + 1
  -- A used-up pool of unique requests cycles: the duplicates are refused, and the counter check says so.
  return pool[(j % #pool) + 1]
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local sent = {}
  for i = 1, #ops do sent[i] = 0 end
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for i = 1, #ops do sent[i] = sent[i] + (c[i] or 0) end
  end
  local f = assert(io.open(out_path, "w"))
  f:write("sent")
  for i = 1, #ops do f:write(" ", sent[i]) end
  f:write("\\n")
  f:write("summary ", summary.requests, " ", summary.duration, " ", summary.errors.status, " ",
          summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, "\\n")
  for _, p in ipairs(percentiles) do f:write("p ", p, " ", latency:percentile(p), "\\n") end
  f:write("p 100 ", latency.max, "\\n")
  f:close()
end
"""


def _histogram_from_percentiles(points: list[tuple[float, float]], total: int) -> HdrHistogram:
    """Rebuild a histogram from (percentile, value) points: each step's share of samples at its value."""
    histogram = new_histogram()
    if total <= 0 or not points:
        return histogram
    points = sorted(points)
    recorded = 0
    for (p0, v0), (p1, _) in itertools.pairwise(points):
        count = round(total * p1 / 100) - round(total * p0 / 100)
        if count > 0:
            histogram.record_value(max(1, round(v0)), count)
            recorded += count
    if total > recorded:
        histogram.record_value(max(1, round(points[-1][1])), total - recorded)
    return histogram


def run_wrk(
    *,
    base_url: str,
    pools: list[RequestPool],
    connections: int,
    duration_s: int,
    cpu: Cpus,
    seed: int,
    timeout_s: float,
) -> EngineRun:
    """Closed model over HTTP/1.1: `connections` requests in flight, the pools' mix, for whole seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        out = Path(tmp) / "done.txt"
        script = Path(tmp) / "load.lua"
        script.write_text(wrk_script(pools, out))
        threads = threads_for(cpu, connections)  # a thread per generator CPU
        argv = [*_pin(cpu), "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s"]
        argv += [f"--timeout={max(1, math.ceil(timeout_s))}s", "-s", str(script), base_url, "--", str(seed)]
        done, cpu_s = _run(argv, timeout_s=duration_s + 60)
        text = out.read_text() if out.exists() else ""
    result = parse_wrk(done.stdout)
    sent_counts: list[int] = []
    points: list[tuple[float, float]] = []
    wall = float(duration_s)
    for line in text.splitlines():
        fields = line.split()
        if fields[0] == "sent":
            sent_counts = [int(float(n)) for n in fields[1:]]
        elif fields[0] == "summary":
            wall = float(fields[2]) / 1e6
        elif fields[0] == "p":
            points.append((float(fields[1]), float(fields[2])))
    if len(sent_counts) != len(pools):
        raise ToolError(f"wrk wrote no per-operation counts ({' '.join(argv)}):\n{done.stdout[-600:]}")
    stats = OpStats(latency=_histogram_from_percentiles(points, result.requests), requests=result.requests)
    stats.failures = result.failures
    if result.failures:
        stats.errors = Counter({"http-or-socket": result.failures})
    return EngineRun(
        engine="native",
        tool="wrk",
        version=tool_version("wrk"),
        command=argv,
        model="closed",
        wall_s=wall,
        generator_cpu_s=cpu_s,
        requests=result.requests,
        failures=result.failures,
        ops={ALL: stats},
        sent={pool.operation: n for pool, n in zip(pools, sent_counts, strict=True)},
        # wrk builds a connection's next request (and counts it in the script) before the window's end
        # stops it from being sent, on top of the one in flight.
        in_flight=2 * connections + 1,
    )


# ---- gload --------------------------------------------------------------------------------------------
def _gload_operation(pool: RequestPool) -> dict[str, object]:
    first = pool.requests[0]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    if first.protocol == "grpc":
        return {
            "name": pool.operation,
            "weight": pool.weight,
            "grpc_method": first.method,
            "client_streams": first.client_streams,
            "server_streams": first.server_streams,
            "messages": [[b64(m) for m in r.messages] for r in pool.requests],
            "unique_each": pool.unique,
        }
    return {
        "name": pool.operation,
        "weight": pool.weight,
        "method": first.method,
        "paths": [r.path for r in pool.requests],
        "headers": first.headers,
        "bodies": [b64(r.body) for r in pool.requests] if any(r.body for r in pool.requests) else [],
        "ndjson_out": first.ndjson_out,
        "unique_each": pool.unique,
    }


def run_gload(
    *,
    protocol: str,
    address: str,
    pools: list[RequestPool],
    model: str,
    duration_s: float,
    warmup_s: float,
    connections: int,
    concurrency: int = 0,
    rate: float = 0.0,
    cpu: Cpus,
    seed: int,
    timeout_s: float,
) -> EngineRun:
    """`model` "open": `rate` requests per second on a fixed schedule; "closed": `concurrency` loops."""
    spec = {
        "protocol": "grpc" if protocol == "grpc" else "http1",
        "target": address,
        "model": model,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "connections": connections,
        "concurrency": concurrency,
        "rate": rate,
        "timeout_s": timeout_s,
        "seed": seed,
        "operations": [_gload_operation(pool) for pool in pools],
    }
    with tempfile.TemporaryDirectory(prefix="bench-gload-") as tmp:
        spec_path, log = Path(tmp) / "spec.json", Path(tmp) / "requests.bin"
        spec_path.write_text(json.dumps(spec))
        argv = [*_pin(cpu), str(ensure_gload()), "run", "--spec", str(spec_path), "--out", str(log)]
        done, _ = _run(argv, timeout_s=duration_s + warmup_s + timeout_s + 60)
        records = np.fromfile(log, dtype=GLOAD_RECORD)
    summary = json.loads(done.stdout)
    # Requests started before the window opened but answered inside it belong to the warm-up.
    records = records[records["intended"] >= 0]
    ok = (records["status"] == 0) if protocol == "grpc" else (records["status"] // 100 == 2)
    ops: dict[str, OpStats] = {}
    corrected: dict[str, OpStats] = {}
    sent: dict[str, int] = {}
    for index, pool in enumerate(pools):
        mine = records[records["op"] == index]
        sent[pool.operation] = int(summary["sent_by_op"][index])  # the whole invocation, warm-up included
        bad = mine[~ok[records["op"] == index]]
        errors = Counter(_status_name(protocol, s) for s in bad["status"].tolist())
        start, end, intended = mine["start"] / 1e3, mine["end"] / 1e3, mine["intended"] / 1e3
        has_items = mine["items"] > 0
        ttfi = (mine["first"][has_items] - mine["start"][has_items]) / 1e3 if has_items.any() else None
        items = int(mine["items"].sum())
        ops[pool.operation] = _op_stats(end - start, int(bad.size), errors, ttfi, items)
        if model == "open":
            corrected[pool.operation] = _op_stats(end - intended, int(bad.size), errors, None, items)
    lateness = histogram_of((records["dispatch"] - records["intended"]) / 1e3) if model == "open" else None
    distortion = None
    if model == "open" and records.size:
        # Exact: each corrected percentile with and without the schedule's slip (end - intended vs end -
        # dispatch), over every request of the window.
        from_intended = (records["end"] - records["intended"]).astype(np.float64)
        from_dispatch = (records["end"] - records["dispatch"]).astype(np.float64)
        distortion = {}
        for name, q in (("p50", 50.0), ("p99", 99.0)):
            total = float(np.percentile(from_intended, q))
            slip = total - float(np.percentile(from_dispatch, q))
            distortion[name] = slip / total if total else 0.0
    return EngineRun(
        engine="native",
        tool="gload",
        version=f"gload {ensure_gload().name.removeprefix('gload-')}",
        command=argv,
        model=model,
        wall_s=float(summary["wall_s"]),
        generator_cpu_s=float(summary["cpu_user_s"]) + float(summary["cpu_sys_s"]),
        requests=int(records.size),
        failures=int((~ok).sum()),
        ops=ops,
        sent=sent,
        # gload waits for every request it sent before it exits; only one it gave up on (timeout) may
        # still be in the server, uncounted.
        in_flight=1 + int((records["status"] == -1).sum()),
        corrected=corrected,
        lateness=lateness,
        offered_rate=rate if model == "open" else None,
        scheduled=int(summary["scheduled"]),
        late_dispatches=int(summary["late_dispatch"]),
        pacing_distortion=distortion,
    )


def _status_name(protocol: str, status: int) -> str:
    if status == -1:
        return "transport:timeout"
    if status == -3:
        return "pool-exhausted"
    if status < 0:
        return "transport:error"
    return f"grpc:{status}" if protocol == "grpc" else f"http:{status}"
