"""Run the REST target: FastAPI on uvicorn (httptools, uvloop) on a socket bound here, so port 0 works."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from targets.core.service import LibraryService
from targets.limits import LIMITS
from targets.rest.app import create_app
from targets.rest.protocol import LimitedHttpToolsProtocol

__all__ = ["GRACEFUL_SHUTDOWN_S", "serve", "serve_app"]

# On SIGTERM, requests in flight get this long to finish before their connections are closed.
GRACEFUL_SHUTDOWN_S = 5
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """A uvicorn server that reports once, after its listener is serving."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:  # uvicorn leaves it False when startup failed
            self._on_started()


def serve(service: LibraryService, *, host: str, port: int, on_ready: Callable[[int], None]) -> None:
    """Serve `service` on host:port until SIGINT/SIGTERM; `on_ready(actual_port)` once it accepts requests."""
    serve_app(create_app(service), host=host, port=port, on_ready=on_ready)


def serve_app(app: ASGIApp, *, host: str, port: int, on_ready: Callable[[int], None]) -> None:
    """Serve any ASGI app with the REST target's server settings (the split topology serves its gateway and
    its timed services with it)."""
    config = uvicorn.Config(
        app,
        http=LimitedHttpToolsProtocol,  # httptools, plus the head size and idle limits
        loop="uvloop",
        lifespan="off",
        ws="none",  # no WebSocket routes; do not load a WebSocket implementation
        access_log=False,  # no per-request work that the other targets do not do
        log_config=None,  # keep the process's logging (stderr); uvicorn's default sends access logs to stdout
        timeout_keep_alive=round(LIMITS.keepalive_timeout_s),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    with _bind(host, port) as sock, _stop_signals_return():
        bound_port = int(sock.getsockname()[1])
        _Server(config, on_started=lambda: on_ready(bound_port)).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket; binding here (not in uvicorn) lets port 0 pick a port we can report."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # A restarted target may reuse its port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def _stop_signals_return() -> Iterator[None]:
    """Make SIGINT/SIGTERM end `serve()` by returning.

    uvicorn shuts down gracefully on these signals and then re-raises each one to the handler it found
    installed; with Python's defaults that would kill the process (SIGTERM, exit status -15) or raise
    KeyboardInterrupt (SIGINT) after the clean shutdown. No-op handlers installed here are what it finds.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only; uvicorn does not capture them here either
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass
