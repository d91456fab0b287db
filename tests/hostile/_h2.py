"""A dumb HTTP/2 client over a raw socket: sends any frame, even invalid ones, and reads answers."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

__all__ = ["PREFACE", "H2Connection", "StreamResult", "grpc_frame", "varint"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME_HEADER = 9


def varint(value: int) -> bytes:
    """Protobuf base-128 varint (negative values as their 64-bit two's complement, as protobuf does)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def grpc_frame(message: bytes, *, length: int | None = None, compressed: bool = False) -> bytes:
    """The gRPC length-prefixed message: flag byte, 4-byte big-endian length (which may lie), payload."""
    return struct.pack(">BI", int(compressed), len(message) if length is None else length) + message


@dataclass
class StreamResult:
    """What the server said on one stream."""

    headers: dict[str, str] = field(default_factory=dict)
    trailers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    reset_code: int | None = None
    ended: bool = False

    @property
    def finished(self) -> bool:
        return self.ended or self.reset_code is not None

    @property
    def grpc_status(self) -> int | None:
        """grpc-status from the trailers, or from the headers of a trailers-only response."""
        text = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return int(text) if text is not None else None


class H2Connection:
    """One client connection. Nothing is validated on the way out; incoming frames are parsed leniently.

    SETTINGS and PING from the server are acknowledged so it never waits on us; everything received is kept
    in `received` so tests can check that no file content leaked into any byte of the answer.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        # The server may send a large header block back (e.g. echoing nothing, but be lenient anyway).
        self.decoder.max_header_list_size = 1 << 24
        self.streams: dict[int, StreamResult] = {}
        self.goaway: GoAwayFrame | None = None
        self.closed = False
        self.received = bytearray()
        self._buffer = b""
        self._header_block: tuple[int, bytearray, bool] | None = None

    # ---- sending -------------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *frames: Frame) -> None:
        self.send_raw(b"".join(frame.serialize() for frame in frames))

    def start(self, settings: dict[int, int] | None = None) -> None:
        """The client connection preface: magic string + SETTINGS."""
        frame = SettingsFrame(0)
        frame.settings = dict(settings or {})
        self.send_raw(PREFACE + frame.serialize())

    def header_block(self, headers: Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]]) -> bytes:
        # No Huffman coding: it is pure Python in hpack and far too slow for megabyte-sized header blocks.
        return bytes(self.encoder.encode(list(headers), huffman=False))

    def grpc_headers(
        self,
        path: str,
        *,
        content_type: str = "application/grpc",
        extra: Iterable[tuple[str, str]] = (),
        timeout: str | None = None,
    ) -> list[tuple[str, str]]:
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("content-type", content_type),
            ("te", "trailers"),
        ]
        if timeout is not None:
            headers.append(("grpc-timeout", timeout))
        return headers + list(extra)

    def open_stream(
        self, stream_id: int, headers: Sequence[tuple[str, str]], *, end_stream: bool = False
    ) -> None:
        frame = HeadersFrame(stream_id, self.header_block(headers))
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        self.streams.setdefault(stream_id, StreamResult())
        self.send(frame)

    def data(self, stream_id: int, payload: bytes, *, end_stream: bool = False) -> DataFrame:
        frame = DataFrame(stream_id, payload)
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    def send_data(
        self, stream_id: int, payload: bytes, *, end_stream: bool = False, max_frame: int = 16384
    ) -> None:
        """DATA frames no larger than the default SETTINGS_MAX_FRAME_SIZE."""
        chunks = [payload[i : i + max_frame] for i in range(0, len(payload), max_frame)] or [b""]
        frames = [self.data(stream_id, c) for c in chunks]
        if end_stream:
            frames[-1].flags.add("END_STREAM")
        self.send(*frames)

    def unary(
        self,
        stream_id: int,
        path: str,
        message: bytes,
        *,
        content_type: str = "application/grpc",
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        """HEADERS + one length-prefixed message + END_STREAM: a complete unary request."""
        self.open_stream(stream_id, self.grpc_headers(path, content_type=content_type, extra=extra))
        self.send_data(stream_id, grpc_frame(message), end_stream=True)

    # ---- receiving -----------------------------------------------------------------------------------
    def _recv(self, deadline: float) -> bool:
        """Read more bytes; False once the connection is closed (or reset) or the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        except OSError:  # reset by the server: as final as a FIN
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.received += chunk
        self._buffer += chunk
        return True

    def _next_frame(self) -> Frame | None:
        if len(self._buffer) < _FRAME_HEADER:
            return None
        frame, length = Frame.parse_frame_header(memoryview(self._buffer[:_FRAME_HEADER]))
        if len(self._buffer) < _FRAME_HEADER + length:
            return None
        body = memoryview(self._buffer[_FRAME_HEADER : _FRAME_HEADER + length])
        self._buffer = self._buffer[_FRAME_HEADER + length :]
        frame.parse_body(body)
        return frame

    def _handle(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            ack = SettingsFrame(0)
            ack.flags.add("ACK")
            self._try_send(ack)
        elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
            pong = PingFrame(0, frame.opaque_data)
            pong.flags.add("ACK")
            self._try_send(pong)
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, RstStreamFrame):
            self.streams.setdefault(frame.stream_id, StreamResult()).reset_code = frame.error_code
        elif isinstance(frame, DataFrame):
            result = self.streams.setdefault(frame.stream_id, StreamResult())
            result.data += frame.data
            if frame.flow_controlled_length:
                # Give the window back at once, so a large answer never stalls on our side.
                self._try_send(
                    WindowUpdateFrame(0, frame.flow_controlled_length),
                    WindowUpdateFrame(frame.stream_id, frame.flow_controlled_length),
                )
            if "END_STREAM" in frame.flags:
                result.ended = True
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            self._header_fragment(frame)

    def _header_fragment(self, frame: HeadersFrame | ContinuationFrame) -> None:
        if isinstance(frame, HeadersFrame):
            self._header_block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags)
        elif self._header_block is not None:
            self._header_block[1].extend(frame.data)
        if "END_HEADERS" not in frame.flags or self._header_block is None:
            return
        stream_id, block, end_stream = self._header_block
        self._header_block = None
        decoded = {str(k): str(v) for k, v in self.decoder.decode(bytes(block), raw=False)}
        result = self.streams.setdefault(stream_id, StreamResult())
        if result.headers:
            result.trailers = decoded
        else:
            result.headers = decoded
        if end_stream:
            result.ended = True

    def _try_send(self, *frames: Frame) -> None:
        try:
            self.send(*frames)
        except OSError:
            self.closed = True

    def pump(self, timeout_s: float, *, until: object = None) -> None:
        """Process incoming frames until `until()` is true, the connection closes, or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        check = until if callable(until) else (lambda: False)
        while not check():
            while (frame := self._next_frame()) is not None:
                self._handle(frame)
                if check():
                    return
            if not self._recv(deadline):
                while (frame := self._next_frame()) is not None:
                    self._handle(frame)
                return

    def wait_streams(self, stream_ids: Iterable[int], timeout_s: float) -> dict[int, StreamResult]:
        ids = list(stream_ids)
        for i in ids:
            self.streams.setdefault(i, StreamResult())
        self.pump(
            timeout_s, until=lambda: all(self.streams[i].finished for i in ids) or self.goaway is not None
        )
        return {i: self.streams[i] for i in ids}

    def wait_closed(self, timeout_s: float) -> bool:
        """True once the server closed the connection (a GOAWAY alone is not enough)."""
        self.pump(timeout_s, until=lambda: self.closed)
        return self.closed

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
