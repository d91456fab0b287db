"""Pure-ASGI request body limit: refuse a body over `LIMITS.max_body_bytes` with 413 before buffering it."""

from __future__ import annotations

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
        declared = _content_length(scope)
        if declared is None:
            # The server frames bodies by Content-Length, so only a body without one needs counting.
            await self.app(scope, self._counting(receive), send)
            return
        if declared > self.max_bytes:
            response = problem_response(ErrorKind.INVALID_ARGUMENT, 413, self._detail(f"{declared} bytes"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # httptools refuses a Content-Length that is not a number; other servers may not.
            return int(value) if value.isdigit() else None
    return None
