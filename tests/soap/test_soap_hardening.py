"""Hostile and malformed requests: each gets a SOAP Client fault (or 413), and the server keeps answering."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from targets.soap._xmlguard import DoctypeForbidden, MalformedProlog, reject_doctype
from tests.soap._support import SOAP_ENV, SoapTarget, envelope, fault_of, post

GET_BOOK = envelope("<l:GetBook><l:id>1</l:id></l:GetBook>")
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
PASSWD = Path("/etc/passwd")

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n"
    + envelope("<l:ListBooksByCategory><l:category>&lol9;</l:category></l:ListBooksByCategory>")
)
XXE = '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' + envelope(
    "<l:AddUser><l:name>&xxe;</l:name><l:email>xxe@example.org</l:email></l:AddUser>"
)
XXE_PARAMETER = (
    '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n'
    + envelope("<l:GetBook><l:id>1</l:id></l:GetBook>")
)
EXTERNAL_DTD = '<!DOCTYPE s:Envelope SYSTEM "file:///etc/passwd">' + GET_BOOK
NETWORK_DTD = '<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">' + GET_BOOK
PLAIN_DTD = '<?xml version="1.0"?><!DOCTYPE s:Envelope>' + GET_BOOK


@pytest.fixture
def checked(http: httpx.Client, soap_target: SoapTarget) -> Iterator[httpx.Client]:
    """After each hostile request, the same server must still answer a normal request (and be alive)."""
    yield http
    response = post(http, GET_BOOK)
    assert response.status_code == 200, response.text[:300]
    assert b"<tns:id>1</tns:id>" in response.content
    assert soap_target.process.poll() is None


CASES = {
    # name: (document, expected faultcode)
    "billion-laughs": (BILLION_LAUGHS, "soap11env:Client.DTDForbidden"),
    "xxe-file": (XXE, "soap11env:Client.DTDForbidden"),
    "xxe-parameter-entity": (XXE_PARAMETER, "soap11env:Client.DTDForbidden"),
    "external-dtd-file": (EXTERNAL_DTD, "soap11env:Client.DTDForbidden"),
    "external-dtd-network": (NETWORK_DTD, "soap11env:Client.DTDForbidden"),
    "plain-dtd": (PLAIN_DTD, "soap11env:Client.DTDForbidden"),
    "malformed": (envelope("<l:GetBook><l:id>1</l:id></l:GetBok>"), "soap11env:Client.XMLSyntaxError"),
    "not-xml": ("hello", "soap11env:Client.XMLSyntaxError"),
    "empty-body": ("", "soap11env:Client.XMLSyntaxError"),
    "invalid-xml-char": (
        envelope("<l:ListBooksByCategory><l:category>&#1;</l:category></l:ListBooksByCategory>"),
        "soap11env:Client.XMLSyntaxError",
    ),
    "unsupported-encoding": (
        '<?xml version="1.0" encoding="shift_jis"?>' + GET_BOOK,
        "soap11env:Client.XMLSyntaxError",
    ),
    "deep-nesting": (
        envelope("<l:GetBook>" + "<l:x>" * 100_000 + "</l:x>" * 100_000 + "</l:GetBook>"),
        "soap11env:Client.XMLSyntaxError",  # libxml2's depth limit, kept by huge_tree=False
    ),
    "wrong-operation-namespace": (
        envelope('<x:GetBook xmlns:x="urn:other"><x:id>1</x:id></x:GetBook>'),
        "soap11env:Client.SchemaValidationError",
    ),
    "unknown-operation": (envelope("<l:Frobnicate/>"), "soap11env:Client.SchemaValidationError"),
    "soap-1.2-envelope": (
        envelope("<l:GetBook><l:id>1</l:id></l:GetBook>", envelope_ns=SOAP12_ENV),
        "soap11env:Client.SoapError",
    ),
    "no-envelope": (
        '<l:GetBook xmlns:l="urn:library-bench:v1"><l:id>1</l:id></l:GetBook>',
        "soap11env:Client.SoapError",
    ),
    "missing-body": (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Header/></s:Envelope>',
        "soap11env:Client.SoapError",
    ),
    "empty-body-element": (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body/></s:Envelope>',
        "soap11env:Client.SoapError",
    ),
    "fault-as-request": (
        envelope("<s:Fault><faultcode>s:Server</faultcode><faultstring>boom</faultstring></s:Fault>"),
        "soap11env:Client.SoapError",
    ),
    "schema-element-not-an-operation": (
        envelope("<l:User><l:id>1</l:id><l:name>n</l:name><l:email>e@example.org</l:email></l:User>"),
        "soap11env:Client.ResourceNotFound",
    ),
    "wrong-type": (
        envelope("<l:GetBook><l:id>abc</l:id></l:GetBook>"),
        "soap11env:Client.SchemaValidationError",
    ),
    "int-overflow": (
        envelope(
            "<l:AddBook><l:isbn>9780306406157</l:isbn><l:title>t</l:title><l:author>a</l:author>"
            "<l:category>c</l:category><l:year>99999999999</l:year><l:copies>1</l:copies></l:AddBook>"
        ),
        "soap11env:Client.SchemaValidationError",
    ),
    "missing-parameter": (envelope("<l:GetBook/>"), "soap11env:Client.SchemaValidationError"),
    "nil-parameter": (
        envelope(
            '<l:GetBook><l:id xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' xsi:nil="true"/></l:GetBook>'
        ),
        "soap11env:Client.SchemaValidationError",
    ),
    "unexpected-element": (
        envelope("<l:GetBook><l:id>1</l:id><l:x>2</l:x></l:GetBook>"),
        "soap11env:Client.SchemaValidationError",
    ),
    "missing-nested-field": (
        envelope("<l:BulkAddBooks><l:books><l:isbn>9780306406157</l:isbn></l:books></l:BulkAddBooks>"),
        "soap11env:Client.SchemaValidationError",
    ),
    # A broken rule is InvalidArgument whether an XSD facet (maxLength, minInclusive) catches it ...
    "over-long-string": (
        envelope(
            f"<l:AddUser><l:name>{'n' * 100_000}</l:name><l:email>long@example.org</l:email></l:AddUser>"
        ),
        "soap11env:Client.InvalidArgument",
    ),
    "negative-id": (envelope("<l:GetBook><l:id>-5</l:id></l:GetBook>"), "soap11env:Client.InvalidArgument"),
    # ... or the core, for the one rule no facet can state: the ISBN check digit.
    "isbn-check-digit": (
        envelope(
            "<l:AddBook><l:isbn>9780306406158</l:isbn><l:title>t</l:title><l:author>a</l:author>"
            "<l:category>c</l:category><l:year>2000</l:year><l:copies>1</l:copies></l:AddBook>"
        ),
        "soap11env:Client.InvalidArgument",
    ),
}


@pytest.mark.parametrize(("document", "code"), list(CASES.values()), ids=list(CASES))
def test_bad_request_is_a_client_fault(checked: httpx.Client, document: str, code: str) -> None:
    started = time.monotonic()
    response = post(checked, document)
    assert time.monotonic() - started < 2.0  # nothing expanded, fetched or waited for
    # SOAP 1.1 over HTTP: every fault, Client or Server, travels with status 500.
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    assert fault_of(response)[0] == code


def test_xxe_never_leaks_the_file(checked: httpx.Client) -> None:
    secret_lines = [line for line in PASSWD.read_text().splitlines() if line.strip()][:3]
    for document in (XXE, XXE_PARAMETER, EXTERNAL_DTD):
        response = post(checked, document)
        assert all(line not in response.text for line in secret_lines)
        assert "root:" not in response.text


def test_billion_laughs_is_not_expanded(checked: httpx.Client) -> None:
    response = post(checked, BILLION_LAUGHS)
    assert len(response.content) < 2000
    assert "lollol" not in response.text


def test_utf16_document_is_accepted(checked: httpx.Client) -> None:
    response = post(checked, GET_BOOK.encode("utf-16"), **{"Content-Type": "text/xml; charset=utf-16"})
    assert response.status_code == 200


def test_not_a_post_is_refused(checked: httpx.Client) -> None:
    assert checked.get("/").status_code == 405
    response = checked.post("/", content=GET_BOOK.encode())  # no Content-Type
    assert response.status_code == 405
    assert fault_of(response)[0] == "soap11env:Client.RequestNotAllowed"


def test_ten_megabyte_envelope_is_refused_before_it_is_read(
    checked: httpx.Client, soap_target: SoapTarget
) -> None:
    # Announce 10 MB, send only the first bytes: cheroot answers 413 from the Content-Length alone.
    with socket.create_connection(("127.0.0.1", soap_target.port), timeout=5) as sock:
        head = (
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"<s:Envelope>")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")
    # The whole 10 MB, sent for real, is refused the same way.
    response = checked.post(
        "/", content=b"<s:Envelope>" + b"x" * (10 * 1024 * 1024), headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 413


def test_ten_megabyte_chunked_envelope_is_refused(checked: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"<s:Envelope>"
        for _ in range(160):
            yield b"x" * 65536

    response = checked.post("/", content=chunks(), headers={"Content-Type": "text/xml"})
    assert response.status_code == 413


def test_small_chunked_request_is_served(checked: httpx.Client) -> None:
    response = checked.post(
        "/",
        content=iter([GET_BOOK[:40].encode(), GET_BOOK[40:].encode()]),
        headers={"Content-Type": "text/xml"},
    )
    assert response.status_code == 200
    assert b"<tns:id>1</tns:id>" in response.content


def test_oversized_headers_are_refused(checked: httpx.Client) -> None:
    response = checked.post(
        "/", content=GET_BOOK.encode(), headers={"Content-Type": "text/xml", "X-Padding": "p" * (80 * 1024)}
    )
    assert response.status_code == 413  # cheroot's answer past max_request_header_size


# ---- the prolog guard on its own (pure function) -----------------------------------------------------
@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE, XXE_PARAMETER, EXTERNAL_DTD, NETWORK_DTD, PLAIN_DTD],
    ids=lambda d: d[:30],
)
def test_reject_doctype_refuses_every_dtd(document: str) -> None:
    with pytest.raises(DoctypeForbidden):
        reject_doctype(document.encode())
    with pytest.raises(DoctypeForbidden):
        reject_doctype(document.encode("utf-16"))


@pytest.mark.parametrize("document", [b"", b"hello", b'<?xml version="1.0" encoding="ebcdic-xx"?><a/>'])
def test_reject_doctype_refuses_unreadable_prologs(document: bytes) -> None:
    with pytest.raises(MalformedProlog):
        reject_doctype(document)


def test_reject_doctype_accepts_soap_and_reads_only_the_prolog() -> None:
    reject_doctype(GET_BOOK.encode())
    reject_doctype(b'<?xml version="1.0"?><!-- a comment --><?pi x?>' + GET_BOOK.encode())
    # Not well-formed after the root start tag: the lxml parse reports that, the guard does not look there.
    reject_doctype(b"<a><b></a>")


def test_http_charset_wins_over_the_documents_default(checked: httpx.Client) -> None:
    # Latin-1 bytes without an XML declaration: only the Content-Type charset says how to read them.
    document = envelope("<l:ListBooksByCategory><l:category>caf\u00e9</l:category></l:ListBooksByCategory>")
    response = post(checked, document.encode("latin-1"), **{"Content-Type": "text/xml; charset=iso-8859-1"})
    assert response.status_code == 200
    bogus = post(checked, GET_BOOK, **{"Content-Type": "text/xml; charset=no-such-charset"})
    assert fault_of(bogus)[0] == "soap11env:Client.XMLSyntaxError"
