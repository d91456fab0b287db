"""uvicorn's httptools protocol plus the two server limits it lacks: request head size and idle clients."""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from targets.core.errors import ErrorKind
from targets.limits import LIMITS
from targets.rest.wire import PROBLEM_JSON, problem_to_json

__all__ = ["LimitedHttpToolsProtocol"]


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that applies `LIMITS.max_header_bytes` and `LIMITS.idle_timeout_s`.

    - A request head (request line + headers) longer than `max_header_bytes` is answered 431 and the
      connection closed before the parser sees it; httptools alone would buffer a head of any size.
    - A connection whose request has not fully arrived (a new connection included) and that sends nothing for
      `idle_timeout_s` is answered 408 and closed; uvicorn alone only times out idle keep-alive connections
      between requests (`timeout_keep_alive`), so a slow or silent client would hold a connection forever.

    A chunk that ends one request and starts the next (pipelining) is not counted towards the next head, so
    a head may be under-counted by at most one read; it is never over-counted. The per-chunk cost is a clock
    read and a few comparisons; the idle check is one timer per connection that re-arms itself, not a timer
    reset per chunk. The three overrides that run on every request call HttpToolsProtocol's methods directly:
    `super()` builds a proxy object per call on Python 3.11, which cost ~0.35 µs of the ~0.8 µs per request
    these limits took (README.md, "The adapters' own cost").
    """

    max_head_bytes: int = LIMITS.max_header_bytes
    idle_timeout_s: float = LIMITS.idle_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True  # the next bytes received belong to a request head
        self._head_bytes = 0  # bytes of the current head received in earlier chunks
        self._head_tail = b""  # the last bytes of those, in case the blank line is split between chunks
        self._heads_done = 0  # request heads completed on this connection
        self._receiving = True  # a request is expected or partly received: the idle limit applies
        self._last_data = self.loop.time()
        self._idle_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.idle_timeout_s, self._check_idle
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        self._receiving = True  # until the parser completes a message (on_message_complete)
        if self._in_head and self._head_bytes + len(data) > self.max_head_bytes and self._head_too_long(data):
            detail = f"request line and headers are over {self.max_head_bytes} bytes"
            self._refuse(431, ErrorKind.INVALID_ARGUMENT, detail)
            return
        in_head, heads_done = self._in_head, self._heads_done
        HttpToolsProtocol.data_received(self, data)
        if in_head and self._heads_done == heads_done:  # no head ended in this chunk: all of it was head
            self._head_bytes += len(data)
            self._head_tail = data[-3:]

    def _head_too_long(self, data: bytes) -> bool:
        # Reached only for a large chunk while a head is open, so ordinary requests never search.
        end = (self._head_tail + data).find(b"\r\n\r\n")
        head_part = len(data) if end < 0 else end + 4 - len(self._head_tail)
        return self._head_bytes + head_part > self.max_head_bytes

    def on_headers_complete(self) -> None:
        self._heads_done += 1
        self._in_head = False
        self._head_bytes = 0
        self._head_tail = b""
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._receiving = False
        HttpToolsProtocol.on_message_complete(self)

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self.transport.is_closing():
            return
        silent_s = self.loop.time() - self._last_data
        if self._receiving and silent_s >= self.idle_timeout_s:
            detail = f"no data for {self.idle_timeout_s:g} s while the request was incomplete"
            self._refuse(408, ErrorKind.INVALID_ARGUMENT, detail)
            return
        delay = self.idle_timeout_s - silent_s if self._receiving else self.idle_timeout_s
        self._idle_timer = self.loop.call_later(max(delay, 0.001), self._check_idle)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers a request httptools cannot parse (conflicting Content-Length/Transfer-Encoding,
        # bad bytes in the head, an unknown method, an HTTP/2 preface) in text/plain; every error of this
        # target is problem+json (docs/ARCHITECTURE.md error table), so these get one too.
        self._refuse(400, ErrorKind.INVALID_ARGUMENT, f"malformed HTTP/1.1 request: {msg}")

    def _refuse(self, status: int, kind: ErrorKind, detail: str) -> None:
        """Answer with a problem and close, unless a response is already under way (then only close)."""
        # A cycle whose response has not started yet (its body was still arriving) can still be answered.
        if self.cycle is None or not self.cycle.response_started or self.cycle.response_complete:
            body = orjson.dumps(problem_to_json(kind, status, detail))
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
        self.transport.close()
