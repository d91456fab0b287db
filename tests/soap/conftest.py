"""Fixtures: the SOAP target as a real process, stopped by pid when done; zeep bound to the committed WSDL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.soap._support import SoapTarget, launch, zeep_service


@pytest.fixture
def launch_soap(tmp_path: Path) -> Iterator[Callable[..., SoapTarget]]:
    """Factory for a fresh target (own state); every one started is stopped when the test ends."""
    started: list[SoapTarget] = []

    def _launch(**kwargs: Any) -> SoapTarget:
        target = launch(tmp_path / f"soap-{len(started)}.stderr", **kwargs)
        started.append(target)
        return target

    yield _launch
    for target in started:
        target.stop()


@pytest.fixture(scope="session")
def soap_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoapTarget]:
    """One target shared by the tests that create their own records (unique ISBNs and e-mails)."""
    target = launch(tmp_path_factory.mktemp("soap") / "shared.stderr")
    yield target
    target.stop()


@pytest.fixture(scope="session")
def service(soap_target: SoapTarget) -> Any:
    return zeep_service(soap_target.url)


@pytest.fixture(scope="session")
def http(soap_target: SoapTarget) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=soap_target.url, timeout=10.0) as client:
        yield client
