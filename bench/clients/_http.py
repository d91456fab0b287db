"""A minimal HTTP/1.1 keep-alive connection (stdlib http.client) for the lean REST and SOAP clients."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

from bench.clients._base import TransportError

__all__ = ["KeepAliveConnection", "Response", "split_address", "transport_error"]


def split_address(address: str) -> tuple[str, int]:
    """'host:port', '[::1]:port' or 'http://host:port/...' -> (host, port)."""
    text = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def transport_error(exc: BaseException, where: str) -> TransportError:
    """Name a low-level failure the same way in every client (the name is the stats error key)."""
    if isinstance(exc, ConnectionRefusedError):
        return TransportError("refused", f"connection refused by {where}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return TransportError("timeout", f"no answer from {where} in time")
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return TransportError("disconnected", f"{where} closed the connection: {exc}")
    if isinstance(exc, http.client.HTTPException):
        return TransportError("bad-response", f"{where} did not answer with valid HTTP/1.1: {exc!r}")
    if isinstance(exc, socket.gaierror):
        return TransportError("unresolvable", f"cannot resolve {where}: {exc}")
    if isinstance(exc, OSError):
        return TransportError("unreachable", f"{where}: {exc}")
    return TransportError("error", f"{where}: {exc!r}")


class Response:
    """Status, lower-cased headers and a body readable whole or line by line (NDJSON streams)."""

    def __init__(self, raw: http.client.HTTPResponse) -> None:
        self.raw = raw
        self.status = raw.status
        self.content_type = (raw.getheader("content-type") or "").split(";")[0].strip().lower()

    def read(self) -> bytes:
        return self.raw.read()

    def lines(self) -> Iterator[bytes]:
        """Non-empty lines as they arrive (read1 returns what is there, so item timing is real)."""
        pending = b""
        while True:
            chunk = self.raw.read1(65536)
            if not chunk:
                self.raw.read()  # marks the response complete so the connection can carry the next request
                if pending.strip():
                    yield pending
                return
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                if line.strip():
                    yield line


class KeepAliveConnection:
    """One persistent connection; reconnects when the server closed an idle one (retrying only then)."""

    def __init__(self, address: str, *, timeout_s: float = 30.0) -> None:
        self.host, self.port = split_address(address)
        self.timeout_s = timeout_s
        self.where = f"{self.host}:{self.port}"
        self._conn: http.client.HTTPConnection | None = None
        self._requests_on_conn = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._conn.connect()
            assert self._conn.sock is not None
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._requests_on_conn = 0
        return self._conn

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        """Send and return the response with its body unread (read it before the next request)."""
        for attempt in (1, 2):
            reused = self._conn is not None and self._requests_on_conn > 0
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                raw = conn.getresponse()
                self._requests_on_conn += 1
                if raw.will_close:
                    self._conn = None  # the server ends this connection after the response
                return Response(raw)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                # A keep-alive connection the server closed while idle: the request never reached it.
                if reused and attempt == 1:
                    continue
                raise transport_error(exc, self.where) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise transport_error(exc, self.where) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
