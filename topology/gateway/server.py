"""Run the gateway: wait until both backends answer, then serve the API and the web pages (uvicorn, with the
REST target's server settings) until SIGINT/SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.clients import LibraryClient
from targets.core import LibraryError, Unavailable
from targets.rest.server import serve_app
from topology.errors import BackendNotAnswering
from topology.gateway.app import create_gateway_app
from topology.gateway.backends import Backends
from topology.gateway.web import web_routes
from topology.remote import RemoteService

__all__ = ["circulation_timeout", "serve_gateway", "wait_until_answering"]

_PROBE_INTERVAL_S = 0.1


def circulation_timeout(backend_timeout_s: float) -> float:
    """The gateway's deadline on B: B may wait on A twice within one call (a reservation and, when it fails,
    its compensating release), each with `backend_timeout_s`, so B gets both plus a margin to answer."""
    return 2 * backend_timeout_s + 1.0


def wait_until_answering(
    service: RemoteService, probe: Callable[[LibraryClient], object], timeout_s: float
) -> None:
    """Return once `service` answers `probe` at all (a NotFound is an answer); raise when it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            service.call(probe)
            return
        except Unavailable as exc:
            if time.monotonic() >= deadline:
                raise BackendNotAnswering(
                    f"the {service.name} service at {service.address} does not answer over "
                    f"{service.protocol} after {timeout_s:.0f} s: {exc.message}"
                ) from exc
        except LibraryError:
            return
        time.sleep(_PROBE_INTERVAL_S)


def serve_gateway(
    protocol: str,
    *,
    books_address: str,
    circulation_address: str,
    backend_timeout_s: float,
    threads: int,
    host: str,
    port: int,
    on_ready: Callable[[int], None],
    ready_timeout_s: float = 30.0,
) -> None:
    books = RemoteService("books", protocol, books_address, timeout_s=backend_timeout_s)
    circulation = RemoteService(
        "circulation", protocol, circulation_address, timeout_s=circulation_timeout(backend_timeout_s)
    )
    backends = Backends(books, circulation, threads=threads)
    try:
        wait_until_answering(books, lambda client: client.get_book(1), ready_timeout_s)
        wait_until_answering(circulation, lambda client: client.get_user(1), ready_timeout_s)
        app = create_gateway_app(backends, extra_routes=web_routes(backends))
        serve_app(app, host=host, port=port, on_ready=on_ready)
    finally:
        backends.close()
