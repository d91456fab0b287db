"""Register the servicer with request decoding that turns undecodable bytes into INVALID_ARGUMENT, and
count every call and its outcome in the core's call counters (targets.core.calls).

grpcio's generated registration decodes with `FromString` and answers INTERNAL when that raises; garbage
input is the client's fault, so it must get INVALID_ARGUMENT like on the other protocols
(docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from targets.core import CallCounters, ErrorKind, InvalidArgument, OperationCall
from targets.grpc._generated import library_pb2
from targets.grpc.servicer import STATUS_BY_KIND

__all__ = ["register_library_service"]

_SERVICE = library_pb2.DESCRIPTOR.services_by_name["Library"]
_KIND_BY_STATUS = {status: kind for kind, status in STATUS_BY_KIND.items()}


class _Malformed:
    """Stands in for a request whose bytes did not decode."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe_decoder(message_class: type[Message]) -> Callable[[bytes], Message | _Malformed]:
    def decode(data: bytes) -> Message | _Malformed:
        try:
            return message_class.FromString(data)
        except (DecodeError, ValueError) as exc:
            return _Malformed(f"request is not a valid {message_class.DESCRIPTOR.full_name}: {exc}")

    return decode


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Malformed):
            raise InvalidArgument(request.reason)  # the servicer maps it like any domain error
        yield request


def _unary_request(method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return await method(request, context)

    return handler


def _unary_request_stream_response(
    method: Callable[[Any, Any], Awaitable[None]],
) -> Callable[[Any, Any], Awaitable[None]]:
    # The streaming methods write with context.write and return None: grpc.aio tells the handler shapes
    # apart by inspection (coroutine function vs async generator), and these stay coroutine functions.
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if isinstance(request, _Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        await method(request, context)

    return handler


def _stream_request(
    method: Callable[[Any, Any], Awaitable[Any]],
) -> Callable[[Any, Any], Awaitable[Any]]:
    async def handler(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await method(_checked_stream(requests), context)

    return handler


def _counted(
    name: str, calls: CallCounters, method: Callable[[Any, Any], Awaitable[Any]]
) -> Callable[[Any, Any], Awaitable[Any]]:
    """Count the call; an abort counts as the error kind its status code stands for."""

    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with calls.call(name) as call:
            counting = _CountingContext(context, call)
            try:
                return await method(request, counting)
            except grpc.aio.AbortError:
                call.fail(_KIND_BY_STATUS.get(context.code(), ErrorKind.INTERNAL))  # (no-op if counted)
                raise

    return handler


class _CountingContext:
    """The servicer context, with `abort` counting the error *before* the status reaches the client: a
    client that reads the counters right after its call failed must find the error counted."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], call: OperationCall) -> None:
        self._context = context
        self._call = call

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        self._call.fail(_KIND_BY_STATUS.get(code, ErrorKind.INTERNAL))
        await self._context.abort(code, details, trailing_metadata)
        raise AssertionError("unreachable: abort raises")  # grpc.aio's abort always raises

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def register_library_service(servicer: object, server: grpc.aio.Server, calls: CallCounters) -> None:
    """Like the generated `add_LibraryServicer_to_server`, driven by the service descriptor."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in _SERVICE.methods:
        behaviour = getattr(servicer, method.name)
        decode = _safe_decoder(library_pb2.__dict__[method.input_type.name])
        encode = library_pb2.__dict__[method.output_type.name].SerializeToString

        def counted(shaped: Callable[[Any, Any], Awaitable[Any]], name: str = method.name) -> Any:
            # Outermost, so an undecodable request of a known method counts too (as InvalidArgument).
            return _counted(name, calls, shaped)

        if method.client_streaming and method.server_streaming:
            handler = grpc.stream_stream_rpc_method_handler(
                counted(_stream_request(behaviour)), decode, encode
            )
        elif method.client_streaming:
            handler = grpc.stream_unary_rpc_method_handler(
                counted(_stream_request(behaviour)), decode, encode
            )
        elif method.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                counted(_unary_request_stream_response(behaviour)), decode, encode
            )
        else:
            handler = grpc.unary_unary_rpc_method_handler(counted(_unary_request(behaviour)), decode, encode)
        handlers[method.name] = handler
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),))
