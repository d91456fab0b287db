"""Bad places to send requests: every client ends with a clear, named error, quickly, and never hangs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bench.clients import CLIENT_KINDS, ClientError, RemoteError, TransportError, make_client
from bench.clients.measure import Measurement
from bench.load.processes import TargetProcess

KINDS = list(CLIENT_KINDS)
Start = Callable[..., TargetProcess]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call_and_time(
    kind: str, address: str, timeout_s: float = 2.0
) -> tuple[ClientError, float, list[Measurement]]:
    seen: list[Measurement] = []
    client = make_client(kind, address, timeout_s=timeout_s, hook=seen.append)
    started = time.monotonic()
    try:
        with pytest.raises(ClientError) as info:
            client.get_book(1)
    finally:
        client.close()
    return info.value, time.monotonic() - started, seen


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: the client must give up by its timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", KINDS)
def test_refused_port(kind: str) -> None:
    error, elapsed, seen = call_and_time(kind, f"127.0.0.1:{free_port()}")
    assert isinstance(error, TransportError)
    assert error.reason in {"refused", "unavailable"}
    assert elapsed < 5
    assert [m.error for m in seen] == [f"transport:{error.reason}"], "the failure reaches the stats, named"


@pytest.mark.parametrize("kind", KINDS)
def test_silent_server_times_out(kind: str, silent_server: str) -> None:
    error, elapsed, seen = call_and_time(kind, silent_server, timeout_s=1.0)
    assert isinstance(error, TransportError) and error.reason in {"timeout", "unavailable"}
    assert elapsed < 8, f"{kind} waited {elapsed:.1f} s on a silent server"
    assert seen and seen[0].error is not None and seen[0].error.startswith("transport:")


@pytest.mark.parametrize(("kind", "wrong"), [
    ("grpc", "rest"), ("grpc", "soap"), ("rest", "grpc"), ("rest", "soap"), ("rest-lean", "grpc"),
    ("rest-lean", "soap"), ("soap", "grpc"), ("soap", "rest"), ("soap-lean", "grpc"), ("soap-lean", "rest"),
])  # fmt: skip
def test_wrong_protocol_on_the_port(kind: str, wrong: str, start: Start) -> None:
    target = start(wrong)
    error, elapsed, seen = call_and_time(kind, target.address)
    assert elapsed < 8
    # Either "no valid answer" or the other server's own error: never a hang, never a decoded record.
    assert isinstance(error, TransportError | RemoteError)
    assert seen and seen[0].error is not None
    assert target.alive(), "the other server survives a client of the wrong protocol"


@pytest.mark.parametrize("kind", KINDS)
def test_server_killed_mid_run(kind: str, start: Start) -> None:
    target = start(kind.split("-")[0])
    seen: list[Measurement] = []
    client = make_client(kind, target.address, timeout_s=2.0, hook=seen.append)
    try:
        assert client.get_book(1).id == 1
        target.process.kill()
        target.process.wait()
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(TransportError):
                client.get_book(1)
        assert time.monotonic() - started < 10
    finally:
        client.close()
    assert seen[0].error is None
    assert all(m.error is not None and m.error.startswith("transport:") for m in seen[1:])
