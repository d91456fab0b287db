"""The gateway's two backends, called on worker threads so the event loop goes on serving meanwhile.

The project's clients are synchronous; each worker thread holds its own client (one connection) per
backend, and at most `threads` backend calls run at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from bench.clients import LibraryClient
from topology.remote import RemoteService

__all__ = ["DEFAULT_THREADS", "Backends"]

T = TypeVar("T")
DEFAULT_THREADS = 32


class Backends:
    """`await backends.books(lambda client: client.get_book(1))`: one backend call, off the event loop."""

    def __init__(
        self, books: RemoteService, circulation: RemoteService, *, threads: int = DEFAULT_THREADS
    ) -> None:
        self.books_service = books
        self.circulation_service = circulation
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use: it needs the event loop

    async def books(self, operation: Callable[[LibraryClient], T]) -> T:
        return await self._run(self.books_service, operation)

    async def circulation(self, operation: Callable[[LibraryClient], T]) -> T:
        return await self._run(self.circulation_service, operation)

    async def _run(self, service: RemoteService, operation: Callable[[LibraryClient], T]) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        # The worker thread runs in a copy of this request's context, so its timings land in this request.
        return await anyio.to_thread.run_sync(
            functools.partial(service.call, operation), limiter=self._limiter
        )

    def close(self) -> None:
        self.books_service.close()
        self.circulation_service.close()
