"""grpc.aio server for the library service, with the standard health and reflection services."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from targets.core import LibraryService
from targets.grpc._generated import library_pb2
from targets.grpc.registration import register_library_service
from targets.grpc.servicer import LibraryServicer
from targets.limits import LIMITS

__all__ = ["REFLECTION_SERVICES", "SERVICE_NAME", "build_server", "serve", "server_options"]

SERVICE_NAME: str = library_pb2.DESCRIPTOR.services_by_name["Library"].full_name
# Current generic clients (grpcurl, Postman, grpc-js tools) ask for v1 first, older ones for v1alpha.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_SERVICES = (REFLECTION_V1, reflection.SERVICE_NAME)


def server_options() -> list[tuple[str, int]]:
    """Channel arguments, all explicit so the manifest and README can state them."""
    return [
        ("grpc.max_receive_message_length", LIMITS.max_body_bytes),
        ("grpc.max_send_message_length", LIMITS.max_response_bytes),
        ("grpc.max_concurrent_streams", LIMITS.max_concurrent_streams),
        ("grpc.max_metadata_size", LIMITS.max_header_bytes),
        ("grpc.max_connection_idle_ms", int(LIMITS.keepalive_timeout_s * 1000)),
        # A second server on the same port must fail loudly, not share the port silently.
        ("grpc.so_reuseport", 0),
    ]


def build_server(
    service: LibraryService, interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = ()
) -> tuple[grpc.aio.Server, Any]:
    server = grpc.aio.server(options=server_options(), interceptors=interceptors)
    register_library_service(LibraryServicer(service), server, service.calls)
    # grpc_health re-exports its asyncio servicer as `health.aio` at runtime; its stubs do not declare it.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _add_reflection(server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    return server, health_servicer


def _add_reflection(server: grpc.aio.Server, services: tuple[str, ...]) -> None:
    """Server reflection as `grpc.reflection.v1` and `v1alpha`, answered by grpcio-reflection's servicer.

    grpcio-reflection registers only v1alpha. v1 is the same protocol renamed: its messages have the same
    fields and numbers, so the same bytes decode as either, and the one servicer answers both names.
    """
    # `reflection.aio` is grpcio-reflection's asyncio servicer; its stubs do not declare it (as for health).
    servicer = reflection.aio.ReflectionServicer((*services, *REFLECTION_SERVICES))  # type: ignore[attr-defined]
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for name in REFLECTION_SERVICES:
        methods = {"ServerReflectionInfo": handler}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, methods),))


async def _serve(
    service: LibraryService,
    host: str,
    port: int,
    on_ready: Callable[[int], None],
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]],
) -> None:
    server, health_servicer = build_server(service, interceptors)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"gRPC server could not bind {address}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_ready(bound)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=1.0)


def serve(
    service: LibraryService,
    *,
    host: str,
    port: int,
    on_ready: Callable[[int], None],
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
) -> None:
    """Serve until SIGINT/SIGTERM; `interceptors` wrap every call (the split topology adds its timing)."""
    asyncio.run(_serve(service, host, port, on_ready, interceptors))
