"""Response classes for the hot paths: one JSON record, and NDJSON streams sent in ~64 KB chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from targets.rest.wire import JSON, NDJSON, Record, dumps_lines, dumps_record

__all__ = ["CHUNK_BYTES", "JsonRecordResponse", "NdjsonResponse", "ndjson_chunks"]

# Lines are batched into chunks of about this size: one send per item would cost a write (and a chunk header)
# per record; one send for everything would delay the first item until the last is encoded.
CHUNK_BYTES = 64 * 1024
# Records per encoding step; ~200-byte records make a step of ~13 KB, so a chunk is a few steps.
_STEP = 64


_JSON_CONTENT_TYPE = (b"content-type", JSON.encode())


class JsonRecordResponse(Response):
    """One record as JSON.

    Sets what `Response.__init__` would (body, Content-Length, Content-Type, in that order) without its
    generic rendering and header merging: about half a microsecond on every record answer.
    """

    media_type = JSON

    def __init__(self, record: Record, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body = dumps_record(record)
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_CONTENT_TYPE]


def ndjson_chunks(records: Sequence[Record], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """NDJSON lines grouped into chunks of at least `chunk_bytes` (the last one may be smaller)."""
    pending: list[bytes] = []
    size = 0
    for start in range(0, len(records), _STEP):
        lines = dumps_lines(records[start : start + _STEP])
        pending.append(lines)
        size += len(lines)
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


class NdjsonResponse(Response):
    """A sequence of records as NDJSON.

    A result that fits in one chunk goes out with a Content-Length; a larger one is streamed chunk by chunk
    (chunked transfer encoding), each chunk encoded only after the previous one was handed to the transport,
    so the client sees the first items before the last are encoded.
    """

    media_type = NDJSON

    def __init__(self, records: Sequence[Record], status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self._chunks = ndjson_chunks(records)
        self._first = next(self._chunks, b"")
        # A full first chunk may have more behind it; otherwise the whole result is this one body.
        self._more = len(self._first) >= CHUNK_BYTES
        if not self._more:
            self.body = self._first
        self.init_headers()  # without a body there is no Content-Length, so the server uses chunked encoding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._more:
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self._first, "more_body": True})
        for chunk in self._chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
