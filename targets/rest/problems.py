"""Every error answered as application/problem+json (RFC 9457), its HTTP status chosen by one table.

Exception tree (adapter side; the core's tree is drawn in `targets.core.errors`)::

    LibraryError                     status from STATUS_FOR_KIND
    └── InvalidArgument
        └── RequestRejected          refused by the adapter before the core saw it; carries its status:
                                     400 malformed body, 413 body too large, 422 wrong shape or type

Starlette's HTTPException (unknown route 404, wrong method 405) and unexpected exceptions (500, generic
detail; the traceback goes to stderr through uvicorn's error log) are answered in the same format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from targets.core.errors import ErrorKind, InvalidArgument, LibraryError
from targets.rest.wire import PROBLEM_JSON, problem_to_json

__all__ = [
    "STATUS_FOR_KIND",
    "RequestRejected",
    "on_client_disconnect",
    "on_http_exception",
    "on_library_error",
    "on_unexpected_error",
    "problem_response",
]

# The one mapping from domain error kind to HTTP status (docs/ARCHITECTURE.md, the error table).
STATUS_FOR_KIND: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UNAVAILABLE: 503,
}


class RequestRejected(InvalidArgument):
    """Input the adapter refuses before the core sees it (malformed, too large, wrong type)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def problem_response(
    kind: ErrorKind, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = orjson.dumps(problem_to_json(kind, status, detail))
    return Response(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def on_library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LibraryError)
    status = exc.status if isinstance(exc, RequestRejected) else STATUS_FOR_KIND[exc.kind]
    return problem_response(exc.kind, status, exc.message)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return problem_response(ErrorKind.NOT_FOUND, 404, f"no route {method} {_clip(path)}")
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; collect every route's methods.
        allowed = ", ".join(sorted(_methods_for(path, request.app.router.routes)))
        detail = f"method {method} is not allowed on {_clip(path)}; allowed: {allowed}"
        return problem_response(ErrorKind.INVALID_ARGUMENT, 405, detail, headers={"Allow": allowed})
    kind = ErrorKind.INTERNAL if exc.status_code >= 500 else ErrorKind.INVALID_ARGUMENT
    return problem_response(kind, exc.status_code, str(exc.detail), headers=exc.headers)


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client left while its body was being read (or the server closed on it after a framing error, see
    # protocol.py). Nobody is left to answer and nothing went wrong here; as an unexpected error it would
    # log a traceback per request, which a client could repeat at will.
    return problem_response(ErrorKind.INVALID_ARGUMENT, 400, "the client disconnected before the body ended")


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this response, so uvicorn logs its traceback to stderr.
    return problem_response(ErrorKind.INTERNAL, 500, "internal server error")


def _methods_for(path: str, routes: list[BaseRoute]) -> set[str]:
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return methods


def _clip(text: str, limit: int = 200) -> str:
    # Paths are echoed back to the client; keep them short and printable.
    clipped = re.sub(r"[^\x20-\x7e]", "?", text[:limit])
    return clipped + "…" if len(text) > limit else clipped
