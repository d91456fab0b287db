"""The gateway's public API is the REST target's: the same OpenAPI document (less the internal operations,
plus 503), and the same answers to malformed or refused requests. And `bench serve gateway`: one READY line
naming the three processes, all three gone on SIGTERM and when the gateway is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench.load.processes import TargetProcess, start_target
from tests.topology.conftest import BACKEND_PROTOCOLS, FIXED_CLOCK
from topology.launch import SplitTopology, start_split

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rest_target() -> Iterator[TargetProcess]:
    target = start_target("rest", dataset="tiny", clock=FIXED_CLOCK)
    yield target
    target.stop()


@pytest.fixture(scope="module", params=BACKEND_PROTOCOLS)
def split(request: pytest.FixtureRequest) -> Iterator[SplitTopology]:
    topology = start_split(request.param, dataset="tiny", clock=FIXED_CLOCK)
    yield topology
    topology.stop()


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }


def test_openapi_is_the_rest_targets_without_internal_operations(
    split: SplitTopology, rest_target: TargetProcess
) -> None:
    target = httpx.get(f"{rest_target.url}/openapi.json").json()
    gateway = httpx.get(f"http://{split.address}/openapi.json").json()
    public = {k: v for k, v in _operations(target).items() if "internal" not in v[2].get("tags", ())}
    assert {"ReserveCopy", "ReleaseCopy"} <= set(_operations(target)) - set(public)
    assert set(_operations(gateway)) == set(public)
    for name, (path, method, operation) in _operations(gateway).items():
        assert (path, method) == public[name][:2], name
        # Every gateway operation may answer 503 (the REST target documents it where it can happen, on the
        # circulation service's loan writes); the rest is the same.
        expected = {**public[name][2], "responses": dict(public[name][2]["responses"])}
        expected["responses"].pop("503", None)
        assert operation["responses"].pop("503")["content"]["application/problem+json"], name
        assert operation == expected, name
    assert gateway["components"] == target["components"]
    assert gateway["info"]["title"] == "Library service (gateway)"
    assert httpx.get(f"http://{split.address}/docs").status_code == 200


# Requests the REST target refuses before or in the core; the gateway must answer each the same way.
REFUSED: list[tuple[str, str, str, bytes, dict[str, str]]] = [
    ("malformed-json", "POST", "/books", b'{"isbn": ', {"content-type": "application/json"}),
    ("wrong-type", "POST", "/users", b'{"name": 1, "email": "a@b.org"}', {}),
    ("unknown-field", "POST", "/loans", b'{"user_id": 1, "book_id": 2, "x": 1}', {}),
    ("bad-isbn", "POST", "/books", orjson.dumps(
        {"isbn": "123", "title": "t", "author": "a", "category": "c", "year": 2000, "copies": 1}), {}),
    ("year-beyond-int32", "POST", "/books", orjson.dumps(
        {"isbn": "9780306406157", "title": "t", "author": "a", "category": "c", "year": 2**40, "copies": 1}
    ), {}),
    ("id-not-a-number", "GET", "/books/abc", b"", {}),
    ("id-beyond-int64", "GET", "/users/99999999999999999999", b"", {}),
    ("id-zero", "GET", "/loans/0", b"", {}),
    ("category-missing", "GET", "/books", b"", {}),
    ("category-invalid-utf8", "GET", "/books?category=%FF", b"", {}),
    ("category-too-long", "GET", "/books?category=" + "c" * 65, b"", {}),
    ("days-out-of-range", "POST", "/loans", b'{"user_id": 1, "book_id": 2, "days": 0}', {}),
    ("bad-idempotency-key", "POST", "/loans", b'{"user_id": 1, "book_id": 2}', {"idempotency-key": "a b"}),
    ("bulk-bad-second-line", "POST", "/books:bulk", b'{"isbn":"9780306406157","title":"t","author":"a",'
     b'"category":"c","year":2000,"copies":1}\n{"isbn": ', {"content-type": "application/x-ndjson"}),
    ("status-unknown", "POST", "/loans/status", b'{"loan_id": 1, "status": "BORROWED"}\n', {}),
    ("status-second-line-malformed", "POST", "/loans/status",
     b'{"loan_id": 4, "status": "LOST"}\nnope\n', {}),
    ("unknown-route", "GET", "/nowhere", b"", {}),
    ("method-not-allowed", "DELETE", "/users/1", b"", {}),
    ("body-too-large", "POST", "/books", b"", {"content-length": str(9 * 1024 * 1024)}),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_requests_get_the_rest_targets_answer(
    split: SplitTopology, rest_target: TargetProcess, case: tuple[str, str, str, bytes, dict[str, str]]
) -> None:
    _, method, path, body, headers = case
    answers = []
    for base in (rest_target.url, f"http://{split.address}"):
        with httpx.Client(base_url=base, timeout=10) as client:
            if "content-length" in headers:  # a declared size only: the body is never sent
                response = _raw(base, f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                      f"{headers['content-length']}\r\n\r\n")  # fmt: skip
            else:
                response = client.request(method, path, content=body or None, headers=headers)
        answers.append(response)
    target, gateway = answers
    assert gateway.status_code == target.status_code, gateway.text
    assert gateway.headers["content-type"] == target.headers["content-type"] == "application/problem+json"
    assert gateway.json()["code"] == target.json()["code"]
    assert gateway.headers.get("allow") == target.headers.get("allow")


def _raw(base: str, head: str) -> httpx.Response:
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_text, body = data.split(b"\r\n\r\n", 1)
    lines = head_text.decode().split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return httpx.Response(status, headers=fields, content=body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_status_stream_applies_the_updates_before_the_bad_line(split: SplitTopology) -> None:
    body = b'{"loan_id": 5, "status": "LOST"}\n{"loan_id": 5, "status": "BORROWED"}\n'
    with httpx.Client(base_url=f"http://{split.address}") as client:
        refused = client.post("/loans/status", content=body)
        assert refused.status_code == 400 and refused.json()["code"] == "InvalidArgument"
        assert client.get("/loans/5").json()["status"] == "LOST", "the first update stayed applied"


# ---- bench serve gateway ---------------------------------------------------------------------------------
def _serve_gateway(*extra: str) -> tuple[subprocess.Popen[bytes], dict[str, str], str]:
    argv = [sys.executable, "-m", "bench.cli", "serve", "gateway", "--backend-protocol", "rest"]
    argv += ["--dataset", "tiny", "--clock", FIXED_CLOCK, *extra]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    words = line.split()
    assert words[:2] == ["READY", "gateway"], (
        line,
        process.stderr.read() if process.poll() is not None else "",
    )
    tokens = dict(word.split("=", 1) for word in words[3:])
    return process, tokens, words[2]


def _gone(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_serve_gateway_starts_three_processes_and_stops_them_on_sigterm() -> None:
    process, tokens, address = _serve_gateway()
    try:
        assert set(tokens) == {
            "backend", "books", "books_pid", "circulation", "circulation_pid", "gateway_pid"
        }  # fmt: skip
        assert tokens["backend"] == "rest" and int(tokens["gateway_pid"]) == process.pid
        backends = [int(tokens["books_pid"]), int(tokens["circulation_pid"])]
        for pid in backends:
            assert Path(f"/proc/{pid}/status").read_text().count(f"PPid:\t{process.pid}") == 1
        assert httpx.get(f"http://{address}/books/1").status_code == 200
        assert httpx.get(f"http://{tokens['books']}/books/1").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert all(_gone(pid) for pid in backends), "a backend outlived the gateway"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_backends_end_when_the_gateway_is_killed_outright() -> None:
    process, tokens, _ = _serve_gateway("--placement", "gateway=0,books=0,circulation=0")
    try:
        backends = [int(tokens["books_pid"]), int(tokens["circulation_pid"])]
        for pid in (process.pid, *backends):
            assert os.sched_getaffinity(pid) == {0}
        process.kill()
        process.wait()
        assert all(_gone(pid) for pid in backends), "a backend outlived a killed gateway"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["circulation"], "the circulation service needs --books HOST:PORT"),
        (["gateway", "--books", "127.0.0.1:1"], "give both --books and --circulation"),
        (["gateway", "--cpu", "0", "--placement", "books=0"], "give --cpu"),
        (["gateway", "--placement", "proxy=0"], "--placement 'proxy=0': expected ROLE=CPUS"),
        (["gateway", "--backend-timeout", "0"], "--backend-timeout 0"),
    ],
)
def test_bad_options_are_one_message_and_exit_2(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "serve", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("bench serve: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_attached_gateway_that_finds_no_backend_says_so() -> None:
    argv = [sys.executable, "-m", "topology", "serve", "gateway", "--books", "127.0.0.1:9", "--circulation"]
    argv += ["127.0.0.1:9", "--backend-timeout", "0.5", "--ready-timeout", "1"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "the books service at 127.0.0.1:9 does not answer" in done.stderr, done.stderr
