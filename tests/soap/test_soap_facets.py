"""The rules the contracts publish as patterns say exactly what the core accepts: the JSON Schema patterns
(targets.core.validation.PATTERNS) and the XSD facets of the WSDL (checked by libxml2, as the target does)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]

from targets.core import PATTERNS, InvalidArgument, NewUser
from targets.core.validation import normalize_isbn, validate_new_user, validate_text
from targets.soap._spyne import XSD_PATTERNS

# Characters XML 1.0 can carry (a SOAP request cannot hold the others at all), weighted towards the ones
# the rules are about: controls, Unicode spaces, @ and dots, hyphens.
_XML_CHARS = st.characters(blacklist_categories=["Cs"]).filter(
    lambda c: c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000
)
_EDGES = st.sampled_from(
    ["\t", "\n", "\r", "\x7f", "\x85", "\x9f", " ", "\xa0", "\u2003", "\u2028", "\u3000", "\ufeff", "@", ".",
     "-", "a", "0", "X", "é"]
)  # fmt: skip
TEXTS = st.text(st.one_of(_XML_CHARS, _EDGES), max_size=12)


def _schema(pattern: str) -> etree.XMLSchema:
    xsd = etree.Element(
        "{http://www.w3.org/2001/XMLSchema}schema", nsmap={"xs": "http://www.w3.org/2001/XMLSchema"}
    )
    simple = etree.SubElement(xsd, "{http://www.w3.org/2001/XMLSchema}simpleType", name="T")
    restriction = etree.SubElement(simple, "{http://www.w3.org/2001/XMLSchema}restriction", base="xs:string")
    etree.SubElement(restriction, "{http://www.w3.org/2001/XMLSchema}pattern", value=pattern)
    etree.SubElement(xsd, "{http://www.w3.org/2001/XMLSchema}element", name="v", type="T")
    return etree.XMLSchema(xsd)


XSD = {name: _schema(pattern) for name, pattern in XSD_PATTERNS.items()}


def _xsd_accepts(name: str, value: str) -> bool:
    element = etree.Element("v")
    element.text = value
    return bool(XSD[name].validate(element))


def _core_accepts(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except InvalidArgument:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_text_rule_is_the_same_in_the_core_the_json_schema_and_the_xsd(value: str) -> None:
    core = _core_accepts(validate_text, "title", value, 300)
    assert (re.fullmatch(PATTERNS["text"], value) is not None) == core, repr(value)
    assert _xsd_accepts("text", value) == core, repr(value)


@settings(max_examples=400, deadline=None)
@given(local=TEXTS, domain=TEXTS)
def test_email_rule_is_the_same_in_the_core_the_json_schema_and_the_xsd(local: str, domain: str) -> None:
    for value in (f"{local}@{domain}", f"{local}@{domain}.org", local):
        core = _core_accepts(validate_new_user, NewUser("Reader", value))
        assert (re.fullmatch(PATTERNS["email"], value) is not None) == core, repr(value)
        assert _xsd_accepts("email", value) == core, repr(value)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("0123456789Xx- a"), max_size=20))
def test_isbn_pattern_admits_exactly_the_shapes_the_core_reads(value: str) -> None:
    """The check digit is no pattern's business; the shape (10 or 13 characters once hyphens and spaces are
    dropped, X only last in an ISBN-10) is, and both patterns agree with the core about it."""
    shape = re.fullmatch(PATTERNS["isbn"], value) is not None
    assert _xsd_accepts("isbn", value) == shape, repr(value)
    try:
        normalize_isbn(value)
        assert shape, f"the core reads {value!r}, the pattern refuses it"
    except InvalidArgument as exc:
        assert shape == ("check digit" in exc.message), (value, exc.message)
