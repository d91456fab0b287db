"""Bare protocol stacks (no core, no adapter) serving prebuilt GetBook / ListBooksByCategory answers.

    start_bare("grpc"|"rest"|"soap", cpu=N)   # runs `python -m bench.micro._bare_server <stack>`

Each one answers with the very records a target seeded with the same dataset holds (book 1; the books of
category `size-N`), in the same message shapes, so the normal clients work against it unchanged and the
difference to the adapter is the adapter's own cost (goal: within 15 % of the bare stack,
docs/ARCHITECTURE.md).
- grpc: grpc.aio with stock method handlers (what the generated registration builds), prebuilt messages;
- rest: Starlette on uvicorn (httptools, uvloop) returning prebuilt JSON / NDJSON bodies;
- soap: stock spyne Soap11 (lxml validation) on the target's cheroot configuration, serving GetBook and
  ListBooksByCategory.
"""

# spyne ships no type information: its base classes and decorators are `Any` to mypy.
# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False

from __future__ import annotations

import asyncio
import functools
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from bench.load.processes import TargetProcess, start_ready_process
from targets.core import DATASETS, Book, FixedClock, build_service, category_name

__all__ = [
    "SERVERS",
    "STACKS",
    "bare_soap_application",
    "reference_book",
    "reference_books",
    "start_bare",
]

STACKS = ("grpc", "rest", "soap")
OnReady = Callable[[int], None]


# ---- the records served -------------------------------------------------------------------------------
@functools.cache
def reference_books(dataset: str = "small", seed: int = 42) -> dict[str, list[Book]]:
    """category -> books, exactly as a target started with the same dataset and seed holds them at start.

    Books and their available copies do not depend on the clock (only loan dates do), so any clock will do.
    """
    service = build_service(dataset, clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), seed=seed)
    return {
        category_name(size): service.list_books_by_category(category_name(size))
        for size in DATASETS[dataset].category_sizes
    }


def reference_book(dataset: str = "small", seed: int = 42) -> Book:
    """Book 1 (the one book of category size-1): what the GetBook benchmarks ask for."""
    book = reference_books(dataset, seed)[category_name(1)][0]
    assert book.id == 1
    return book


# ---- grpc -------------------------------------------------------------------------------------------------
def _serve_grpc(host: str, port: int, on_ready: OnReady) -> None:
    import grpc

    from targets.grpc.server import SERVICE_NAME, server_options
    from targets.grpc.wire import book_to_pb, pb

    book = book_to_pb(reference_book())
    lists = {category: [book_to_pb(b) for b in books] for category, books in reference_books().items()}

    async def get_book(request: Any, context: Any) -> Any:
        return book

    async def list_books(request: Any, context: Any) -> Any:
        for message in lists.get(request.category, ()):
            yield message

    handlers = {
        "GetBook": grpc.unary_unary_rpc_method_handler(
            get_book,
            request_deserializer=pb.GetBookRequest.FromString,
            response_serializer=pb.Book.SerializeToString,
        ),
        "ListBooksByCategory": grpc.unary_stream_rpc_method_handler(
            list_books,
            request_deserializer=pb.ListBooksByCategoryRequest.FromString,
            response_serializer=pb.Book.SerializeToString,
        ),
    }

    async def serve() -> None:
        # Same channel arguments as the target: limits cost nothing per call, and keep the comparison exact.
        server = grpc.aio.server(options=server_options())
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        bound = server.add_insecure_port(f"{host}:{port}")
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        on_ready(bound)
        await stop.wait()
        await server.stop(grace=0.5)

    asyncio.run(serve())


# ---- rest -------------------------------------------------------------------------------------------------
def _serve_rest(host: str, port: int, on_ready: OnReady) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from targets.rest.wire import JSON, NDJSON, dumps_lines, dumps_record

    book = dumps_record(reference_book())
    lists = {category: dumps_lines(books) for category, books in reference_books().items()}

    async def get_book(request: Request) -> Response:
        return Response(book, media_type=JSON)

    async def list_books(request: Request) -> Response:
        return Response(lists.get(request.query_params.get("category", ""), b""), media_type=NDJSON)

    app = Starlette(routes=[Route("/books/{book_id}", get_book), Route("/books", list_books)])
    sock = socket.create_server((host, port))
    bound = int(sock.getsockname()[1])

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_ready(bound)

    # Stock uvicorn with the target's stack (httptools, uvloop) and no per-request logging.
    config = uvicorn.Config(
        app, http="httptools", loop="uvloop", lifespan="off", ws="none", access_log=False, log_config=None
    )
    Server(config).run(sockets=[sock])


# ---- soap -------------------------------------------------------------------------------------------------
def bare_soap_application(books_by_category: dict[str, list[Book]] | None = None) -> Any:
    """Stock spyne (no hardening, no core, no fault mapping) with the target's message shapes.

    ListBooksByCategory answers from `books_by_category` (default: the seeded dataset's categories).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spyne 2.14 imports the deprecated `cgi`
        from spyne import Application, ServiceBase, rpc
        from spyne.model.complex import ComplexModel
        from spyne.model.primitive import Integer32, Long, Unicode
        from spyne.protocol.soap import Soap11

    from targets.soap.faults import TNS

    def required(cls: Any) -> Any:
        return cls.customize(min_occurs=1, nillable=False)

    class BookType(ComplexModel):
        __namespace__ = TNS
        __type_name__ = "Book"
        _type_info = (
            ("id", required(Long)),
            ("isbn", required(Unicode)),
            ("title", required(Unicode)),
            ("author", required(Unicode)),
            ("category", required(Unicode)),
            ("year", required(Integer32)),
            ("total_copies", required(Integer32)),
            ("available_copies", required(Integer32)),
        )

    book = reference_book()
    lists = reference_books() if books_by_category is None else books_by_category
    books_out = BookType.customize(min_occurs=0, max_occurs="unbounded", nillable=False)

    class BareLibrary(ServiceBase):
        __service_name__ = "LibraryService"

        @rpc(required(Long), _returns=required(BookType), _out_variable_name="book")
        def GetBook(ctx: Any, id: int) -> Book:
            return book

        @rpc(required(Unicode), _returns=books_out, _out_variable_name="book")
        def ListBooksByCategory(ctx: Any, category: str) -> list[Book]:
            return lists.get(category, [])

    return Application(
        [BareLibrary],
        tns=TNS,
        name="LibraryService",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )


def _serve_soap(host: str, port: int, on_ready: OnReady) -> None:
    from spyne.server.wsgi import WsgiApplication

    from targets.soap.server import build_server

    spyne_app = WsgiApplication(bare_soap_application())

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return spyne_app(environ, start_response)

    server = build_server(app, host=host, port=port)  # the target's cheroot settings (threads, keep-alive)
    server.prepare()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # stop() waits for the loop this (main) thread runs: call it from another thread.
        threading.Thread(target=server.stop).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    on_ready(int(server.bind_addr[1]))
    server.serve()


SERVERS: dict[str, Callable[[str, int, OnReady], None]] = {
    "grpc": _serve_grpc,
    "rest": _serve_rest,
    "soap": _serve_soap,
}


# ---- launching (the parent side) --------------------------------------------------------------------------
def start_bare(stack: str, *, cpu: int | None = None, ready_timeout_s: float = 30.0) -> TargetProcess:
    """Start a bare server as a child process; returns when it printed READY (stop it with `.stop()`)."""
    if stack not in STACKS:
        raise ValueError(f"unknown bare stack {stack!r}; choose one of {', '.join(STACKS)}")
    argv = [
        sys.executable,
        "-m",
        "bench.micro._bare_server",
        stack,
        *(["--cpu", str(cpu)] if cpu is not None else []),
    ]
    return start_ready_process(argv, name=f"bare-{stack}", ready_timeout_s=ready_timeout_s)
