"""Hand this process over to another implementation of the service (the Node.js and Go gRPC targets).

`bench serve grpc --impl node|go` seeds the dataset with the one core (so every implementation holds the same
records), writes it as a `library-dataset/1` document and replaces this process with the other server: the
pid, the CPU pinning, the READY line and the death signal (targets.lifetime) stay those of the process the
harness started. The server deletes the document once it has read it. Every such server takes the same
options: --host, --port, --clock, --dataset-file, --delete-dataset-file, --metrics-port (call counters on a
side port) and --inject-delay (every call busy-waits that long, in µs).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import NoReturn

from targets.core import LibraryService
from targets.core.dataset import dataset_document

__all__ = ["exec_seeded_server"]


def exec_seeded_server(
    program: list[str],
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
    """Replace this process with `program` (its executable first) serving `service`'s records; returns only
    by raising OSError (the document is then removed)."""
    fd, path = tempfile.mkstemp(prefix="library-dataset-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(dataset_document(service, name=name, seed=seed), file)
    argv = [*program, "--host", host, "--port", str(port), "--clock", clock]
    argv += ["--dataset-file", path, "--delete-dataset-file"]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    if inject_delay_us:
        argv += ["--inject-delay", repr(float(inject_delay_us))]
    try:
        os.execv(program[0], argv)
    except OSError:
        os.unlink(path)
        raise
