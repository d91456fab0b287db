"""Locust users for the library service: one user class per client kind, stats named by operation.

    locust -f bench/load/locustfile.py                      # dashboard; starts the targets itself
    locust -f bench/load/locustfile.py --headless -u 20 -r 20 -t 15s --protocol grpc --scenario read-heavy
    bench serve rest --port 8080 &  locust -f bench/load/locustfile.py --protocol rest --host 127.0.0.1:8080

Each task is one step of the scenario's workload (bench/load/scenarios.toml): an operation chosen by weight.
Every client call fires locust's `request` event named by operation (`GetBook`), with request_type = client
kind and the full `Measurement` in its context; streams also fire `<Operation> · first item`.

Per-run state lives on the locust `Environment` (`environment.library`, a `LoadContext`), set by the `init`
listener from the command line or by `bench run` when it drives these classes as a library; numbers leave
only through `events.request` listeners (`bench.load.recorder.Recorder.listen`).
"""

from __future__ import annotations

# gRPC's C-core must run its I/O on gevent before any channel exists (locust monkey-patches on import).
import grpc.experimental.gevent as grpc_gevent  # isort: skip

grpc_gevent.init_gevent()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import gevent  # noqa: E402
from locust import User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2])
)  # `locust -f bench/load/locustfile.py` from a checkout

from bench.clients import CLIENT_KINDS, ClientError, TransportError, make_client, protocol_of  # noqa: E402
from bench.clients.measure import Measurement  # noqa: E402
from bench.load.placement import choose_placement  # noqa: E402
from bench.load.processes import TargetProcess, start_target  # noqa: E402
from bench.load.recorder import Recorder  # noqa: E402
from bench.load.scenarios import Scenario, load_scenarios  # noqa: E402
from bench.load.workload import Workload  # noqa: E402
from targets.lifetime import die_with_parent  # noqa: E402

__all__ = ["FIRST_ITEM", "USER_CLASSES", "LibraryUser", "LoadContext", "use_context"]

log = logging.getLogger("bench.locust")

FIRST_ITEM = " · first item"


@dataclass
class LoadContext:
    """What the users of one environment need: the scenario, call timeout, workload seed and slot."""

    scenario: Scenario
    timeout_s: float = 30.0
    seed: int = 0
    slot: int | None = None  # workload id space (ISBNs, e-mails); None: this process's pid


def use_context(environment: Environment, context: LoadContext) -> None:
    """Give `environment`'s users their scenario and settings (bench run and the init listener call this)."""
    environment.library = context  # type: ignore[attr-defined]


def _context(environment: Environment) -> LoadContext:
    context = getattr(environment, "library", None)
    if not isinstance(context, LoadContext):
        raise RuntimeError("no LoadContext on the locust environment: run through locust -f or bench run")
    return context


class LocustFailure(Exception):
    """What locust shows in its failures table: the stable error name, never a message with ids in it."""


def fire(environment: Environment, m: Measurement) -> None:
    """The measurement hook: one locust request event per call (+ one for the first stream item)."""
    environment.events.request.fire(
        request_type=m.client,
        name=m.operation,
        response_time=m.latency_s * 1000.0,
        response_length=m.response_bytes or 0,
        exception=LocustFailure(m.error) if m.error else None,
        context={"measurement": m},
    )
    if m.ttfi_s is not None:
        environment.events.request.fire(
            request_type=m.client,
            name=m.operation + FIRST_ITEM,
            response_time=m.ttfi_s * 1000.0,
            response_length=0,
            exception=None,
            context={},
        )


class LibraryUser(User):
    abstract = True
    client_kind: ClassVar[str]
    wait_time = constant(0)  # closed model at full speed; --think-time adds a pause

    def on_start(self) -> None:
        context = _context(self.environment)
        if not self.host:
            raise RuntimeError(f"no {protocol_of(self.client_kind)} target: pass --host")
        self.client = make_client(
            self.client_kind,
            self.host.split("://", 1)[-1].rstrip("/"),
            timeout_s=context.timeout_s,
            hook=lambda m: fire(self.environment, m),
        )
        self.workload = Workload(self.client, context.scenario, seed=context.seed, slot=context.slot)

    def on_stop(self) -> None:
        self.client.close()

    @task
    def step(self) -> None:
        try:
            self.workload.step()
        except TransportError:
            gevent.sleep(0.05)  # already reported; don't spin at full speed on a dead target
        except ClientError:
            pass  # already reported through the hook


class GrpcUser(LibraryUser):
    client_kind = "grpc"


class RestUser(LibraryUser):
    client_kind = "rest"


class RestLeanUser(LibraryUser):
    client_kind = "rest-lean"


class SoapUser(LibraryUser):
    client_kind = "soap"


class SoapLeanUser(LibraryUser):
    client_kind = "soap-lean"


USER_CLASSES: dict[str, type[LibraryUser]] = {
    cls.client_kind: cls for cls in (GrpcUser, RestUser, RestLeanUser, SoapUser, SoapLeanUser)
}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("library benchmark")
    group.add_argument(
        "--protocol",
        default=os.environ.get("BENCH_PROTOCOL", ""),
        help=f"comma-separated client kinds to run ({', '.join(CLIENT_KINDS)}); default: all",
    )
    group.add_argument("--scenario", default="read-heavy", help="scenario from bench/load/scenarios.toml")
    group.add_argument("--think-time", type=float, default=0.0, help="seconds each user waits between steps")
    group.add_argument(
        "--target-cpu", default="auto", help="CPU for targets started here ('auto', 'none' or N)"
    )
    group.add_argument("--request-timeout", type=float, default=30.0, help="per-call timeout in seconds")


@events.init.add_listener
def _on_init(environment: Environment, runner: Any = None, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:  # used as a library: `bench run` calls use_context itself
        return
    scenarios = load_scenarios()
    if options.scenario not in scenarios:
        raise SystemExit(f"--scenario {options.scenario!r} is not one of {', '.join(scenarios)}")
    use_context(
        environment, LoadContext(scenario=scenarios[options.scenario], timeout_s=options.request_timeout)
    )
    kinds = [k.strip() for k in options.protocol.split(",") if k.strip()] or list(USER_CLASSES)
    unknown = [k for k in kinds if k not in USER_CLASSES]
    if unknown:
        raise SystemExit(f"--protocol {','.join(unknown)}: choose from {', '.join(USER_CLASSES)}")
    if options.protocol:
        environment.user_classes[:] = [USER_CLASSES[k] for k in kinds]
    if options.think_time:
        for cls in USER_CLASSES.values():
            cls.wait_time = constant(options.think_time)
    if getattr(options, "worker", False):
        _serve_master_dumps(environment, runner)
        return
    if not environment.host:
        _start_targets(environment, kinds, options.target_cpu)


def _start_targets(environment: Environment, kinds: list[str], target_cpu: str) -> None:
    """Targets for the chosen user classes, each class pointed at its own; stopped after the users stop."""
    placement = choose_placement(target_cpu)
    dataset = _context(environment).scenario.dataset
    started: list[TargetProcess] = []
    for protocol in sorted({protocol_of(k) for k in kinds}):
        target = start_target(protocol, dataset=dataset, cpu=placement.target_cpu)
        started.append(target)
        for cls in USER_CLASSES.values():
            if protocol_of(cls.client_kind) == protocol:
                cls.host = target.address  # the dashboard shows it instead of "no host attribute set"
        log.warning(
            "started %s target at %s (pid %d, cpu %s)",
            protocol,
            target.address,
            target.pid,
            placement.target_cpu,
        )
    if placement.target_cpu is not None:
        # Targets on one CPU, locust on the others: never share a CPU with the generator.
        os.sched_setaffinity(0, set(os.sched_getaffinity(0)) - {placement.target_cpu})

    def stop_targets(**_: Any) -> None:
        # `quit` fires after the runner has stopped its users and printed the stats: stopping targets any
        # earlier would add refused calls that never happened during the test.
        while started:
            started.pop().stop()

    environment.events.quit.add_listener(stop_targets)


# ---- distributed mode (bench run --locust-workers N): workers hand their histograms to the master ----------
DUMP_REQUEST = "bench-dump"
DUMP_REPLY = "bench-stats"


def _serve_master_dumps(environment: Environment, runner: Any) -> None:
    """A worker keeps its own histograms and sends them when the master asks (custom messages)."""
    recorder = Recorder()
    recorder.listen(environment)

    def dump(msg: Any, **__: Any) -> None:
        # `reset` requests open a window (discard what came before); `dump` requests close it.
        ops = recorder.reset()
        if msg.data != "reset":
            runner.send_message(DUMP_REPLY, {"pid": os.getpid(), "ops": Recorder.dump(ops)})

    runner.register_message(DUMP_REQUEST, dump)
    die_with_parent()  # a local worker started by `bench run` ends with its cell (no-op for remote workers)
