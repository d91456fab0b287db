"""The REST adapter: `create_app(service)` builds the FastAPI app; each route only translates for the core."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response
from starlette.types import ASGIApp

from targets.core import LIMITS as CORE_LIMITS
from targets.core.calls import CallCounters
from targets.core.errors import LibraryError
from targets.core.models import NewUser, StatusUpdate
from targets.core.service import LibraryService
from targets.limits import LIMITS
from targets.rest import schemas
from targets.rest.decoding import decode_json, decode_ndjson, path_id, query_text
from targets.rest.middleware import BodyLimitMiddleware
from targets.rest.problems import (
    RequestRejected,
    on_client_disconnect,
    on_http_exception,
    on_library_error,
    on_unexpected_error,
)
from targets.rest.responses import JsonRecordResponse, NdjsonResponse
from targets.rest.wire import IDEMPOTENCY_KEY, JSON, NDJSON, PROBLEM_JSON

__all__ = ["API_VERSION", "OPENAPI_URL", "create_app"]

API_VERSION = "1.0.0"
OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
_REF = "#/components/schemas/"
_KEY_PATTERN = "^[A-Za-z0-9._~:-]+$"
_HEALTHY = orjson.dumps({"status": "SERVING"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
T = TypeVar("T")


class _DirectRoute(APIRoute):
    """An APIRoute that FastAPI documents but Starlette runs: the endpoint is called with the `Request`.

    FastAPI's per-request machinery (dependency solving, body reading, response validation, exit stacks)
    roughly doubles the cost of a small request; the handlers here decode with strict pydantic models
    (`decoding`) and encode with orjson (`wire`) themselves, and /openapi.json is built from `_Operation`.
    `self.app` is the ASGI app that Starlette's routing calls.

    Matching and handling are Starlette's too: APIRoute's versions first look for an "effective route
    context" in the scope on every request, which only routers mounted with `include_router` set (this app
    has none).
    """

    matches = Route.matches
    handle = Route.handle

    def __init__(self, path: str, endpoint: Handler, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)

    def reserve(self, literal_paths: tuple[str, ...]) -> None:
        """Never match a fixed sibling path: `/loans/{loan_id}` must leave `/loans/status` alone, so that a
        GET there is 405 with `Allow: POST` rather than "loan_id must be an integer". The regex is what both
        routing and the 405 handler's Allow header (problems.py) look at."""
        taken = [p for p in literal_paths if p != self.path and self.path_regex.match(p)]
        if taken:
            alternatives = "|".join(re.escape(p) for p in taken)
            pattern = self.path_regex.pattern.removeprefix("^")
            self.path_regex = re.compile(f"^(?!(?:{alternatives})$){pattern}")


class _Endpoints:
    """One handler per operation: decode the request, call the service, encode the result."""

    def __init__(self, service: LibraryService) -> None:
        self._service = service

    async def _call(self, operation: str, call: Callable[[], T]) -> T:
        if operation in self._service.remote_operations:
            # It waits on another service: on a worker thread, so the event loop goes on serving.
            return await run_in_threadpool(call)
        return call()

    async def add_book(self, request: Request) -> Response:
        body = decode_json(schemas.AddBookRequest, await request.body())
        return JsonRecordResponse(self._service.add_book(body.to_new_book()), status_code=201)

    async def get_book(self, request: Request) -> Response:
        return JsonRecordResponse(self._service.get_book(_path_id(request, "book_id")))

    async def delete_book(self, request: Request) -> Response:
        self._service.delete_book(_path_id(request, "book_id"))
        return Response(status_code=204)

    async def list_books_by_category(self, request: Request) -> Response:
        category = query_text(request.scope["query_string"], "category")
        if category is None:
            raise RequestRejected("query parameter 'category' is required", status=422)
        return NdjsonResponse(self._service.list_books_by_category(category))

    async def bulk_add_books(self, request: Request) -> Response:
        lines = decode_ndjson(schemas.AddBookRequest, await request.body())
        result = self._service.bulk_add_books(line.to_new_book() for line in lines)
        return JsonRecordResponse(result, status_code=201)

    async def add_user(self, request: Request) -> Response:
        body = decode_json(schemas.AddUserRequest, await request.body())
        return JsonRecordResponse(
            self._service.add_user(NewUser(name=body.name, email=body.email)), status_code=201
        )

    async def get_user(self, request: Request) -> Response:
        return JsonRecordResponse(self._service.get_user(_path_id(request, "user_id")))

    async def create_loan(self, request: Request) -> Response:
        body = decode_json(schemas.CreateLoanRequest, await request.body())
        key = request.headers.get(IDEMPOTENCY_KEY)
        loan = await self._call(
            "CreateLoan",
            lambda: self._service.create_loan(
                body.user_id, body.book_id, days=body.days, idempotency_key=key
            ),
        )
        return JsonRecordResponse(loan, status_code=201)

    async def get_loan(self, request: Request) -> Response:
        return JsonRecordResponse(self._service.get_loan(_path_id(request, "loan_id")))

    async def return_loan(self, request: Request) -> Response:
        loan_id = _path_id(request, "loan_id")
        return JsonRecordResponse(await self._call("ReturnLoan", lambda: self._service.return_loan(loan_id)))

    async def get_overdue_loans(self, request: Request) -> Response:
        return NdjsonResponse(self._service.get_overdue_loans())

    async def update_loan_status(self, request: Request) -> Response:
        # Lines are decoded lazily, as the service consumes them, so a bad line ends the call where it stands:
        # the updates before it stay applied, as on a stream. All results are computed before the headers go
        # out, so an error still gets its own status.
        lines = decode_ndjson(schemas.StatusUpdateRequest, await request.body())
        updates = (StatusUpdate(loan_id=line.loan_id, status=line.status) for line in lines)
        loans = await self._call("UpdateLoanStatus", lambda: list(self._service.update_loan_status(updates)))
        return NdjsonResponse(loans)

    async def reserve_copy(self, request: Request) -> Response:
        book_id = _path_id(request, "book_id")
        return JsonRecordResponse(self._service.reserve_copy(book_id, request.path_params["key"]))

    async def release_copy(self, request: Request) -> Response:
        book_id = _path_id(request, "book_id")
        return JsonRecordResponse(self._service.release_copy(book_id, request.path_params["key"]))

    async def health(self, request: Request) -> Response:
        return Response(_HEALTHY, media_type=JSON)


def _counted(calls: CallCounters, name: str, handler: Handler) -> Handler:
    """Count the call in the core; a LibraryError escaping to the problem+json handlers counts as its kind."""

    async def counted(request: Request) -> Response:
        with calls.call(name) as call:
            try:
                return await handler(request)
            except ClientDisconnect:
                call.fail("Cancelled")  # the client left: not an error of the server
                raise

    return counted


def _path_id(request: Request, name: str) -> int:
    return path_id(name, request.path_params[name])


# ---- operations and their OpenAPI description --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Operation:
    name: str
    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    request: type[BaseModel] | None = None  # JSON body, or one NDJSON line when `ndjson_in`
    ndjson_in: bool = False
    response: type[BaseModel] | None = None  # JSON body, or one NDJSON line when `ndjson_out`
    ndjson_out: bool = False
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    idempotency_key: bool = False  # takes an optional Idempotency-Key header
    internal: bool = (
        False  # service to service (split topology); tagged "internal", the gateway leaves it out
    )


def _operations(endpoints: _Endpoints) -> list[_Operation]:
    # Order matters where paths overlap: /loans/overdue must come before /loans/{loan_id}. GetBook, the
    # benchmark's hottest route, comes first because Starlette tries routes in order.
    e = endpoints
    body_errors = (400, 413, 422)
    id_errors = (400, 404, 422)
    # fmt: off
    return [
        _Operation("GetBook", "GET", "/books/{book_id}", e.get_book, "Get one book",
                   response=schemas.Book, errors=id_errors),
        _Operation("AddBook", "POST", "/books", e.add_book, "Add a book", status=201,
                   request=schemas.AddBookRequest, response=schemas.Book, errors=(*body_errors, 409)),
        _Operation("DeleteBook", "DELETE", "/books/{book_id}", e.delete_book,
                   "Delete a book (refused while copies are on loan)", status=204, errors=(*id_errors, 409)),
        _Operation("ListBooksByCategory", "GET", "/books", e.list_books_by_category,
                   "Stream the books of one category, in id order", response=schemas.Book, ndjson_out=True,
                   query=("category",), errors=(400, 422)),
        _Operation("BulkAddBooks", "POST", "/books:bulk", e.bulk_add_books,
                   "Add many books, all or nothing (one AddBook object per line)", status=201,
                   request=schemas.AddBookRequest, ndjson_in=True, response=schemas.BulkAddResult,
                   errors=(*body_errors, 409)),
        _Operation("AddUser", "POST", "/users", e.add_user, "Add a user", status=201,
                   request=schemas.AddUserRequest, response=schemas.User, errors=(*body_errors, 409)),
        _Operation("GetUser", "GET", "/users/{user_id}", e.get_user, "Get one user",
                   response=schemas.User, errors=id_errors),
        _Operation("CreateLoan", "POST", "/loans", e.create_loan, "Lend a copy of a book to a user",
                   status=201, request=schemas.CreateLoanRequest, response=schemas.Loan,
                   errors=(*body_errors, 404, 409, 503), idempotency_key=True),
        _Operation("GetOverdueLoans", "GET", "/loans/overdue", e.get_overdue_loans,
                   "Stream the loans past their due date, in id order", response=schemas.Loan,
                   ndjson_out=True),
        _Operation("UpdateLoanStatus", "POST", "/loans/status", e.update_loan_status,
                   "Apply status updates in order (one per line); the first failure ends the call and the "
                   "updates before it stay applied", request=schemas.StatusUpdateRequest, ndjson_in=True,
                   response=schemas.Loan, ndjson_out=True, errors=(*body_errors, 404, 409, 503)),
        _Operation("GetLoan", "GET", "/loans/{loan_id}", e.get_loan, "Get one loan",
                   response=schemas.Loan, errors=id_errors),
        _Operation("ReturnLoan", "POST", "/loans/{loan_id}/return", e.return_loan, "Return a loaned copy",
                   response=schemas.Loan, errors=(*id_errors, 409, 503)),
        _Operation("Health", "GET", "/healthz", e.health,
                   "Liveness: SERVING once the target accepts requests", response=schemas.Health),
        _Operation("ReserveCopy", "PUT", "/books/{book_id}/reservations/{key}", e.reserve_copy,
                   "Internal: take one copy out under a key (idempotent per key)", response=schemas.Book,
                   errors=(*id_errors, 409), internal=True),
        _Operation("ReleaseCopy", "DELETE", "/books/{book_id}/reservations/{key}", e.release_copy,
                   "Internal: give back the copy held under a key (a key holding nothing changes nothing)",
                   response=schemas.Book, errors=(*id_errors, 409), internal=True),
    ]
    # fmt: on


_ERROR_DESCRIPTIONS = {
    400: "Malformed request or invalid argument (code InvalidArgument)",
    404: "No such record (code NotFound)",
    409: "Duplicate (code AlreadyExists) or refused in the current state (code FailedPrecondition)",
    413: f"Request body over {LIMITS.max_body_bytes} bytes (code InvalidArgument)",
    422: "Wrong shape or type (code InvalidArgument)",
    500: "Unexpected server error (code Internal)",
    503: "A service this one depends on did not answer; retrying may succeed (code Unavailable)",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF + model.__name__}


# The document is OpenAPI 3.1, which has no keyword for the items of a sequential media type (3.2 adds
# `itemSchema`); the schema of each NDJSON line goes in this extension, under the 3.2 name.
ITEM_SCHEMA_EXTENSION = "x-itemSchema"


def _media(model: type[BaseModel], ndjson: bool) -> dict[str, Any]:
    if not ndjson:
        return {JSON: {"schema": _ref(model)}}
    # The string schema lets Swagger UI offer a plain text box.
    description = f"NDJSON: one {model.__name__} object per line"
    schema = {"type": "string", "description": description}
    return {NDJSON: {"schema": schema, ITEM_SCHEMA_EXTENSION: _ref(model)}}


def _parameters(op: _Operation) -> list[dict[str, Any]]:
    id_schema = {"type": "integer", **schemas.id_rule()}
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": id_schema}
        for name in ("book_id", "user_id", "loan_id")
        if "{" + name + "}" in op.path
    ]
    text_schema = {"type": "string", **schemas.text_rule(CORE_LIMITS["category_max"])}
    params += [{"name": name, "in": "query", "required": True, "schema": text_schema} for name in op.query]
    if "{key}" in op.path:
        key_schema = {
            "type": "string",
            "maxLength": CORE_LIMITS["reservation_key_max"],
            "pattern": _KEY_PATTERN,
        }
        params.append({"name": "key", "in": "path", "required": True, "schema": key_schema})
    if op.idempotency_key:
        key_schema = {
            "type": "string",
            "maxLength": CORE_LIMITS["idempotency_key_max"],
            "pattern": _KEY_PATTERN,
        }
        description = "a request repeated with the same key gets the loan the first one created"
        params.append(
            {"name": IDEMPOTENCY_KEY, "in": "header", "required": False, "schema": key_schema,
             "description": description}
        )  # fmt: skip
    return params


def _openapi_extra(op: _Operation) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if parameters := _parameters(op):
        extra["parameters"] = parameters
    if op.request is not None:
        body: dict[str, Any] = {"required": True, "content": _media(op.request, op.ndjson_in)}
        if op.ndjson_in:
            # Zero lines is a valid NDJSON body, as a gRPC stream may carry no message: the call adds or
            # updates nothing and succeeds (the same answer on every protocol, tests/conformance).
            body["required"] = False
            body["description"] = (
                f"one {op.request.__name__} object per line, at most {CORE_LIMITS['bulk_max']} lines; "
                "blank lines are skipped; an empty or absent body holds no items"
            )
        extra["requestBody"] = body
    return extra


def _responses(op: _Operation) -> dict[int | str, dict[str, Any]]:
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = _media(op.response, op.ndjson_out)
    responses: dict[int | str, dict[str, Any]] = {op.status: success}
    for status in (*op.errors, 500):
        content = {PROBLEM_JSON: {"schema": _ref(schemas.Problem)}}
        responses[status] = {"description": _ERROR_DESCRIPTIONS[status], "content": content}
    return responses


@functools.cache
def _component_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        schemas.AddBookRequest,
        schemas.AddUserRequest,
        schemas.CreateLoanRequest,
        schemas.StatusUpdateRequest,
        schemas.Book,
        schemas.User,
        schemas.Loan,
        schemas.BulkAddResult,
        schemas.Health,
        schemas.Problem,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF + "{model}")
    return dict(top.get("$defs", {}))


class _LibraryApi(FastAPI):
    """FastAPI for the OpenAPI document; requests are served by Starlette's own machinery.

    FastAPI's stack adds layers that only its request handler needs (an exit stack for dependencies and
    uploads, telemetry, its body limit), and its router adds per-request work for features this app does not
    use (form limits, scope merging for included routers, telemetry hooks). Every route here is a
    `_DirectRoute` or a plain Starlette route, so that work would cost ~2-3 µs per request for nothing
    (README.md, "The adapters' own cost"). A route relying on FastAPI's request handler would not work
    in this app.
    """

    __call__ = Starlette.__call__  # not FastAPI's, which looks for telemetry on every request

    def build_middleware_stack(self) -> ASGIApp:
        # The APIRouter keeps its routes (FastAPI documents them) but dispatches with Starlette's loop.
        self.router.middleware_stack = functools.partial(Router.app, self.router)
        return Starlette.build_middleware_stack(self)

    def openapi(self) -> dict[str, Any]:
        # FastAPI regenerates its schema when routes change, so merge on every call (idempotent, cheap).
        schema = super().openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, component in _component_schemas().items():
            components.setdefault(name, component)
        return schema


def _add_docs(app: FastAPI) -> None:
    # Added after the API routes (FastAPI would add them first), so they are not tried before every request.
    async def openapi(request: Request) -> Response:
        return Response(orjson.dumps(app.openapi()), media_type=JSON)

    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - Swagger UI")

    app.add_route(OPENAPI_URL, openapi, include_in_schema=False)
    app.add_route(DOCS_URL, docs, include_in_schema=False)


def create_app(service: LibraryService) -> FastAPI:
    """The REST target for `service`: the contract's routes, problem+json errors, body limit, docs."""
    app = _LibraryApi(
        title="Library service (REST target)",
        version=API_VERSION,
        description="Books, users and loans; the same service as the gRPC and SOAP targets. Errors are "
        "RFC 9457 problem details whose `code` is the domain error kind.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},  # no OpenTelemetry in a target
    )
    endpoints = _Endpoints(service)
    operations = _operations(endpoints)
    literal_paths = tuple(op.path for op in operations if "{" not in op.path)
    for op in operations:
        handler = op.handler if op.name == "Health" else _counted(service.calls, op.name, op.handler)
        app.router.add_api_route(
            op.path,
            handler,
            methods=[op.method],
            name=op.name,
            operation_id=op.name,
            summary=op.summary,
            status_code=op.status,
            # No media type: the success response is described entirely by `responses`.
            response_class=Response,
            responses=_responses(op),
            openapi_extra=_openapi_extra(op),
            tags=["internal"] if op.internal else None,
            route_class_override=_DirectRoute,
        )
    for route in app.router.routes:
        if isinstance(route, _DirectRoute):
            route.reserve(literal_paths)
    _add_docs(app)
    app.add_exception_handler(LibraryError, on_library_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(Exception, on_unexpected_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMITS.max_body_bytes)
    return app
