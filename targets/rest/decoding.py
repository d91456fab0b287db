"""Request decoding: JSON/NDJSON bodies into strict models and path ids into ints, or `RequestRejected`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from targets.rest.problems import RequestRejected

__all__ = ["decode_json", "decode_ndjson", "path_id", "query_text"]

M = TypeVar("M", bound=BaseModel)

_INTEGER = re.compile(r"-?[0-9]+")
_MAX_ID_DIGITS = 32  # ids are 64-bit; longer digit strings are refused before int() works on them
_MAX_REPORTED_ERRORS = 3
_FIRST_LINE_POSITION = re.compile(r" at line 1 column")


def decode_json(model: type[M], data: bytes, *, where: str = "body") -> M:
    """One JSON document into `model`: 400 when it is not JSON, 422 when it has the wrong shape or types.

    pydantic-core parses it, in linear time and without recursing in Python: nesting past its limit (200
    levels) is malformed JSON, where the standard library would raise RecursionError. The request models are
    flat, so any nesting at all is a type error; that is stricter than `LIMITS.max_json_depth`.
    """
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _rejection(exc, where) from None


def decode_ndjson(model: type[M], data: bytes) -> Iterator[M]:
    """NDJSON lines into `model`, lazily, in order; blank lines are skipped; errors name the line (from 1)."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield decode_json(model, line, where=f"line {number}")


def path_id(name: str, text: str) -> int:
    """A path segment that must be an integer; its range is the core's to check (as on every protocol)."""
    if text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS:
        return int(text)  # the usual case, without the regular expression (every GetBook passes here)
    if _INTEGER.fullmatch(text) is None:
        raise RequestRejected(f"{name} must be an integer, got {text[:40]!r}", status=422)
    if len(text) > _MAX_ID_DIGITS:
        raise RequestRejected(f"{name} is out of range ({len(text)} digits)")
    return int(text)


def query_text(query_string: bytes, name: str) -> str | None:
    """Query parameter `name` percent-decoded as strict UTF-8, None when absent; repeated, the last one wins.

    Starlette's `query_params` turns invalid UTF-8 into U+FFFD, so `?category=%FF` would be served as another
    category; gRPC and SOAP refuse invalid UTF-8 as InvalidArgument, and so does this.
    """
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise RequestRejected("the query string is not valid UTF-8 after percent-decoding") from None
    values = [value for key, value in pairs if key == name]
    return values[-1] if values else None


def _rejection(exc: ValidationError, where: str) -> RequestRejected:
    errors = exc.errors(include_url=False, include_input=False)
    malformed = next((e for e in errors if e["type"] == "json_invalid"), None)
    if malformed is not None:
        # "at line 1 column 7" inside NDJSON line 3 would read as the wrong line; a column is enough there.
        reason = _FIRST_LINE_POSITION.sub(" at column", malformed["msg"].removeprefix("Invalid JSON: "))
        return RequestRejected(f"{where}: malformed JSON ({reason})")
    problems = [f"{_location(e['loc'])}: {e['msg']}" for e in errors[:_MAX_REPORTED_ERRORS]]
    more = len(errors) - len(problems)
    suffix = f"; and {more} more" if more > 0 else ""
    return RequestRejected(f"{where}: {'; '.join(problems)}{suffix}", status=422)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"
