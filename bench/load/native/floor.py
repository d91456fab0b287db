"""Each native tool's own floor: against a null server (answers at once) on the same CPUs as the cells.

The maximum rate a tool reaches against it is the most that tool could ever measure here; the latency of
the open-model generator at a modest rate is the part of every latency that is the generator's and the
loopback's, not the protocol's. Both are measured in every run (floor cells), next to the TCP ping-pong.
"""

from __future__ import annotations

from typing import Any

from bench.clients.wire_requests import WireRequest
from bench.load.native.build import ensure_gload
from bench.load.native.requests import RequestPool
from bench.load.native.runs import run_gload, run_h2load, run_wrk
from bench.load.processes import start_ready_process

__all__ = ["measure_engine_floors"]

_GET = WireRequest("rest", "GetBook", "GET", "/books/1")
_GRPC = WireRequest("grpc", "GetBook", "/library.v1.Library/GetBook", messages=(b"\x08\x01",))


def measure_engine_floors(spec: Any) -> dict[str, Any]:
    """{"http1": {...}, "grpc": {...}}: max closed-model rate and open-model latency against a null server."""
    settings = spec.settings
    floors: dict[str, Any] = {}
    for family, request in (("http1", _GET), ("grpc", _GRPC)):
        argv = [str(ensure_gload()), "null", "--protocol", family]
        if spec.target_cpu is not None:
            argv = ["taskset", "-c", str(spec.target_cpu), *argv]
        server = start_ready_process(argv, name=f"null-{family}")
        try:
            pool = RequestPool("GetBook", 1, (request,), unique=False)
            if family == "http1":
                closed = run_wrk(
                    base_url=f"http://{server.address}",
                    pools=[pool],
                    connections=16,
                    duration_s=1,
                    cpu=spec.generators or None,
                    seed=spec.seed,
                    timeout_s=settings.request_timeout_s,
                )
            else:
                closed = run_h2load(
                    url=f"http://{server.address}{request.method}",
                    request_body=request.grpc_frames(),
                    headers={"content-type": "application/grpc", "te": "trailers"},
                    http1=False,
                    connections=1,
                    streams=16,
                    duration_s=1.0,
                    cpu=spec.generators or None,
                    operation="GetBook",
                )
            opened = run_gload(
                protocol="grpc" if family == "grpc" else "rest",
                address=server.address,
                pools=[pool],
                model="open",
                duration_s=1.0,
                warmup_s=0.2,
                connections=1 if family == "grpc" else 16,
                rate=settings.floor_rate,
                cpu=spec.generators or None,
                seed=spec.seed,
                timeout_s=settings.request_timeout_s,
            )
        finally:
            server.stop()
        latency = opened.ops["GetBook"].latency
        corrected = opened.corrected["GetBook"].latency
        floors[family] = {
            "closed_tool": closed.tool,
            "closed_tool_version": closed.version,
            "max_rps": closed.requests / closed.wall_s if closed.wall_s else None,
            "closed_generator_cpu_pct": closed.generator_cpu_pct,
            "open_tool": opened.tool,
            "open_rate": settings.floor_rate,
            "latency_p50_us": float(latency.get_value_at_percentile(50)),
            "latency_p99_us": float(latency.get_value_at_percentile(99)),
            "corrected_p50_us": float(corrected.get_value_at_percentile(50)),
            "corrected_p99_us": float(corrected.get_value_at_percentile(99)),
            "latency_hdr": latency.encode().decode(),
            "samples": int(latency.get_total_count()),
        }
    return floors
