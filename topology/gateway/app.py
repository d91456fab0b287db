"""The gateway's public API: the REST target's routes, bodies and problem+json errors, answered by calling
the books service (A) and the circulation service (B) over the backend protocol.

Every request is decoded exactly as the REST target decodes it (`targets.rest.decoding`, the same strict
models) and checked with the core's own rules before it is forwarded, in the order the core checks them: a
request the single-process target refuses is refused here with the same error, and only values every
backend protocol can carry cross the hop (an id beyond int64 cannot be put into a protobuf message). The
route table is the REST target's, read from its app; internal routes (copy reservations) are left out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from targets.core import (
    LIMITS,
    LibraryError,
    LibraryService,
    NewUser,
    StatusUpdate,
    Unavailable,
    check_batch_index,
    prepare_books,
    settable_status,
    validate_idempotency_key,
)
from targets.core.validation import (
    validate_days,
    validate_id,
    validate_new_book,
    validate_new_user,
    validate_text,
)
from targets.limits import LIMITS as SERVER_LIMITS
from targets.rest import schemas
from targets.rest.app import API_VERSION, DOCS_URL, OPENAPI_URL, create_app
from targets.rest.decoding import decode_json, decode_ndjson, path_id, query_text
from targets.rest.middleware import BodyLimitMiddleware
from targets.rest.problems import (
    RequestRejected,
    on_client_disconnect,
    on_http_exception,
    on_unexpected_error,
    problem_response,
)
from targets.rest.problems import on_library_error as on_domain_error
from targets.rest.responses import JsonRecordResponse, NdjsonResponse
from targets.rest.wire import IDEMPOTENCY_KEY, JSON, PROBLEM_JSON
from topology.gateway.backends import Backends
from topology.server_timing import TimingMiddleware

__all__ = ["RETRY_AFTER_S", "create_gateway_app", "gateway_openapi", "public_routes"]

Handler = Callable[[Request], Awaitable[Response]]
# Sent with every 503: a backend that restarts is usually back within this many seconds.
RETRY_AFTER_S = 1
_HEALTHY = orjson.dumps({"status": "SERVING"})
_UNAVAILABLE_DESCRIPTION = (
    "A backend service did not answer in time (code Unavailable); retry later, a CreateLoan with the same "
    "Idempotency-Key"
)


class _Endpoints:
    """One handler per public operation: decode and check as the REST target does, then call a backend."""

    def __init__(self, backends: Backends) -> None:
        self._b = backends

    # ---- books: service A ----------------------------------------------------------------------------
    async def get_book(self, request: Request) -> Response:
        book_id = _checked_id(request, "book_id")
        return JsonRecordResponse(await self._b.books(lambda c: c.get_book(book_id)))

    async def add_book(self, request: Request) -> Response:
        new = decode_json(schemas.AddBookRequest, await request.body()).to_new_book()
        validate_new_book(new)
        return JsonRecordResponse(await self._b.books(lambda c: c.add_book(new)), status_code=201)

    async def delete_book(self, request: Request) -> Response:
        book_id = _checked_id(request, "book_id")
        await self._b.books(lambda c: c.delete_book(book_id))
        return Response(status_code=204)

    async def list_books_by_category(self, request: Request) -> Response:
        category = query_text(request.scope["query_string"], "category")
        if category is None:
            raise RequestRejected("query parameter 'category' is required", status=422)
        validate_text("category", category, LIMITS["category_max"])
        return NdjsonResponse(await self._b.books(lambda c: c.list_books_by_category(category)))

    async def bulk_add_books(self, request: Request) -> Response:
        lines = decode_ndjson(schemas.AddBookRequest, await request.body())
        books = prepare_books(line.to_new_book() for line in lines)  # the books service's own first pass
        return JsonRecordResponse(await self._b.books(lambda c: c.bulk_add_books(books)), status_code=201)

    # ---- users and loans: service B ------------------------------------------------------------------
    async def add_user(self, request: Request) -> Response:
        body = decode_json(schemas.AddUserRequest, await request.body())
        new = NewUser(name=body.name, email=body.email)
        validate_new_user(new)
        return JsonRecordResponse(await self._b.circulation(lambda c: c.add_user(new)), status_code=201)

    async def get_user(self, request: Request) -> Response:
        user_id = _checked_id(request, "user_id")
        return JsonRecordResponse(await self._b.circulation(lambda c: c.get_user(user_id)))

    async def create_loan(self, request: Request) -> Response:
        body = decode_json(schemas.CreateLoanRequest, await request.body())
        key = request.headers.get(IDEMPOTENCY_KEY)
        validate_id("user_id", body.user_id)
        validate_id("book_id", body.book_id)
        validate_days(body.days)
        if key is not None:
            validate_idempotency_key(key)
        loan = await self._b.circulation(lambda c: c.create_loan(body.user_id, body.book_id, body.days, key))
        return JsonRecordResponse(loan, status_code=201)

    async def get_loan(self, request: Request) -> Response:
        loan_id = _checked_id(request, "loan_id")
        return JsonRecordResponse(await self._b.circulation(lambda c: c.get_loan(loan_id)))

    async def return_loan(self, request: Request) -> Response:
        loan_id = _checked_id(request, "loan_id")
        return JsonRecordResponse(await self._b.circulation(lambda c: c.return_loan(loan_id)))

    async def get_overdue_loans(self, request: Request) -> Response:
        return NdjsonResponse(await self._b.circulation(lambda c: c.get_overdue_loans()))

    async def update_loan_status(self, request: Request) -> Response:
        # Streaming semantics: the updates before the first bad one are applied, then its error is the
        # answer. So the valid prefix goes to B, and a bad line is reported only if B accepted all before it.
        updates: list[StatusUpdate] = []
        refused: LibraryError | None = None
        try:
            for index, line in enumerate(decode_ndjson(schemas.StatusUpdateRequest, await request.body())):
                check_batch_index(index)
                settable_status(line.status)
                validate_id("loan_id", line.loan_id)
                updates.append(StatusUpdate(loan_id=line.loan_id, status=line.status))
        except LibraryError as exc:
            refused = exc
        loans = await self._b.circulation(lambda c: c.update_loan_status(updates)) if updates else []
        if refused is not None:
            raise refused
        return NdjsonResponse(loans)

    async def health(self, request: Request) -> Response:
        return Response(_HEALTHY, media_type=JSON)

    def by_operation(self) -> dict[str, Handler]:
        return {
            "GetBook": self.get_book,
            "AddBook": self.add_book,
            "DeleteBook": self.delete_book,
            "ListBooksByCategory": self.list_books_by_category,
            "BulkAddBooks": self.bulk_add_books,
            "AddUser": self.add_user,
            "GetUser": self.get_user,
            "CreateLoan": self.create_loan,
            "GetOverdueLoans": self.get_overdue_loans,
            "UpdateLoanStatus": self.update_loan_status,
            "GetLoan": self.get_loan,
            "ReturnLoan": self.return_loan,
            "Health": self.health,
        }


def _checked_id(request: Request, name: str) -> int:
    return validate_id(name, path_id(name, request.path_params[name]))


# ---- the REST target's routes and documentation -----------------------------------------------------------
def _reference_app() -> Any:
    """The REST target's app, built only to read its routes and OpenAPI document (it serves nothing)."""
    return create_app(LibraryService())


def public_routes() -> list[tuple[str, str, set[str]]]:
    """(operation, path, methods) of every public route of the REST target, in its routing order."""
    return [
        (route.name, route.path, set(route.methods or ()))
        for route in _reference_app().router.routes
        if isinstance(route, APIRoute) and "internal" not in (route.tags or ())
    ]


def gateway_openapi() -> dict[str, Any]:
    """The REST target's OpenAPI document without its internal operations, each operation also documenting
    503 (a backend did not answer)."""
    spec: dict[str, Any] = _reference_app().openapi()
    spec["info"] = {
        "title": "Library service (gateway)",
        "version": API_VERSION,
        "description": "The library's REST API served by a gateway in front of a books service and a "
        "circulation service (users and loans). Errors are RFC 9457 problem details whose `code` is the "
        "domain error kind.",
    }
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in list(spec["paths"].items()):
        for method, operation in list(item.items()):
            if "internal" in operation.get("tags", ()):
                del item[method]
                continue
            operation["responses"]["503"] = {"description": _UNAVAILABLE_DESCRIPTION, "content": problem}
        if not item:
            del spec["paths"][path]
    return spec


async def _on_library_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Unavailable):
        return problem_response(exc.kind, 503, exc.message, headers={"Retry-After": str(RETRY_AFTER_S)})
    return await on_domain_error(request, exc)


def create_gateway_app(backends: Backends, *, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The gateway: public API routes, /openapi.json, /docs, `extra_routes` (the web pages); every response
    carries the gateway's Server-Timing header (`topology.timing`)."""
    handlers = _Endpoints(backends).by_operation()
    routes: list[BaseRoute] = []
    for name, path, methods in public_routes():
        route = Route(path, handlers[name], methods=sorted(methods), name=name)
        route.methods = set(methods)  # Starlette adds HEAD to every GET route; the REST target does not
        routes.append(route)
    document = orjson.dumps(gateway_openapi())

    async def openapi(request: Request) -> Response:
        return Response(document, media_type=JSON)

    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Library service (gateway) - Swagger UI")

    routes += [Route(OPENAPI_URL, openapi, methods=["GET"]), Route(DOCS_URL, docs, methods=["GET"])]
    routes += extra_routes or []
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TimingMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=SERVER_LIMITS.max_body_bytes),
        ],
        exception_handlers={
            LibraryError: _on_library_error,
            HTTPException: on_http_exception,
            ClientDisconnect: on_client_disconnect,
            Exception: on_unexpected_error,
        },
    )
