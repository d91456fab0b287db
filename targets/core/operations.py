"""The contract's operations and their gRPC call pattern (REST/SOAP use batch equivalents for streams)."""

from __future__ import annotations

import enum

__all__ = ["INTERNAL_OPERATIONS", "OPERATIONS", "STREAMED_RESPONSES", "CallPattern"]


class CallPattern(enum.StrEnum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"


OPERATIONS: dict[str, CallPattern] = {
    "AddBook": CallPattern.UNARY,
    "GetBook": CallPattern.UNARY,
    "DeleteBook": CallPattern.UNARY,
    "AddUser": CallPattern.UNARY,
    "GetUser": CallPattern.UNARY,
    "CreateLoan": CallPattern.UNARY,
    "ReturnLoan": CallPattern.UNARY,
    "GetLoan": CallPattern.UNARY,
    "ListBooksByCategory": CallPattern.SERVER_STREAM,
    "GetOverdueLoans": CallPattern.SERVER_STREAM,
    "BulkAddBooks": CallPattern.CLIENT_STREAM,
    "UpdateLoanStatus": CallPattern.BIDI_STREAM,
}
# Operations whose answer is a stream of items (gRPC server and bidirectional streaming; NDJSON lines or an
# array on REST and SOAP): they have a time to the first item. In contract order.
STREAMED_RESPONSES: tuple[str, ...] = tuple(
    name
    for name, pattern in OPERATIONS.items()
    if pattern in (CallPattern.SERVER_STREAM, CallPattern.BIDI_STREAM)
)

# Internal operations: the circulation service of the split topology reserves and releases copies in the books
# service through them (targets.core.circulation). Every target serves them, but they are no part of the
# public API: the gateway does not expose them, and benchmarks and the conformance table leave them out.
INTERNAL_OPERATIONS: dict[str, CallPattern] = {
    "ReserveCopy": CallPattern.UNARY,
    "ReleaseCopy": CallPattern.UNARY,
}
