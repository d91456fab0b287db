"""Helpers for the SOAP tests: the target as a real process (READY line, stop by pid), zeep, raw posts."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import zeep
from lxml import etree  # type: ignore[import-untyped]

from bench.load.processes import TargetProcess, start_target
from targets.soap.wsdl import BINDING_NAME, WSDL_PATH

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FIXED_CLOCK = "fixed:" + NOW.isoformat()
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:library-bench:v1"


class SoapTarget(TargetProcess):
    """The harness's target process, plus the SOAP endpoint URL and the stderr helpers these tests use."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def stderr_path(self) -> Path:
        assert self.stderr_file is not None
        return self.stderr_file

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def launch(stderr_path: Path, *, clock: str = FIXED_CLOCK, dataset: str = "tiny") -> SoapTarget:
    target = start_target(
        "soap", dataset=dataset, clock=clock, stderr_path=stderr_path, ready_timeout_s=READY_TIMEOUT_S
    )
    assert target.ready_line.startswith("READY soap 127.0.0.1:"), target.ready_line
    return SoapTarget(**{f.name: getattr(target, f.name) for f in fields(target)})


def zeep_service(url: str, *, plugins: list[Any] | None = None) -> Any:
    """A zeep proxy built from the committed WSDL on disk, pointed at a live target."""
    client = zeep.Client(str(WSDL_PATH), plugins=plugins or [])  # type: ignore[no-untyped-call]
    return client.create_service(BINDING_NAME, url)  # type: ignore[no-untyped-call]


def envelope(body: str, *, envelope_ns: str = SOAP_ENV) -> str:
    return f'<s:Envelope xmlns:s="{envelope_ns}" xmlns:l="{TNS}"><s:Body>{body}</s:Body></s:Envelope>'


def post(client: httpx.Client, document: str | bytes, **headers: str) -> httpx.Response:
    content = document.encode() if isinstance(document, str) else document
    sent = {"Content-Type": "text/xml; charset=utf-8", **headers}
    return client.post("/", content=content, headers=sent)


def fault_of(response: httpx.Response) -> tuple[str, str]:
    """(faultcode, faultstring) of a SOAP 1.1 fault response."""
    root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text[:500]
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""
