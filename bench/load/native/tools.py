"""Native load generators from Debian's packages (wrk, h2load): their output and their versions.

parse_wrk(stdout) / parse_h2load(stdout)   -> NativeResult(requests, failures, rps, data_bytes)
tool_version(name)                         -> "h2load nghttp2/1.52.0" (cached; recorded in the manifest)
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass

__all__ = ["APT_HINT", "NativeResult", "parse_h2load", "parse_wrk", "tool_version"]

APT_HINT = "apt-get install -y wrk nghttp2-client"


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


@functools.cache
def tool_version(tool: str) -> str:
    flag = "--version" if tool == "h2load" else "-v"
    done = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
    text = (done.stdout + done.stderr).strip()
    # "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer": name and version, not the banner.
    return text.splitlines()[0].split(" Copyright")[0] if text else "?"
