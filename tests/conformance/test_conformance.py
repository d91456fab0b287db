"""Every case of the table, against every protocol's real target process, compared with the in-process core.

The table is `bench.verify.cases` (what `bench verify` runs against any implementation); here it runs with
pytest's reporting against the built-in targets, the Node.js and Go ones included.

Proves: identical domain records on all three protocols for the same seeded data, every operation works,
every error kind maps to the protocol-native error (docs/ARCHITECTURE.md), and streams deliver the same items
in the same order as the batch equivalents (gRPC streams vs SOAP arrays vs REST NDJSON are all compared with
the same reference list).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bench.clients import LibraryClient, RemoteError, make_client
from bench.load.processes import TargetProcess, start_target
from bench.verify.cases import CASES, CLOCK, DATASET, NATIVE_ERRORS, Case, Ctx, run_case
from bench.verify.suite import reference_client
from targets.core import OPERATIONS, ErrorKind

NATIVE = NATIVE_ERRORS
# client kind, or client kind @ implementation (the Node.js and Go targets serve gRPC)
CLIENTS = ["grpc", "rest", "rest-lean", "soap", "soap-lean", "grpc@node", "grpc@go"]


@dataclass
class Session:
    """One target process (fresh state), the client under test, and the in-process reference replaying it."""

    client: LibraryClient
    reference: LibraryClient
    protocol: str
    ctx: Ctx = field(default_factory=dict)
    ref_ctx: Ctx = field(default_factory=dict)


@pytest.fixture(scope="module", params=CLIENTS)
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    kind, _, impl = str(request.param).partition("@")
    protocol = kind.split("-")[0]
    target: TargetProcess = start_target(protocol, dataset=DATASET, clock=CLOCK, impl=impl or "python")
    client = make_client(kind, target.address)
    reference = reference_client()
    try:
        yield Session(client, reference, protocol)
    finally:
        client.close()
        target.stop()


def test_table_covers_every_operation_and_error_kind() -> None:
    assert len(CASES) >= 40
    assert {case.operation for case in CASES} == set(OPERATIONS)
    kinds = {case.error for case in CASES if case.error}
    assert kinds == {
        ErrorKind.NOT_FOUND,
        ErrorKind.INVALID_ARGUMENT,
        ErrorKind.ALREADY_EXISTS,
        ErrorKind.FAILED_PRECONDITION,
    }


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case(session: Session, case: Case) -> None:
    expected, expected_error = run_case(session.reference, case, session.ref_ctx, RemoteError)
    assert (expected_error.kind if expected_error else None) == case.error, (
        "the table disagrees with the core"
    )
    result, error = run_case(session.client, case, session.ctx, RemoteError)
    if case.error is None:
        assert error is None, f"{case.name}: expected success, got {error}"
        assert result == expected, (
            f"{case.name}: {session.protocol} returned a different record than the core"
        )
        if case.check is not None:
            assert case.check(result, session.ctx), f"{case.name}: result fails the case's check: {result!r}"
        _assert_utc(result)
    else:
        assert error is not None, f"{case.name}: expected {case.error.value}, got success {result!r}"
        assert error.kind == case.error
        assert re.fullmatch(NATIVE[session.protocol][case.error], error.native), (
            f"{case.name}: {session.protocol} reported {error.native!r} for {case.error.value}"
        )


def _assert_utc(value: object) -> None:
    """Timestamps come back timezone-aware (UTC), whatever the wire format."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        for name in ("loaned_at", "due_at", "returned_at"):
            stamp = getattr(item, name, None)
            if isinstance(stamp, datetime):
                assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
