"""How an HTTP split-topology service reports its timings (`topology.timing`) to its caller: a Server-Timing
response header, added around the REST app (ASGI) or the SOAP app (WSGI); gRPC: `topology.grpc_timing`.

The adapters stay as they are: these wrap the app from outside. The figures cover the time until the
response headers go out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from topology import timing

__all__ = ["TimingMiddleware", "wsgi_timing"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_HEADER = b"server-timing"


class TimingMiddleware:
    """ASGI: time each HTTP request and add its Server-Timing header to the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timings = timing.start()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (_HEADER, timings.header().encode("ascii"))]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


def wsgi_timing(app: WsgiApp) -> WsgiApp:
    """WSGI: time each request (on its worker thread) and add its Server-Timing header."""

    def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        timings = timing.start()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("Server-Timing", timings.header())], exc_info)

        return app(environ, start)

    return timed
