"""The gateway's web interface for people: server-rendered HTML pages and plain forms, no JavaScript.

Pages under /ui/: browse books by category, a book's page (lend it), look up a user, a loan's page (return
it), overdue loans. They call the backends exactly as the API does; a refused action is shown on the page
with the domain error's message (an unknown user, no copy available, a backend that did not answer) and the
HTTP status the API would have answered. The lend form carries an idempotency key made when the form was
drawn, so sending it twice (reload, double click) lends one copy.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from targets.core import (
    DATASETS,
    DEFAULT_LOAN_DAYS,
    LIMITS,
    InvalidArgument,
    LibraryError,
    category_name,
    validate_idempotency_key,
)
from targets.core.validation import validate_days, validate_id, validate_text
from targets.rest.problems import STATUS_FOR_KIND
from topology.gateway.backends import Backends

__all__ = ["UI_PREFIX", "web_routes"]

UI_PREFIX = "/ui"
# The categories of the seeded datasets, offered as links (the service has no operation listing categories).
SUGGESTED_CATEGORIES = sorted(
    {category_name(size) for spec in DATASETS.values() for size in spec.category_sizes},
    key=lambda name: int(name.removeprefix("size-")),
)
_FORM_BODY_MAX = 4096  # a lend or return form is a few dozen bytes

_TEMPLATES = Environment(
    loader=PackageLoader("topology.gateway", "templates"),
    autoescape=True,  # every value is escaped: titles and names are user input
    undefined=StrictUndefined,
)


def _page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(ui=UI_PREFIX, **values)
    return HTMLResponse(html, status_code=status)


def _refused(exc: LibraryError) -> int:
    return STATUS_FOR_KIND[exc.kind]


def _whole_number(field: str, text: str | None) -> int:
    """A number typed into a form; checked like the API checks it (an id beyond int64 is refused here, not
    handed to a backend protocol that cannot carry it)."""
    if text is None or not text.strip():
        raise InvalidArgument(f"{field} is required")
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise InvalidArgument(f"{field} must be a whole number, got {text[:40]!r}")
    number = int(digits)
    return validate_days(number) if field == "days" else validate_id(field.replace(" ", "_"), number)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _FORM_BODY_MAX:
        raise InvalidArgument("the form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise InvalidArgument("the form is not valid UTF-8") from None


class _Pages:
    def __init__(self, backends: Backends) -> None:
        self._b = backends

    async def home(self, request: Request) -> Response:
        return _page("home.html", categories=SUGGESTED_CATEGORIES)

    async def books(self, request: Request) -> Response:
        category = request.query_params.get("category", "")
        try:
            validate_text("category", category, LIMITS["category_max"])
            books = await self._b.books(lambda c: c.list_books_by_category(category))
        except LibraryError as exc:
            return _page(
                "books.html", _refused(exc), category=category, books=[], error=exc.message,
                categories=SUGGESTED_CATEGORIES,
            )  # fmt: skip
        return _page(
            "books.html", category=category, books=books, error=None, categories=SUGGESTED_CATEGORIES
        )

    async def book(self, request: Request) -> Response:
        try:
            book_id = _whole_number("book id", request.path_params["book_id"])
            book = await self._b.books(lambda c: c.get_book(book_id))
        except LibraryError as exc:
            return _page("error.html", _refused(exc), title="Book", error=exc.message)
        return _page(
            "book.html",
            book=book,
            error=None,
            user_id="",
            days=DEFAULT_LOAN_DAYS,
            idempotency_key=uuid.uuid4().hex,
        )

    async def user(self, request: Request) -> Response:
        text = request.path_params.get("user_id", request.query_params.get("id"))
        if text is None:
            return _page("user_lookup.html", error=None, user_id="")
        try:
            user_id = _whole_number("user id", text)
            user = await self._b.circulation(lambda c: c.get_user(user_id))
        except LibraryError as exc:
            return _page("user_lookup.html", _refused(exc), error=exc.message, user_id=text)
        return _page(
            "user.html", user=user, days=DEFAULT_LOAN_DAYS, idempotency_key=uuid.uuid4().hex, error=None
        )

    async def lend(self, request: Request) -> Response:
        form: dict[str, str] = {}
        try:
            form = await _form(request)
            user_id = _whole_number("user id", form.get("user_id"))
            book_id = _whole_number("book id", form.get("book_id"))
            days = _whole_number("days", form.get("days") or str(DEFAULT_LOAN_DAYS))
            key = form.get("idempotency_key") or None
            if key is not None:
                validate_idempotency_key(key)
            loan = await self._b.circulation(lambda c: c.create_loan(user_id, book_id, days, key))
        except LibraryError as exc:
            # The form again, as sent and with the same key: sending it again is a safe retry.
            return _page(
                "lend_refused.html", _refused(exc), error=exc.message, user_id=form.get("user_id", ""),
                book_id=form.get("book_id", ""), days=form.get("days", ""),
                idempotency_key=form.get("idempotency_key") or uuid.uuid4().hex,
            )  # fmt: skip
        # Post/redirect/get: reloading the loan's page does not send the form again.
        return RedirectResponse(f"{UI_PREFIX}/loans/{loan.id}", status_code=303)

    async def loan(self, request: Request) -> Response:
        try:
            loan_id = _whole_number("loan id", request.path_params["loan_id"])
            loan = await self._b.circulation(lambda c: c.get_loan(loan_id))
        except LibraryError as exc:
            return _page("error.html", _refused(exc), title="Loan", error=exc.message)
        return _page("loan.html", loan=loan, error=None, returned=request.query_params.get("returned") == "1")

    async def return_loan(self, request: Request) -> Response:
        try:
            loan_id = _whole_number("loan id", request.path_params["loan_id"])
            await self._b.circulation(lambda c: c.return_loan(loan_id))
        except LibraryError as exc:
            return _page("error.html", _refused(exc), title="Return a loan", error=exc.message)
        return RedirectResponse(f"{UI_PREFIX}/loans/{loan_id}?returned=1", status_code=303)

    async def overdue(self, request: Request) -> Response:
        try:
            loans = await self._b.circulation(lambda c: c.get_overdue_loans())
        except LibraryError as exc:
            return _page("error.html", _refused(exc), title="Overdue loans", error=exc.message)
        return _page("overdue.html", loans=loans)


def web_routes(backends: Backends) -> list[BaseRoute]:
    pages = _Pages(backends)
    ui = UI_PREFIX
    return [
        Route(f"{ui}/", pages.home, methods=["GET"]),
        Route(f"{ui}/books", pages.books, methods=["GET"]),
        Route(f"{ui}/books/{{book_id}}", pages.book, methods=["GET"]),
        Route(f"{ui}/users", pages.user, methods=["GET"]),
        Route(f"{ui}/users/{{user_id}}", pages.user, methods=["GET"]),
        Route(f"{ui}/loans", pages.lend, methods=["POST"]),
        Route(f"{ui}/loans/overdue", pages.overdue, methods=["GET"]),
        Route(f"{ui}/loans/{{loan_id}}", pages.loan, methods=["GET"]),
        Route(f"{ui}/loans/{{loan_id}}/return", pages.return_loan, methods=["POST"]),
    ]
