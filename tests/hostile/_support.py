"""Shared machinery of the hostile suite: live targets, the per-case guard (time, memory, liveness, leaks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.clients import LibraryClient, RemoteError, make_client
from bench.load.processes import TargetProcess, start_target
from targets.core import ErrorKind
from targets.limits import LIMITS

__all__ = [
    "ANSWER_BOUND_S",
    "DOMAIN_KINDS",
    "FIXED_CLOCK",
    "PEAK_GROWTH_BOUND",
    "PROTOCOLS",
    "RSS_GROWTH_BOUND",
    "Case",
    "HttpAnswer",
    "LiveTarget",
    "Secrets",
    "assert_problem",
    "http_exchange",
    "launch",
    "memory",
    "outcome",
    "send_in_background",
]

PROTOCOLS = ("grpc", "rest", "soap")
FIXED_CLOCK = "fixed:2026-01-15T12:00:00+00:00"
MIB = 1 << 20

# Every hostile request must be answered (or its connection closed) within this many seconds. Generous on
# purpose: these VMs lose the CPU to the hypervisor in bursts, and a 50 MB upload alone takes a moment.
ANSWER_BOUND_S = 5.0
# The normal request that follows each case must be answered within this many seconds.
SERVE_BOUND_S = 5.0
# Resident memory still held after a case. A case may legitimately leave a little behind (the allocator keeps
# freed pages, a test adds records), but never the hostile payload itself: the largest payload the servers
# accept is LIMITS.max_body_bytes (8 MiB) and every payload bigger than that must be refused unread.
RSS_GROWTH_BOUND = 50 * MIB
# Peak resident memory during a case, above the level before it. The worst legitimate transient is lxml's
# tree of an 8 MiB SOAP body (about 20 bytes of tree per byte of XML); anything above 32 times the body limit
# is amplification (before the fix in targets/soap/_spyne.py, 6 MB of bad attributes cost 600 MB).
PEAK_GROWTH_BOUND = 32 * LIMITS.max_body_bytes
DOMAIN_KINDS = frozenset(
    {ErrorKind.NOT_FOUND, ErrorKind.INVALID_ARGUMENT, ErrorKind.ALREADY_EXISTS, ErrorKind.FAILED_PRECONDITION}
)
_PASSWD_MARKER = b"root:x:0:0:"


# ---- process memory --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Memory:
    rss: int  # VmRSS, bytes
    peak: int  # VmHWM, bytes (since the last reset_peak)


def memory(pid: int) -> Memory:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return Memory(rss=values["VmRSS"], peak=values["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Start a new VmHWM window (Linux: writing 5 to clear_refs); False where the kernel refuses it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ---- targets ---------------------------------------------------------------------------------------------
@dataclass
class LiveTarget:
    """A target process plus the normal client that checks it still serves."""

    protocol: str
    process: TargetProcess
    client: LibraryClient

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def pid(self) -> int:
        return self.process.pid

    def still_serves(self) -> None:
        started = time.monotonic()
        book = self.client.get_book(1)
        elapsed = time.monotonic() - started
        assert book.id == 1, f"{self.protocol}: GetBook(1) returned {book}"
        assert elapsed < SERVE_BOUND_S, f"{self.protocol}: GetBook(1) took {elapsed:.1f} s"

    def stderr_size(self) -> int:
        path = self.process.stderr_file
        return path.stat().st_size if path is not None and path.exists() else 0

    def stderr_since(self, offset: int) -> str:
        path = self.process.stderr_file
        if path is None or not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def stop(self) -> int | None:
        """Close the client, check the process is still alive, stop it by pid; returns its exit code."""
        self.client.close()
        alive = self.process.alive()
        code = self.process.stop()
        assert alive, (
            f"{self.protocol} target died during the module (exit {code}):\n{self.process.stderr_tail()}"
        )
        return code


def launch(protocol: str) -> LiveTarget:
    """A fresh target on loopback (tiny dataset, fixed clock), warmed up by a few calls of each kind."""
    process = start_target(protocol, dataset="tiny", clock=FIXED_CLOCK)
    try:
        client = make_client(protocol, process.address, timeout_s=30.0)
        # Warm-up, so first-call caches (WSDL, schema, code paths) do not count as growth of the first case.
        for _ in range(3):
            client.get_book(1)
            client.list_books_by_category("size-10")
            client.get_overdue_loans()
    except BaseException:
        process.stop()
        raise
    return LiveTarget(protocol, process, client)


# ---- secrets that must never leak --------------------------------------------------------------------------
@dataclass(frozen=True)
class Secrets:
    """A temporary file with a random marker; hostile requests point at it (and at /etc/passwd)."""

    path: Path
    marker: bytes

    @property
    def needles(self) -> tuple[bytes, ...]:
        return (self.marker, _PASSWD_MARKER)


# ---- the per-case guard ------------------------------------------------------------------------------------
@dataclass
class _Baseline:
    memory: Memory
    stderr_offset: int
    peak_tracked: bool


@dataclass
class Case:
    """Checks around one hostile case: (1) answer time, (2) still serving, (3) memory, (4) no leaked files.

    Tests call `record()` with every byte they receive and wrap the hostile exchange in `answered_within()`;
    `finish()` runs after the test body (see conftest) and checks the rest on every target involved.
    """

    targets: Sequence[LiveTarget]
    secrets: Secrets
    received: list[bytes] = field(default_factory=list)
    _baselines: dict[str, _Baseline] = field(default_factory=dict)

    @property
    def target(self) -> LiveTarget:
        assert len(self.targets) == 1, "this case runs against several targets; use .targets"
        return self.targets[0]

    def begin(self) -> None:
        for t in self.targets:
            tracked = reset_peak(t.pid)
            self._baselines[t.protocol] = _Baseline(memory(t.pid), t.stderr_size(), tracked)

    def record(self, data: bytes | bytearray | str) -> bytes:
        raw = data.encode(errors="surrogateescape") if isinstance(data, str) else bytes(data)
        self.received.append(raw)
        return raw

    @contextlib.contextmanager
    def answered_within(self, seconds: float = ANSWER_BOUND_S) -> Iterator[None]:
        started = time.monotonic()
        yield
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"the hostile exchange took {elapsed:.2f} s (bound {seconds} s)"

    def finish(self) -> None:
        for t in self.targets:
            base = self._baselines[t.protocol]
            assert t.process.alive(), f"{t.protocol} target died:\n{t.process.stderr_tail()}"
            t.still_serves()
            now = memory(t.pid)
            growth = now.rss - base.memory.rss
            assert growth < RSS_GROWTH_BOUND, f"{t.protocol}: VmRSS grew by {growth / MIB:.1f} MiB"
            if base.peak_tracked:
                peak = now.peak - base.memory.rss
                assert peak < PEAK_GROWTH_BOUND, (
                    f"{t.protocol}: VmHWM rose {peak / MIB:.1f} MiB during the case"
                )
            # An unexpected server error is logged with its traceback; hostile input must never cause one.
            logged = t.stderr_since(base.stderr_offset)
            assert "Traceback" not in logged, f"{t.protocol} logged an unexpected error:\n{logged[-3000:]}"
        for data in self.received:
            for needle in self.secrets.needles:
                assert needle not in data, f"file content {needle!r} leaked into a response"


# ---- outcomes of normal-client calls -----------------------------------------------------------------------
def outcome(call: Callable[[], object]) -> str:
    """ "ok" or the domain error kind; anything else (Internal, transport failure) fails the calling test."""
    try:
        call()
    except RemoteError as exc:
        assert exc.kind in DOMAIN_KINDS, f"not a domain error: {exc}"
        return exc.kind.value
    return "ok"


# ---- raw HTTP/1.1 ------------------------------------------------------------------------------------------
@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes
    closed: bool  # the server closed the connection after (or instead of) this answer

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def _read_answer(sock: socket.socket, deadline: float) -> HttpAnswer:
    raw = b""
    closed = False

    def more() -> bool:
        nonlocal raw, closed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            return False
        except OSError:  # reset: as final as a FIN
            chunk = b""
        if not chunk:
            closed = True
            return False
        raw += chunk
        return True

    while b"\r\n\r\n" not in raw:
        if not more():
            return HttpAnswer(0, {}, b"", raw, closed)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]) and more():
            body = raw.partition(b"\r\n\r\n")[2]
    elif headers.get("transfer-encoding") == "chunked":
        while not body.endswith(b"0\r\n\r\n") and more():
            body = raw.partition(b"\r\n\r\n")[2]
    else:
        while more():
            body = raw.partition(b"\r\n\r\n")[2]
    if not closed and "close" in headers.get("connection", "").lower():
        # The server announced the close; wait for it (bounded) so `closed` tells the truth.
        while more():
            pass
    return HttpAnswer(status, headers, body, raw, closed)


def http_exchange(
    host: str,
    port: int,
    request: bytes,
    *,
    timeout_s: float = ANSWER_BOUND_S,
    body_sender: bytes | None = None,
) -> HttpAnswer:
    """Send raw bytes, read one answer. A large `body_sender` is written by a thread while the answer is read,
    so a server that answers before reading the whole body is not deadlocked by a blocked writer."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer = None
        with contextlib.suppress(OSError):  # refused mid-way: the answer (or the close) tells why
            sock.sendall(request)
        if body_sender is not None:
            writer = send_in_background(sock, body_sender)
        try:
            return _read_answer(sock, deadline)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            if writer is not None:
                writer.join(timeout_s)


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    def write() -> None:
        view = memoryview(data)
        with contextlib.suppress(OSError):  # the server may stop reading and close: expected
            for start in range(0, len(view), 1 << 20):
                sock.sendall(view[start : start + (1 << 20)])

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def assert_problem(answer: HttpAnswer, status: int | Sequence[int]) -> dict[str, object]:
    """An RFC 9457 problem with a domain error code and the expected HTTP status."""
    expected = (status,) if isinstance(status, int) else tuple(status)
    assert answer.status in expected, f"HTTP {answer.status} (wanted {expected}): {answer.raw[:300]!r}"
    assert answer.content_type == "application/problem+json", answer.raw[:300]
    problem: dict[str, object] = orjson.loads(answer.body)
    assert problem["status"] == answer.status
    assert problem["code"] in {k.value for k in DOMAIN_KINDS}, problem
    return problem
