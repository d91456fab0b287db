"""SOAP clients: zeep (built once from wsdl/library.wsdl, reused HTTP session) and a lean raw variant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape

import requests
import zeep
import zeep.exceptions
from lxml import etree  # type: ignore[import-untyped]
from zeep.transports import Transport

from bench.clients._base import RemoteError, TransportError
from bench.clients._http import KeepAliveConnection, split_address, transport_error
from bench.clients.measure import SERVER_TIMING, ByteCounter, Hook, Meter
from bench.paths import WSDL_FILE
from targets.core import (
    Book,
    BulkAddResult,
    Loan,
    LoanStatus,
    NewBook,
    NewUser,
    StatusUpdate,
    User,
)
from targets.soap.faults import TNS, error_kind_for_fault

__all__ = ["WSDL_FILE", "LeanSoapClient", "SoapClient"]

_BINDING = f"{{{TNS}}}LibraryService"
T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _book(obj: Any) -> Book:
    return Book(
        id=int(obj["id"]),
        isbn=obj["isbn"],
        title=obj["title"],
        author=obj["author"],
        category=obj["category"],
        year=int(obj["year"]),
        total_copies=int(obj["total_copies"]),
        available_copies=int(obj["available_copies"]),
    )


def _user(obj: Any) -> User:
    return User(id=int(obj["id"]), name=obj["name"], email=obj["email"])


def _loan(obj: Any, timestamp: Callable[[Any], datetime] = _utc) -> Loan:
    # zeep's objects have no .get(); the lean client passes plain dicts. Both support `in` and [].
    returned = obj["returned_at"] if "returned_at" in obj else None  # noqa: SIM401
    return Loan(
        id=int(obj["id"]),
        user_id=int(obj["user_id"]),
        book_id=int(obj["book_id"]),
        loaned_at=timestamp(obj["loaned_at"]),
        due_at=timestamp(obj["due_at"]),
        returned_at=timestamp(returned) if returned is not None else None,
        status=LoanStatus(obj["status"]),
    )


def _new_book(book: NewBook) -> dict[str, Any]:
    return {
        "isbn": book.isbn,
        "title": book.title,
        "author": book.author,
        "category": book.category,
        "year": book.year,
        "copies": book.copies,
    }


class _HeaderCapture(zeep.Plugin):
    """Keeps the last response's Server-Timing header (zeep hands plugins each reply's HTTP headers)."""

    def __init__(self) -> None:
        self.server_timing: str | None = None

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        self.server_timing = http_headers.get(SERVER_TIMING)
        return envelope, http_headers


class SoapClient:
    """zeep over a requests.Session (keep-alive); faults become RemoteError with the faultcode as `native`."""

    protocol = "soap"

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 30.0,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        client_name: str = "soap",
        wsdl: Path = WSDL_FILE,
        server_timing: bool = False,
    ) -> None:
        host, port = split_address(address)
        self.endpoint = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        self.meter = Meter(self.protocol, client_name, hook, byte_counter, server_timing)
        self._session = requests.Session()
        transport = Transport(session=self._session, timeout=timeout_s, operation_timeout=timeout_s)
        self._headers = _HeaderCapture()
        plugins = [self._headers] if server_timing else []
        self._zeep = zeep.Client(str(wsdl), transport=transport, plugins=plugins)
        self._service = self._zeep.create_service(_BINDING, self.endpoint)

    def _call(self, operation: str, *, count_items: bool = False, **kwargs: Any) -> Any:
        with self.meter.measure(operation) as call:
            self._headers.server_timing = None
            try:
                result = getattr(self._service, operation)(**kwargs)
            except zeep.exceptions.Fault as exc:
                call.server_timing(self._headers.server_timing)
                raise RemoteError(error_kind_for_fault(exc.code), str(exc.code), str(exc.message)) from exc
            except requests.exceptions.Timeout as exc:
                raise TransportError("timeout", f"no answer from {self.endpoint} in time") from exc
            except requests.exceptions.ConnectionError as exc:
                cause = exc.__context__ or exc
                refused = "refused" in str(exc).lower()
                raise (
                    TransportError("refused", f"connection refused by {self.endpoint}")
                    if refused
                    else transport_error(cause if isinstance(cause, OSError) else exc, self.endpoint)
                ) from exc
            except zeep.exceptions.TransportError as exc:
                raise TransportError("bad-response", f"HTTP {exc.status_code} without a SOAP body") from exc
            except (zeep.exceptions.XMLSyntaxError, etree.XMLSyntaxError) as exc:
                raise TransportError("bad-response", f"{self.endpoint} did not answer with SOAP XML") from exc
            call.server_timing(self._headers.server_timing)
            if count_items:
                call.items(len(result or []))
            return result

    def add_book(self, book: NewBook) -> Book:
        return _book(self._call("AddBook", **_new_book(book)))

    def get_book(self, book_id: int) -> Book:
        return _book(self._call("GetBook", id=book_id))

    def delete_book(self, book_id: int) -> None:
        self._call("DeleteBook", id=book_id)

    def list_books_by_category(self, category: str) -> list[Book]:
        return [
            _book(b) for b in self._call("ListBooksByCategory", count_items=True, category=category) or []
        ]

    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult:
        result = self._call("BulkAddBooks", books=[_new_book(b) for b in books])
        return BulkAddResult(added=int(result["added"]), ids=tuple(int(i) for i in result["ids"] or []))

    def add_user(self, user: NewUser) -> User:
        return _user(self._call("AddUser", name=user.name, email=user.email))

    def get_user(self, user_id: int) -> User:
        return _user(self._call("GetUser", id=user_id))

    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan:
        extra: dict[str, Any] = {"days": days} if days is not None else {}
        if idempotency_key is not None:
            extra["idempotency_key"] = idempotency_key
        return _loan(self._call("CreateLoan", user_id=user_id, book_id=book_id, **extra))

    def return_loan(self, loan_id: int) -> Loan:
        return _loan(self._call("ReturnLoan", id=loan_id))

    def get_loan(self, loan_id: int) -> Loan:
        return _loan(self._call("GetLoan", id=loan_id))

    def get_overdue_loans(self) -> list[Loan]:
        return [_loan(x) for x in self._call("GetOverdueLoans", count_items=True) or []]

    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]:
        payload = [{"loan_id": u.loan_id, "status": u.status} for u in updates]
        return [_loan(x) for x in self._call("UpdateLoanStatus", count_items=True, updates=payload) or []]

    def reserve_copy(self, book_id: int, key: str) -> Book:
        return _book(self._call("ReserveCopy", book_id=book_id, key=key))

    def release_copy(self, book_id: int, key: str) -> Book:
        return _book(self._call("ReleaseCopy", book_id=book_id, key=key))

    def close(self) -> None:
        self._session.close()


# ---- lean variant ---------------------------------------------------------------------------------------
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:tns="{TNS}"><soapenv:Body>{{body}}'
    "</soapenv:Body></soapenv:Envelope>"
)
_Q_FAULT = f"{{{_SOAP_ENV}}}Fault"
_Q_BODY = f"{{{_SOAP_ENV}}}Body"
# One parser, safe settings: the lean client parses only its own target's answers, but never trusts them.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _fields(body: str, **values: Any) -> str:
    for name, value in values.items():
        body += f"<tns:{name}>{escape(str(value))}</tns:{name}>"
    return body


def envelope(operation: str, inner: str) -> bytes:
    return _ENVELOPE.format(body=f"<tns:{operation}>{inner}</tns:{operation}>").encode()


def _record(element: Any) -> dict[str, str]:
    """Children of a record element as {local name: text} (repeated children are not expected here)."""
    return {etree.QName(child).localname: child.text or "" for child in element}


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class LeanSoapClient:
    """Pre-built envelopes over one raw HTTP/1.1 connection, answers parsed with lxml: SOAP without zeep."""

    protocol = "soap"

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 30.0,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        client_name: str = "soap-lean",
        server_timing: bool = False,
    ) -> None:
        self._http = KeepAliveConnection(address, timeout_s=timeout_s)
        self.meter = Meter(self.protocol, client_name, hook, byte_counter, server_timing)
        self._headers = {"Content-Type": "text/xml; charset=utf-8", "Host": self._http.where}

    def _post(self, operation: str, inner: str, count_items: bool = False) -> list[Any]:
        """Send one operation; return the children of the `<Op>Response` element."""
        with self.meter.measure(operation) as call:
            headers = {**self._headers, "SOAPAction": f'"{operation}"'}
            response = self._http.request("POST", "/", envelope(operation, inner), headers)
            if self.meter.server_timing:
                call.server_timing(response.raw.getheader(SERVER_TIMING))
            try:
                data = response.read()
            except OSError as exc:
                self._http.close()
                raise transport_error(exc, self._http.where) from exc
            try:
                root = etree.fromstring(data, _PARSER)
            except etree.XMLSyntaxError as exc:
                raise TransportError("bad-response", f"HTTP {response.status} without SOAP XML") from exc
            body = root.find(_Q_BODY)
            if body is None or len(body) == 0:
                raise TransportError("bad-response", f"HTTP {response.status}: no SOAP Body")
            first = body[0]
            if first.tag == _Q_FAULT:
                code = first.findtext("faultcode") or ""
                raise RemoteError(error_kind_for_fault(code), code, first.findtext("faultstring") or "")
            children = list(first)
            if count_items:
                call.items(len(children))
            return children

    def _one(self, operation: str, inner: str) -> dict[str, str]:
        children = self._post(operation, inner)
        if not children:
            raise TransportError("bad-response", f"{operation}Response holds no result")
        return _record(children[0])

    def add_book(self, book: NewBook) -> Book:
        return _book(self._one("AddBook", _fields("", **_new_book(book))))

    def get_book(self, book_id: int) -> Book:
        return _book(self._one("GetBook", _fields("", id=book_id)))

    def delete_book(self, book_id: int) -> None:
        self._post("DeleteBook", _fields("", id=book_id))

    def list_books_by_category(self, category: str) -> list[Book]:
        return [
            _book(_record(e)) for e in self._post("ListBooksByCategory", _fields("", category=category), True)
        ]

    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult:
        inner = "".join(f"<tns:books>{_fields('', **_new_book(b))}</tns:books>" for b in books)
        children = self._post("BulkAddBooks", inner)
        result = children[0]
        added = int(result.findtext(f"{{{TNS}}}added") or 0)
        ids = tuple(int(e.text) for e in result.iterfind(f"{{{TNS}}}ids"))
        return BulkAddResult(added=added, ids=ids)

    def add_user(self, user: NewUser) -> User:
        return _user(self._one("AddUser", _fields("", name=user.name, email=user.email)))

    def get_user(self, user_id: int) -> User:
        return _user(self._one("GetUser", _fields("", id=user_id)))

    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan:
        optional: dict[str, Any] = {"days": days} if days is not None else {}
        if idempotency_key is not None:
            optional["idempotency_key"] = idempotency_key
        inner = _fields("", user_id=user_id, book_id=book_id, **optional)
        return _loan(self._one("CreateLoan", inner), _parse_time)

    def return_loan(self, loan_id: int) -> Loan:
        return _loan(self._one("ReturnLoan", _fields("", id=loan_id)), _parse_time)

    def get_loan(self, loan_id: int) -> Loan:
        return _loan(self._one("GetLoan", _fields("", id=loan_id)), _parse_time)

    def get_overdue_loans(self) -> list[Loan]:
        return [_loan(_record(e), _parse_time) for e in self._post("GetOverdueLoans", "", True)]

    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]:
        inner = "".join(
            f"<tns:updates>{_fields('', loan_id=u.loan_id, status=u.status)}</tns:updates>" for u in updates
        )
        return [_loan(_record(e), _parse_time) for e in self._post("UpdateLoanStatus", inner, True)]

    def reserve_copy(self, book_id: int, key: str) -> Book:
        return _book(self._one("ReserveCopy", _fields("", book_id=book_id, key=key)))

    def release_copy(self, book_id: int, key: str) -> Book:
        return _book(self._one("ReleaseCopy", _fields("", book_id=book_id, key=key)))

    def close(self) -> None:
        self._http.close()
