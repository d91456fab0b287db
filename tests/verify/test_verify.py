"""`bench verify` end to end: built-in targets pass, a wrong implementation fails with a readable table."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bench.cli import main
from bench.errors import UsageError
from bench.load.processes import TargetProcess
from bench.options import TargetSpec, parse_target
from bench.verify.cases import CASES, CLOCK, DATASET, SEED

Start = Callable[..., TargetProcess]


def test_every_builtin_implementation_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--impls", "python,node,go"]) == 0
    out = capsys.readouterr().out
    labels = ("grpc/python", 3), ("rest/python", 2), ("soap/python", 1), ("grpc/node", 3), ("grpc/go", 3)
    for label, surface in labels:
        cases = len(CASES) + surface
        assert f"PASS {label}: {cases} passed, 0 failed" in out, out[-2000:]
    assert "FAIL" not in out


def test_a_wrong_implementation_fails_with_the_cases_and_reasons(
    start: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python gRPC target started with a broken option (the system clock instead of the fixed one)."""
    target = start("grpc", dataset=DATASET, seed=SEED, clock="system")
    assert main(["verify", "--target", f"broken=grpc:{target.address}"]) == 1
    out = capsys.readouterr().out
    label = f"broken (grpc) {target.address}"
    assert f"{label}: warning: the target does not serve the conformance dataset" in out
    # Only cases that depend on the clock fail, each with a row in the table and the field that differed.
    failed = [line for line in out.splitlines() if line.startswith(f"{label}: FAIL ")]
    assert failed and len(failed) < len(CASES)
    clocked = {case.name for case in CASES if "clock" in case.needs}
    assert {line.removeprefix(f"{label}: FAIL ").split(":")[0] for line in failed} <= clocked
    assert any("loaned_at is " in line and "the core's 2026-01-15T12:00:00+00:00" in line for line in failed)
    assert f"FAIL {label}: " in out
    rows = [line for line in out.splitlines() if "create-loan-default-term" in line and "│" in line]
    assert rows and "FAIL" in rows[0] and "clock,dataset" in rows[0]


def test_an_unreachable_target_is_one_failed_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--target", "grpc=127.0.0.1:1", "--timeout", "2"]) == 1
    assert "FAIL grpc (grpc) 127.0.0.1:1: 0 passed, 1 failed" in capsys.readouterr().out


def test_print_dataset_is_the_conformance_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--print-dataset"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["format"], document["dataset"], document["seed"]) == ("library-dataset/1", DATASET, SEED)
    assert document["now"] == CLOCK.removeprefix("fixed:").replace("+00:00", ".000000Z")
    assert [b["id"] for b in document["books"]] == list(range(1, 12))
    assert {loan["status"] for loan in document["loans"]} <= {"ACTIVE", "RETURNED"}
    assert document["next_ids"] == {"book": 12, "user": 6, "loan": 9}


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("grpc=127.0.0.1:50051", TargetSpec("grpc", "grpc", "127.0.0.1", 50051)),
        ("node=grpc:127.0.0.1:50051", TargetSpec("node", "grpc", "127.0.0.1", 50051)),
        ("mine=rest:[::1]:8080", TargetSpec("mine", "rest", "::1", 8080)),
        ("soap=localhost:8000", TargetSpec("soap", "soap", "localhost", 8000)),
    ],
)
def test_target_specs(text: str, spec: TargetSpec) -> None:
    assert parse_target(text) == spec


@pytest.mark.parametrize(
    "text", ["grpc", "grpc=", "=grpc:1.2.3.4:5", "corba=1.2.3.4:5", "x=grpc:host", "grpc=host:99999"]
)
def test_bad_target_specs_say_what_is_expected(text: str) -> None:
    with pytest.raises(UsageError, match="PROTO=HOST:PORT"):
        parse_target(text)
