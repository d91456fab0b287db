"""How a gRPC split-topology service reports its timings (`topology.timing`) to its caller: `server-timing`
trailing metadata, added by a server interceptor. The figures cover the handler until it returned (for a
stream, the writes included)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from targets.grpc.server import SERVICE_NAME
from topology import timing

__all__ = ["TimingInterceptor"]

_KEY = "server-timing"
_METHOD_PREFIX = f"/{SERVICE_NAME}/"

# grpc-stubs type handlers for the synchronous API; the aio behaviours here are coroutine functions.
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class _TimedContext:
    """The handler's context, which puts the timings into the trailing metadata before an abort: grpc.aio
    sends the status (and the trailing metadata set so far) from inside `abort`."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], timings: timing.Timings) -> None:
        self._context = context
        self._timings = timings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def stamp(self) -> None:
        self._context.set_trailing_metadata(((_KEY, self._timings.header()),))

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self.stamp()
        await self._context.abort(code, details, trailing_metadata)


def _timed(behaviour: Any) -> Behaviour:
    async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        timed_context = _TimedContext(context, timing.start())
        result = await behaviour(request, timed_context)
        timed_context.stamp()  # sent with the OK status
        return result

    return timed


if TYPE_CHECKING:  # generic in grpc-stubs only; not subscriptable at run time
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class TimingInterceptor(_Interceptor):
    """gRPC: time each call of the library service and send the result as `server-timing` trailing metadata.

    The library's handlers are coroutine functions (streams are written with `context.write`), so each keeps
    its shape when wrapped; health and reflection calls pass untouched.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler: Any = await continuation(handler_call_details)  # None for a method nobody serves
        if handler is None or not str(handler_call_details.method).startswith(_METHOD_PREFIX):
            return handler  # type: ignore[no-any-return]  # None passes through, as grpc expects
        decode, encode = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_timed(handler.unary_unary), decode, encode)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(_timed(handler.unary_stream), decode, encode)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(_timed(handler.stream_unary), decode, encode)
        return grpc.stream_stream_rpc_method_handler(_timed(handler.stream_stream), decode, encode)
