"""One live migration through libvirt's API (migrateToURI3, LIVE | PEER2PEER), watched, timed and abortable.

The call blocks for the whole migration, so it runs in a worker thread while the calling (main) thread
samples the job statistics, enforces the timeout and receives Ctrl-C: on either it asks libvirt to abort the
job, waits for the call to return and then tells on which side the guest is running.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.vm.connection import DomainHandle, Hypervisor
from bench.vm.errors import MigrationError

__all__ = ["JobSample", "MigrationOutcome", "MigrationRequest", "migrate"]

Side = Literal["source", "destination", "both", "none"]
POLL_S = 0.05  # job statistics every 50 ms: iterations last ~0.1-1 s here
ABORT_WAIT_S = 60.0  # after an abort request, the call returns once QEMU has cancelled
SETTLE_S = 10.0  # how long libvirt may take to tidy up either end once the call returned


@dataclass(frozen=True)
class MigrationRequest:
    """What to ask libvirt for, as data (printed by --dry-run, recorded in the manifest)."""

    dconnuri: str  # the destination libvirt, as the source daemon reaches it (peer to peer)
    migrate_uri: str | None  # where QEMU streams the memory; None: libvirt's choice (tcp to the dest host)
    listen_address: str | None  # where the destination QEMU listens, for tcp://127.0.0.1
    dest_xml: str  # the destination's domain XML: the same guest, its own serial and load files
    max_downtime_ms: int | None  # None: QEMU's default (300 ms)
    bandwidth_mib_s: int | None  # None: unlimited
    timeout_s: float

    def flag_names(self) -> list[str]:
        # LIVE: the guest keeps running while its memory is copied (pre-copy), paused only to switch over.
        # PEER2PEER: the source daemon talks to the destination itself; this process only asks.
        return ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER"]

    def param_items(self) -> dict[str, str | int]:
        """migrateToURI3's typed parameters by libvirt's constant names (the XML abbreviated)."""
        items: dict[str, str | int] = {"VIR_MIGRATE_PARAM_DEST_XML": "<domain …> (destination XML)"}
        if self.migrate_uri is not None:
            items["VIR_MIGRATE_PARAM_URI"] = self.migrate_uri
        if self.listen_address is not None:
            # Per call: libvirt 9 refuses migration_address = 127.0.0.1 in qemu.conf.
            items["VIR_MIGRATE_PARAM_LISTEN_ADDRESS"] = self.listen_address
        if self.bandwidth_mib_s is not None:
            items["VIR_MIGRATE_PARAM_BANDWIDTH"] = self.bandwidth_mib_s
        return items

    def flags(self, libvirt: Any) -> int:
        value = 0
        for name in self.flag_names():
            value |= int(getattr(libvirt, name))
        return value

    def params(self, libvirt: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in self.param_items().items():
            params[getattr(libvirt, name)] = value
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = self.dest_xml
        return params


@dataclass(frozen=True)
class JobSample:
    t: float  # host time.monotonic()
    stats: dict[str, int]


@dataclass
class MigrationOutcome:
    started_t: float  # host monotonic time of the migrateToURI3 call
    ended_t: float  # when it returned
    completed: bool
    side: Side  # where the guest runs once the call has returned
    error: str | None = None  # libvirt's message when the call failed
    aborted: Literal["timeout", "interrupted"] | None = None
    stats: dict[str, int] = field(default_factory=dict)  # completed job statistics, from the destination
    samples: list[JobSample] = field(default_factory=list)
    max_downtime_ms: int | None = None  # as libvirt reports it for this migration
    destination: DomainHandle | None = None  # the guest on the destination, once it arrived there
    arriving: DomainHandle | None = None  # tracked on the destination from the start: its lifecycle events

    @property
    def api_wall_s(self) -> float:
        return self.ended_t - self.started_t


def _side(src: Hypervisor, dst: Hypervisor, name: str) -> Side:
    """Where the guest runs (state running, not a paused incoming copy), once libvirt has settled: after
    a failed or aborted migration it removes the destination's incoming QEMU a moment after the call."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        on_source = src.state(name) == "running"
        on_destination = dst.state(name) == "running"
        settled = on_source != on_destination and (dst.state(name) is None or on_destination)
        gone = src.state(name) is None and dst.state(name) is None  # nothing left to settle
        if settled or gone or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if on_source and on_destination:
        return "both"
    return "source" if on_source else "destination" if on_destination else "none"


def migrate(
    src: Hypervisor,
    handle: DomainHandle,
    dst: Hypervisor,
    request: MigrationRequest,
    *,
    log: Callable[[str], None] | None = None,
) -> MigrationOutcome:
    """Live-migrate the guest of `handle` from `src` to `dst`.

    Returns the outcome also when the migration failed or timed out (then `completed` is False and `side`
    tells where the guest is). Ctrl-C and SIGTERM abort the migration and propagate once the call returned.
    The destination's domain is tracked by `dst` from the start, so closing `dst` destroys it whatever
    happened.
    """
    libvirt = src.libvirt
    dom = handle.domain
    arriving = dst.expect(handle.name)
    max_downtime: int | None = None
    if request.max_downtime_ms is not None:
        try:
            dom.migrateSetMaxDowntime(request.max_downtime_ms, 0)
        except libvirt.libvirtError as exc:
            raise MigrationError(
                f"libvirt refused --max-downtime {request.max_downtime_ms} ms for {handle.name}: {exc}"
            ) from exc
    with contextlib.suppress(libvirt.libvirtError, AttributeError):
        max_downtime = int(dom.migrateGetMaxDowntime(0))
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            dom.migrateToURI3(request.dconnuri, request.params(libvirt), request.flags(libvirt))
            result["ok"] = True
        except libvirt.libvirtError as exc:
            result["error"] = " ".join(str(exc).split())
        finally:
            result["ended_t"] = time.monotonic()

    worker = threading.Thread(target=call, name=f"migrate:{handle.name}", daemon=True)
    samples: list[JobSample] = []
    aborted: Literal["timeout", "interrupted"] | None = None
    started = time.monotonic()
    worker.start()
    try:
        while worker.is_alive():
            worker.join(POLL_S)
            with contextlib.suppress(libvirt.libvirtError):
                stats = dom.jobStats(0)
                if stats.get("type", 0) != libvirt.VIR_DOMAIN_JOB_NONE:
                    samples.append(JobSample(time.monotonic(), {k: int(v) for k, v in stats.items()}))
            if worker.is_alive() and time.monotonic() - started > request.timeout_s:
                aborted = "timeout"
                if log:
                    log(f"the migration did not finish within {request.timeout_s:g} s: aborting it")
                _abort(dom, libvirt, worker)
    except BaseException:
        # Ctrl-C / SIGTERM: cancel the job first, so the guest stays whole on one side, then propagate.
        aborted = "interrupted"
        if log:
            log("interrupted: aborting the migration")
        _abort(dom, libvirt, worker)
        side = _side(src, dst, handle.name)
        if log:
            log(f"after the abort the guest runs on: {side}")
        raise
    outcome = MigrationOutcome(
        started_t=started,
        ended_t=result.get("ended_t", time.monotonic()),
        completed=bool(result.get("ok")),
        side=_side(src, dst, handle.name),
        error=result.get("error"),
        aborted=aborted,
        samples=samples,
        max_downtime_ms=max_downtime,
        arriving=arriving,
    )
    if outcome.completed and dst.attach(arriving):
        outcome.destination = arriving
        with contextlib.suppress(libvirt.libvirtError):
            completed = arriving.domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            outcome.stats = {k: int(v) for k, v in completed.items()}
    return outcome


def _abort(dom: Any, libvirt: Any, worker: threading.Thread) -> None:
    # Refused only once the switchover has begun; then the migration completes and the guest is on the
    # destination, which the caller finds out from the side.
    with contextlib.suppress(libvirt.libvirtError):
        dom.abortJob()
    worker.join(ABORT_WAIT_S)
