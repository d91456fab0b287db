"""The one domain implementation: records, errors, validation, store, service and seeded datasets.

No protocol library is imported here; adapters in `targets.grpc`, `targets.rest` and `targets.soap` only
translate between their wire format and these types.
"""

from targets.core.calls import CallCounters, OperationCall
from targets.core.clock import Clock, FixedClock, SystemClock, parse_clock
from targets.core.dataset import DATASETS, DatasetSpec, category_name, isbn13, seed_service
from targets.core.errors import (
    AlreadyExists,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    LibraryError,
    NotFound,
    Unavailable,
    error_for_kind,
)
from targets.core.models import Book, BulkAddResult, Loan, LoanStatus, NewBook, NewUser, StatusUpdate, User
from targets.core.operations import INTERNAL_OPERATIONS, OPERATIONS, STREAMED_RESPONSES, CallPattern
from targets.core.service import (
    DEFAULT_LOAN_DAYS,
    LibraryService,
    check_batch_index,
    prepare_books,
    settable_status,
    validate_idempotency_key,
)
from targets.core.store import LibraryStore
from targets.core.validation import LIMITS, PATTERNS, SETTABLE_STATUSES

__all__ = [
    "DATASETS",
    "DEFAULT_LOAN_DAYS",
    "INTERNAL_OPERATIONS",
    "LIMITS",
    "OPERATIONS",
    "PATTERNS",
    "SETTABLE_STATUSES",
    "STREAMED_RESPONSES",
    "AlreadyExists",
    "Book",
    "BulkAddResult",
    "CallCounters",
    "CallPattern",
    "Clock",
    "DatasetSpec",
    "ErrorKind",
    "FailedPrecondition",
    "FixedClock",
    "InvalidArgument",
    "LibraryError",
    "LibraryService",
    "LibraryStore",
    "Loan",
    "LoanStatus",
    "NewBook",
    "NewUser",
    "NotFound",
    "OperationCall",
    "StatusUpdate",
    "SystemClock",
    "Unavailable",
    "User",
    "build_service",
    "category_name",
    "check_batch_index",
    "error_for_kind",
    "isbn13",
    "parse_clock",
    "prepare_books",
    "seed_service",
    "settable_status",
    "validate_idempotency_key",
]


def build_service(
    dataset: str = "small", *, clock: Clock | None = None, seed: int = 42, inject_delay_s: float = 0.0
) -> LibraryService:
    """A service seeded with a named dataset (what every target serves); seeding is not counted as calls."""
    try:
        spec = DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}") from None
    service = LibraryService(clock=clock, calls=CallCounters(inject_delay_s=inject_delay_s))
    seed_service(service, spec, seed=seed)
    return service
