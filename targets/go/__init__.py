"""The Go implementation of the Library gRPC service (targets/go/*.go), started in place.

Built offline from Debian's Go toolchain and packaged grpc-go/protobuf-go by targets/go/build.sh (`make
deps`). As for the Node one, `bench serve grpc --impl go` seeds the dataset with the one core, writes it as a
`library-dataset/1` document and replaces this process with the server binary (same pid, pinning, READY
line, death signal); the binary deletes the document once it has read it. `metrics_port` and `inject_delay_us`
are passed on as the binary's `--metrics-port` (call counters on a side port, metrics.go) and `--inject-delay`
(every call busy-waits that long).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from targets.core import LibraryService
from targets.handover import exec_seeded_server

__all__ = ["BINARY", "GoUnavailable", "exec_go_server"]

BINARY = Path(__file__).resolve().parent / "bin" / "library-grpc-go"


class GoUnavailable(RuntimeError):
    """The server binary has not been built (`make deps` runs targets/go/build.sh)."""


def exec_go_server(
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
    """Hand over to the Go server with the service's records; returns only by raising."""
    if not os.access(BINARY, os.X_OK):
        raise GoUnavailable(f"{BINARY} is not built: run `make deps` (targets/go/build.sh)")
    exec_seeded_server(
        [str(BINARY)], service, name=name, seed=seed, clock=clock, host=host, port=port,
        metrics_port=metrics_port, inject_delay_us=inject_delay_us,
    )  # fmt: skip
