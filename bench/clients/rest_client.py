"""REST clients: httpx (keep-alive pool of one) and a lean variant (stdlib HTTP/1.1 + orjson)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import orjson

from bench.clients._base import RemoteError, TransportError
from bench.clients._http import KeepAliveConnection, Response, split_address, transport_error
from bench.clients.measure import SERVER_TIMING, ByteCounter, Hook, Meter
from targets.core import Book, BulkAddResult, ErrorKind, Loan, NewBook, NewUser, StatusUpdate, User
from targets.rest import wire

__all__ = ["LeanRestClient", "RestClient"]

T = TypeVar("T")
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_NDJSON = {"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"}


def _ndjson(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)


def _remote_error(status: int, content_type: str, body: bytes) -> RemoteError | TransportError:
    """A problem+json answer is the library's error; anything else did not come from a library target."""
    if content_type == wire.PROBLEM_JSON:
        try:
            problem = orjson.loads(body)
            error = wire.error_from_problem(problem)
            return RemoteError(error.kind, f"{status} {problem.get('code')}", error.message)
        except (orjson.JSONDecodeError, AttributeError):
            pass
    if status >= 500:
        return RemoteError(ErrorKind.INTERNAL, f"{status}", body[:200].decode(errors="replace"))
    return TransportError(
        "bad-response", f"HTTP {status} ({content_type or 'no content type'}) is not a problem+json"
    )


class _Transport(Protocol):
    """What the operations need from an HTTP client: one request, the JSON body, or NDJSON lines."""

    def json(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any: ...
    def lines(self, operation: str, method: str, path: str, body: bytes | None = None) -> list[Any]: ...


class RestOperations:
    """The REST mapping of the contract (routes and bodies), shared by both clients."""

    _t: _Transport

    def add_book(self, book: NewBook) -> Book:
        return wire.book_from_json(self._t.json("AddBook", "POST", "/books", wire.new_book_to_json(book)))

    def get_book(self, book_id: int) -> Book:
        return wire.book_from_json(self._t.json("GetBook", "GET", f"/books/{book_id}"))

    def delete_book(self, book_id: int) -> None:
        self._t.json("DeleteBook", "DELETE", f"/books/{book_id}")

    def list_books_by_category(self, category: str) -> list[Book]:
        path = f"/books?category={quote(category, safe='')}"
        return [wire.book_from_json(o) for o in self._t.lines("ListBooksByCategory", "GET", path)]

    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult:
        body = _ndjson([wire.new_book_to_json(b) for b in books])
        return wire.bulk_result_from_json(self._t.json("BulkAddBooks", "POST", "/books:bulk", body))

    def add_user(self, user: NewUser) -> User:
        return wire.user_from_json(self._t.json("AddUser", "POST", "/users", wire.new_user_to_json(user)))

    def get_user(self, user_id: int) -> User:
        return wire.user_from_json(self._t.json("GetUser", "GET", f"/users/{user_id}"))

    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan:
        body: dict[str, Any] = {"user_id": user_id, "book_id": book_id}
        if days is not None:
            body["days"] = days
        headers = {wire.IDEMPOTENCY_KEY: idempotency_key} if idempotency_key is not None else None
        return wire.loan_from_json(self._t.json("CreateLoan", "POST", "/loans", body, headers))

    def return_loan(self, loan_id: int) -> Loan:
        return wire.loan_from_json(self._t.json("ReturnLoan", "POST", f"/loans/{loan_id}/return"))

    def get_loan(self, loan_id: int) -> Loan:
        return wire.loan_from_json(self._t.json("GetLoan", "GET", f"/loans/{loan_id}"))

    def get_overdue_loans(self) -> list[Loan]:
        return [wire.loan_from_json(o) for o in self._t.lines("GetOverdueLoans", "GET", "/loans/overdue")]

    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]:
        body = _ndjson([wire.status_update_to_json(u) for u in updates])
        return [
            wire.loan_from_json(o) for o in self._t.lines("UpdateLoanStatus", "POST", "/loans/status", body)
        ]

    def reserve_copy(self, book_id: int, key: str) -> Book:
        path = f"/books/{book_id}/reservations/{quote(key, safe='')}"
        return wire.book_from_json(self._t.json("ReserveCopy", "PUT", path))

    def release_copy(self, book_id: int, key: str) -> Book:
        path = f"/books/{book_id}/reservations/{quote(key, safe='')}"
        return wire.book_from_json(self._t.json("ReleaseCopy", "DELETE", path))


def encode_body(body: Any) -> tuple[bytes | None, dict[str, str]]:
    if body is None:
        return None, _JSON
    if isinstance(body, bytes):
        return body, _NDJSON
    return orjson.dumps(body), _JSON


# ---- httpx ----------------------------------------------------------------------------------------------
class _HttpxTransport:
    def __init__(self, base_url: str, meter: Meter, timeout_s: float) -> None:
        self.meter = meter
        # One keep-alive connection per client, like the other protocols' clients.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, limits=limits)
        self.where = base_url

    def _fail(self, exc: httpx.HTTPError) -> TransportError:
        if isinstance(exc, httpx.ConnectError):
            refused = "refused" in str(exc).lower()
            return TransportError("refused" if refused else "unreachable", f"{self.where}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            return TransportError("timeout", f"no answer from {self.where} in time")
        if isinstance(exc, httpx.RemoteProtocolError):
            return TransportError("bad-response", f"{self.where} did not answer with valid HTTP/1.1: {exc}")
        return TransportError("error", f"{self.where}: {exc!r}")

    def json(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        content, sent = encode_body(body)
        if headers:
            sent = {**sent, **headers}
        with self.meter.measure(operation) as call:
            try:
                response = self.http.request(method, path, content=content, headers=sent)
            except httpx.HTTPError as exc:
                raise self._fail(exc) from exc
            if self.meter.server_timing:
                call.server_timing(response.headers.get(SERVER_TIMING))
            if response.status_code >= 400:
                raise _remote_error(response.status_code, _ctype(response.headers), response.content)
            return orjson.loads(response.content) if response.content else None

    def lines(self, operation: str, method: str, path: str, body: bytes | None = None) -> list[Any]:
        headers = _NDJSON if body is not None else {"Accept": "application/x-ndjson"}
        with self.meter.measure(operation) as call:
            items: list[Any] = []
            try:
                with self.http.stream(method, path, content=body, headers=headers) as response:
                    if self.meter.server_timing:
                        call.server_timing(response.headers.get(SERVER_TIMING))
                    if response.status_code >= 400:
                        raise _remote_error(response.status_code, _ctype(response.headers), response.read())
                    for line in response.iter_lines():
                        if line:
                            call.item()
                            items.append(orjson.loads(line))
            except httpx.HTTPError as exc:
                raise self._fail(exc) from exc
            return items


def _ctype(headers: httpx.Headers) -> str:
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


class RestClient(RestOperations):
    protocol = "rest"

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 30.0,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        client_name: str = "rest",
        server_timing: bool = False,
    ) -> None:
        host, port = split_address(address)
        self.meter = Meter(self.protocol, client_name, hook, byte_counter, server_timing)
        shown = f"[{host}]" if ":" in host else host
        self._transport = _HttpxTransport(f"http://{shown}:{port}", self.meter, timeout_s)
        self._t = self._transport

    def close(self) -> None:
        self._transport.http.close()


# ---- lean -------------------------------------------------------------------------------------------------
class _LeanTransport:
    def __init__(self, address: str, meter: Meter, timeout_s: float) -> None:
        self.meter = meter
        self.conn = KeepAliveConnection(address, timeout_s=timeout_s)
        self.host_header = {"Host": self.conn.where}

    def _send(
        self, method: str, path: str, body: Any, stream: bool, extra: Mapping[str, str] | None = None
    ) -> Response:
        content, headers = encode_body(body)
        if stream and body is None:
            headers = {"Accept": "application/x-ndjson"}
        if extra:
            headers = {**headers, **extra}
        return self.conn.request(method, path, content, {**headers, **self.host_header})

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except OSError as exc:
            self.conn.close()
            raise transport_error(exc, self.conn.where) from exc

    def json(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        with self.meter.measure(operation) as call:
            response = self._send(method, path, body, stream=False, extra=headers)
            if self.meter.server_timing:
                call.server_timing(response.raw.getheader(SERVER_TIMING))
            data = self._read(response.read)
            if response.status >= 400:
                raise _remote_error(response.status, response.content_type, data)
            return orjson.loads(data) if data else None

    def lines(self, operation: str, method: str, path: str, body: bytes | None = None) -> list[Any]:
        with self.meter.measure(operation) as call:
            response = self._send(method, path, body, stream=True)
            if self.meter.server_timing:
                call.server_timing(response.raw.getheader(SERVER_TIMING))
            if response.status >= 400:
                raise _remote_error(response.status, response.content_type, self._read(response.read))
            items: list[Any] = []
            lines: Iterator[bytes] = response.lines()
            while True:
                line = self._read(lambda: next(lines, None))
                if line is None:
                    return items
                call.item()
                items.append(orjson.loads(line))


class LeanRestClient(RestOperations):
    """The same routes over one stdlib HTTP/1.1 connection: REST without httpx's per-request machinery."""

    protocol = "rest"

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 30.0,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        client_name: str = "rest-lean",
        server_timing: bool = False,
    ) -> None:
        self.meter = Meter(self.protocol, client_name, hook, byte_counter, server_timing)
        self._transport = _LeanTransport(address, self.meter, timeout_s)
        self._t = self._transport

    def close(self) -> None:
        self._transport.conn.close()
