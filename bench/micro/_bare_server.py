"""Entry point of one bare stack: `python -m bench.micro._bare_server grpc|rest|soap [--cpu N]`.

Prints `READY bare-<stack> host:port` and serves until SIGTERM; started by `bench.micro.bare.start_bare`.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.micro.bare import SERVERS, STACKS
from targets.lifetime import die_with_parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.micro._bare_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server process to this CPU")
    args = parser.parse_args(argv)
    die_with_parent()  # no orphaned server if the benchmark process dies
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    def on_ready(port: int) -> None:
        print(f"READY bare-{args.stack} {args.host}:{port}", flush=True)

    SERVERS[args.stack](args.host, args.port, on_ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
