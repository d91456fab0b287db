"""Hostile input against the SOAP target: entities, DTDs, XInclude, size, encodings, envelope confusion.

Expected answers: a SOAP 1.1 Client fault (HTTP 500, text/xml, faultcode soap11env:Client.*), as SOAP 1.1
prescribes for faults. Two refusals happen before there is a SOAP message to fault on, and are plain HTTP:
a body or head over the server's limits (413, from the Content-Length or while reading a chunked body), and
a request that is not a POST with a Content-Type (405, still with a Client fault body). Processing
instructions are the one case whose correct answer is success: SOAP 1.2 tells receivers to ignore them and
the parser drops them, so nothing they point at is ever fetched.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from lxml import etree  # type: ignore[import-untyped]

from bench.load.sysmetrics import process_cpu_seconds
from tests.hostile._support import ANSWER_BOUND_S, Case, LiveTarget

pytestmark = pytest.mark.hostile("soap")

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TNS = "urn:library-bench:v1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
BIG = 50 * 1000 * 1000
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def envelope(body: str, *, ns: str = SOAP11, header: str = "") -> str:
    return f'<s:Envelope xmlns:s="{ns}" xmlns:l="{TNS}">{header}<s:Body>{body}</s:Body></s:Envelope>'


GET_BOOK = envelope("<l:GetBook><l:id>1</l:id></l:GetBook>")


@pytest.fixture(scope="module")
def http(soap_target: LiveTarget) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{soap_target.process.address}", timeout=ANSWER_BOUND_S) as client:
        yield client


def post(
    case: Case,
    http: httpx.Client,
    document: str | bytes,
    content_type: str = "text/xml; charset=utf-8",
    *,
    bound_s: float = ANSWER_BOUND_S,
) -> httpx.Response:
    content = document.encode() if isinstance(document, str) else document
    with case.answered_within(bound_s):
        response = http.post("/", content=content, headers={"Content-Type": content_type}, timeout=bound_s)
    case.record(response.content)
    return response


def client_fault(response: httpx.Response, code: str | None = None) -> str:
    """The faultcode of a SOAP 1.1 Client fault (checked: HTTP 500, text/xml, Client.*)."""
    assert response.status_code == 500, response.text[:300]
    assert response.headers["content-type"].startswith("text/xml")
    fault = etree.fromstring(response.content, _SAFE_PARSER).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None, response.text[:300]
    faultcode = fault.findtext("faultcode") or ""
    assert faultcode.startswith("soap11env:Client"), faultcode
    if code is not None:
        assert faultcode == f"soap11env:Client.{code}", faultcode
    return faultcode


def succeeded(response: httpx.Response) -> bool:
    return response.status_code == 200 and b"<tns:id>1</tns:id>" in response.content


# ---- entities and DTDs: refused before any tree is built ---------------------------------------------------
def _laughs(levels: int = 10) -> str:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, levels)
    )
    return f"<!DOCTYPE s:Envelope [{entities}]>" + envelope(
        f"<l:ListBooksByCategory><l:category>&l{levels - 1};</l:category></l:ListBooksByCategory>"
    )


def _dtd_cases(secret: str) -> dict[str, str]:
    name_from = "<l:AddUser><l:name>&x;</l:name><l:email>x@example.org</l:email></l:AddUser>"
    return {
        "billion-laughs": '<?xml version="1.0"?>' + _laughs(),
        "quadratic-blowup": f'<!DOCTYPE s:Envelope [<!ENTITY a "{"a" * 50_000}">]>'
        + envelope(
            f"<l:ListBooksByCategory><l:category>{'&a;' * 50_000}</l:category></l:ListBooksByCategory>"
        ),
        "xxe-secret-file": f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file://{secret}">]>'
        + envelope(name_from),
        "xxe-etc-passwd": '<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + envelope(name_from),
        "parameter-entity": f'<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>' + GET_BOOK,
        "parameter-entity-exfiltration": (
            f'<!DOCTYPE s:Envelope [<!ENTITY % f SYSTEM "file://{secret}">'
            "<!ENTITY % w \"<!ENTITY x '&#37;f;'>\"> %w;]>" + envelope(name_from)
        ),
        "external-dtd-file": f'<!DOCTYPE s:Envelope SYSTEM "file://{secret}">' + GET_BOOK,
        "dtd-alone": "<!DOCTYPE s:Envelope>" + GET_BOOK,
        "dtd-internal-subset-only": "<!DOCTYPE s:Envelope [<!ELEMENT s:Envelope ANY>]>" + GET_BOOK,
    }


DTD_CASES = list(_dtd_cases("/x"))


@pytest.mark.parametrize("name", DTD_CASES)
def test_dtd_is_refused(case: Case, http: httpx.Client, name: str) -> None:
    document = _dtd_cases(str(case.secrets.path))[name]
    response = post(case, http, document)
    client_fault(response, "DTDForbidden")
    assert len(response.content) < 2000  # nothing expanded into the answer


def test_dtd_in_a_utf16_document(case: Case, http: httpx.Client) -> None:
    document = (
        f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE s:Envelope SYSTEM "file://{case.secrets.path}">'
    )
    response = post(case, http, (document + GET_BOOK).encode("utf-16"), "text/xml; charset=utf-16")
    client_fault(response, "DTDForbidden")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A local TCP listener that records whoever connects (the server must never fetch anything)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    seen: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                seen.append(conn.recv(4096))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(2)
    server.close()


def test_external_dtd_over_the_network_is_never_fetched(
    case: Case, http: httpx.Client, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    document = f'<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:{port}/evil.dtd">' + GET_BOOK
    client_fault(post(case, http, document), "DTDForbidden")
    entity = f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>' + GET_BOOK
    client_fault(post(case, http, entity), "DTDForbidden")
    time.sleep(0.2)
    assert seen == []


def test_xinclude_is_not_processed(case: Case, http: httpx.Client, listener: tuple[int, list[bytes]]) -> None:
    port, seen = listener
    for href in (f"file://{case.secrets.path}", f"http://127.0.0.1:{port}/x"):
        include = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{href}" parse="text"/>'
        document = envelope(
            f"<l:AddUser><l:name>{include}</l:name><l:email>x@example.org</l:email></l:AddUser>"
        )
        client_fault(post(case, http, document), "SchemaValidationError")
    time.sleep(0.2)
    assert seen == []


@pytest.mark.parametrize("where", ["prolog", "body"])
def test_processing_instructions_are_ignored(
    case: Case, http: httpx.Client, listener: tuple[int, list[bytes]], where: str
) -> None:
    port, seen = listener
    pis = f'<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:{port}/x.xsl"?>'
    pis += f'<?php readfile("{case.secrets.path}"); ?>'
    if where == "prolog":
        document = '<?xml version="1.0"?>' + pis + GET_BOOK
    else:
        document = envelope(f"<l:GetBook>{pis}<l:id>1</l:id></l:GetBook>")
    assert succeeded(post(case, http, document))
    time.sleep(0.2)
    assert seen == []


# ---- size --------------------------------------------------------------------------------------------------
def test_fifty_megabyte_envelope(case: Case, http: httpx.Client) -> None:
    document = GET_BOOK.replace("<s:Body>", "<s:Body><!--" + "x" * BIG + "-->").encode()
    response = post(case, http, document, bound_s=15.0)
    assert response.status_code == 413  # cheroot, from the Content-Length, before reading the body


def test_fifty_megabyte_chunked_envelope(case: Case, http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"<s:Envelope>"
        for _ in range(BIG // 65536):
            yield b"x" * 65536

    with case.answered_within(15.0):
        response = http.post("/", content=chunks(), headers={"Content-Type": "text/xml"}, timeout=15.0)
    case.record(response.content)
    assert response.status_code == 413


def test_header_bomb(case: Case, http: httpx.Client) -> None:
    with case.answered_within():
        response = http.post(
            "/", content=GET_BOOK.encode(), headers={"Content-Type": "text/xml", "X-Bomb": "b" * 100_000}
        )
    case.record(response.content)
    assert response.status_code == 413  # cheroot's answer past max_request_header_size


def test_deeply_nested_elements(case: Case, http: httpx.Client) -> None:
    document = envelope("<l:GetBook>" + "<l:x>" * 100_000 + "</l:x>" * 100_000 + "</l:GetBook>")
    client_fault(post(case, http, document), "XMLSyntaxError")  # libxml2's depth limit (huge_tree=False)


def test_huge_attribute_value(case: Case, http: httpx.Client) -> None:
    document = envelope(f'<l:GetBook x="{"a" * 5_000_000}"><l:id>1</l:id></l:GetBook>')
    client_fault(post(case, http, document), "SchemaValidationError")


def test_hundred_thousand_attributes(case: Case, http: httpx.Client) -> None:
    # Before the fix in targets/soap/_spyne.py every bad attribute kept a 1 KB validation error (600 MB for
    # 6 MB of them).
    attributes = " ".join(f'a{i}="x"' for i in range(100_000))
    client_fault(
        post(case, http, envelope(f"<l:GetBook {attributes}><l:id>1</l:id></l:GetBook>")),
        "SchemaValidationError",
    )


def test_twenty_thousand_invalid_items(case: Case, http: httpx.Client) -> None:
    # Before the fix every invalid item was a validation error whose node path costs time in proportion to
    # its siblings: 20,000 of them cost about 2 s of server CPU, 50,000 of them 14 s. CPU time, not wall time,
    # is bounded: the hypervisor's steal does not count towards it.
    item = (
        "<l:books><l:isbn>9780306406157</l:isbn><l:title>t</l:title><l:author>a</l:author>"
        "<l:category>c</l:category><l:year>x</l:year><l:copies>1</l:copies></l:books>"
    )
    document = envelope("<l:BulkAddBooks>" + item * 20_000 + "</l:BulkAddBooks>")
    cpu_before = process_cpu_seconds(case.target.pid)
    client_fault(post(case, http, document), "SchemaValidationError")
    cpu = process_cpu_seconds(case.target.pid) - cpu_before
    assert cpu < 1.0, f"refusing 20,000 invalid items cost {cpu:.2f} s of server CPU"


def test_seven_megabyte_text_value(case: Case, http: httpx.Client) -> None:
    document = envelope(
        f"<l:ListBooksByCategory><l:category>{'c' * 7_000_000}</l:category></l:ListBooksByCategory>"
    )
    client_fault(post(case, http, document), "InvalidArgument")


# ---- envelope confusion ------------------------------------------------------------------------------------
ENVELOPE_CASES = {
    "wrong-operation-namespace": (
        envelope('<x:GetBook xmlns:x="urn:other"><x:id>1</x:id></x:GetBook>'),
        "SchemaValidationError",
    ),
    "unknown-operation": (envelope("<l:Frobnicate/>"), "SchemaValidationError"),
    "wrong-envelope-namespace": (
        envelope("<l:GetBook><l:id>1</l:id></l:GetBook>", ns="urn:evil"),
        "SoapError",
    ),
    "no-namespaces-at-all": ("<Envelope><Body><GetBook><id>1</id></GetBook></Body></Envelope>", "SoapError"),
    "soap12-envelope": (envelope("<l:GetBook><l:id>1</l:id></l:GetBook>", ns=SOAP12), "SoapError"),
    "missing-body": (f'<s:Envelope xmlns:s="{SOAP11}"><s:Header/></s:Envelope>', "SoapError"),
    "empty-body": (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body/></s:Envelope>', "SoapError"),
    "fault-as-request": (
        envelope("<s:Fault><faultcode>s:Server</faultcode><faultstring>x</faultstring></s:Fault>"),
        "SoapError",
    ),
    "schema-type-as-operation": (
        envelope("<l:User><l:id>1</l:id><l:name>n</l:name><l:email>e@example.org</l:email></l:User>"),
        "ResourceNotFound",
    ),
    "multi-ref-href": (envelope('<l:GetBook><l:id href="#x"/></l:GetBook>'), "SchemaValidationError"),
    "trailing-garbage": (GET_BOOK + "<junk/>", "XMLSyntaxError"),
    "not-xml": ("hello, SOAP", "XMLSyntaxError"),
    "empty-document": ("", "XMLSyntaxError"),
    "xml-illegal-character-reference": (
        envelope("<l:ListBooksByCategory><l:category>&#1;</l:category></l:ListBooksByCategory>"),
        "XMLSyntaxError",
    ),
    "int-overflow": (
        envelope("<l:GetBook><l:id>99999999999999999999999</l:id></l:GetBook>"),
        "SchemaValidationError",
    ),
    "nil-required": (
        envelope(f'<l:GetBook><l:id xmlns:xsi="{XSI}" xsi:nil="true"/></l:GetBook>'),
        "SchemaValidationError",
    ),
}


@pytest.mark.parametrize(("document", "code"), list(ENVELOPE_CASES.values()), ids=list(ENVELOPE_CASES))
def test_not_a_valid_request_envelope(case: Case, http: httpx.Client, document: str, code: str) -> None:
    client_fault(post(case, http, document), code)


def test_soap12_media_type_with_a_soap11_envelope(case: Case, http: httpx.Client) -> None:
    client_fault(post(case, http, GET_BOOK, "application/soap+xml; charset=utf-8"), "SoapError")


def test_soap12_media_type_and_envelope(case: Case, http: httpx.Client) -> None:
    document = envelope("<l:GetBook><l:id>1</l:id></l:GetBook>", ns=SOAP12)
    client_fault(
        post(case, http, document, 'application/soap+xml; charset=utf-8; action="GetBook"'), "SoapError"
    )


def test_duplicate_body_entries_run_nothing(case: Case, http: httpx.Client) -> None:
    # Before the fix spyne ran the GetBook and silently dropped the DeleteBook behind it.
    document = envelope("<l:GetBook><l:id>1</l:id></l:GetBook><l:DeleteBook><l:id>2</l:id></l:DeleteBook>")
    client_fault(post(case, http, document), "SoapError")
    assert case.target.client.get_book(2).id == 2


# ---- encodings ---------------------------------------------------------------------------------------------
ENCODING_CASES = {
    "invalid-utf8": GET_BOOK.replace("<l:id>1", "<l:id>\udcff1").encode("utf-8", "surrogateescape"),
    "declared-latin1-sent-utf16": ('<?xml version="1.0" encoding="ISO-8859-1"?>' + GET_BOOK).encode("utf-16"),
    "declared-utf16-sent-utf8": ('<?xml version="1.0" encoding="UTF-16"?>' + GET_BOOK).encode(),
    "unknown-encoding": ('<?xml version="1.0" encoding="x-no-such-charset"?>' + GET_BOOK).encode(),
    "shift-jis": ('<?xml version="1.0" encoding="shift_jis"?>' + GET_BOOK).encode(),
    "truncated-utf8-sequence": GET_BOOK.encode()[:-20] + b"\xe2\x82",
}


@pytest.mark.parametrize("document", list(ENCODING_CASES.values()), ids=list(ENCODING_CASES))
def test_bad_encoding(case: Case, http: httpx.Client, document: bytes) -> None:
    client_fault(post(case, http, document, "text/xml"), "XMLSyntaxError")


def test_bogus_http_charset(case: Case, http: httpx.Client) -> None:
    client_fault(post(case, http, GET_BOOK, "text/xml; charset=no-such-charset"), "XMLSyntaxError")


# ---- HTTP methods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_not_a_post(case: Case, http: httpx.Client, method: str) -> None:
    with case.answered_within():
        response = http.request(method, "/", content=GET_BOOK.encode(), headers={"Content-Type": "text/xml"})
    case.record(response.content)
    assert response.status_code == 405


def test_post_without_content_type(case: Case, http: httpx.Client) -> None:
    with case.answered_within():
        response = http.post("/", content=GET_BOOK.encode())
    case.record(response.content)
    assert response.status_code == 405
    assert b"Client.RequestNotAllowed" in response.content


# ---- documented known failures -----------------------------------------------------------------------------
@pytest.mark.xfail(
    strict=True,
    reason="cheroot gives a connection a worker thread while it reads the request head, with a 30 s socket "
    "timeout; LIMITS.soap_threads (4) slow-header clients stall the SOAP target for every other client "
    "until they time out. Needs a server that reads heads without a thread (or a buffering proxy).",
)
def test_slow_header_clients_do_not_delay_others(case: Case) -> None:
    slow = [socket.create_connection((case.target.host, case.target.port)) for _ in range(8)]
    try:
        for sock in slow:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: slow\r\n")
        time.sleep(0.3)
        with httpx.Client(base_url=f"http://{case.target.process.address}", timeout=2.0) as quick:
            response = quick.post("/", content=GET_BOOK.encode(), headers={"Content-Type": "text/xml"})
        assert succeeded(response)
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.xfail(
    strict=True,
    reason='spyne ignores SOAP headers, so a header marked mustUnderstand="1" is silently not processed; '
    "SOAP 1.1 (4.2.3) requires a MustUnderstand fault.",
)
def test_must_understand_header_is_refused(case: Case, http: httpx.Client) -> None:
    header = '<s:Header><x:Security xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header>'
    response = post(case, http, envelope("<l:GetBook><l:id>1</l:id></l:GetBook>", header=header))
    assert response.status_code == 500 and b"MustUnderstand" in response.content
