"""Input validation rules shared by every protocol (limits are named constants, documented in README)."""

from __future__ import annotations

import re
import unicodedata

from targets.core.errors import InvalidArgument
from targets.core.models import NewBook, NewUser

__all__ = [
    "LIMITS",
    "PATTERNS",
    "SETTABLE_STATUSES",
    "normalize_isbn",
    "validate_days",
    "validate_id",
    "validate_key",
    "validate_new_book",
    "validate_new_user",
    "validate_text",
]

# Limits are deliberately part of the contract: every protocol rejects the same inputs.
LIMITS = {
    "title_max": 300,
    "author_max": 200,
    "category_max": 64,
    "name_max": 200,
    "email_max": 254,
    "year_min": 1000,
    "year_max": 2100,
    "copies_max": 10_000,
    "loan_days_min": 1,
    "loan_days_max": 365,
    "bulk_max": 10_000,
    "id_max": 2**63 - 1,
    # Idempotency keys (CreateLoan) and copy reservation keys (ReserveCopy/ReleaseCopy); a reservation key
    # may wrap an idempotency key with a short prefix, hence the larger limit.
    "idempotency_key_max": 128,
    "reservation_key_max": 160,
}

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
# Keys travel in URL paths (REST), HTTP headers, protobuf strings and XML: only characters that need no
# escaping in any of them (RFC 3986 unreserved characters, and ':').
_KEY = re.compile(r"[A-Za-z0-9._~:-]+")

# The rules above as regular expressions, published in the contracts (OpenAPI `pattern`, XSD facets, proto
# comments). Written in the subset where ECMA-262 (JSON Schema) and Python agree on every input that matters:
# a string they match is accepted by the functions below (tests/core checks it on generated strings), which
# is the promise a contract makes to a client. Control characters (Unicode category Cc) are U+0000-U+001F
# and U+007F-U+009F; whitespace is Python's (`str.isspace`: category Z and some Cc), which ECMA-262's `\s`
# covers. The ISBN check digit cannot be written as a pattern: the contracts name it (`format: isbn`).
_NOT_CC = r"\x00-\x1f\x7f-\x9f"
PATTERNS = {
    # non-empty, not only whitespace, no control characters (lengths are separate: LIMITS)
    "text": rf"^[^{_NOT_CC}]*[^\s{_NOT_CC}][^{_NOT_CC}]*$",
    "email": rf"^[^@\s{_NOT_CC}]{{1,64}}@[^@\s.{_NOT_CC}]+(\.[^@\s.{_NOT_CC}]+)+$",
    # 10 or 13 characters of an ISBN once hyphens and spaces are dropped (the last may be X in an ISBN-10)
    "isbn": r"^[- ]*([0-9][- ]*){9}([0-9Xx]|([0-9][- ]*){3}[0-9])[- ]*$",
}
# The loan statuses UpdateLoanStatus may set (ACTIVE is only ever set by CreateLoan).
SETTABLE_STATUSES = ("OVERDUE", "LOST", "RETURNED")


def validate_text(field: str, value: str, max_len: int) -> str:
    """Non-empty, at most `max_len` characters, valid UTF-8, no control characters.

    Control characters are refused because XML 1.0 (SOAP) cannot carry most of them; accepting them on
    gRPC/REST only would make the three protocols disagree about the same input.
    """
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string")
    if not value.strip():
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > max_len:
        raise InvalidArgument(f"{field} is {len(value)} characters long; the limit is {max_len}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"{field} is not valid Unicode text (lone surrogate)") from exc
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidArgument(f"{field} must not contain control characters")
    return value


def validate_id(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer")
    if value < 1 or value > LIMITS["id_max"]:
        raise InvalidArgument(f"{field} must be a positive integer, got {value}")
    return value


def _int_in_range(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer")
    if not low <= value <= high:
        raise InvalidArgument(f"{field} must be between {low} and {high}, got {value}")
    return value


def normalize_isbn(value: str) -> str:
    """Accept ISBN-10 or ISBN-13 with a valid check digit, hyphens/spaces allowed; return it without them."""
    if not isinstance(value, str):
        raise InvalidArgument("isbn must be a string")
    compact = value.replace("-", "").replace(" ", "").upper()
    if len(compact) == 13 and compact.isascii() and compact.isdigit():
        total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(compact[:12]))
        if (10 - total % 10) % 10 == int(compact[12]):
            return compact
        raise InvalidArgument(f"isbn {value!r} has a wrong check digit")
    if (
        len(compact) == 10
        and compact[:9].isascii()
        and compact[:9].isdigit()
        and (compact[9].isdigit() or compact[9] == "X")
    ):
        digits = [10 if c == "X" else int(c) for c in compact]
        if sum((10 - i) * d for i, d in enumerate(digits)) % 11 == 0:
            return compact
        raise InvalidArgument(f"isbn {value!r} has a wrong check digit")
    raise InvalidArgument(f"isbn {value[:40]!r} is not an ISBN-10 or ISBN-13")


def validate_new_book(book: NewBook) -> NewBook:
    return NewBook(
        isbn=normalize_isbn(book.isbn),
        title=validate_text("title", book.title, LIMITS["title_max"]),
        author=validate_text("author", book.author, LIMITS["author_max"]),
        category=validate_text("category", book.category, LIMITS["category_max"]),
        year=_int_in_range("year", book.year, LIMITS["year_min"], LIMITS["year_max"]),
        copies=_int_in_range("copies", book.copies, 0, LIMITS["copies_max"]),
    )


def validate_new_user(user: NewUser) -> NewUser:
    name = validate_text("name", user.name, LIMITS["name_max"])
    email = validate_text("email", user.email, LIMITS["email_max"])
    if not _EMAIL.fullmatch(email):
        raise InvalidArgument(f"email {email[:80]!r} is not an e-mail address")
    return NewUser(name=name, email=email)


def validate_days(days: int) -> int:
    return _int_in_range("days", days, LIMITS["loan_days_min"], LIMITS["loan_days_max"])


def validate_key(field: str, value: str, max_len: int) -> str:
    """An idempotency or reservation key: 1..max_len characters out of A-Z a-z 0-9 . _ ~ : -"""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string")
    if not value:
        raise InvalidArgument(f"{field} must not be empty")
    if len(value) > max_len:
        raise InvalidArgument(f"{field} is {len(value)} characters long; the limit is {max_len}")
    if _KEY.fullmatch(value) is None:
        raise InvalidArgument(f"{field} {value[:40]!r} may hold only letters, digits and . _ ~ : -")
    return value
