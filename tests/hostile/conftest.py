"""Hostile suite fixtures and hooks: one target per protocol per module, a guard per case, case counts."""

from __future__ import annotations

import secrets as _random
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.hostile._support import PROTOCOLS, Case, LiveTarget, Secrets, launch

# `@pytest.mark.hostile("grpc", ...)`: the test sends hostile input to these protocols' targets. Each such
# test item is one case per protocol named; strict-xfail items document known failures and are counted apart.
_COUNTS = pytest.StashKey[dict[str, dict[str, int]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hostile(*protocols): a hostile-input case against these protocols")


def _protocols(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("hostile")
    return tuple(marker.args) if marker is not None else ()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: counted before -k/-m deselect anything, so the summary describes the suite, not the selection.
    counts = {"cases": dict.fromkeys(PROTOCOLS, 0), "known": dict.fromkeys(PROTOCOLS, 0)}
    for item in items:
        kind = "known" if item.get_closest_marker("xfail") is not None else "cases"
        for protocol in _protocols(item):
            counts[kind][protocol] += 1
    if any(counts["cases"].values()) or any(counts["known"].values()):
        config.stash[_COUNTS] = counts


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    counts = config.stash.get(_COUNTS, None)
    if counts is None:
        return
    cases = ", ".join(f"{p} {counts['cases'][p]}" for p in PROTOCOLS)
    known = ", ".join(f"{p} {counts['known'][p]}" for p in PROTOCOLS)
    terminalreporter.write_line(f"hostile cases: {cases} (documented known failures: {known})")


# ---- targets: one real process per protocol per module ---------------------------------------------------
def _target(protocol: str) -> Iterator[LiveTarget]:
    target = launch(protocol)
    yield target
    # Stops by pid; fails the module if the process died at any point (a crash that a case did not notice).
    assert target.stop() == 0, f"{protocol} target did not exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def grpc_target() -> Iterator[LiveTarget]:
    yield from _target("grpc")


@pytest.fixture(scope="module")
def rest_target() -> Iterator[LiveTarget]:
    yield from _target("rest")


@pytest.fixture(scope="module")
def soap_target() -> Iterator[LiveTarget]:
    yield from _target("soap")


@pytest.fixture(scope="session")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    """A file whose random content must never appear in any answer (XXE, path traversal, XInclude...)."""
    marker = f"HOSTILE-SECRET-{_random.token_hex(16)}".encode()
    path: Path = tmp_path_factory.mktemp("hostile") / "secret.txt"
    path.write_bytes(marker + b"\n")
    return Secrets(path=path, marker=marker)


@pytest.fixture
def case(request: pytest.FixtureRequest, secrets: Secrets) -> Case:
    """The guard of a `hostile`-marked test, bound to that module's targets; checked after the test body."""
    protocols = _protocols(request.node)
    assert protocols, "the `case` fixture needs @pytest.mark.hostile(<protocols>)"
    targets = [request.getfixturevalue(f"{protocol}_target") for protocol in protocols]
    guard = Case(targets, secrets)
    guard.begin()
    return guard


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    # The guard's checks run as part of the test call (not the fixture teardown), so a server that fell over
    # or leaked is reported as the failure of the case that did it. A body that already failed is not checked.
    result = yield
    guard = getattr(item, "funcargs", {}).get("case")
    if isinstance(guard, Case):
        guard.finish()
    return result
