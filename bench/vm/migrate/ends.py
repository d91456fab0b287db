"""The two libvirts of a migration (private daemons started here, or given URIs) and their shared files."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.vm.connection import Hypervisor
from bench.vm.errors import DestinationUnreachable, LibvirtUnavailable, MigrationError
from bench.vm.migrate.daemons import DaemonPair, DaemonUser
from bench.vm.migrate.plan import MigratePlan, Transport

__all__ = ["Ends", "open_ends", "stage"]


@dataclass
class Ends:
    """The two libvirts of the migration, and the directories their QEMUs read and write."""

    source: Hypervisor
    destination: Hypervisor
    dconnuri: str  # the destination as the source daemon reaches it
    pair: DaemonPair
    files_dir: Path  # kernel, initramfs, image: readable by every QEMU
    guests_dir: Path  # per-guest serial and load files, written by QEMU
    migrations: int = 0

    def migration_target(self, transport: Transport | None) -> tuple[str | None, str | None]:
        """(migration URI, listen address) of the next migration."""
        self.migrations += 1
        if transport == "unix":
            # No TCP at all: the destination QEMU listens on a unix socket in a directory its account owns.
            sockets = self.pair.directory("migrate", writable_by_daemons=True)
            return f"unix://{sockets / f'{self.migrations}.sock'}", None
        if transport == "tcp":
            # A port from the destination's migration_port range, on loopback (listen address per call).
            return "tcp://127.0.0.1", "127.0.0.1"
        return None, None

    def guest_dir(self, name: str, *, anyone: bool) -> Path:
        return self.pair.directory(f"guests/{name}", writable_by_daemons=True, anyone=anyone)


def _connect(uri: str, role: str, pid_dir: Path | None) -> Hypervisor:
    try:
        return Hypervisor(uri, pid_dir=pid_dir)
    except LibvirtUnavailable as exc:
        if role == "destination":
            raise DestinationUnreachable(f"cannot reach the destination libvirt {uri}: {exc}") from exc
        raise


@contextlib.contextmanager
def open_ends(plan: MigratePlan, user: DaemonUser | None = None) -> Iterator[Ends]:
    """Start the private daemons the plan needs, connect to both ends, check they can migrate to each other;
    on exit destroy every guest and stop the daemons by pid."""
    roles = tuple(
        role
        for role, uri in (("source", plan.source_uri), ("destination", plan.destination_uri))
        if uri is None
    )
    with DaemonPair(user, roles=roles) as pair:
        hvs: dict[str, Hypervisor] = {}
        try:
            for role, uri in (("source", plan.source_uri), ("destination", plan.destination_uri)):
                daemon = pair.daemons.get(role)
                if daemon is not None:
                    hvs[role] = _connect(daemon.spec.uri, role, daemon.spec.pid_dir)
                else:
                    hvs[role] = _connect(str(uri), role, None)
            if hvs["source"].host_uuid() == hvs["destination"].host_uuid():
                raise MigrationError(
                    f"the source ({hvs['source'].uri}) and destination ({hvs['destination'].uri}) report the "
                    "same host UUID, and libvirt refuses to migrate between them; leave --to and "
                    "--libvirt-uri out to use two private daemons with distinct host UUIDs"
                )
            files = pair.directory("files", writable_by_daemons=False)
            guests = pair.directory("guests", writable_by_daemons=True, anyone=not plan.local_pair)
            dconnuri = plan.destination_uri or pair.daemons["destination"].spec.uri
            yield Ends(hvs["source"], hvs["destination"], dconnuri, pair, files, guests)
        finally:
            for hv in hvs.values():
                hv.close()  # destroys every guest it tracks, before the daemons stop


def stage(path: Path, directory: Path) -> Path:
    """The file at a path every QEMU can read (the cache is often under /root): a hard link, else a copy."""
    target = directory / path.name
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
            target.chmod(0o644)
    return target
