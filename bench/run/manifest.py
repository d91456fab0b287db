"""The run manifest: everything about the environment a reader needs to trust (or reproduce) the numbers."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.paths import REPO
from targets.limits import LIMITS

__all__ = ["collect_manifest", "protobuf_backend", "require_fast_protobuf", "server_models"]


def protobuf_backend() -> str:
    from google.protobuf.internal import api_implementation

    return str(api_implementation.Type())


def require_fast_protobuf(*, allow_python: bool) -> None:
    """Refuse to measure gRPC on protobuf's pure-Python backend, which would make it look ~10x slower."""
    if protobuf_backend() == "python" and not allow_python:
        raise UsageError(
            "protobuf uses its pure-Python backend, which would make gRPC look ~10x slower; install the upb "
            "wheel (pip install --force-reinstall protobuf) or pass --allow-python-protobuf"
        )


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def server_models() -> dict[str, str]:
    """How each target serves (fairness rules: idiomatic production servers, recorded with versions)."""
    v = importlib.metadata.version
    return {
        "grpc": f"grpc.aio server (grpcio {v('grpcio')}), 1 process, asyncio event loop",
        "rest": f"FastAPI {v('fastapi')} on uvicorn {v('uvicorn')} (httptools, uvloop), 1 process",
        "soap": f"spyne {v('spyne')} on cheroot {v('cheroot')} WSGI, 1 process x "
        f"{LIMITS.soap_threads} threads",
    }


def collect_manifest(**run: Any) -> dict[str, Any]:
    uname = platform.uname()
    versions = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain")
    return {
        **run,
        "git_commit": commit,
        "git_dirty": bool(dirty) if dirty is not None else None,
        "command_line": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "host": {
            "cpu_model": _cpu_model(),
            "cores": os.cpu_count(),
            "usable_cpus": sorted(os.sched_getaffinity(0)),
            "kernel": f"{uname.system} {uname.release}",
            "machine": uname.machine,
            "hostname": uname.node,
            "memory_mib": _memory_mib(),
        },
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "protobuf_backend": protobuf_backend(),
        "server_models": server_models(),
        "limits": {k: getattr(LIMITS, k) for k in LIMITS.__dataclass_fields__},
        "library_versions": dict(sorted(versions.items())),
    }


def _memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None
