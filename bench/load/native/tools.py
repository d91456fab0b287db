"""Native load generators from Debian's packages (wrk, h2load): command lines as data, and their output.

wrk_command(url, ...) / h2load_command(url, ...)  -> argv lists (no shell)
parse_wrk(stdout) / parse_h2load(stdout)         -> NativeResult(requests, failures, rps, data_bytes)
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "APT_HINT",
    "NativeResult",
    "h2load_command",
    "parse_h2load",
    "parse_wrk",
    "tool_version",
    "wrk_command",
    "wrk_script",
]

APT_HINT = "apt-get install -y wrk nghttp2-client"


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


def tool_version(tool: str) -> str:
    flag = "--version" if tool == "h2load" else "-v"
    done = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"
