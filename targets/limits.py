"""Server limits, set on purpose and in one place (README "Limits" lists them); every target applies them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIMITS", "ServerLimits"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    # Largest request body / gRPC message accepted. A 10,000-book bulk request is about 1.5 MB as JSON and
    # about 4 MB as SOAP XML, so 8 MiB admits every valid request while refusing e.g. a 10 MB body.
    max_body_bytes: int = 8 * 1024 * 1024
    # Largest gRPC response message (a stream sends one item per message, so this is generous).
    max_response_bytes: int = 8 * 1024 * 1024
    # Request line + headers (HTTP/1.1) and header list (HTTP/2).
    max_header_bytes: int = 64 * 1024
    # Concurrent HTTP/2 streams per gRPC connection.
    max_concurrent_streams: int = 256
    # A client that sends nothing for this long is disconnected (slow-header clients among them).
    idle_timeout_s: float = 30.0
    # Keep-alive connections idle for this long are closed.
    keepalive_timeout_s: float = 75.0
    # Worker threads of the SOAP WSGI server (spyne is synchronous).
    soap_threads: int = 4
    # Deepest JSON nesting accepted by the REST target before parsing.
    max_json_depth: int = 32


LIMITS = ServerLimits()
