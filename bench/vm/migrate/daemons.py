"""Two private libvirtd daemons in session mode: the source and the destination of a migration on one host."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.vm.errors import DaemonError
from bench.vm.owner import kill_guests_of, owner_alive, proc_start_time, write_owner

__all__ = [
    "DAEMON_ACCOUNT",
    "DaemonPair",
    "DaemonSpec",
    "DaemonUser",
    "SessionDaemon",
    "daemon_user",
    "daemons_base",
    "reap_stale_daemons",
]

LIBVIRTD = Path("/usr/sbin/libvirtd")
# As root, libvirtd always runs in system mode (one per host, /run/libvirt); a second, private daemon is only
# possible in session mode, which needs a non-root user. Debian's QEMU account is the natural one.
DAEMON_ACCOUNT = "libvirt-qemu"
# Each daemon's incoming TCP migrations (only used with --transport tcp) get their own port range, so the
# two never race for a port.
MIGRATION_PORTS = {"source": (49152, 49183), "destination": (49184, 49215)}
ROLES = ("source", "destination")
# Directory names kept short: libvirt puts QEMU's monitor socket under $XDG_CONFIG_HOME, about 64 bytes
# below it, and a unix socket path has at most 107.
_ROLE_DIR = {"source": "src", "destination": "dst"}
_MONITOR_SOCKET_TAIL = len("/libvirt/qemu/lib/domain-999-bench-seabios-pinned/monitor.sock")
_SOCKET_PATH_MAX = 107
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def daemons_base() -> Path:
    """Where the daemons' directories live: short paths (unix sockets are limited to 107 bytes) that the
    daemon account can reach (the cache directory is often under /root, which it cannot)."""
    return Path(tempfile.gettempdir()) / "bench-libvirtd"


@dataclass(frozen=True)
class DaemonUser:
    """The account the daemons (and so every QEMU they start) run as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, e.g. the group of /dev/kvm


def daemon_user() -> DaemonUser:
    """libvirt-qemu when we are root (root cannot run a session daemon); otherwise ourselves."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return DaemonUser(me.pw_name, me.pw_uid, me.pw_gid, tuple(os.getgroups()))
    try:
        account = pwd.getpwnam(DAEMON_ACCOUNT)
    except KeyError:
        raise DaemonError(
            f"the private libvirt daemons run as {DAEMON_ACCOUNT!r}, which does not exist; as root run: "
            f"groupadd --system {DAEMON_ACCOUNT} && useradd --system --no-create-home --shell "
            f"/usr/sbin/nologin --gid {DAEMON_ACCOUNT} {DAEMON_ACCOUNT}"
        ) from None
    groups = []
    with contextlib.suppress(OSError):
        kvm = os.stat("/dev/kvm")
        if kvm.st_mode & 0o060 == 0o060:  # group read-write: joining the group gives KVM
            groups.append(kvm.st_gid)
    return DaemonUser(account.pw_name, account.pw_uid, account.pw_gid, tuple(groups))


@dataclass(frozen=True)
class DaemonSpec:
    """Everything one daemon needs, as data: its directories, configuration files and command line."""

    role: str  # "source" | "destination"
    root: Path
    host_uuid: str
    migration_ports: tuple[int, int]

    @property
    def socket(self) -> Path:
        return self.root / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "libvirtd.log"

    @property
    def qemu_log_dir(self) -> Path:
        return self.root / "cache" / "libvirt" / "qemu" / "log"

    @property
    def pid_dir(self) -> Path:
        """Where the session driver keeps a pid file per running domain."""
        return self.root / "run" / "libvirt" / "qemu" / "run"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "libvirt" / "libvirtd.pid"

    @property
    def config_home(self) -> Path:
        # The daemon's directory itself: one level less below the monitor sockets (see _ROLE_DIR).
        return self.root

    def directories(self) -> list[Path]:
        return [self.root / name for name in ("home", "libvirt", "run", "cache", "sock")]

    def environment(self) -> dict[str, str]:
        # Session mode takes every path from these: nothing of the account's real home or runtime dir.
        return {
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
        }

    def config_files(self) -> dict[Path, str]:
        low, high = self.migration_ports
        libvirtd_conf = "\n".join(
            [
                f"# Written by bench vm migrate: the private {self.role} daemon of a live migration.",
                "# Its own host UUID: libvirt refuses a migration whose two ends report the same host.",
                f'host_uuid = "{self.host_uuid}"',
                "# The socket sits in this daemon's directory (mode 0700: only its account and root get in),",
                "# so no authentication is needed on it.",
                f'unix_sock_dir = "{self.socket.parent}"',
                'auth_unix_rw = "none"',
                f'log_outputs = "3:file:{self.log}"',
                "",
            ]
        )
        qemu_conf = "\n".join(
            [
                "# Written by bench vm migrate.",
                "# QEMU's own stderr goes to a plain file: there is no virtlogd.",
                'stdio_handler = "file"',
                "# Incoming TCP migrations (--transport tcp) listen here, the other daemon elsewhere.",
                f"migration_port_min = {low}",
                f"migration_port_max = {high}",
                "",
            ]
        )
        config = self.config_home / "libvirt"
        return {config / "libvirtd.conf": libvirtd_conf, config / "qemu.conf": qemu_conf}

    def argv(self) -> list[str]:
        # No --daemon: it stays our child, so its pid is known and it is stopped by that pid.
        return [str(LIBVIRTD)]


def new_spec(role: str, run_root: Path) -> DaemonSpec:
    return DaemonSpec(
        role=role,
        root=run_root / _ROLE_DIR[role],
        host_uuid=str(uuid.uuid4()),
        migration_ports=MIGRATION_PORTS[role],
    )


def dry_run_text(run_root: Path, user: DaemonUser) -> str:
    """Both daemons' command lines, environments and configuration files, without starting anything."""
    lines = []
    for role in ROLES:
        spec = new_spec(role, run_root)
        lines.append(f"# {role} daemon, run as {user.name} (uid {user.uid}); connect: {spec.uri}")
        env = " ".join(f"{key}={value}" for key, value in spec.environment().items())
        lines.append(f"env -i {env} {' '.join(spec.argv())}")
        for path, text in spec.config_files().items():
            lines.append(f"## {path}")
            lines.append(text.rstrip("\n"))
        lines.append("")
    return "\n".join(lines)


class SessionDaemon:
    """One libvirtd in session mode with private directories; started and stopped by its pid."""

    def __init__(self, spec: DaemonSpec, user: DaemonUser) -> None:
        self.spec = spec
        self.user = user
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _own(self, path: Path, mode: int) -> None:
        path.chmod(mode)
        if os.geteuid() == 0 and self.user.uid != 0:
            os.chown(path, self.user.uid, self.user.gid)

    def start(self) -> None:
        if not LIBVIRTD.is_file():
            raise DaemonError(f"{LIBVIRTD} not found: install the Debian package libvirt-daemon")
        self.spec.root.mkdir(parents=True)
        self._own(self.spec.root, 0o755)
        for directory in self.spec.directories():
            directory.mkdir(parents=True, exist_ok=True)
            # The account must create its files here; nobody else needs to look into the socket dir.
            self._own(directory, 0o700 if directory.name == "sock" else 0o755)
        for path, text in self.spec.config_files().items():
            path.write_text(text)
            self._own(path, 0o644)
        stdout = (self.spec.root / "libvirtd.stdout").open("wb")
        try:
            self.process = subprocess.Popen(
                self.spec.argv(),
                env=self.spec.environment(),
                cwd=self.spec.root,
                user=self.user.uid,
                group=self.user.gid,
                extra_groups=list(self.user.groups),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal reaches bench only, which destroys the guests
                # first and then stops the daemons in order.
                start_new_session=True,
            )
        except OSError as exc:
            raise DaemonError(f"cannot start {LIBVIRTD} as {self.user.name}: {exc}") from exc
        finally:
            stdout.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.spec.socket.exists():
            if self.process.poll() is not None:
                raise DaemonError(
                    f"the {self.spec.role} libvirtd exited with code {self.process.returncode} before "
                    f"listening: {self.last_words()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DaemonError(
                    f"the {self.spec.role} libvirtd did not create {self.spec.socket} within "
                    f"{START_TIMEOUT_S:.0f} s: {self.last_words()}"
                )
            time.sleep(0.02)

    def last_words(self) -> str:
        """The end of the daemon's stdout and log, for error messages."""
        texts = []
        for path in (self.spec.root / "libvirtd.stdout", self.spec.log):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace").strip())
        text = " | ".join(filter(None, texts))
        return " ".join(text.split())[-600:] or "(no output)"

    def stop(self) -> None:
        """SIGTERM by pid, SIGKILL if it does not exit; then kill any QEMU it left (it never does when
        every guest was destroyed first, which `DaemonPair` does)."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(STOP_TIMEOUT_S)
        kill_guests_of(self.spec.pid_dir)


class DaemonPair:
    """Start the daemons (both roles by default) under one run directory; on exit stop them and remove it.

    The caller destroys its guests before leaving the `with` block; anything left is killed by pid here.
    Logs worth keeping (libvirtd.log, QEMU's) are copied by `keep_logs` before the directory goes.
    """

    def __init__(
        self, user: DaemonUser | None = None, *, base: Path | None = None, roles: tuple[str, ...] = ROLES
    ) -> None:
        self.user = user or daemon_user()
        self.base = base or daemons_base()
        self.roles = roles
        self.root: Path | None = None
        self.daemons: dict[str, SessionDaemon] = {}

    def __enter__(self) -> DaemonPair:
        reap_stale_daemons(self.base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.root = Path(tempfile.mkdtemp(prefix="", dir=self.base))  # 8 random characters
        self.root.chmod(0o755)
        root = self.root
        longest = len(str(new_spec("destination", root).config_home)) + _MONITOR_SOCKET_TAIL
        if longest > _SOCKET_PATH_MAX:
            self.close()
            raise DaemonError(
                f"libvirt's QEMU monitor sockets under {root} would be {longest} bytes long, more "
                f"than a unix socket path may be ({_SOCKET_PATH_MAX}); set TMPDIR to a shorter directory"
            )
        write_owner(self.root)
        try:
            for role in self.roles:
                daemon = SessionDaemon(new_spec(role, self.root), self.user)
                self.daemons[role] = daemon
                daemon.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def directory(self, name: str, *, writable_by_daemons: bool, anyone: bool = False) -> Path:
        """A directory under the run root: guest files the daemons read, or guest logs QEMU writes.

        `anyone`: writable by every account (sticky), for the QEMU of a libvirt we did not start, whose
        account we do not know.
        """
        assert self.root is not None
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o1777 if anyone else 0o755)
        if writable_by_daemons and os.geteuid() == 0 and self.user.uid != 0:
            os.chown(path, self.user.uid, self.user.gid)
        return path

    def keep_logs(self, out: Path) -> None:
        """Copy each daemon's log and QEMU's per-domain logs into `out/<role>/`."""
        for role, daemon in self.daemons.items():
            target = out / role
            target.mkdir(parents=True, exist_ok=True)
            sources = [daemon.spec.log, daemon.spec.root / "libvirtd.stdout"]
            sources += sorted(daemon.spec.qemu_log_dir.glob("*.log"))
            for path in sources:
                with contextlib.suppress(OSError):
                    shutil.copyfile(path, target / path.name)

    def close(self) -> None:
        for daemon in reversed(list(self.daemons.values())):
            daemon.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _kill_daemon(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    # Only a libvirtd (pids get reused), and only one whose pid file lies in the dead owner's directory.
    if cmdline and Path(cmdline[0].decode(errors="replace")).name == LIBVIRTD.name and proc_start_time(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def reap_stale_daemons(base: Path | None = None) -> None:
    """Kill the daemons and guests a bench process left behind when it died without cleaning up (SIGKILL),
    and remove their directories."""
    base = base or daemons_base()
    if not base.is_dir():
        return
    for root in base.iterdir():
        if not root.is_dir() or owner_alive(root):
            continue
        for role in ROLES:
            spec = new_spec(role, root)
            kill_guests_of(spec.pid_dir)
            _kill_daemon(spec.pid_file)
        shutil.rmtree(root, ignore_errors=True)
