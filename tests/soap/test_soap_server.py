"""The target as a process: READY, clean stop on SIGTERM/SIGINT, keep-alive, Server faults, concurrency."""

from __future__ import annotations

import http.client
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from zeep.exceptions import Fault

from tests.soap._support import READY_TIMEOUT_S, SoapTarget, envelope, post, zeep_service

GET_BOOK = envelope("<l:GetBook><l:id>1</l:id></l:GetBook>")
Launch = Callable[..., SoapTarget]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ready_then_clean_stop(launch_soap: Launch, sig: int) -> None:
    target = launch_soap()
    assert target.ready_after_s < READY_TIMEOUT_S
    assert target.ready_line == f"READY soap 127.0.0.1:{target.port}"
    # An idle keep-alive connection stays open while the server stops.
    with httpx.Client(base_url=target.url) as client:
        assert post(client, GET_BOOK).status_code == 200
        started = time.monotonic()
        target.process.send_signal(sig)
        assert target.process.wait(5) == 0
    assert time.monotonic() - started < 3.0
    assert target.stop() == 0
    assert target.stdout_after_ready == b""  # nothing but the READY line on stdout
    assert "Traceback" not in target.stderr()


def test_keep_alive_serves_many_requests_per_connection(soap_target: SoapTarget) -> None:
    # More connections than cheroot keeps alive by default (10): every one must stay open.
    connections = [http.client.HTTPConnection("127.0.0.1", soap_target.port, timeout=5) for _ in range(20)]
    try:
        for _ in range(2):
            for connection in connections:
                connection.request("POST", "/", GET_BOOK.encode(), {"Content-Type": "text/xml"})
            for connection in connections:
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                assert response.getheader("Connection", "").lower() != "close"
        sockets = [connection.sock for connection in connections]
        assert all(sock is not None for sock in sockets)
    finally:
        for connection in connections:
            connection.close()


def test_concurrent_requests(soap_target: SoapTarget) -> None:
    def work(_: int) -> int:
        service = zeep_service(soap_target.url)
        return sum(service.GetBook(id=book_id).id for book_id in range(1, 12))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(16))) == [66] * 16


def test_unexpected_error_is_a_generic_server_fault(launch_soap: Launch) -> None:
    # A clock near the end of the calendar makes due_at overflow datetime: an error no domain rule expects.
    target = launch_soap(clock="fixed:9999-06-01T00:00:00+00:00")
    service = zeep_service(target.url)
    book = service.AddBook(isbn="9780306406157", title="T", author="A", category="c", year=2000, copies=1)
    user = service.AddUser(name="U", email="u@example.org")
    with pytest.raises(Fault) as info:
        service.CreateLoan(user_id=user.id, book_id=book.id, days=365)
    assert (info.value.code, info.value.message) == ("soap11env:Server", "internal server error")
    assert service.GetBook(id=book.id).available_copies in (0, 1)  # and the server still answers
    assert target.stop() == 0
    stderr = target.stderr()
    assert "OverflowError" in stderr and "Traceback" in stderr  # logged once, with its traceback
    assert stderr.count("Traceback") == 1


def test_client_faults_are_not_logged(launch_soap: Launch) -> None:
    target = launch_soap()
    with httpx.Client(base_url=target.url) as client:
        post(client, envelope("<l:GetBook><l:id>999</l:id></l:GetBook>"))  # NotFound
        post(client, envelope("<l:GetBook><l:id>x</l:id></l:GetBook>"))  # schema
        post(client, "<not-xml")  # syntax
    assert target.stop() == 0
    assert target.stderr() == ""
