"""Run the conformance table against one target, beside the in-process core, and the protocol surface checks.

Each case's outcome is compared with what the core returns for the same sequence (the reference), with the
case's own expectation, and with the protocol's native error form (docs/ARCHITECTURE.md, the error table).
A failure never stops the suite: every case gets a row, and the reason says what differed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bench.clients import ClientError, LibraryClient, RemoteError, TransportError, make_client
from bench.clients.local_client import LocalClient
from bench.verify.cases import CASES, CLOCK, DATASET, NATIVE_ERRORS, SEED, Case, Ctx, run_case
from targets.core import build_service, parse_clock

__all__ = ["CaseResult", "TargetReport", "reference_client", "run_cases", "verify_target"]

_SHOWN = 160  # characters of a record or message in a failure reason


@dataclass(frozen=True)
class CaseResult:
    name: str
    operation: str  # an operation of the contract, or "(surface)" for protocol checks
    needs: frozenset[str]
    passed: bool
    reason: str = ""


@dataclass
class TargetReport:
    label: str  # e.g. "grpc/python 127.0.0.1:50051"
    protocol: str
    client: str
    results: list[CaseResult] = field(default_factory=list)
    warning: str = ""  # e.g. "does not serve the conformance dataset"

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.results)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def reference_client() -> LibraryClient:
    """The in-process core with the conformance dataset and clock: what every target must answer."""
    return LocalClient(build_service(DATASET, clock=parse_clock(CLOCK), seed=SEED))


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _show(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else _clip(value)


def _difference(got: object, expected: object) -> str:
    """The first fields that differ (records), or where two lists part (streams)."""
    if isinstance(got, list) and isinstance(expected, list):
        if len(got) != len(expected):
            return f"{len(got)} items, the core returns {len(expected)}"
        index = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        return f"item #{index}: {_difference(got[index], expected[index])}"
    if dataclasses.is_dataclass(got) and type(got) is type(expected):
        fields = [
            f.name for f in dataclasses.fields(got) if getattr(got, f.name) != getattr(expected, f.name)
        ]
        return "; ".join(
            f"{name} is {_show(getattr(got, name))}, the core's {_show(getattr(expected, name))}"
            for name in fields[:3]
        )
    return f"got {_clip(got)}, the core returns {_clip(expected)}"


def _utc_problem(value: object) -> str:
    """Timestamps must come back timezone-aware UTC, whatever the wire format."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        for name in ("loaned_at", "due_at", "returned_at"):
            stamp = getattr(item, name, None)
            if isinstance(stamp, datetime):
                offset = stamp.utcoffset()
                if offset is None or offset.total_seconds() != 0:
                    return f"{name} is not UTC: {stamp.isoformat()}"
    return ""


def _judge(case: Case, protocol: str, expected: object, result: object, error: ClientError | None) -> str:
    """'' when the case passed, else why not."""
    if isinstance(error, TransportError):
        return f"no valid answer: {error}"
    if case.error is None:
        if error is not None:
            return f"expected success, got {_clip(str(error))}"
        if result != expected:
            return f"differs from the core: {_difference(result, expected)}"
        return _utc_problem(result)
    if error is None:
        return f"expected {case.error.value}, got success {_clip(result)}"
    assert isinstance(error, RemoteError)
    if error.kind != case.error:
        got = f"{error.kind.value} ({_clip(error.native)}: {_clip(error.message)})"
        return f"expected {case.error.value}, got {got}"
    pattern = NATIVE_ERRORS.get(protocol, {}).get(case.error)
    if pattern is not None and re.fullmatch(pattern, error.native) is None:
        return f"{case.error.value} must be reported as {pattern!r} on {protocol}, got {error.native!r}"
    return ""


def run_cases(
    client: LibraryClient, protocol: str, reference: LibraryClient | None = None
) -> list[CaseResult]:
    """Every case in order against `client` (a fresh target), each compared with the reference."""
    reference = reference if reference is not None else reference_client()
    ctx: Ctx = {}
    ref_ctx: Ctx = {}
    results = []
    for case in CASES:
        expected, expected_error = run_case(reference, case, ref_ctx, ClientError)
        assert (expected_error.kind if isinstance(expected_error, RemoteError) else None) == case.error, (
            f"{case.name}: the conformance table disagrees with the core"
        )
        result, error = run_case(client, case, ctx, ClientError)
        # Checks see the target's own saved records (ids it returned), as the case table intends.
        reason = _judge(case, protocol, expected, result, error)
        if not reason and case.error is None and case.check is not None and not case.check(result, ctx):
            reason = f"fails the case's check: {_clip(result)}"
        results.append(CaseResult(case.name, case.operation, case.needs, not reason, reason))
    return results


def _preflight(client: LibraryClient) -> str:
    """Why the target does not look like a fresh conformance target ('' when it does)."""
    reference = reference_client()
    try:
        probes: list[Callable[[LibraryClient], object]] = [
            lambda c: c.get_book(1),
            lambda c: c.get_user(5),
            lambda c: c.get_loan(6),
        ]
        for probe in probes:
            if probe(client) != probe(reference):
                return (
                    f"the target does not serve the conformance dataset ({DATASET!r}, seed {SEED}) with the "
                    f"clock {CLOCK}; cases marked 'dataset' or 'clock' will fail (README: Verifying an "
                    "implementation)"
                )
    except ClientError as exc:
        return f"the target does not answer like a fresh conformance target: {exc}"
    return ""


def verify_target(
    label: str,
    protocol: str,
    address: str,
    *,
    client_kind: str,
    surface: Callable[[str, str], list[CaseResult]] | None = None,
    timeout_s: float = 10.0,
) -> TargetReport:
    """The whole suite against one running target: preflight, the case table, the protocol surface."""
    report = TargetReport(label, protocol, client_kind)
    client = make_client(client_kind, address, timeout_s=timeout_s)
    try:
        try:
            client.get_book(1)
        except TransportError as exc:
            report.results.append(CaseResult("reachable", "(surface)", frozenset(), False, str(exc)))
            return report
        except RemoteError:
            pass
        report.warning = _preflight(client)
        report.results.extend(run_cases(client, protocol))
    finally:
        client.close()
    if surface is not None:
        report.results.extend(surface(protocol, address))
    return report
