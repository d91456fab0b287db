"""Pydantic models of the REST bodies: strict request models, and response models for OpenAPI only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from targets.core.errors import ErrorKind
from targets.core.models import LoanStatus, NewBook
from targets.core.service import DEFAULT_LOAN_DAYS
from targets.core.validation import LIMITS, PATTERNS, SETTABLE_STATUSES

__all__ = [
    "AddBookRequest",
    "AddUserRequest",
    "Book",
    "BulkAddResult",
    "CreateLoanRequest",
    "Health",
    "Loan",
    "Problem",
    "StatusUpdateRequest",
    "User",
    "id_rule",
    "text_rule",
]


# The core's validation rules, published in /openapi.json. They are JSON Schema annotations only (pydantic
# does not check them): the core checks values, so a broken rule is answered 400 on REST exactly as it is
# INVALID_ARGUMENT on gRPC, and a value the schema admits is one the core accepts (tests/rest).
def text_rule(max_len: int) -> dict[str, Any]:
    return {"minLength": 1, "maxLength": max_len, "pattern": PATTERNS["text"]}


def id_rule() -> dict[str, Any]:
    return {"minimum": 1, "maximum": LIMITS["id_max"]}


_ISBN_RULE: dict[str, Any] = {"pattern": PATTERNS["isbn"], "format": "isbn"}
_EMAIL_RULE: dict[str, Any] = {
    "minLength": 1,
    "maxLength": LIMITS["email_max"],
    "pattern": PATTERNS["email"],
}


class _Request(BaseModel):
    """Strict (``"year": "1999"`` is a type error) and closed (an unknown field is an error).

    Types only: the core checks values (lengths, ranges, ISBN digits), identically on every protocol.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AddBookRequest(_Request):
    """AddBook body, and one line of a BulkAddBooks body."""

    isbn: str = Field(
        description="ISBN-10 or ISBN-13 with a valid check digit (format `isbn`: the last character is the "
        "ISBN check digit of the others); hyphens and spaces are allowed and dropped",
        examples=["9780262033848"],
        json_schema_extra=_ISBN_RULE,
    )
    title: str = Field(
        examples=["Introduction to Algorithms"], json_schema_extra=text_rule(LIMITS["title_max"])
    )
    author: str = Field(examples=["Thomas H. Cormen"], json_schema_extra=text_rule(LIMITS["author_max"]))
    category: str = Field(examples=["size-100"], json_schema_extra=text_rule(LIMITS["category_max"]))
    year: int = Field(
        examples=[2009], json_schema_extra={"minimum": LIMITS["year_min"], "maximum": LIMITS["year_max"]}
    )
    copies: int = Field(
        description="becomes both total and available copies",
        examples=[3],
        json_schema_extra={"minimum": 0, "maximum": LIMITS["copies_max"]},
    )

    def to_new_book(self) -> NewBook:
        """The core's record of this body (checked by the core, not here)."""
        return NewBook(
            isbn=self.isbn,
            title=self.title,
            author=self.author,
            category=self.category,
            year=self.year,
            copies=self.copies,
        )


class AddUserRequest(_Request):
    name: str = Field(examples=["Ada Lovelace"], json_schema_extra=text_rule(LIMITS["name_max"]))
    email: str = Field(examples=["ada@example.org"], json_schema_extra=_EMAIL_RULE)


class CreateLoanRequest(_Request):
    user_id: int = Field(json_schema_extra=id_rule())
    book_id: int = Field(json_schema_extra=id_rule())
    days: int = Field(
        default=DEFAULT_LOAN_DAYS,
        description="loan term in days",
        json_schema_extra={"minimum": LIMITS["loan_days_min"], "maximum": LIMITS["loan_days_max"]},
    )


class StatusUpdateRequest(_Request):
    """One line of an UpdateLoanStatus body."""

    loan_id: int = Field(json_schema_extra=id_rule())
    status: str = Field(
        description="the status to set (ACTIVE is set only by CreateLoan)",
        examples=["LOST"],
        json_schema_extra={"enum": list(SETTABLE_STATUSES)},
    )


# Response models are never used at run time (responses are encoded by `targets.rest.wire`); they describe
# that format in /openapi.json.
class Book(BaseModel):
    id: int
    isbn: str
    title: str
    author: str
    category: str
    year: int
    total_copies: int
    available_copies: int


class User(BaseModel):
    id: int
    name: str
    email: str


class Loan(BaseModel):
    id: int
    user_id: int
    book_id: int
    loaned_at: datetime = Field(description="RFC 3339, UTC, 'Z' suffix")
    due_at: datetime = Field(description="RFC 3339, UTC, 'Z' suffix")
    returned_at: datetime | None = Field(description="null while the loan is open")
    status: LoanStatus


class BulkAddResult(BaseModel):
    added: int
    ids: list[int]


class Health(BaseModel):
    status: str = Field(examples=["SERVING"])


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is the domain error kind, the same on every protocol."""

    type: str = Field(examples=["urn:library:error:NotFound"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["book 42 not found"])
    code: ErrorKind = Field(examples=["NotFound"])
