"""Every spyne-facing piece of the SOAP target: XML types, thin service, hardened protocol, application."""

# spyne ships no type information: its base classes and decorators are `Any` to mypy. These two relaxations
# are confined to this module so the rest of the package stays strict.
# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]  # no stubs in the dev environment

# spyne 2.14 still imports the stdlib `cgi` module (deprecated in 3.11, gone in 3.13); the warning is spyne's.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from spyne import Application, ServiceBase, rpc
    from spyne.const.http import HTTP_405
    from spyne.const.xml import NS_SOAP11_ENV, NS_XSI
    from spyne.error import RequestNotAllowed
    from spyne.model.complex import ComplexModel
    from spyne.model.enum import Enum
    from spyne.model.fault import Fault
    from spyne.model.primitive import DateTime, Integer32, Long, Unicode
    from spyne.protocol.soap import Soap11
    from spyne.protocol.xml import SchemaValidationError
    from spyne.server.http import HttpTransportContext
    from spyne.server.wsgi import WsgiApplication

from targets.core import (
    DEFAULT_LOAN_DAYS,
    LIMITS,
    BulkAddResult,
    ErrorKind,
    LibraryError,
    LibraryService,
    NewBook,
    NewUser,
    StatusUpdate,
)
from targets.core.models import Book, Loan, User
from targets.soap._xmlguard import DoctypeForbidden, MalformedProlog, reject_doctype
from targets.soap.faults import FAULT_CODES, TNS, error_kind_for_fault

__all__ = [
    "SERVICE_NAME",
    "HardenedSoap11",
    "build_application",
    "build_wsgi_app",
    "interface_document",
    "quiet_spyne_logging",
]

SERVICE_NAME: Final = "LibraryService"
log = logging.getLogger("targets.soap")


# ---- XML types ---------------------------------------------------------------------------------------
# A mandatory field: minOccurs=1 and not nillable, so the schema validator refuses a request that omits it
# (a Client fault) instead of handing None to the core.
def _required(cls: Any) -> Any:
    return cls.customize(min_occurs=1, nillable=False)


_LONG: Final = _required(Long)
_INT: Final = _required(Integer32)
_TEXT: Final = _required(Unicode)
_TIME: Final = _required(DateTime)

# ---- request types with the core's validation rules as XSD facets --------------------------------------
# The same rules as targets.core.validation.PATTERNS, in XML Schema's regex dialect (anchored; spyne also
# compiles each pattern with Python's `re`, so category escapes are out and the characters are listed):
# non-empty, not only whitespace, no control characters. Of the control characters (Cc) XML 1.0 can carry
# only tab, LF, CR and U+007F-U+009F; Python's whitespace is those plus category Z, listed in `_Z`. The
# schema validator enforces the facets; a value that breaks one gets the core's fault for a broken rule,
# Client.InvalidArgument (`HardenedSoap11._check_schema`), so the error table holds whoever checks first.
_CC: Final = "\t\n\r\x7f-\x9f"
_Z: Final = " \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
XSD_PATTERNS: Final = {
    "text": f"[^{_CC}]*[^{_CC}{_Z}][^{_CC}]*",
    "email": f"[^@{_CC}{_Z}]{{1,64}}@[^@.{_CC}{_Z}]+(\\.[^@.{_CC}{_Z}]+)+",
    "isbn": r"[\- ]*([0-9][\- ]*){9}([0-9Xx]|([0-9][\- ]*){3}[0-9])[\- ]*",
}


def _named(base: Any, name: str, **facets: Any) -> Any:
    return base.customize(type_name=name, __namespace__=TNS, min_occurs=1, nillable=False, **facets)


def _text(name: str, max_len: int) -> Any:
    return _named(Unicode, name, min_len=1, max_len=max_len, pattern=XSD_PATTERNS["text"])


# ISBN-10 or ISBN-13 once hyphens and spaces are dropped; the check digit is the core's to check.
_ID: Final = _named(Long, "Id", ge=1)
_ISBN: Final = _named(Unicode, "Isbn", pattern=XSD_PATTERNS["isbn"])
_TITLE: Final = _text("Title", LIMITS["title_max"])
_AUTHOR: Final = _text("Author", LIMITS["author_max"])
_CATEGORY: Final = _text("Category", LIMITS["category_max"])
_NAME: Final = _text("Name", LIMITS["name_max"])
_EMAIL: Final = _named(
    Unicode, "Email", min_len=1, max_len=LIMITS["email_max"], pattern=XSD_PATTERNS["email"]
)
_YEAR: Final = _named(Integer32, "Year", ge=LIMITS["year_min"], le=LIMITS["year_max"])
_COPIES: Final = _named(Integer32, "Copies", ge=0, le=LIMITS["copies_max"])
# Optional: DEFAULT_LOAN_DAYS when absent or nil.
_LOAN_DAYS: Final = Integer32.customize(
    type_name="LoanDays",
    __namespace__=TNS,
    min_occurs=0,
    nillable=True,
    ge=LIMITS["loan_days_min"],
    le=LIMITS["loan_days_max"],
)

LoanStatusType: Final = Enum("ACTIVE", "RETURNED", "OVERDUE", "LOST", type_name="LoanStatus").customize(
    __namespace__=TNS, min_occurs=1, nillable=False
)


class BookType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "Book"
    _type_info = (
        ("id", _LONG),
        ("isbn", _TEXT),
        ("title", _TEXT),
        ("author", _TEXT),
        ("category", _TEXT),
        ("year", _INT),
        ("total_copies", _INT),
        ("available_copies", _INT),
    )


class UserType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "User"
    _type_info = (("id", _LONG), ("name", _TEXT), ("email", _TEXT))


class LoanType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "Loan"
    _type_info = (
        ("id", _LONG),
        ("user_id", _LONG),
        ("book_id", _LONG),
        ("loaned_at", _TIME),
        ("due_at", _TIME),
        # Absent until the loan is returned (the proto's unset optional Timestamp).
        ("returned_at", DateTime.customize(min_occurs=0, nillable=True)),
        ("status", LoanStatusType),
    )


class NewBookType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "NewBook"
    # Items of the batch operations carry no facets: the service checks them in order, as on a gRPC stream,
    # so that the first failing item decides the fault (an invalid item #5 must not win over a duplicate
    # #2). The rules are AddBook's; wsdl/README.md says so.
    _type_info = (
        ("isbn", _TEXT),
        ("title", _TEXT),
        ("author", _TEXT),
        ("category", _TEXT),
        ("year", _INT),
        ("copies", _INT),
    )


class LoanStatusUpdateType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "LoanStatusUpdate"
    # No facets, as for NewBook: updates are applied in order and the first failing one ends the call, so an
    # unknown status must reach the core at its place in the list, not fail the whole document up front.
    _type_info = (("loan_id", _LONG), ("status", _TEXT))


class BulkAddBooksResultType(ComplexModel):
    __namespace__ = TNS
    __type_name__ = "BulkAddBooksResult"
    _type_info = (
        ("added", _INT),
        ("ids", Long.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    )


# Every response carries its record: required, not spyne's default minOccurs=0 nillable=true.
_BOOK_OUT: Final = _required(BookType)
_USER_OUT: Final = _required(UserType)
_LOAN_OUT: Final = _required(LoanType)
_BULK_OUT: Final = _required(BulkAddBooksResultType)
# Arrays are repeated elements (maxOccurs="unbounded") directly inside the request/response wrapper, not an
# extra <BookArray> level: less XML per item, and zeep maps them to plain Python lists.
_BOOKS_OUT: Final = BookType.customize(min_occurs=0, max_occurs="unbounded", nillable=False)
_LOANS_OUT: Final = LoanType.customize(min_occurs=0, max_occurs="unbounded", nillable=False)
_NEW_BOOKS_IN: Final = NewBookType.customize(min_occurs=0, max_occurs="unbounded", nillable=False)
_UPDATES_IN: Final = LoanStatusUpdateType.customize(min_occurs=0, max_occurs="unbounded", nillable=False)


# ---- the service -------------------------------------------------------------------------------------
def _core(ctx: Any) -> LibraryService:
    service: LibraryService = ctx.app.library_service
    return service


class LibraryServiceBase(ServiceBase):
    """Operations named as in proto/library.proto; each only translates and delegates to the core."""

    __service_name__ = SERVICE_NAME

    @classmethod
    def call_wrapper(cls, ctx: Any, args: Any = None) -> Any:
        # The one place where domain errors become SOAP faults (the error table of docs/ARCHITECTURE.md),
        # and where each call is counted in the core (a LibraryError escaping counts as its kind).
        with _core(ctx).calls.call(ctx.descriptor.name) as call:
            try:
                return super().call_wrapper(ctx, args)
            except Fault as fault:
                call.fail(error_kind_for_fault(str(fault.faultcode)))
                raise
            except Exception as exc:
                if isinstance(exc, LibraryError) and exc.kind is not ErrorKind.INTERNAL:
                    call.fail(exc.kind)
                    raise Fault(FAULT_CODES[exc.kind], exc.message) from exc
                # Anything else is a bug or a broken invariant: the client gets a generic Server fault, the
                # traceback goes to stderr once.
                call.fail(ErrorKind.INTERNAL)
                log.exception("unexpected error in %s", ctx.method_request_string)
                raise Fault(FAULT_CODES[ErrorKind.INTERNAL], "internal server error") from exc

    @rpc(_ISBN, _TITLE, _AUTHOR, _CATEGORY, _YEAR, _COPIES, _returns=_BOOK_OUT, _out_variable_name="book")
    def AddBook(ctx: Any, isbn: str, title: str, author: str, category: str, year: int, copies: int) -> Book:
        return _core(ctx).add_book(NewBook(isbn, title, author, category, year, copies))

    @rpc(_ID, _returns=_BOOK_OUT, _out_variable_name="book")
    def GetBook(ctx: Any, id: int) -> Book:
        return _core(ctx).get_book(id)

    @rpc(_ID)
    def DeleteBook(ctx: Any, id: int) -> None:
        _core(ctx).delete_book(id)

    @rpc(_NAME, _EMAIL, _returns=_USER_OUT, _out_variable_name="user")
    def AddUser(ctx: Any, name: str, email: str) -> User:
        return _core(ctx).add_user(NewUser(name, email))

    @rpc(_ID, _returns=_USER_OUT, _out_variable_name="user")
    def GetUser(ctx: Any, id: int) -> User:
        return _core(ctx).get_user(id)

    @rpc(
        _ID,
        _ID,
        _LOAN_DAYS,
        Unicode.customize(min_occurs=0, nillable=True),
        _returns=_LOAN_OUT,
        _out_variable_name="loan",
    )
    def CreateLoan(
        ctx: Any, user_id: int, book_id: int, days: int | None, idempotency_key: str | None
    ) -> Loan:
        term = DEFAULT_LOAN_DAYS if days is None else days
        return _core(ctx).create_loan(user_id, book_id, term, idempotency_key)

    @rpc(_ID, _returns=_LOAN_OUT, _out_variable_name="loan")
    def ReturnLoan(ctx: Any, id: int) -> Loan:
        return _core(ctx).return_loan(id)

    @rpc(_ID, _returns=_LOAN_OUT, _out_variable_name="loan")
    def GetLoan(ctx: Any, id: int) -> Loan:
        return _core(ctx).get_loan(id)

    @rpc(_CATEGORY, _returns=_BOOKS_OUT, _out_variable_name="book")
    def ListBooksByCategory(ctx: Any, category: str) -> list[Book]:
        return _core(ctx).list_books_by_category(category)

    @rpc(_returns=_LOANS_OUT, _out_variable_name="loan")
    def GetOverdueLoans(ctx: Any) -> list[Loan]:
        return _core(ctx).get_overdue_loans()

    @rpc(_NEW_BOOKS_IN, _returns=_BULK_OUT, _out_variable_name="result")
    def BulkAddBooks(ctx: Any, books: Iterable[Any] | None) -> BulkAddResult:
        items = (NewBook(b.isbn, b.title, b.author, b.category, b.year, b.copies) for b in books or ())
        return _core(ctx).bulk_add_books(items)

    @rpc(_UPDATES_IN, _returns=_LOANS_OUT, _out_variable_name="loan")
    def UpdateLoanStatus(ctx: Any, updates: Iterable[Any] | None) -> list[Loan]:
        # Applied in order; the first failure propagates (-> its fault) and the earlier ones stay applied.
        items = (StatusUpdate(u.loan_id, u.status) for u in updates or ())
        return list(_core(ctx).update_loan_status(items))

    # Internal (split topology): the circulation service reserves and releases copies in the books service.
    @rpc(_LONG, _TEXT, _returns=_BOOK_OUT, _out_variable_name="book")
    def ReserveCopy(ctx: Any, book_id: int, key: str) -> Book:
        return _core(ctx).reserve_copy(book_id, key)

    @rpc(_LONG, _TEXT, _returns=_BOOK_OUT, _out_variable_name="book")
    def ReleaseCopy(ctx: Any, book_id: int, key: str) -> Book:
        return _core(ctx).release_copy(book_id, key)


# ---- hardened SOAP 1.1 protocol ----------------------------------------------------------------------
_ENVELOPE: Final = f"{{{NS_SOAP11_ENV}}}Envelope"
_BODY: Final = f"{{{NS_SOAP11_ENV}}}Body"
_FAULT: Final = f"{{{NS_SOAP11_ENV}}}Fault"

_XSI: Final = f"{{{NS_XSI}}}"
_UTF8: Final = frozenset({"utf-8", "utf8"})
# The SOAP 1.2 media type; SOAP 1.1 over HTTP is text/xml.
_SOAP12_MEDIA_TYPE: Final = "application/soap+xml"
# libxml2's error types for a value outside a facet of its simple type (a broken rule, not a wrong shape).
_FACET_ERRORS: Final = frozenset(
    f"SCHEMAV_CVC_{facet}_VALID"
    for facet in ("MINLENGTH", "MAXLENGTH", "PATTERN", "MININCLUSIVE", "MAXINCLUSIVE", "ENUMERATION")
)
# Item elements per schema validation call (see `HardenedSoap11._validate_bounded`).
_VALIDATION_SLICE: Final = 256
_PARSER_OPTIONS: Final = {
    "resolve_entities": False,  # no entity substitution at all (there is no DTD to declare one anyway)
    "load_dtd": False,  # never fetch an external DTD subset
    "dtd_validation": False,
    "no_network": True,  # no http/ftp access from the parser, whatever the document asks for
    "huge_tree": False,  # keep libxml2's depth and text-size safety limits
    "remove_comments": True,
    "remove_pis": True,
    "strip_cdata": True,
    "collect_ids": False,  # spyne's SOAP-encoding href/id resolution is not part of this document/literal API
}


class HardenedSoap11(Soap11):
    """Soap11 that refuses DTDs before parsing and never resolves entities or touches files or the network.

    spyne's own parse (`create_in_document`) is replaced, not preceded: the prolog is checked for a DOCTYPE
    by `reject_doctype` (expat, prolog only), then the body is parsed once by an lxml parser that keeps
    entities unexpanded and DTDs unloaded. A request also gets a Client fault, not a crash inside spyne, when
    its Envelope has no Body, an empty Body, more than one Body entry or a Fault as the request, and when it
    comes as application/soap+xml (SOAP 1.2). Schema validation costs what the request's size costs, however
    many errors the request holds (`_validate_bounded`).
    """

    def set_validator(self, validator: Any) -> None:
        super().set_validator(validator)
        if self.validator is self.SCHEMA_VALIDATION:
            self.validate_document = self._validate_bounded

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        transport = ctx.transport
        if isinstance(transport, HttpTransportContext):
            content_type = transport.get_request_content_type()
            if transport.get_request_method() != "POST" or content_type is None:
                # SOAP over HTTP is POST only (spyne's own rule, kept).
                transport.resp_code = HTTP_405
                raise RequestNotAllowed(
                    "You must issue a POST request with the Content-Type header properly set."
                )
            if content_type.split(";", 1)[0].strip().lower() == _SOAP12_MEDIA_TYPE:
                # A SOAP 1.2 client must not get a SOAP 1.1 answer as if the versions matched, even when it
                # wrapped its request in a 1.1 Envelope.
                raise Fault("Client.SoapError", "application/soap+xml is SOAP 1.2; this endpoint is SOAP 1.1")
        body = b"".join(ctx.in_string)
        # The HTTP charset, when sent, wins over the document's own declaration (RFC 7303); UTF-8 is what
        # both parsers assume anyway, so the common case passes no override.
        encoding = None if charset is None or charset.lower() in _UTF8 else charset
        try:
            reject_doctype(body, encoding)
        except DoctypeForbidden as exc:
            raise Fault("Client.DTDForbidden", str(exc)) from None
        except MalformedProlog as exc:
            raise Fault("Client.XMLSyntaxError", str(exc)) from None
        # A fresh parser per request: lxml parsers keep state and must not be shared between worker threads.
        try:
            root = etree.fromstring(body, etree.XMLParser(encoding=encoding, **_PARSER_OPTIONS))
        except (etree.XMLSyntaxError, LookupError) as exc:
            raise Fault("Client.XMLSyntaxError", str(exc)) from None
        ctx.in_document = (root, {})

    def decompose_incoming_envelope(self, ctx: Any, message: Any = Soap11.REQUEST) -> None:
        root = ctx.in_document[0]
        if root.tag == _ENVELOPE:
            body = root.find(_BODY)
            if body is None:
                raise Fault("Client.SoapError", "the SOAP Envelope has no Body")
            if len(body) == 0:
                raise Fault("Client.SoapError", "the SOAP Body is empty; it must hold one operation element")
            if body[0].tag == _FAULT:
                raise Fault("Client.SoapError", "a request Body cannot be a Fault")
            if len(body) > 1:
                # spyne would run the first entry and silently drop the rest (e.g. a DeleteBook after a
                # GetBook); WS-I Basic Profile allows one Body child in a document/literal request.
                raise Fault("Client.SoapError", f"the SOAP Body holds {len(body)} elements instead of one")
        super().decompose_incoming_envelope(ctx, message)

    def _validate_bounded(self, payload: Any) -> None:
        """Validate the operation element against the schema, at a cost bounded by the request's size.

        lxml keeps every validation error (about 1 KB each, and each one's node path costs time in proportion
        to the node's siblings): 500,000 bad attributes in 6 MB took 600 MB and 3 s, 50,000 bad items in 8 MB
        took 14 s of a worker thread. The contract has no attributes besides XSI ones, so any other is refused
        before validation, and a long list of items is validated in slices, stopping at the first invalid
        slice. Every operation is either at most 7 fields or one repeated item element, so the whole is valid
        exactly when every slice is.
        """
        for element in payload.iter():
            for name in element.attrib:
                if not name.startswith(_XSI):
                    raise SchemaValidationError(f"attribute {name[:100]!r} is not allowed on {element.tag}")
        if len(payload) <= _VALIDATION_SLICE:
            self._check_schema(payload)
            return
        for start in range(0, len(payload), _VALIDATION_SLICE):
            part = etree.Element(payload.tag, payload.attrib, nsmap=payload.nsmap)
            part.extend(copy.deepcopy(item) for item in payload[start : start + _VALIDATION_SLICE])
            self._check_schema(part, first_item=start)

    def _check_schema(self, element: Any, first_item: int = 0) -> None:
        if self.validation_schema.validate(element):
            return
        first = next(iter(self.validation_schema.error_log))
        if first.type_name in _FACET_ERRORS:
            # A value that breaks a rule of the contract (a length, range, pattern or enumeration facet) is
            # an invalid argument, as when the core finds it: the same fault on every path.
            reason = first.message.partition("]")[2].strip() or first.message
            where = _location(element, first.path, first_item)
            raise Fault(FAULT_CODES[ErrorKind.INVALID_ARGUMENT], f"{where}: {reason}")
        raise SchemaValidationError(str(self.validation_schema.error_log.last_error))


def _location(root: Any, path: str, first_item: int) -> str:
    """`title`, or `books #3: copies` for a field of a repeated item (numbered from 0, as the core does).

    libxml2 gives the node as a path of steps like `l:books[2]` from the validated element (the first step);
    the prefixes are the request's own, so the steps are matched by local name and position, not evaluated.
    """
    node = root
    for step in path.strip("/").split("/")[1:]:
        name, _, index = step.partition("[")
        local = name.rpartition(":")[2]
        same = [child for child in node if local == "*" or etree.QName(child).localname == local]
        position = int(index.rstrip("]")) - 1 if index else 0
        if not 0 <= position < len(same):
            return "value"
        node = same[position]
    parts: list[str] = []
    while node is not None and node is not root:
        parent = node.getparent()
        name = etree.QName(node).localname
        if parent is root:
            items = [child for child in root if child.tag == node.tag]
            if len(items) > 1 or first_item:
                name = f"{name} #{first_item + items.index(node)}"
        parts.append(name)
        node = parent
    return ": ".join(reversed(parts)) if node is root and parts else "value"


# ---- application -------------------------------------------------------------------------------------
def build_application(service: LibraryService | None = None) -> Any:
    """The spyne Application; `service` may be None when only the WSDL is wanted."""
    app = Application(
        [LibraryServiceBase],
        tns=TNS,
        name=SERVICE_NAME,
        in_protocol=HardenedSoap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    app.library_service = service
    return app


def build_wsgi_app(service: LibraryService | None, *, max_body_bytes: int) -> Any:
    """spyne's WSGI callable; call it as `app(environ, start_response, url)` with the endpoint URL."""
    # chunked stays at spyne's default: its unchunked path joins bytes with a str (broken on Python 3), and
    # the response is a list anyway, so spyne still sets Content-Length.
    return WsgiApplication(build_application(service), max_content_length=max_body_bytes)


def interface_document(wsgi_app: Any, url: str) -> bytes:
    """The WSDL for endpoint `url`, also installed as the one `wsgi_app` serves at ?wsdl from now on."""
    wsgi_app.doc.wsdl11.build_interface_document(url)
    document: bytes = wsgi_app.doc.wsdl11.get_interface_document()
    # spyne would otherwise build it on the first ?wsdl request, with that request's Host header as address.
    wsgi_app._wsdl = document
    return document


class _DropClientFaults(logging.Filter):
    """spyne logs every Client fault at ERROR; those are expected answers, not server problems."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.msg
        return not (isinstance(fault, Fault) and str(fault.faultcode).startswith("Client"))


_DROP_CLIENT_FAULTS: Final = _DropClientFaults()


def quiet_spyne_logging() -> None:
    """Keep per-request chatter off stderr (and off the request path): only real server errors are logged."""
    # Client faults are answers; Server faults raised by the service were already logged with their
    # traceback by `call_wrapper`, so spyne's second copy is noise.
    logging.getLogger("spyne.application").setLevel(logging.CRITICAL)
    # These dump whole request bodies on every malformed request.
    for name in ("spyne.protocol.xml.invalid", "spyne.protocol.soap.soap11.invalid"):
        logging.getLogger(name).disabled = True
    logging.getLogger("spyne.server.wsgi").addFilter(_DROP_CLIENT_FAULTS)  # a no-op when already added
