"""Domain errors: the only failures the service reports on purpose.

Exception tree::

    LibraryError            (kind = ErrorKind.INTERNAL when raised bare)
    ├── NotFound            an id that names nothing
    ├── InvalidArgument     input that breaks a validation rule
    ├── AlreadyExists       a duplicate ISBN or e-mail address
    ├── FailedPrecondition  the request is valid but the state forbids it
    │                       (no copy available, loan already returned, book still on loan)
    └── Unavailable         another service this one depends on did not answer (split topology: the
                            circulation service when the books service is down); retrying may succeed

Every protocol adapter maps `ErrorKind` to its native error through one table (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import enum

__all__ = [
    "AlreadyExists",
    "ErrorKind",
    "FailedPrecondition",
    "InvalidArgument",
    "LibraryError",
    "NotFound",
    "Unavailable",
    "error_for_kind",
]


class ErrorKind(enum.StrEnum):
    NOT_FOUND = "NotFound"
    INVALID_ARGUMENT = "InvalidArgument"
    ALREADY_EXISTS = "AlreadyExists"
    FAILED_PRECONDITION = "FailedPrecondition"
    INTERNAL = "Internal"
    UNAVAILABLE = "Unavailable"


class LibraryError(Exception):
    """Base class; `kind` selects the protocol-native error, `message` is safe to show to clients."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LibraryError):
    kind = ErrorKind.NOT_FOUND


class InvalidArgument(LibraryError):
    kind = ErrorKind.INVALID_ARGUMENT


class AlreadyExists(LibraryError):
    kind = ErrorKind.ALREADY_EXISTS


class FailedPrecondition(LibraryError):
    kind = ErrorKind.FAILED_PRECONDITION


class Unavailable(LibraryError):
    kind = ErrorKind.UNAVAILABLE


_BY_KIND: dict[ErrorKind, type[LibraryError]] = {
    ErrorKind.NOT_FOUND: NotFound,
    ErrorKind.INVALID_ARGUMENT: InvalidArgument,
    ErrorKind.ALREADY_EXISTS: AlreadyExists,
    ErrorKind.FAILED_PRECONDITION: FailedPrecondition,
    ErrorKind.INTERNAL: LibraryError,
    ErrorKind.UNAVAILABLE: Unavailable,
}


def error_for_kind(kind: ErrorKind, message: str) -> LibraryError:
    """The domain error of `kind` (a service passing on what another service answered)."""
    return _BY_KIND[kind](message)
