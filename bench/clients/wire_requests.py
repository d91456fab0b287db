"""The exact request each client kind sends for a call, captured as bytes instead of being sent.

Native load tools (wrk, h2load, gload) send what the Python clients send: a capturing client goes through
the same encoding code as the real one (routes and JSON of `rest_client._Operations`, the envelopes of
`LeanSoapClient`, the protobuf messages of `GrpcClient`) and stops where the real one would write to the
socket. So a native request is built from the contracts by the one encoder the conformance suite checks.

    capture("grpc", lambda client: client.get_book(1))  # WireRequest(method="/library.v1.Library/GetBook", …)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from bench.clients import grpc_client, rest_client, soap_client
from bench.clients._base import LibraryClient
from bench.clients.measure import Meter
from targets.core import OPERATIONS, CallPattern

__all__ = ["GRPC_SERVICE", "WireRequest", "capture", "captured", "capturing_client"]

GRPC_SERVICE = "library.v1.Library"


@dataclass(frozen=True)
class WireRequest:
    """One request as it goes on the wire (HTTP/1.1 method + path + headers + body, or gRPC messages)."""

    protocol: str  # grpc | rest | soap
    operation: str
    method: str  # HTTP method, or the gRPC method path (/library.v1.Library/GetBook)
    path: str = ""  # HTTP path and query ("" for gRPC)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # HTTP body
    messages: tuple[bytes, ...] = ()  # gRPC: each message serialized (the 5-byte framing is the tool's)

    @property
    def client_streams(self) -> bool:
        return OPERATIONS[self.operation] in (CallPattern.CLIENT_STREAM, CallPattern.BIDI_STREAM)

    @property
    def server_streams(self) -> bool:
        return OPERATIONS[self.operation] in (CallPattern.SERVER_STREAM, CallPattern.BIDI_STREAM)

    @property
    def ndjson_out(self) -> bool:
        """REST answers with NDJSON lines (one per streamed item)."""
        return self.protocol == "rest" and self.server_streams

    def grpc_frames(self) -> bytes:
        """The gRPC request body: each message behind its 5-byte length prefix (not compressed)."""
        return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in self.messages)


class _Captured(Exception):
    def __init__(self, request: WireRequest) -> None:
        super().__init__(request.operation)
        self.request = request


# ---- REST: the routes and bodies of rest_client._Operations -----------------------------------------------
class _RestCapture:
    def _raise(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any,
        stream: bool,
        extra: Mapping[str, str] | None = None,
    ) -> NoReturn:
        content, headers = rest_client.encode_body(body)
        if stream and body is None:
            headers = {"Accept": "application/x-ndjson"}
        sent = {**headers, **(extra or {})}
        raise _Captured(WireRequest("rest", operation, method, path, sent, content or b""))

    def json(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        self._raise(operation, method, path, body, stream=False, extra=headers)

    def lines(self, operation: str, method: str, path: str, body: bytes | None = None) -> list[Any]:
        self._raise(operation, method, path, body, stream=True)


class _RestClient(rest_client.RestOperations):
    protocol = "rest"

    def __init__(self) -> None:
        self._t = _RestCapture()

    def close(self) -> None:
        pass


# ---- SOAP: the envelopes of LeanSoapClient ------------------------------------------------------------
class _SoapClient(soap_client.LeanSoapClient):
    def __init__(self) -> None:  # no connection: nothing is sent
        pass

    def _post(self, operation: str, inner: str, count_items: bool = False) -> list[Any]:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
        body = soap_client.envelope(operation, inner)
        raise _Captured(WireRequest("soap", operation, "POST", "/", headers, body))


# ---- gRPC: the messages GrpcClient gives its stub -----------------------------------------------------
class _StubMethod:
    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __call__(self, request: Any, timeout: float | None = None) -> NoReturn:
        # A message (unary, server stream), or an iterable of messages (client and bidirectional streams).
        messages = (request,) if hasattr(request, "SerializeToString") else tuple(request)
        raise _Captured(
            WireRequest(
                "grpc",
                self.operation,
                f"/{GRPC_SERVICE}/{self.operation}",
                messages=tuple(m.SerializeToString() for m in messages),
            )
        )


class _Stub:
    def __getattr__(self, operation: str) -> _StubMethod:
        if operation not in OPERATIONS:
            raise AttributeError(operation)
        return _StubMethod(operation)


class _GrpcClient(grpc_client.GrpcClient):
    def __init__(self) -> None:  # no channel: nothing is sent
        self.timeout_s = 0.0
        self._stub = _Stub()
        self.meter = Meter("grpc", "capture")


_CAPTURE: dict[str, Callable[[], LibraryClient]] = {
    "grpc": _GrpcClient,
    "rest": _RestClient,
    "soap": _SoapClient,
}


def capturing_client(protocol: str) -> LibraryClient:
    """A client of `protocol` whose every call raises instead of sending (use with `captured`)."""
    try:
        return _CAPTURE[protocol]()
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(_CAPTURE)}") from None


def captured(call: Callable[[], object]) -> WireRequest:
    """The first request `call` makes through a capturing client; ValueError when it sends nothing."""
    try:
        call()
    except _Captured as caught:
        return caught.request
    raise ValueError("the call sent no request")


def capture(protocol: str, call: Callable[[LibraryClient], object]) -> WireRequest:
    """The request the lean client of `protocol` would send for `call`."""
    client = capturing_client(protocol)
    return captured(lambda: call(client))
