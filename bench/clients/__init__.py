"""One `LibraryClient` interface, implemented per protocol (plus lean variants and an in-process one).

Client kinds: `grpc`, `rest`, `rest-lean`, `soap`, `soap-lean`. Lean variants send pre-built JSON/envelopes
over a plain HTTP/1.1 connection, so reports can separate the protocol stack's cost from the client library's.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.clients._base import ClientError, LibraryClient, RemoteError, TransportError

__all__ = [
    "CLIENT_KINDS",
    "DEFAULT_CLIENT",
    "ClientError",
    "LibraryClient",
    "RemoteError",
    "TransportError",
    "make_client",
    "protocol_of",
]

# kind -> (module, class, protocol served by the target it talks to)
CLIENT_KINDS: dict[str, tuple[str, str, str]] = {
    "grpc": ("bench.clients.grpc_client", "GrpcClient", "grpc"),
    "rest": ("bench.clients.rest_client", "RestClient", "rest"),
    "rest-lean": ("bench.clients.rest_client", "LeanRestClient", "rest"),
    "soap": ("bench.clients.soap_client", "SoapClient", "soap"),
    "soap-lean": ("bench.clients.soap_client", "LeanSoapClient", "soap"),
}
# The client a protocol is measured with unless asked otherwise: the lean ones for REST and SOAP, so a
# protocol's figures are not those of httpx or zeep (the generated stubs are gRPC's lean client).
DEFAULT_CLIENT: dict[str, str] = {"grpc": "grpc", "rest": "rest-lean", "soap": "soap-lean"}


def protocol_of(kind: str) -> str:
    try:
        return CLIENT_KINDS[kind][2]
    except KeyError:
        raise ValueError(f"unknown client kind {kind!r}; choose one of {', '.join(CLIENT_KINDS)}") from None


def make_client(kind: str, address: str, **options: Any) -> LibraryClient:
    """A client of `kind` for the target at `address` (host:port); options: timeout_s, hook, byte_counter."""
    protocol_of(kind)
    module_name, class_name, _ = CLIENT_KINDS[kind]
    cls = getattr(importlib.import_module(module_name), class_name)
    client: LibraryClient = cls(address, client_name=kind, **options)
    return client
