"""The SOAP contract: render wsdl/library.wsdl and compare WSDLs structurally (`bench codegen` writes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from lxml import etree  # type: ignore[import-untyped]  # no stubs in the dev environment

__all__ = [
    "BINDING_NAME",
    "PLACEHOLDER_ADDRESS",
    "WSDL_PATH",
    "normalise_wsdl",
    "render_wsdl",
]

# The committed file lives at the repository root, next to proto/ (a checkout, not an installed wheel).
WSDL_PATH: Final = Path(__file__).resolve().parents[2] / "wsdl" / "library.wsdl"
# The committed WSDL names no real endpoint; port 0 makes a client that forgets to override it fail at once.
PLACEHOLDER_ADDRESS: Final = "http://127.0.0.1:0/"
# What `zeep.Client(WSDL_PATH).create_service(BINDING_NAME, address)` needs.
BINDING_NAME: Final = "{urn:library-bench:v1}LibraryService"

_HEADER: Final = (
    " The SOAP 1.1 contract of the library benchmark (same operations and fields as proto/library.proto).\n"
    "     Generated from targets/soap by `bench codegen`; do not edit.\n"
    "     The endpoint address is a placeholder: clients override it with the address the target prints. "
)

_WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
_XSD: Final = "http://www.w3.org/2001/XMLSchema"
_SOAP_ADDRESS: Final = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
# Attributes whose value is a QName: compared by namespace URI, not by the prefix that happens to be used.
_QNAME_ATTRIBUTES: Final = frozenset({"type", "element", "message", "binding", "base", "ref", "itemType"})
# Containers whose children are top-level declarations: their order carries no meaning (unlike xs:sequence).
_UNORDERED: Final = frozenset(
    {f"{{{_WSDL}}}definitions", f"{{{_WSDL}}}portType", f"{{{_WSDL}}}binding", f"{{{_XSD}}}schema"}
)


def render_wsdl(address: str = PLACEHOLDER_ADDRESS) -> bytes:
    """The WSDL the live service serves, for `address`, pretty-printed with a header comment (file form)."""
    # Imported here: the normaliser and the CLI's --help do not need spyne.
    from targets.soap._spyne import build_wsgi_app, interface_document

    served = interface_document(build_wsgi_app(None, max_body_bytes=0), address)
    root = etree.fromstring(served, etree.XMLParser(remove_blank_text=True, resolve_entities=False))
    for schema in root.iter(f"{{{_XSD}}}schema"):
        _sort_declarations(schema)
    root.addprevious(etree.Comment(_HEADER))
    # Every non-ASCII character as a character reference, and DEL too (it only occurs in attribute values):
    # the pattern facets hold control characters and Unicode spaces, which would be invisible in the file.
    # ASCII is valid UTF-8, so the declaration holds.
    body = etree.tostring(root.getroottree(), pretty_print=True, encoding="ASCII", xml_declaration=False)
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + bytes(body).replace(b"\x7f", b"&#127;")


def _sort_declarations(schema: etree._Element) -> None:
    """Top-level schema declarations in a stable order (spyne emits named simple types in set order, which
    changes from one process to the next); imports stay first, as XML Schema requires."""
    _FIRST = (f"{{{_XSD}}}import", f"{{{_XSD}}}include")
    children = sorted(schema, key=lambda e: (e.tag not in _FIRST, str(e.tag), e.get("name", "")))
    schema[:] = children


def normalise_wsdl(document: bytes) -> str:
    """A canonical text form of a WSDL: equal for equivalent documents, different for any contract change.

    Ignored: whitespace, comments, attribute order, namespace prefixes, the order of top-level declarations,
    and the soap:address location. Everything else (operations, messages, parts, types, element order inside
    a sequence, occurrence constraints, namespaces) is kept.
    """
    parser = etree.XMLParser(
        remove_blank_text=True, remove_comments=True, resolve_entities=False, no_network=True
    )
    root = etree.fromstring(document, parser)
    lines: list[str] = []
    _emit(_canonical(root), 0, lines)
    return "\n".join(lines) + "\n"


_Node = tuple[str, tuple[tuple[str, str], ...], str, tuple["_Node", ...]]


def _canonical(element: etree._Element) -> _Node:
    attributes: list[tuple[str, str]] = []
    for key, value in element.attrib.items():
        name = str(key)
        text = str(value)
        if element.tag == _SOAP_ADDRESS and name == "location":
            text = PLACEHOLDER_ADDRESS
        elif name in _QNAME_ATTRIBUTES:
            prefix, _, local = text.rpartition(":")
            text = f"{{{element.nsmap.get(prefix or None, '')}}}{local}"
        attributes.append((name, text))
    children = [_canonical(child) for child in element if isinstance(child.tag, str)]
    if element.tag in _UNORDERED:
        children.sort()
    return (str(element.tag), tuple(sorted(attributes)), (element.text or "").strip(), tuple(children))


def _emit(node: _Node, depth: int, lines: list[str]) -> None:
    tag, attributes, text, children = node
    shown = " ".join(f"{k}={v!r}" for k, v in attributes)
    lines.append(f"{'  ' * depth}{tag} {shown}".rstrip() + (f" text={text!r}" if text else ""))
    for child in children:
        _emit(child, depth + 1, lines)
