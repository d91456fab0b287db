"""Run the SOAP target: spyne's WSGI app on cheroot's multi-threaded WSGI server, until SIGINT/SIGTERM."""

from __future__ import annotations

import io
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Final

from cheroot import wsgi

from targets.core import LibraryService
from targets.limits import LIMITS
from targets.soap._spyne import build_wsgi_app, interface_document, quiet_spyne_logging

__all__ = ["SoapGate", "WsgiApp", "build_server", "endpoint_url", "serve"]

log = logging.getLogger("targets.soap")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# cheroot keeps only 10 idle keep-alive connections by default and closes the rest after each response;
# load generators open more (wrk -c16, many locust users), and keep-alive must hold for all of them.
_KEEPALIVE_CONNECTIONS: Final = 4096
# Listen backlog; cheroot's default of 5 drops SYNs when a load generator opens its connections at once.
_BACKLOG: Final = socket.SOMAXCONN
# How often cheroot's selector loop wakes up to expire idle connections and notice stop(); also bounds
# how long stopping takes.
_EXPIRATION_INTERVAL_S: Final = 0.2
# Worker threads get this long to finish in-flight requests on SIGTERM.
_SHUTDOWN_TIMEOUT_S: Final = 2

_SERVER_FAULT: Final = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n"
    b'<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/"><soap11env:Body>'
    b"<soap11env:Fault><faultcode>soap11env:Server</faultcode>"
    b"<faultstring>internal server error</faultstring>"
    b"</soap11env:Fault></soap11env:Body></soap11env:Envelope>"
)
_TOO_LARGE: Final = b"The request body exceeds the maximum allowed bytes.\n"
# The message cheroot's ChunkedRFile raises (as a bare OSError) past max_request_body_size.
_CHEROOT_TOO_LARGE: Final = "Request Entity Too Large"


def endpoint_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class SoapGate:
    """The WSGI callable cheroot runs: fixes spyne's gaps around the request, adds no per-request work.

    - a chunked request body is read here under the body limit (cheroot's 413 only covers Content-Length,
      and spyne reads nothing at all without a Content-Length);
    - spyne gets the endpoint URL instead of rebuilding it from each request's Host header;
    - an exception that escapes spyne becomes a logged SOAP Server fault instead of an empty 500.
    """

    def __init__(self, spyne_app: Any, *, url: str, max_body_bytes: int) -> None:
        self._app = spyne_app
        self.url = url  # set once the port is bound, before the first request
        self._max_body_bytes = max_body_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("CONTENT_LENGTH") and environ.get("REQUEST_METHOD") == "POST":
            body = self._read_chunked(environ["wsgi.input"])
            if body is None:
                start_response(
                    "413 Request Entity Too Large",
                    [("Content-Type", "text/plain"), ("Content-Length", str(len(_TOO_LARGE)))],
                )
                return [_TOO_LARGE]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        try:
            result: Iterable[bytes] = self._app(environ, start_response, self.url)
        except Exception:
            log.exception("unhandled error in the SOAP stack")
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(_SERVER_FAULT)))],
                sys.exc_info(),
            )
            return [_SERVER_FAULT]
        return result

    def _read_chunked(self, stream: Any) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := stream.read(64 * 1024):
                size += len(chunk)
                if size > self._max_body_bytes:
                    return None
                chunks.append(chunk)
        except OSError as exc:
            if str(exc) == _CHEROOT_TOO_LARGE:
                return None
            raise
        return b"".join(chunks)


def build_server(app: WsgiApp, *, host: str, port: int) -> Any:
    """A cheroot WSGI server with the limits of `targets.limits` (not yet bound)."""
    server = wsgi.Server(
        (host, port),
        app,
        numthreads=LIMITS.soap_threads,
        max=LIMITS.soap_threads,
        request_queue_size=_BACKLOG,
        # cheroot has a single socket timeout: it ends slow/silent clients and idle keep-alive connections
        # alike, so LIMITS.keepalive_timeout_s cannot be set apart; the stricter idle timeout wins.
        timeout=int(LIMITS.idle_timeout_s),
        shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
    )
    server.max_request_body_size = LIMITS.max_body_bytes  # a larger Content-Length: 413 before reading it
    server.max_request_header_size = LIMITS.max_header_bytes
    server.keep_alive_conn_limit = _KEEPALIVE_CONNECTIONS
    server.expiration_interval = _EXPIRATION_INTERVAL_S
    return server


def serve(
    service: LibraryService,
    *,
    host: str,
    port: int,
    on_ready: Callable[[int], None],
    wrap: Callable[[WsgiApp], WsgiApp] | None = None,
) -> None:
    """Bind, report the bound port once through `on_ready`, serve until SIGINT or SIGTERM, then return.

    `wrap`, when given, wraps the WSGI app cheroot runs (the split topology adds its timing header).
    """
    quiet_spyne_logging()
    spyne_app = build_wsgi_app(service, max_body_bytes=LIMITS.max_body_bytes)
    gate = SoapGate(spyne_app, url="", max_body_bytes=LIMITS.max_body_bytes)
    server = build_server(gate if wrap is None else wrap(gate), host=host, port=port)
    server.prepare()  # binds and listens: the port is real from here on (port 0 included)
    # cheroot sets SO_REUSEADDR only for a fixed port; set here, the connections accepted from now on carry it
    # too, so a target restarted on the port it got (port 0 at first) binds while they are still closing.
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    stopper: list[threading.Thread] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopper:
            # stop() waits for the selector loop that this (main) thread runs, so calling it right here
            # would deadlock; a thread stops the server and the main thread falls out of serve().
            stopper.append(threading.Thread(target=server.stop, name="soap-stop"))
            stopper[0].start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        actual_port = int(server.bind_addr[1])
        url = endpoint_url(host, actual_port)
        gate.url = url
        interface_document(spyne_app, url)  # built before READY: no first-request cost, fixed address
        on_ready(actual_port)
        server.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stopper:
            stopper[0].join(_SHUTDOWN_TIMEOUT_S + 1.0)
        else:
            server.stop()
