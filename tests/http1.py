"""Reading HTTP/1.1 responses off a raw socket, for tests that talk to a target byte by byte."""

from __future__ import annotations

import socket


def read_http1_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length from a keep-alive connection (head and body may arrive apart)."""
    received = b""

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:  # without this a server that closes early would leave the test spinning forever
            raise ConnectionError("the server closed the connection before the whole response arrived")
        return chunk

    while b"\r\n\r\n" not in received:
        received += more()
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))[15:]
    )
    while len(body) < length:
        body += more()
    return head + b"\r\n\r\n" + body
