"""A list of Books in the three wire formats: encoded as the targets send it, decoded as the clients read it.

- protobuf: gRPC length-prefixed messages (one `Book` per stream message), from/to domain records;
- json: NDJSON as the REST target writes it (`targets.rest.wire.dumps_lines`), read line by line with orjson;
- soap-xml: the envelope spyne renders (stock Soap11, the target's message shapes), read with lxml the way
  the lean SOAP client does. spyne renders through a method context (dispatch + serialize, no HTTP), so its
  encode figure carries a fixed per-call part that the other two do not have.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from lxml import etree  # type: ignore[import-untyped]

from targets.core import Book
from targets.grpc.wire import book_from_pb, book_to_pb, pb
from targets.rest.wire import book_from_json, dumps_lines

__all__ = ["CODECS", "FORMATS", "Codec"]

FORMATS = ("protobuf", "json", "soap-xml")
_PREFIX = struct.Struct(">BI")  # gRPC message prefix: compressed flag, big-endian length
_SOAP_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"
# The lean client's parser settings: no entities, no network, no DTD.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_PAYLOAD = "payload"  # the category name the SOAP renderer answers with the books to encode


def protobuf_encode(books: Sequence[Book]) -> bytes:
    parts = []
    for book in books:
        message = book_to_pb(book).SerializeToString()
        parts.append(_PREFIX.pack(0, len(message)))
        parts.append(message)
    return b"".join(parts)


def protobuf_decode(data: bytes) -> list[Book]:
    books = []
    view = memoryview(data)
    position = 0
    while position < len(data):
        _, length = _PREFIX.unpack_from(data, position)
        position += _PREFIX.size
        books.append(book_from_pb(pb.Book.FromString(view[position : position + length])))  # type: ignore[arg-type]
        position += length
    return books


def json_encode(books: Sequence[Book]) -> bytes:
    return dumps_lines(books)


def json_decode(data: bytes) -> list[Book]:
    return [book_from_json(orjson.loads(line)) for line in data.splitlines() if line]


@functools.cache
def _spyne_renderer() -> tuple[Any, dict[str, list[Book]]]:
    from spyne.server.null import NullServer

    from bench.micro.bare import bare_soap_application

    # NullServer logs a banner per call at WARNING; that is not part of rendering an envelope.
    logging.getLogger("spyne.server.null").setLevel(logging.CRITICAL)
    payload: dict[str, list[Book]] = {_PAYLOAD: []}
    return NullServer(bare_soap_application(payload), ostr=True), payload


def soap_encode(books: Sequence[Book]) -> bytes:
    server, payload = _spyne_renderer()
    payload[_PAYLOAD] = list(books)
    return b"".join(server.service.ListBooksByCategory(_PAYLOAD))


def _int(record: dict[str, str], name: str) -> int:
    return int(record[name])


def soap_decode(data: bytes) -> list[Book]:
    root = etree.fromstring(data, _PARSER)
    body = root.find(_SOAP_BODY)
    if body is None or len(body) == 0:
        raise ValueError("no SOAP Body")
    books = []
    for element in body[0]:
        record = {etree.QName(child).localname: child.text or "" for child in element}
        books.append(
            Book(
                id=_int(record, "id"),
                isbn=record["isbn"],
                title=record["title"],
                author=record["author"],
                category=record["category"],
                year=_int(record, "year"),
                total_copies=_int(record, "total_copies"),
                available_copies=_int(record, "available_copies"),
            )
        )
    return books


class Codec:
    """encode: domain records -> bytes on the wire; decode: bytes -> domain records."""

    def __init__(
        self,
        name: str,
        encode: Callable[[Sequence[Book]], bytes],
        decode: Callable[[bytes], list[Book]],
        how: str,
    ) -> None:
        self.name = name
        self.encode = encode
        self.decode = decode
        self.how = how


CODECS: dict[str, Codec] = {
    "protobuf": Codec(
        "protobuf", protobuf_encode, protobuf_decode, "protobuf messages with gRPC length prefixes"
    ),
    "json": Codec("json", json_encode, json_decode, "orjson NDJSON (the REST target's writer)"),
    "soap-xml": Codec("soap-xml", soap_encode, soap_decode, "spyne Soap11 render / lxml parse (lean client)"),
}
