"""A counting TCP relay on loopback: bytes on the wire as they cross the socket, for any client library.

grpcio's sockets live in C-core and zeep's in urllib3, so counting inside the clients is not possible for all
three protocols; a relay sees exactly what the client's socket sends and receives (HTTP/1.1 headers and
chunking, HTTP/2 frames with HPACK-compressed headers, TLS records if any). It adds a hop, so it is used in
a dedicated wire-bytes pass, never while latency is measured.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

__all__ = ["Wiretap"]


class Wiretap:
    """Listen on 127.0.0.1:<free port> and relay every connection to `upstream` (host, port).

    Bytes are counted when read and before they are forwarded, so once a client has received a complete
    response, the request and that response are both fully counted.
    """

    def __init__(self, upstream: tuple[str, int], *, capture: bool = False) -> None:
        self.upstream = upstream
        self.sent = 0  # client -> server
        self.received = 0  # server -> client
        self.connections = 0
        self.capture = capture
        self.captured_sent = bytearray()
        self.captured_received = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="wiretap-accept", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self._lock:
                    if upstream:
                        self.sent += len(data)
                        if self.capture:
                            self.captured_sent += data
                    else:
                        self.received += len(data)
                        if self.capture:
                            self.captured_received += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # Half-close so the peer sees EOF exactly as it would without the relay.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Wiretap:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
