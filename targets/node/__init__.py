"""The Node.js implementation of the Library gRPC service (targets/node/server.js), started in place.

`bench serve grpc --impl node` seeds the dataset with the one core (so both implementations hold the same
records), writes it as a `library-dataset/1` document, and replaces this process with `node server.js`:
the pid, the CPU pinning, the READY line and the death signal (targets.lifetime) stay those of the process
the harness started. server.js deletes the document once it has read it. `metrics_port` and `inject_delay_us`
are passed on as server.js's `--metrics-port` (call counters on a side port, lib/metrics.js) and
`--inject-delay` (every call busy-waits that long).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import NoReturn

from targets.core import LibraryService
from targets.handover import exec_seeded_server

__all__ = ["NODE_DIR", "NodeUnavailable", "exec_node_server"]

NODE_DIR = Path(__file__).resolve().parent
SERVER = NODE_DIR / "server.js"


class NodeUnavailable(RuntimeError):
    """node is not installed, or the package's dependencies are not (`npm ci` has not run)."""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("node is not installed (Debian: apt-get install nodejs; then make deps)")
    modules = NODE_DIR / "node_modules"
    dependencies = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    missing = [name for name in dependencies if not (modules / name / "package.json").is_file()]
    if missing:
        raise NodeUnavailable(
            f"the Node dependencies are missing ({', '.join(missing)}): "
            f"run `make deps` (npm ci in {NODE_DIR})"
        )
    return node


def exec_node_server(
    service: LibraryService,
    *,
    name: str,
    seed: int,
    clock: str,
    host: str,
    port: int,
    metrics_port: int | None = None,
    inject_delay_us: float = 0.0,
) -> NoReturn:
    """Hand over to node with the service's records; returns only by raising NodeUnavailable or OSError."""
    exec_seeded_server(
        [_node(), str(SERVER)], service, name=name, seed=seed, clock=clock, host=host, port=port,
        metrics_port=metrics_port, inject_delay_us=inject_delay_us,
    )  # fmt: skip
