"""Another service of the split topology, called through the project's own clients (`bench.clients`).

One client per calling thread (the lean clients hold one connection each and are not thread-safe), a
deadline on every call, answers turned back into domain errors, and for every call the time waited and the
callee's own timings added to the current request's `topology.timing.Timings`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bench.clients import DEFAULT_CLIENT, LibraryClient, RemoteError, TransportError, make_client
from bench.clients.measure import Measurement
from targets.core import Book, Unavailable, error_for_kind
from topology import timing

__all__ = ["GRPC_RECONNECT", "RemoteCatalogue", "RemoteService"]

T = TypeVar("T")

# A gRPC channel waits up to 2 minutes between reconnection attempts once its server went away (grpc core's
# default backoff); a service that restarts must be seen again within about a second.
GRPC_RECONNECT: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


class RemoteService:
    """`name` ("books", "circulation") served over `protocol` at `address`; `call` runs one operation.

    A `RemoteError` becomes the domain error it stands for (a NotFound stays a NotFound); no valid answer
    (refused, timed out, dropped) becomes `Unavailable`, which every protocol reports as such.
    """

    def __init__(self, name: str, protocol: str, address: str, *, timeout_s: float) -> None:
        self.name = name
        self.protocol = protocol
        self.address = address
        self.timeout_s = timeout_s
        self.client_kind = DEFAULT_CLIENT[protocol]
        self._local = threading.local()
        self._clients: list[LibraryClient] = []
        self._lock = threading.Lock()

    def call(self, operation: Callable[[LibraryClient], T]) -> T:
        client = self._client()
        try:
            return operation(client)
        except RemoteError as exc:
            raise error_for_kind(exc.kind, exc.message) from exc
        except TransportError as exc:
            # "unavailable" is also what a gRPC service answers when its own backend is down (the gRPC client
            # cannot tell that apart from a failed connection), so it is not called "no answer".
            what = "is unavailable" if exc.reason == "unavailable" else f"did not answer ({exc.reason})"
            raise Unavailable(f"the {self.name} service at {self.address} {what}: {exc.message}") from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _client(self) -> LibraryClient:
        client: LibraryClient | None = getattr(self._local, "client", None)
        if client is None:
            options: dict[str, Any] = {
                "timeout_s": self.timeout_s,
                "hook": self._record,
                "server_timing": True,
            }
            if self.protocol == "grpc":
                options["channel_options"] = GRPC_RECONNECT
            client = make_client(self.client_kind, self.address, **options)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _record(self, measurement: Measurement) -> None:
        timings = timing.current()
        if timings is None:
            return
        timings.wait(self.name, measurement.latency_s)
        if measurement.server_timing:
            timings.report(self.name, measurement.server_timing)


class RemoteCatalogue:
    """The books service as the circulation service sees it (`targets.core.circulation.Catalogue`)."""

    def __init__(self, books: RemoteService) -> None:
        self.books = books

    def reserve_copy(self, book_id: int, key: str) -> Book:
        return self.books.call(lambda client: client.reserve_copy(book_id, key))

    def release_copy(self, book_id: int, key: str) -> Book:
        return self.books.call(lambda client: client.release_copy(book_id, key))
