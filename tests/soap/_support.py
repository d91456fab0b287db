"""Helpers for the SOAP tests: the target as a real process (READY line, stop by pid), zeep, raw posts."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import zeep
from lxml import etree  # type: ignore[import-untyped]

from targets.soap.wsdl import BINDING_NAME, WSDL_PATH

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FIXED_CLOCK = "fixed:" + NOW.isoformat()
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:library-bench:v1"


@dataclass
class SoapTarget:
    process: subprocess.Popen[bytes]
    port: int
    ready_line: str
    ready_after_s: float
    stderr_path: Path
    stdout_after_ready: bytes = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal our own child by pid, wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.stdout_after_ready = self.process.stdout.read()  # the process is gone: reads to EOF
            self.process.stdout.close()
        return self.process.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def launch(stderr_path: Path, *, clock: str = FIXED_CLOCK, dataset: str = "tiny") -> SoapTarget:
    argv = [sys.executable, "-m", "targets", "serve", "soap", "--port", "0", "--dataset", dataset]
    argv += ["--clock", clock]
    started = time.monotonic()
    with open(stderr_path, "wb") as stderr:
        # stderr goes to a file: a pipe nobody drains could fill up and stall the server.
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO)
    try:
        line = _ready_line(process, READY_TIMEOUT_S)
    except BaseException:
        process.kill()
        process.wait()
        raise
    ready_after = time.monotonic() - started
    assert line.startswith("READY soap 127.0.0.1:"), line
    return SoapTarget(process, int(line.rsplit(":", 1)[1]), line, ready_after, stderr_path)


def _ready_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no READY line within {timeout_s} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 1)  # byte by byte: nothing after READY is consumed
            if not chunk:
                raise AssertionError(f"target exited with {process.wait()} before READY")
            buffer += chunk
    return buffer.decode().rstrip("\n")


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
