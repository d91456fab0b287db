"""Serve the books service (A) or the circulation service (B) over one protocol, with the existing adapters
and the timing wrappers of `topology.server_timing`."""

from __future__ import annotations

from collections.abc import Callable

from targets.core import LibraryService, build_service
from targets.core.circulation import books_service, circulation_service
from targets.core.clock import Clock
from topology.remote import RemoteCatalogue, RemoteService

__all__ = ["serve_books", "serve_circulation", "serve_timed"]

OnReady = Callable[[int], None]
# (port, host:port of the call counters or None): what a role prints its READY line from
OnReadyCounted = Callable[[int, str | None], None]


def _counted(
    service: LibraryService, host: str, metrics_port: int | None, on_ready: OnReadyCounted
) -> OnReady:
    """Serve the service's call counters on `metrics_port` (as every target does with --metrics-port)."""
    if metrics_port is None:
        return lambda port: on_ready(port, None)
    from targets.metrics import start_metrics_server
    from targets.serve import address

    bound = start_metrics_server(service.calls, host=host, port=metrics_port)
    return lambda port: on_ready(port, address(host, bound))


def serve_books(
    protocol: str,
    *,
    dataset: str,
    seed: int,
    clock: Clock,
    host: str,
    port: int,
    on_ready: OnReadyCounted,
    metrics_port: int | None = None,
) -> None:
    """Service A: the seeded dataset's books, the open loans' copies held as reservations."""
    service = books_service(build_service(dataset, clock=clock, seed=seed))
    ready = _counted(service, host, metrics_port, on_ready)
    serve_timed(protocol, service, host=host, port=port, on_ready=ready)


def serve_circulation(
    protocol: str,
    *,
    books_address: str,
    timeout_s: float,
    dataset: str,
    seed: int,
    clock: Clock,
    host: str,
    port: int,
    on_ready: OnReadyCounted,
    metrics_port: int | None = None,
) -> None:
    """Service B: the seeded dataset's users and loans; copies reserved in A at `books_address` over the
    same protocol, every call with a deadline of `timeout_s`."""
    books = RemoteService("books", protocol, books_address, timeout_s=timeout_s)
    try:
        service = circulation_service(build_service(dataset, clock=clock, seed=seed), RemoteCatalogue(books))
        ready = _counted(service, host, metrics_port, on_ready)
        serve_timed(protocol, service, host=host, port=port, on_ready=ready)
    finally:
        books.close()


def serve_timed(protocol: str, service: LibraryService, *, host: str, port: int, on_ready: OnReady) -> None:
    """The protocol's target server for `service`, reporting its timings to every caller."""
    # Imported here: one protocol stack per process.
    if protocol == "grpc":
        from targets.grpc.server import serve as serve_grpc
        from topology.grpc_timing import TimingInterceptor

        serve_grpc(service, host=host, port=port, on_ready=on_ready, interceptors=[TimingInterceptor()])
    elif protocol == "rest":
        from targets.rest.app import create_app
        from targets.rest.server import serve_app
        from topology.server_timing import TimingMiddleware

        serve_app(TimingMiddleware(create_app(service)), host=host, port=port, on_ready=on_ready)
    elif protocol == "soap":
        from targets.soap.server import serve as serve_soap
        from topology.server_timing import wsgi_timing

        serve_soap(service, host=host, port=port, on_ready=on_ready, wrap=wsgi_timing)
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
