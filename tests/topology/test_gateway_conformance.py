"""The conformance table through the gateway, for every backend protocol, compared with the in-process core.

The gateway's public API is the REST target's, so its clients are the REST ones (httpx and lean). Every case
must give the record the single-process reference gives, or the same error kind with the REST target's
native form (status and problem code): the split topology has no distributed case that differs from the
single process in this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bench.clients import LibraryClient, RemoteError, make_client
from bench.verify.cases import CASES, CLOCK, DATASET, Case, Ctx, run_case
from bench.verify.suite import reference_client
from targets.core import ErrorKind
from tests.topology.conftest import BACKEND_PROTOCOLS
from topology.launch import start_split

NATIVE = {
    ErrorKind.NOT_FOUND: r"404 NotFound",
    ErrorKind.INVALID_ARGUMENT: r"(400|422) InvalidArgument",
    ErrorKind.ALREADY_EXISTS: r"409 AlreadyExists",
    ErrorKind.FAILED_PRECONDITION: r"409 FailedPrecondition",
}
SESSIONS = [(backend, client) for backend in BACKEND_PROTOCOLS for client in ("rest", "rest-lean")]


@dataclass
class Session:
    client: LibraryClient
    reference: LibraryClient
    ctx: Ctx = field(default_factory=dict)
    ref_ctx: Ctx = field(default_factory=dict)


@pytest.fixture(scope="module", params=SESSIONS, ids=[f"{b}-backends-{c}" for b, c in SESSIONS])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    backend, kind = request.param
    topology = start_split(backend, dataset=DATASET, clock=CLOCK)
    client = make_client(kind, topology.address)
    try:
        yield Session(client, reference_client())
    finally:
        client.close()
        topology.stop()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case_through_the_gateway(session: Session, case: Case) -> None:
    expected, expected_error = run_case(session.reference, case, session.ref_ctx, RemoteError)
    assert (expected_error.kind if expected_error else None) == case.error, (
        "the table disagrees with the core"
    )
    result, error = run_case(session.client, case, session.ctx, RemoteError)
    if case.error is None:
        assert error is None, f"{case.name}: expected success, got {error}"
        assert result == expected, f"{case.name}: the gateway returned a different record than the core"
        if case.check is not None:
            assert case.check(result, session.ctx), f"{case.name}: result fails the case's check: {result!r}"
        for item in result if isinstance(result, list) else [result]:
            for name in ("loaned_at", "due_at", "returned_at"):
                stamp = getattr(item, name, None)
                if isinstance(stamp, datetime):
                    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    else:
        assert error is not None, f"{case.name}: expected {case.error.value}, got success {result!r}"
        assert error.kind == case.error
        assert re.fullmatch(NATIVE[case.error], error.native), f"{case.name}: reported {error.native!r}"
