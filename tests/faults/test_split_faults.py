"""A backend of the split topology killed under load, then restarted.

Several clients read books (books service A) and users (circulation service B) through the gateway while A
is killed (SIGKILL) and later restarted on its port. Book reads must fail fast with a clear 503 while A is
gone and succeed again after it is back; user reads must go on succeeding throughout; no request may hang
(each one ends within the inter-service deadline plus a margin); and nothing may be left running.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.clients import RemoteError, TransportError, make_client
from tests.topology.conftest import BACKEND_PROTOCOLS, FIXED_CLOCK, assert_gone
from topology.launch import SplitTopology, start_split

pytestmark = pytest.mark.slow

TIMEOUT_S = 1.0
CLIENTS = 4
DOWN_AFTER_S = 1.5  # A is killed this long after the load starts
DOWN_FOR_S = 2.0  # and restarted this long after that
RUN_S = 7.0


@dataclass(frozen=True)
class Call:
    operation: str  # "book" or "user"
    started: float  # seconds since the load began
    latency_s: float
    outcome: str  # "ok", an error kind ("Unavailable", …) or "transport:<reason>"
    detail: str


def load(topology: SplitTopology, stop: threading.Event, began: float, seed: int, calls: list[Call]) -> None:
    rng = random.Random(seed)
    client = make_client("rest-lean", topology.address, timeout_s=30.0)
    try:
        while not stop.is_set():
            operation = rng.choice(("book", "user"))
            started = time.monotonic()
            outcome, detail = "ok", ""
            try:
                if operation == "book":
                    client.get_book(rng.randint(1, 11))
                else:
                    client.get_user(rng.randint(1, 5))
            except RemoteError as exc:
                outcome, detail = exc.kind.value, exc.message
            except TransportError as exc:
                outcome, detail = f"transport:{exc.reason}", exc.message
            calls.append(Call(operation, started - began, time.monotonic() - started, outcome, detail))
    finally:
        client.close()


@pytest.fixture(params=BACKEND_PROTOCOLS)
def topology(request: pytest.FixtureRequest) -> Iterator[SplitTopology]:
    started = start_split(request.param, dataset="tiny", clock=FIXED_CLOCK, backend_timeout_s=TIMEOUT_S)
    yield started
    started.stop()
    assert_gone(started)


def test_books_service_killed_under_load(topology: SplitTopology) -> None:
    backend = topology.options.backend_protocol
    calls: list[Call] = []
    stop = threading.Event()
    began = time.monotonic()
    workers = [
        threading.Thread(target=load, args=(topology, stop, began, seed, calls), daemon=True)
        for seed in range(CLIENTS)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(DOWN_AFTER_S)
        killed_at = time.monotonic() - began
        topology.books.process.kill()
        topology.books.process.wait()
        time.sleep(DOWN_FOR_S)
        restarted_at = time.monotonic() - began
        topology.restart("books")
        back_at = time.monotonic() - began  # A printed READY
        time.sleep(max(0.0, RUN_S - back_at))
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert not any(worker.is_alive() for worker in workers), "a client hung"

    books = [c for c in calls if c.operation == "book"]
    users = [c for c in calls if c.operation == "user"]
    assert len(books) > 20 and len(users) > 20, (len(books), len(users))
    slowest = max(c.latency_s for c in calls)
    assert slowest < TIMEOUT_S + 2.0, f"a call took {slowest:.2f} s: a hang, not a deadline"

    assert all(c.outcome == "ok" for c in users), {c.outcome for c in users if c.outcome != "ok"}
    before = [c for c in books if c.started + c.latency_s < killed_at]
    assert before and all(c.outcome == "ok" for c in before)
    down = [c for c in books if c.started > killed_at + 0.05 and c.started + c.latency_s < restarted_at]
    assert down, "no book read while the books service was down"
    assert {c.outcome for c in down} == {"Unavailable"}, {c.outcome for c in down}
    assert all("the books service at" in c.detail for c in down)
    fail_fast = max(c.latency_s for c in down)
    assert fail_fast < TIMEOUT_S, f"with A gone, a book read took {fail_fast:.2f} s to fail"

    after = sorted((c for c in books if c.started > back_at), key=lambda c: c.started)
    assert after and after[-1].outcome == "ok", "book reads did not come back"
    first_ok = next(c for c in after if c.outcome == "ok")
    recovery = first_ok.started + first_ok.latency_s - back_at
    assert recovery < 3.0, f"book reads came back {recovery:.2f} s after the books service"
    print(
        f"\n{backend}: {len(calls)} calls, {len(down)} book reads failed while A was down "
        f"(slowest failure {fail_fast * 1000:.0f} ms), user reads all ok, "
        f"book reads back {recovery * 1000:.0f} ms after A's READY"
    )

    codes = topology.stop()
    assert codes["gateway"] == 0 and codes["circulation"] == 0
    assert_gone(topology)
