"""wsdl/library.wsdl is what the code renders and the live target serves, and it matches the proto."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from lxml import etree  # type: ignore[import-untyped]

from targets.soap.wsdl import PLACEHOLDER_ADDRESS, WSDL_PATH, normalise_wsdl, render_wsdl
from tests.soap._support import REPO, SoapTarget, zeep_service

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XSD = "http://www.w3.org/2001/XMLSchema"
NS = {"wsdl": WSDL, "xs": XSD}


def committed() -> bytes:
    return WSDL_PATH.read_bytes()


def test_committed_wsdl_is_up_to_date() -> None:
    # Regenerating is a no-op (`bench codegen` would not change the file).
    assert committed() == render_wsdl()
    assert PLACEHOLDER_ADDRESS.encode() in committed()


def test_live_wsdl_equals_committed(http: httpx.Client, soap_target: SoapTarget) -> None:
    response = http.get("/?wsdl")
    assert response.status_code == 200
    assert (
        f'location="{soap_target.url}"'.encode() in response.content
    )  # the bound address, not a Host header
    assert normalise_wsdl(response.content) == normalise_wsdl(committed())


def test_zeep_loads_the_file_and_calls_the_live_target(soap_target: SoapTarget) -> None:
    service = zeep_service(soap_target.url)
    assert service.GetBook(id=1).id == 1


def test_normaliser_ignores_formatting_address_prefixes_and_declaration_order() -> None:
    root = etree.fromstring(committed(), etree.XMLParser(remove_blank_text=True))
    # Compact, no comment, another address.
    compact = etree.tostring(root).replace(PLACEHOLDER_ADDRESS.encode(), b"http://10.1.2.3:8080/soap")
    assert normalise_wsdl(compact) == normalise_wsdl(committed())
    # Other prefixes for the same namespaces (QName-valued attributes follow), top-level order reversed.
    renamed = (
        committed()
        .decode()
        .replace("xmlns:tns=", "xmlns:lib=")
        .replace('"tns:', '"lib:')
        .replace("xs:", "xsd:")
        .replace("xmlns:xs=", "xmlns:xsd=")
        .encode()
    )
    assert normalise_wsdl(renamed) == normalise_wsdl(committed())
    shuffled = etree.fromstring(committed())
    messages = shuffled.findall("wsdl:message", NS)
    for message in messages:
        shuffled.remove(message)
    for message in reversed(messages):
        shuffled.append(message)
    assert normalise_wsdl(etree.tostring(shuffled)) == normalise_wsdl(committed())


def _remove(xpath: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        (found,) = root.xpath(xpath, namespaces=NS)
        found.getparent().remove(found)

    return change


def _set(xpath: str, attribute: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        (found,) = root.xpath(xpath, namespaces=NS)
        found.set(attribute, value)

    return change


def _swap_first_two(xpath: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        first, second = root.xpath(xpath, namespaces=NS)[:2]
        first.addprevious(second)

    return change


MUTATIONS = {
    "operation-removed-from-portType": _remove("wsdl:portType/wsdl:operation[@name='GetBook']"),
    "operation-removed-from-binding": _remove("wsdl:binding/wsdl:operation[@name='DeleteBook']"),
    "message-removed": _remove("wsdl:message[@name='AddUser']"),
    "part-renamed": _set("wsdl:message[@name='GetLoan']/wsdl:part", "name", "Other"),
    "part-element-changed": _set("wsdl:message[@name='GetLoan']/wsdl:part", "element", "tns:GetBook"),
    "field-removed": _remove("wsdl:types/xs:schema/xs:complexType[@name='Book']//xs:element[@name='isbn']"),
    "field-type-changed": _set(
        "wsdl:types/xs:schema/xs:complexType[@name='User']//xs:element[@name='id']", "type", "xs:int"
    ),
    "field-order-changed": _swap_first_two("wsdl:types/xs:schema/xs:complexType[@name='Loan']//xs:element"),
    "field-made-optional": _set(
        "wsdl:types/xs:schema/xs:complexType[@name='GetBook']//xs:element", "minOccurs", "0"
    ),
    "enum-value-removed": _remove(
        "wsdl:types/xs:schema/xs:simpleType[@name='LoanStatus']//xs:enumeration[@value='LOST']"
    ),
    "type-namespace-changed": _set("wsdl:types/xs:schema", "targetNamespace", "urn:library-bench:v2"),
    "soap-action-changed": _set(
        "wsdl:binding/wsdl:operation[@name='GetBook']/*[local-name()='operation']", "soapAction", "Other"
    ),
}


@pytest.mark.parametrize("mutate", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_normaliser_detects_contract_changes(mutate: Callable[[etree._Element], None]) -> None:
    root = etree.fromstring(committed())
    mutate(root)
    assert normalise_wsdl(etree.tostring(root)) != normalise_wsdl(committed())


# ---- the WSDL carries the proto's operations and fields ----------------------------------------------
def _proto() -> tuple[list[str], dict[str, list[str]]]:
    text = (REPO / "proto" / "library.proto").read_text()
    text = re.sub(r"//[^\n]*", "", text)
    rpcs = re.findall(r"\brpc\s+(\w+)\s*\(", text)
    messages = {
        name: re.findall(r"(?:repeated\s+|optional\s+)?[\w.]+\s+(\w+)\s*=\s*\d+\s*;", body)
        for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{([^}]*)\}", text)
    }
    return rpcs, messages


def _sequence(root: etree._Element, type_name: str) -> list[str]:
    return [
        str(name)
        for name in root.xpath(
            f"wsdl:types/xs:schema/xs:complexType[@name='{type_name}']/xs:sequence/xs:element/@name",
            namespaces=NS,
        )
    ]


def test_operations_and_fields_match_the_proto() -> None:
    rpcs, messages = _proto()
    root = etree.fromstring(committed())
    operations = [str(name) for name in root.xpath("wsdl:portType/wsdl:operation/@name", namespaces=NS)]
    assert sorted(operations) == sorted(rpcs)
    assert len(rpcs) == 14  # the 12 public operations and the 2 internal ones (ReserveCopy, ReleaseCopy)
    for record in ("Book", "User", "Loan"):
        assert _sequence(root, record) == messages[record], record
    # Request parameters: the fields of each <Op>Request message, in order.
    for rpc in rpcs:
        request = messages.get(f"{rpc}Request")
        if request is not None:
            assert _sequence(root, rpc) == request, rpc
    assert _sequence(root, "NewBook") == messages["AddBookRequest"]  # BulkAddBooks streams AddBookRequest
    assert _sequence(root, "BulkAddBooks") == ["books"]
    assert _sequence(root, "LoanStatusUpdate") == messages["LoanStatusUpdate"]
    assert _sequence(root, "UpdateLoanStatus") == ["updates"]
    assert _sequence(root, "BulkAddBooksResult") == messages["BulkAddBooksResponse"]


def test_wsdl_path_is_in_the_repository() -> None:
    assert WSDL_PATH == REPO / "wsdl" / "library.wsdl"
    assert isinstance(WSDL_PATH, Path)
