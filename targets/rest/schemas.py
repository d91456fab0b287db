"""Pydantic models of the REST bodies: strict request models, and response models for OpenAPI only."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from targets.core.errors import ErrorKind
from targets.core.models import LoanStatus
from targets.core.service import DEFAULT_LOAN_DAYS

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
]


class _Request(BaseModel):
    """Strict (``"year": "1999"`` is a type error) and closed (an unknown field is an error).

    Types only: the core checks values (lengths, ranges, ISBN digits), identically on every protocol.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AddBookRequest(_Request):
    """AddBook body, and one line of a BulkAddBooks body."""

    isbn: str = Field(
        description="ISBN-10 or ISBN-13; hyphens and spaces are allowed", examples=["9780262033848"]
    )
    title: str = Field(examples=["Introduction to Algorithms"])
    author: str = Field(examples=["Thomas H. Cormen"])
    category: str = Field(examples=["size-100"])
    year: int = Field(examples=[2009])
    copies: int = Field(description="becomes both total and available copies", examples=[3])


class AddUserRequest(_Request):
    name: str = Field(examples=["Ada Lovelace"])
    email: str = Field(examples=["ada@example.org"])


class CreateLoanRequest(_Request):
    user_id: int
    book_id: int
    days: int = Field(default=DEFAULT_LOAN_DAYS, description="loan term in days")


class StatusUpdateRequest(_Request):
    """One line of an UpdateLoanStatus body."""

    loan_id: int
    status: str = Field(description="OVERDUE, LOST or RETURNED", examples=["LOST"])


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
