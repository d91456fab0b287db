"""Which server runs each protocol, and the READY line every target prints once it accepts requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from targets.core import LibraryService
from targets.implementations import IMPLEMENTATIONS, PROTOCOLS

__all__ = ["IMPLEMENTATIONS", "PROTOCOLS", "ServeFunction", "address", "ready_line", "server_for"]


class ServeFunction(Protocol):
    def __call__(
        self, service: LibraryService, *, host: str, port: int, on_ready: Callable[[int], None]
    ) -> None: ...


def server_for(protocol: str) -> ServeFunction:
    # Imported lazily: each protocol stack is heavy and only one runs per process.
    if protocol == "grpc":
        from targets.grpc.server import serve as grpc_serve

        return grpc_serve
    if protocol == "rest":
        from targets.rest.server import serve as rest_serve

        return rest_serve
    if protocol == "soap":
        from targets.soap.server import serve as soap_serve

        return soap_serve
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def address(host: str, port: int) -> str:
    """host:port as clients write it (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def ready_line(protocol: str, host: str, port: int, *, metrics: str | None = None) -> str:
    """`READY <protocol> <host>:<port>`, plus ` metrics=<host>:<port>` when the counters are served."""
    line = f"READY {protocol} {address(host, port)}"
    return f"{line} metrics={metrics}" if metrics else line
