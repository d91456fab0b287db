"""The echo side of the loopback floor: `python -m bench.load._echo_server [--cpu N]`.

Prints `READY floor 127.0.0.1:<port>`, echoes one connection until it closes, ends with its parent.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from targets.lifetime import die_with_parent


def _serve(cpu: int | None) -> int:
    die_with_parent()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"READY floor 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(65536):
        conn.sendall(data)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load._echo_server", description=__doc__)
    parser.add_argument("--cpu", type=int, default=None, help="pin the echo server to this CPU")
    args = parser.parse_args(argv)
    return _serve(args.cpu)


if __name__ == "__main__":
    sys.exit(main())
