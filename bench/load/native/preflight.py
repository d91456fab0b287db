"""Before a native tool sends thousands of prepared requests: send one of each, the way the tool would, and
check that the target accepts it (HTTP 2xx with a body, or gRPC status OK).

A prepared request the target refuses would otherwise show up only as a counter mismatch or as fast
"successes" (h2load counts HTTP 200 with a gRPC error status as done). The requests were captured from the
Python clients' own encoders, so a refusal here means the capture and the client disagree: the cell fails
with the operation, the answer, and the request.
"""

from __future__ import annotations

import http.client

from bench.clients.wire_requests import WireRequest

__all__ = ["PreflightError", "preflight"]


class PreflightError(RuntimeError):
    """A prepared request was refused; the message names the operation, the answer and the request."""


def _http(address: str, request: WireRequest, timeout_s: float) -> str | None:
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.request(request.method, request.path, body=request.body or None, headers=request.headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if 200 <= response.status < 300 and body:
        return None
    return f"HTTP {response.status}: {body[:300]!r}"


def _grpc(address: str, request: WireRequest, timeout_s: float) -> str | None:
    import grpc

    with grpc.insecure_channel(address) as channel:
        # No serializers: the prepared message bytes go out as they are, as a native tool sends them.
        try:
            raw = {"request_serializer": None, "response_deserializer": None}
            method = request.method
            if request.client_streams and request.server_streams:
                list(channel.stream_stream(method, **raw)(iter(request.messages), timeout=timeout_s))
            elif request.client_streams:
                channel.stream_unary(method, **raw)(iter(request.messages), timeout=timeout_s)
            elif request.server_streams:
                list(channel.unary_stream(method, **raw)(request.messages[0], timeout=timeout_s))
            else:
                channel.unary_unary(method, **raw)(request.messages[0], timeout=timeout_s)
        except grpc.RpcError as exc:
            return f"gRPC {exc.code().name}: {exc.details()}"
    return None


def preflight(address: str, requests: list[WireRequest], *, timeout_s: float = 10.0) -> None:
    """Send each request once; PreflightError naming the first one the target refused."""
    for request in requests:
        send = _grpc if request.protocol == "grpc" else _http
        try:
            refused = send(address, request, timeout_s)
        except OSError as exc:
            refused = f"{type(exc).__name__}: {exc}"
        if refused is not None:
            shown = request.path or request.method
            raise PreflightError(
                f"native engine, {request.protocol} {request.operation}: the target refused the prepared "
                f"request ({request.method} {shown}): {refused}"
            )
