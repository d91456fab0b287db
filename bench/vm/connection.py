"""The module that touches libvirt: connections (embedded by default), transient domains, cleanup.

The one other caller of libvirt is bench.vm.migrate.live, which drives a migration of a domain started here.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.vm.cache import boot_id, cache_root
from bench.vm.domain_xml import DOMAIN_PREFIX, METADATA_NS
from bench.vm.errors import BootError, LibvirtUnavailable
from bench.vm.owner import kill_guests_of, owner_alive, write_owner

__all__ = [
    "DomainHandle",
    "Hypervisor",
    "connect",
    "embedded_uri",
    "resolve_uri",
    "signals_raise",
]

URI_ENV = "BENCH_LIBVIRT_URI"

# Written before the embedded driver starts. stdio_handler: QEMU's own stderr goes to a plain file, as
# there is no virtlogd. user/group root: without them libvirt re-probes QEMU's capabilities on every
# domain start here (~44 s). dynamic_ownership/remember_owner off: QEMU runs as root, so libvirt must not
# chown or tag host files (the guest shares the whole host root read-only).
QEMU_CONF = """\
# Written by bench.vm.connection for the embedded libvirt QEMU driver.
stdio_handler = "file"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
"""

# libvirt resolves its compiled-in QEMU account before it reads qemu.conf, so the account must exist even
# though QEMU runs as root here. Debian's libvirt-daemon-system creates it, but that package also installs
# and autostarts a NAT network, which these machines must not have.
_LIBVIRT_QEMU_ACCOUNT = "libvirt-qemu"


def _libvirt() -> types.ModuleType:
    # libvirt logs warnings (e.g. "tainted: high-privileges", as QEMU runs as root) to stderr; send them
    # to a file instead unless the user chose a log output. Read once, when libvirt initialises.
    log_file = cache_root() / "libvirt.log"
    if "LIBVIRT_LOG_OUTPUTS" not in os.environ:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        os.environ["LIBVIRT_LOG_OUTPUTS"] = f"3:file:{log_file}"
    try:
        import libvirt
    except ImportError as exc:
        raise LibvirtUnavailable(
            "libvirt-python is not installed: run `.venv/bin/pip install -e '.[vm]'` "
            "(needs the Debian packages libvirt-dev and pkg-config to build)"
        ) from exc
    module: types.ModuleType = libvirt
    return module


def _embed_base() -> Path:
    return cache_root() / "libvirt"


def _process_root() -> Path:
    # One embedded root per process: libvirt locks a root for the whole life of the process that opened
    # it, so a shared root would let only one bench process (a test run, a runner, a CLI) use VMs at once.
    return _embed_base() / f"p{os.getpid()}"


def embedded_uri(root: Path | None = None) -> str:
    return f"qemu:///embed?root={root or _process_root()}"


def resolve_uri(uri: str | None) -> str:
    """Flag beats `$BENCH_LIBVIRT_URI` beats this process's embedded driver under the cache dir."""
    return uri or os.environ.get(URI_ENV) or embedded_uri()


def reap_stale_roots() -> None:
    """Remove embedded roots of bench processes that are gone, killing any guest they left running."""
    base = _embed_base()
    if not base.is_dir():
        return
    for root in base.glob("p[0-9]*"):
        if root.is_dir() and not owner_alive(root):
            kill_guests_of(root / "run" / "qemu")
            shutil.rmtree(root, ignore_errors=True)


def _prepare_root(root: Path, *, private: bool) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    if private:
        write_owner(root)
        # Share QEMU's probed capabilities between the per-process roots: probing costs seconds.
        shared = _embed_base() / "capabilities-cache"
        shared.mkdir(parents=True, exist_ok=True)
        link = root / "cache"
        if not link.exists():
            link.symlink_to(shared, target_is_directory=True)


def _embed_root(uri: str) -> Path | None:
    prefix = "qemu:///embed?root="
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


def _ensure_qemu_account() -> None:
    try:
        pwd.getpwnam(_LIBVIRT_QEMU_ACCOUNT)
        grp.getgrnam(_LIBVIRT_QEMU_ACCOUNT)
        return
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise LibvirtUnavailable(
            f"the embedded libvirt driver needs the system account {_LIBVIRT_QEMU_ACCOUNT!r}; as root run: "
            f"groupadd --system {_LIBVIRT_QEMU_ACCOUNT} && useradd --system --no-create-home "
            f"--shell /usr/sbin/nologin --gid {_LIBVIRT_QEMU_ACCOUNT} {_LIBVIRT_QEMU_ACCOUNT}"
        )
    print(
        f"bench vm: creating system account {_LIBVIRT_QEMU_ACCOUNT!r} (libvirt needs it to exist; "
        "QEMU still runs as root)",
        file=sys.stderr,
    )
    commands = [
        ["groupadd", "--system", "-f", _LIBVIRT_QEMU_ACCOUNT],
        [
            "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin", "--gid", _LIBVIRT_QEMU_ACCOUNT, _LIBVIRT_QEMU_ACCOUNT,
        ],
    ]  # fmt: skip
    for argv in commands:
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)
        # useradd exits 9 when the user already exists (a concurrent bench process made it).
        if completed.returncode not in (0, 9):
            raise LibvirtUnavailable(f"{' '.join(argv)} failed: {completed.stderr.strip()}")


_event_loop_lock = threading.Lock()
_event_loop_started = False


def _start_event_loop(libvirt: types.ModuleType) -> None:
    """libvirt needs a running event loop for the embedded driver and for lifecycle events."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt-event-loop", daemon=True).start()
        # libvirt prints every error to stderr by default; ours are raised as exceptions instead.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _event_loop_started = True


@dataclass
class DomainHandle:
    """A running transient domain; `events` holds (monotonic time, event name) lifecycle events."""

    name: str
    _dom: Any
    _hv: Hypervisor
    started_t: float
    events: list[tuple[float, str]] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def is_active(self) -> bool:
        if self._stopped.is_set():
            return False
        libvirt = self._hv.libvirt
        try:
            return bool(self._dom.isActive())
        except libvirt.libvirtError:
            return False  # transient domains vanish once stopped

    def wait_stopped(self, timeout_s: float) -> bool:
        """Wait until the guest has stopped (powered off / destroyed); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._stopped.wait(timeout=0.05) or not self.is_active():
                return True
        return not self.is_active()

    def event_time(self, name: str) -> float | None:
        for t, event in self.events:
            if event == name:
                return t
        return None

    @property
    def domain(self) -> Any:
        """The libvirt virDomain (for the migration module); None until the domain exists here."""
        return self._dom

    def qemu_pid(self) -> int | None:
        pid_dir = self._hv.pid_dir
        if pid_dir is None:
            return None
        try:
            return int((pid_dir / f"{self.name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def destroy(self) -> None:
        self._hv.destroy(self)


_LIFECYCLE_NAMES = {
    0: "defined",
    1: "undefined",
    2: "started",
    3: "suspended",
    4: "resumed",
    5: "stopped",
    6: "shutdown",
    7: "pmsuspended",
    8: "crashed",
}


_STATE_NAMES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}


class Hypervisor:
    """One libvirt connection. Domains started through it are tracked and destroyed on exit."""

    def __init__(self, uri: str, *, pid_dir: Path | None = None) -> None:
        """`pid_dir`: where this libvirt keeps QEMU pid files, if known (the last resort of destroy)."""
        self.libvirt = _libvirt()
        self.uri = uri
        self.embed_root = _embed_root(uri)
        self.pid_dir = pid_dir or (self.embed_root / "run" / "qemu" if self.embed_root else None)
        self._private_root = self.embed_root == _process_root()
        if self.embed_root is not None:
            if self._private_root:
                reap_stale_roots()
            _prepare_root(self.embed_root, private=self._private_root)
            _ensure_qemu_account()
        _start_event_loop(self.libvirt)
        try:
            self._conn = self.libvirt.open(uri)
        except self.libvirt.libvirtError as exc:
            hint = ""
            if self.embed_root is not None:
                hint = (
                    "; is libvirt-daemon-driver-qemu installed? An explicit embedded root can be used by "
                    "one process at a time"
                )
            raise LibvirtUnavailable(f"cannot open libvirt connection {uri!r}: {exc}{hint}") from exc
        self._domains: dict[str, DomainHandle] = {}
        self._lock = threading.Lock()
        self._callback_id = self._conn.domainEventRegisterAny(
            None, self.libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
        )
        atexit.register(self._remove_private_root)
        atexit.register(self.close)
        self._reap_orphans()

    @property
    def embedded(self) -> bool:
        return self.embed_root is not None

    @property
    def host_key(self) -> str:
        """Names the hypervisor host for caches: every per-process embedded root is the same local host."""
        return "embedded-local" if self._private_root else self.uri

    def host_cpu_count(self) -> int:
        return int(self._conn.getInfo()[2])

    def versions(self) -> dict[str, str]:
        """libvirt's and the hypervisor's (QEMU's) versions as a.b.c, for manifests."""

        def dotted(number: int) -> str:
            return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"

        return {"libvirt": dotted(self._conn.getLibVersion()), "qemu": dotted(self._conn.getVersion())}

    def host_uuid(self) -> str | None:
        """The host UUID this libvirt reports (two ends of a migration must differ)."""
        caps = ET.fromstring(self._conn.getCapabilities())
        return caps.findtext("host/uuid")

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        now = time.monotonic()
        with self._lock:
            handle = self._domains.get(dom.name())
        if handle is None:
            return
        name = _LIFECYCLE_NAMES.get(event, str(event))
        handle.events.append((now, name))
        if name in ("stopped", "crashed"):
            handle._stopped.set()

    def _reap_orphans(self) -> None:
        """Destroy bench domains left by a bench process that died without cleaning up."""
        try:
            domains = self._conn.listAllDomains(self.libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        except self.libvirt.libvirtError:
            return
        for dom in domains:
            name = dom.name()
            if not name.startswith(DOMAIN_PREFIX):
                continue
            if not self.embedded and not self._owner_is_dead(dom):
                continue
            print(f"bench vm: destroying orphaned guest {name} left by an earlier run", file=sys.stderr)
            with contextlib.suppress(self.libvirt.libvirtError):
                dom.destroy()

    def _owner_is_dead(self, dom: Any) -> bool:
        # In the embedded root only one process can hold the connection, so everything there is orphaned;
        # on a shared daemon, only guests this host started in this boot from a now-dead pid are.
        try:
            meta = dom.metadata(self.libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
            owner = ET.fromstring(meta)  # the <bench:owner> element written by domain_xml.py
        except (self.libvirt.libvirtError, ET.ParseError):
            return False
        if owner.get("host") != socket.gethostname() or owner.get("boot-id") != boot_id():
            return False
        try:
            os.kill(int(owner.get("pid", "0")), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError):
            return False
        return False

    def start(self, domain_xml: str, name: str, *, autodestroy: bool = True) -> DomainHandle:
        """Create a transient domain (gone from libvirt once it stops).

        `autodestroy=False` for a guest that will be migrated: libvirt refuses to migrate an auto-destroy
        domain, so a guest left by a SIGKILLed bench is found by the daemon reaper instead.
        """
        flags = 0
        if not self.embedded and autodestroy:
            # A daemon kills the guest if our connection drops (e.g. bench was SIGKILLed).
            flags |= self.libvirt.VIR_DOMAIN_START_AUTODESTROY
        handle: DomainHandle | None = None
        with _signals_blocked():
            try:
                with self._lock:
                    handle = DomainHandle(name=name, _dom=None, _hv=self, started_t=0.0)
                    self._domains[name] = handle
                dom = self._conn.createXML(domain_xml, flags)
                handle._dom = dom
                handle.started_t = time.monotonic()
            except self.libvirt.libvirtError as exc:
                with self._lock:
                    self._domains.pop(name, None)
                raise BootError(f"libvirt could not start guest {name}: {exc}") from exc
        return handle

    def expect(self, name: str) -> DomainHandle:
        """Track a domain that will arrive here by an incoming migration: its lifecycle events are recorded
        from now on, and it is destroyed on close like the ones started here (see `attach`)."""
        with self._lock:
            handle = DomainHandle(name=name, _dom=None, _hv=self, started_t=time.monotonic())
            self._domains[name] = handle
        return handle

    def destroy_named(self, name: str) -> None:
        """Destroy the domain of that name here, tracked or not (a migrated guest, an aborted one)."""
        with self._lock:
            handle = self._domains.get(name)
        self.destroy(handle or DomainHandle(name=name, _dom=None, _hv=self, started_t=0.0))

    def state(self, name: str) -> str | None:
        """A domain's state here ("running", "paused", …), None if there is no such domain."""
        if self._conn is None:
            return None
        try:
            state = int(self._conn.lookupByName(name).state()[0])
        except self.libvirt.libvirtError:
            return None
        return _STATE_NAMES.get(state, str(state))

    def is_running(self, name: str) -> bool:
        """Whether a domain of that name runs here now (for telling where a migrated guest is)."""
        if self._conn is None:
            return False
        try:
            return bool(self._conn.lookupByName(name).isActive())
        except self.libvirt.libvirtError:
            return False

    def attach(self, handle: DomainHandle) -> bool:
        """Look up an expected domain by name; False if it is not (or no longer) here."""
        try:
            dom = self._conn.lookupByName(handle.name)
            active = bool(dom.isActive())
        except self.libvirt.libvirtError:
            return False
        handle._dom = dom
        return active

    @contextlib.contextmanager
    def running(self, domain_xml: str, name: str, *, autodestroy: bool = True) -> Iterator[DomainHandle]:
        """Start a transient domain and destroy it on exit, whatever happened (error, timeout, Ctrl-C)."""
        try:
            yield self.start(domain_xml, name, autodestroy=autodestroy)
        finally:
            # Looked up by name: a signal delivered just after createXML returned still finds it here.
            with self._lock:
                handle = self._domains.get(name)
            if handle is not None:
                self.destroy(handle)

    def destroy(self, handle: DomainHandle) -> None:
        """Stop the guest now, whatever state it is in; safe to call twice."""
        libvirt = self.libvirt
        with _signals_blocked():
            try:
                if handle._dom is None and self._conn is not None:
                    # Expected by migration but never attached: it may have arrived all the same.
                    with contextlib.suppress(libvirt.libvirtError):
                        handle._dom = self._conn.lookupByName(handle.name)
                if handle._dom is not None and handle._dom.isActive():
                    handle._dom.destroy()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
                    # Last resort where the pid files are known: kill QEMU by its pid file.
                    pid = handle.qemu_pid()
                    if pid is None:
                        raise BootError(f"could not destroy guest {handle.name}: {exc}") from exc
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            finally:
                handle._stopped.set()
                with self._lock:
                    self._domains.pop(handle.name, None)

    def active_bench_domains(self) -> list[str]:
        domains = self._conn.listAllDomains(self.libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        return sorted(d.name() for d in domains if d.name().startswith(DOMAIN_PREFIX))

    def close(self) -> None:
        with self._lock:
            handles = list(self._domains.values())
        for handle in handles:
            with contextlib.suppress(Exception):
                self.destroy(handle)
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.domainEventDeregisterAny(self._callback_id)
            with contextlib.suppress(Exception):
                conn.close()
        atexit.unregister(self.close)

    def _remove_private_root(self) -> None:
        # libvirt keeps the embedded driver (and its lock) until the process exits, so the per-process
        # root is removed only then (registered before close(), so it runs after it).
        if self._private_root and self.embed_root is not None:
            shutil.rmtree(self.embed_root, ignore_errors=True)

    def qemu_log(self, name: str) -> Path | None:
        """QEMU's own stderr log for a domain (embedded driver only)."""
        if self.embed_root is None:
            return None
        path = self.embed_root / "log" / "qemu" / f"{name}.log"
        return path if path.is_file() else None


_connections: dict[str, Hypervisor] = {}
_connections_lock = threading.Lock()


def connect(uri: str | None = None) -> Hypervisor:
    """A shared connection per URI for this process (an embedded root can be opened only once)."""
    resolved = resolve_uri(uri)
    with _connections_lock:
        hv = _connections.get(resolved)
        if hv is None or hv._conn is None:
            hv = Hypervisor(resolved)
            _connections[resolved] = hv
        return hv


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Defer SIGINT/SIGTERM while libvirt creates or destroys a domain, so Ctrl-C cannot land halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGHUP so `finally` blocks destroy guests before exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception (SIGINT already is one) where no handler is installed yet."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: types.FrameType | None) -> None:
        raise Terminated(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
