"""Refuse XML documents that carry a DTD, by scanning only their prolog, before any tree is built."""

from __future__ import annotations

import pyexpat
from typing import NoReturn

__all__ = ["DoctypeForbidden", "MalformedProlog", "reject_doctype"]


class DoctypeForbidden(Exception):
    """The document declares a DOCTYPE (internal or external DTD, entity declarations)."""


class MalformedProlog(Exception):
    """The document is not well-formed (or uses an encoding expat cannot read) before its root element."""


class _PrologDone(Exception):
    """Raised from the first start-tag handler: the prolog, the only place a DOCTYPE may appear, is over."""


def _doctype(*_: object) -> NoReturn:
    raise DoctypeForbidden("a DOCTYPE (DTD) is not allowed in a SOAP message")


def _root_started(*_: object) -> NoReturn:
    raise _PrologDone


def reject_doctype(body: bytes, encoding: str | None = None) -> None:
    """Return if `body` has no DOCTYPE; raise DoctypeForbidden or MalformedProlog otherwise.

    `encoding` (the HTTP charset, when one was sent) overrides what the document itself declares.

    XML allows a DOCTYPE only before the root element, so expat (which never loads external entities unless
    asked) parses just the prolog and stops at the first start tag: constant cost for any body size, and no
    entity is declared, expanded or fetched on the way. A document whose prolog expat cannot read is refused
    too, since a DOCTYPE could hide in it.
    """
    try:
        parser = pyexpat.ParserCreate(encoding)
    except (LookupError, ValueError) as exc:
        raise MalformedProlog(f"unsupported document encoding: {exc}") from None
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _doctype
    parser.StartElementHandler = _root_started
    try:
        parser.Parse(body, True)
    except _PrologDone:
        return
    except pyexpat.ExpatError as exc:
        raise MalformedProlog(f"not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:
        # an encoding expat cannot decode (unknown, or multi-byte beyond UTF-8/UTF-16)
        raise MalformedProlog(f"unsupported document encoding: {exc}") from None
    # Parsing ended without a start tag: not well-formed (expat normally reports "no element found" itself).
    raise MalformedProlog("not well-formed XML: no root element")
