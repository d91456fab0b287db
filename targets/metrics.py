"""The core's call counters on a side port in Prometheus text format (`--metrics-port`) (prometheus_client).

    library_calls_total{operation="GetBook"}                     calls that reached the service
    library_errors_total{operation="GetBook",kind="NotFound"}   calls that ended in an error of that kind

Every operation of the contract is listed from the start (0 before any call), so a scrape before a window is
comparable with one after it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from targets.core import CallCounters

__all__ = ["start_metrics_server"]


class _CallCollector(Collector):
    def __init__(self, calls: CallCounters) -> None:
        self._calls = calls

    def collect(self) -> Iterator[Metric]:
        calls, errors = self._calls.snapshot()
        total = CounterMetricFamily(
            "library_calls", "Calls that reached the service, per operation", labels=["operation"]
        )
        for operation, count in calls.items():
            total.add_metric([operation], count)
        yield total
        failed = CounterMetricFamily(
            "library_errors",
            "Calls that ended in an error, per operation and kind",
            labels=["operation", "kind"],
        )
        for (operation, kind), count in sorted(errors.items()):
            failed.add_metric([operation, kind], count)
        yield failed


def start_metrics_server(calls: CallCounters, *, host: str, port: int) -> int:
    """Serve /metrics on host:port (0: a free port) from a daemon thread; returns the bound port."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_CallCollector(calls))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
