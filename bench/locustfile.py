"""Locust users for the library service: one user class per client kind, stats named by operation.

    locust -f bench/locustfile.py                          # dashboard; starts the targets itself
    locust -f bench/locustfile.py --headless -u 20 -r 20 -t 15s --protocol grpc --scenario read-heavy
    bench serve rest --port 8080 &  locust -f bench/locustfile.py --protocol rest --host 127.0.0.1:8080

Each task is one step of the scenario's workload (bench/scenarios.toml): an operation chosen by weight. Every
client call fires locust's `request` event named by operation (`GetBook`), with request_type = client kind;
streams also fire `<Operation> · first item` with the time to the first item.
"""

from __future__ import annotations

# gRPC's C-core must run its I/O on gevent before any channel exists (locust monkey-patches on import).
import grpc.experimental.gevent as grpc_gevent  # isort: skip

grpc_gevent.init_gevent()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import gevent  # noqa: E402
from locust import User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # `locust -f bench/locustfile.py` from a checkout

from bench.clients import CLIENT_KINDS, ClientError, TransportError, make_client, protocol_of  # noqa: E402
from bench.measure import Measurement  # noqa: E402
from bench.recorder import Recorder  # noqa: E402
from bench.scenarios import Scenario, load_scenarios  # noqa: E402
from bench.targets_process import TargetProcess, start_target  # noqa: E402
from bench.workload import Workload  # noqa: E402
from targets.lifetime import die_with_parent  # noqa: E402

log = logging.getLogger("bench.locust")

FIRST_ITEM = " · first item"
# Filled by the `init` listener (or by `bench run`, which drives these classes as a library).
settings: dict[str, Any] = {"scenario": None, "addresses": {}, "timeout_s": 30.0, "seed": 0, "slot": None}
recorder = Recorder()  # per-operation HdrHistograms for `bench run` (locust's own stats round to 1 ms)
_started_targets: list[TargetProcess] = []


class LocustFailure(Exception):
    """What locust shows in its failures table: the stable error name, never a message with ids in it."""


def report(environment: Environment, m: Measurement) -> None:
    """The measurement hook: one locust request event per call (+ one for the first stream item)."""
    recorder.add(m)
    exception = LocustFailure(m.error) if m.error else None
    environment.events.request.fire(
        request_type=m.client,
        name=m.operation,
        response_time=m.latency_s * 1000.0,
        response_length=m.response_bytes or 0,
        exception=exception,
        context={},
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
        scenario: Scenario = settings["scenario"]
        address = target_address(self.environment, protocol_of(self.client_kind))
        self.client = make_client(
            self.client_kind,
            address,
            timeout_s=settings["timeout_s"],
            hook=lambda m: report(self.environment, m),
        )
        self.workload = Workload(self.client, scenario, seed=settings["seed"], slot=settings["slot"])

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


def target_address(environment: Environment, protocol: str) -> str:
    """--host when given (host:port or http://host:port), else the target this locustfile started."""
    host = environment.host
    if host:
        return host.split("://", 1)[-1].rstrip("/")
    try:
        return str(settings["addresses"][protocol])
    except KeyError:
        raise RuntimeError(f"no {protocol} target: pass --host or let the locustfile start one") from None


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("library benchmark")
    group.add_argument(
        "--protocol",
        default=os.environ.get("BENCH_PROTOCOL", ""),
        help=f"comma-separated client kinds to run ({', '.join(CLIENT_KINDS)}); default: all",
    )
    group.add_argument("--scenario", default="read-heavy", help="scenario from bench/scenarios.toml")
    group.add_argument("--think-time", type=float, default=0.0, help="seconds each user waits between steps")
    group.add_argument(
        "--target-cpu", default="auto", help="CPU for targets started here ('auto', 'none' or N)"
    )
    group.add_argument("--request-timeout", type=float, default=30.0, help="per-call timeout in seconds")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:  # used as a library: `bench run` fills `settings` itself
        return
    scenarios = load_scenarios()
    if options.scenario not in scenarios:
        raise SystemExit(f"--scenario {options.scenario!r} is not one of {', '.join(scenarios)}")
    settings["scenario"] = scenarios[options.scenario]
    settings["timeout_s"] = options.request_timeout
    kinds = [k.strip() for k in options.protocol.split(",") if k.strip()] or list(USER_CLASSES)
    unknown = [k for k in kinds if k not in USER_CLASSES]
    if unknown:
        raise SystemExit(f"--protocol {','.join(unknown)}: choose from {', '.join(USER_CLASSES)}")
    if options.protocol:
        environment.user_classes[:] = [USER_CLASSES[k] for k in kinds]
    if options.think_time:
        for cls in USER_CLASSES.values():
            cls.wait_time = constant(options.think_time)
    is_worker = getattr(options, "worker", False)
    if environment.host or is_worker:
        return
    _start_targets(sorted({protocol_of(k) for k in kinds}), settings["scenario"].dataset, options.target_cpu)


def _start_targets(protocols: list[str], dataset: str, target_cpu: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    cpu: int | None = None
    if target_cpu == "auto" and len(cpus) >= 2:
        cpu = cpus[-1]
    elif target_cpu not in ("auto", "none"):
        cpu = int(target_cpu)
    for protocol in protocols:
        target = start_target(protocol, dataset=dataset, cpu=cpu)
        _started_targets.append(target)
        settings["addresses"][protocol] = target.address
        log.warning("started %s target at %s (pid %d, cpu %s)", protocol, target.address, target.pid, cpu)
    if cpu is not None and len(cpus) >= 2:
        # Targets on one CPU, locust on the others (DESIGN.md: never share a CPU with the generator).
        os.sched_setaffinity(0, set(cpus) - {cpu})


@events.quitting.add_listener
def _stop_targets(**_: Any) -> None:
    while _started_targets:
        _started_targets.pop().stop()


# ---- distributed mode (bench run --locust-workers N): workers hand their histograms to the master ----------
DUMP_REQUEST = "bench-dump"
DUMP_REPLY = "bench-stats"


@events.init.add_listener
def _register_worker_messages(environment: Environment, runner: Any = None, **_: Any) -> None:
    options = environment.parsed_options
    if runner is None or options is None or not getattr(options, "worker", False):
        return

    def dump(msg: Any, **__: Any) -> None:
        # `reset` requests open a window (discard what came before); `dump` requests close it.
        ops = recorder.reset()
        if msg.data != "reset":
            runner.send_message(DUMP_REPLY, {"pid": os.getpid(), "ops": Recorder.dump(ops)})

    runner.register_message(DUMP_REQUEST, dump)
    die_with_parent()  # a local worker started by `bench run` ends with its cell (no-op for remote workers)
