"""`python -m targets.soap.baseline`: bare spyne + cheroot with a constant GetBook (adapter overhead)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from targets.soap._spyne import build_baseline_wsgi_app, quiet_spyne_logging
from targets.soap.server import build_server

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m targets.soap.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server process to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    quiet_spyne_logging()
    spyne_app = build_baseline_wsgi_app()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return spyne_app(environ, start_response)

    # Same cheroot configuration (threads, limits, keep-alive) as the real target.
    server = build_server(app, host=args.host, port=args.port)
    server.prepare()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.stop).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"READY soap-baseline {args.host}:{server.bind_addr[1]}", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
