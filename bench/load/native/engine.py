"""The native engine: which compiled tool drives each window, and the request pools it sends.

    closed model, REST or SOAP (HTTP/1.1)            wrk, one thread, `concurrency` connections
    closed model, gRPC, one operation, one request   h2load, one connection, `concurrency` streams
    closed model, gRPC, a mix or unique requests     gload
    open model, every protocol                       gload (a fixed schedule; CO-corrected latency)

Pools of unique requests (BulkAddBooks' ISBNs...) are built per window for the requests it can send, from
the rate the operation reached in earlier windows of the cell (a conservative guess before the first).
"""

from __future__ import annotations

import math

from bench.load.engine import EngineRun
from bench.load.native.requests import UNIQUE, RequestPool, native_operations, request_pool
from bench.load.native.runs import Cpus, run_gload, run_h2load, run_wrk
from bench.load.scenarios import Scenario

__all__ = ["NativeEngine", "closed_tool", "preview"]

# Requests per second an operation of unique requests is first assumed to reach (pools are sized from it).
_FIRST_GUESS_RPS = {"AddBook": 20_000.0, "AddUser": 20_000.0, "BulkAddBooks": 800.0}
_POOL_MARGIN = 1.5
OPEN_HTTP_CONNECTIONS = 64  # enough that the pool never limits an open-model window below saturation


def closed_tool(protocol: str, operations: list[str]) -> str:
    """The tool of a closed-model window: wrk for HTTP/1.1, h2load for one fixed gRPC request, else gload."""
    if protocol in ("rest", "soap"):
        return "wrk"
    return "h2load" if len(operations) == 1 and operations[0] not in UNIQUE else "gload"


def preview(protocol: str, scenario: Scenario, *, cpu: Cpus, seconds: float) -> list[str]:
    """The command lines a cell of this protocol and scenario runs (ports, rates and files as placeholders):
    what `bench run --dry-run` prints."""
    cpus = () if cpu is None else (cpu,) if isinstance(cpu, int) else cpu
    pin = f"taskset -c {','.join(str(c) for c in cpus)} " if cpus else ""
    threads = max(1, len(cpus))
    tool = closed_tool(protocol, native_operations(scenario))
    # h2load: streams per connection, the connections shared by its threads
    streams = "<connections>" if threads == 1 else f"<connections / {threads}>"
    closed = {
        "wrk": f"wrk -t{threads} -c<connections> -d{max(1, int(seconds))}s --timeout=<timeout>s "
        "-s <generated.lua> http://127.0.0.1:<port> -- <seed>",
        "h2load": f"h2load -t{threads} -c{threads} -m{streams} "
        f"-D {round(seconds * 1000)}ms --log-file=<log> -d <request> -H 'content-type: application/grpc' "
        "-H 'te: trailers' http://127.0.0.1:<port><method>",
        "gload": "gload run --spec <spec.json: model closed, concurrency <connections>> --out <records.bin>",
    }[tool]
    return [f"closed: {pin}{closed}", f"open:   {pin}gload run --spec <spec.json: model open, rate <req/s>> "
            "--out <records.bin>"]  # fmt: skip


class NativeEngine:
    name = "native"
    generator_pids: tuple[int, ...] = ()  # each tool run reports its own CPU time

    def __init__(
        self,
        protocol: str,
        address: str,
        scenario: Scenario,
        *,
        cpu: Cpus,
        seed: int,
        timeout_s: float,
    ) -> None:
        self.protocol = protocol
        self.address = address
        self.scenario = scenario
        self.cpu = cpu
        self.seed = seed
        self.timeout_s = timeout_s
        self.operations = native_operations(scenario)
        self._reads = {
            op: request_pool(protocol, scenario, op, seed=seed)
            for op in self.operations
            if op not in _FIRST_GUESS_RPS
        }
        self._rates = dict(_FIRST_GUESS_RPS)
        self._windows = 0

    def _pools(self, seconds: float) -> list[RequestPool]:
        self._windows += 1
        pools = []
        for op in self.operations:
            if op in self._reads:
                pools.append(self._reads[op])
                continue
            count = math.ceil(self._rates[op] * seconds * _POOL_MARGIN) + 50
            pools.append(request_pool(self.protocol, self.scenario, op, count=count, seed=self.seed))
        return pools

    def _learn(self, run: EngineRun) -> EngineRun:
        for op in self._rates:
            if op in run.sent and run.wall_s > 0:
                self._rates[op] = max(self._rates[op] * 0.5, run.sent[op] / run.wall_s)
        return run

    def preflight(self) -> None:
        """One request of each operation, sent as the tool would send it (bench.load.native.preflight)."""
        from bench.load.native.preflight import preflight

        requests = [
            (self._reads[op] if op in self._reads else request_pool(
                self.protocol, self.scenario, op, count=1, seed=self.seed)).requests[0]
            for op in self.operations
        ]  # fmt: skip
        preflight(self.address, requests, timeout_s=self.timeout_s)

    def warm_up(self, seconds: float) -> None:
        self.closed(8, max(seconds, 1.0))

    def closed(self, concurrency: int, seconds: float) -> EngineRun:
        pools = self._pools(seconds)
        tool = closed_tool(self.protocol, self.operations)
        if tool == "wrk":
            run = run_wrk(
                base_url=f"http://{self.address}",
                pools=pools,
                connections=concurrency,
                duration_s=max(1, int(seconds)),  # wrk takes whole seconds: never longer than asked
                cpu=self.cpu,
                seed=self.seed + self._windows,
                timeout_s=self.timeout_s,
            )
        elif tool == "h2load":
            request = pools[0].requests[0]
            run = run_h2load(
                url=f"http://{self.address}{request.method}",
                request_body=request.grpc_frames(),
                # gRPC servers require `te: trailers` (the status travels in trailers).
                headers={"content-type": "application/grpc", "te": "trailers"},
                http1=False,
                connections=1,
                streams=concurrency,
                duration_s=seconds,
                cpu=self.cpu,
                operation=pools[0].operation,
            )
        else:
            run = run_gload(
                protocol=self.protocol,
                address=self.address,
                pools=pools,
                model="closed",
                duration_s=seconds,
                warmup_s=0.0,
                connections=1,
                concurrency=concurrency,
                cpu=self.cpu,
                seed=self.seed + self._windows,
                timeout_s=self.timeout_s,
            )
        return self._learn(run)

    def open(self, rate: float, seconds: float) -> EngineRun:
        return self._learn(
            run_gload(
                protocol=self.protocol,
                address=self.address,
                pools=self._pools(seconds + 0.5),
                model="open",
                duration_s=seconds,
                warmup_s=0.3,  # the schedule runs a little before the measured part: a steady state
                connections=1 if self.protocol == "grpc" else OPEN_HTTP_CONNECTIONS,
                rate=rate,
                cpu=self.cpu,
                seed=self.seed + self._windows,
                timeout_s=self.timeout_s,
            )
        )

    def close(self) -> None:
        pass
