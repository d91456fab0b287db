"""Pure-ASGI request body limit: refuse a body over `LIMITS.max_body_bytes` with 413 before buffering it."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from targets.core.errors import ErrorKind
from targets.limits import LIMITS
from targets.rest.problems import RequestRejected, problem_response

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is answered at once, without reading the body (uvicorn then
    discards the rest and keeps the connection). A body of unknown length (chunked) is counted as it arrives,
    and the request fails with `RequestRejected` (413) as soon as it crosses the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int = LIMITS.max_body_bytes) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, unframed = _framing(scope["headers"])
        if declared is not None and declared > self.max_bytes:
            response = problem_response(ErrorKind.INVALID_ARGUMENT, 413, self._detail(f"{declared} bytes"))
            await response(scope, receive, send)
            return
        # Only a body the server does not frame by Content-Length needs counting; a request with neither
        # header has no body (RFC 9112, section 6.3), so a GET passes without a wrapper.
        await self.app(scope, self._counting(receive) if unframed else receive, send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestRejected(self._detail(f"over {self.max_bytes} bytes"), status=413)
            return message

        return counting_receive

    def _detail(self, size: str) -> str:
        return f"request body is {size}; the limit is {self.max_bytes} bytes"


def _framing(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """(declared Content-Length, whether the body must be counted as it arrives).

    Counted: a body with a Transfer-Encoding (it wins over a Content-Length, RFC 9112 section 6.3), or with a
    Content-Length that is not a number (httptools refuses one; other servers may not).
    """
    declared: int | None = None
    unframed = False
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                unframed = True
            elif declared is None:  # the first one, as before (httptools refuses a second one anyway)
                declared = int(value)
        elif name == b"transfer-encoding":
            unframed = True
    return declared, unframed
