"""The grpc.aio servicer: each method converts, delegates to LibraryService, and maps domain errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import NoReturn, TypeVar

import grpc

from targets.core import ErrorKind, LibraryError, LibraryService, NewBook, check_batch_index
from targets.grpc import wire
from targets.grpc._generated import library_pb2_grpc
from targets.grpc.wire import pb

__all__ = ["STATUS_BY_KIND", "LibraryServicer"]

log = logging.getLogger("targets.grpc")
T = TypeVar("T")

# docs/ARCHITECTURE.md error table, gRPC column.
STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


async def _abort(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> NoReturn:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # already aborted with its own status
    if isinstance(exc, LibraryError):
        await context.abort(STATUS_BY_KIND[exc.kind], exc.message)
    log.exception("unexpected error in a gRPC call")
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class LibraryServicer(library_pb2_grpc.LibraryServicer):  # type: ignore[misc]  # generated code is untyped
    def __init__(self, service: LibraryService) -> None:
        self._service = service

    async def _unary(
        self, context: grpc.aio.ServicerContext[object, object], call: Callable[[], T], operation: str = ""
    ) -> T:
        try:
            if operation in self._service.remote_operations:
                # It waits on another service: on a worker thread, so the event loop goes on serving.
                return await asyncio.to_thread(call)
            return call()
        except Exception as exc:
            await _abort(context, exc)

    # ---- unary ------------------------------------------------------------------------------------
    async def AddBook(
        self, request: pb.AddBookRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Book:
        book = await self._unary(context, lambda: self._service.add_book(wire.new_book_from_pb(request)))
        return wire.book_to_pb(book)

    async def GetBook(
        self, request: pb.GetBookRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Book:
        return wire.book_to_pb(await self._unary(context, lambda: self._service.get_book(request.id)))

    async def DeleteBook(
        self, request: pb.DeleteBookRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.DeleteBookResponse:
        await self._unary(context, lambda: self._service.delete_book(request.id))
        return pb.DeleteBookResponse()

    async def AddUser(
        self, request: pb.AddUserRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.User:
        user = await self._unary(context, lambda: self._service.add_user(wire.new_user_from_pb(request)))
        return wire.user_to_pb(user)

    async def GetUser(
        self, request: pb.GetUserRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.User:
        return wire.user_to_pb(await self._unary(context, lambda: self._service.get_user(request.id)))

    async def CreateLoan(
        self, request: pb.CreateLoanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Loan:
        loan = await self._unary(
            context,
            lambda: self._service.create_loan(
                request.user_id,
                request.book_id,
                wire.loan_days_from_pb(request),
                wire.idempotency_key_from_pb(request),
            ),
            "CreateLoan",
        )
        return wire.loan_to_pb(loan)

    async def ReturnLoan(
        self, request: pb.ReturnLoanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Loan:
        loan = await self._unary(context, lambda: self._service.return_loan(request.id), "ReturnLoan")
        return wire.loan_to_pb(loan)

    async def GetLoan(
        self, request: pb.GetLoanRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Loan:
        return wire.loan_to_pb(await self._unary(context, lambda: self._service.get_loan(request.id)))

    # ---- server streaming -------------------------------------------------------------------------
    # Streams write with `context.write` rather than yielding from an async generator: grpc.aio handles
    # a write-based handler with less work per message (measured: ~15 % less server CPU per item).
    async def ListBooksByCategory(
        self, request: pb.ListBooksByCategoryRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> None:
        books = await self._unary(context, lambda: self._service.list_books_by_category(request.category))
        for book in books:
            await context.write(wire.book_to_pb(book))

    async def GetOverdueLoans(
        self, request: pb.GetOverdueLoansRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> None:
        loans = await self._unary(context, self._service.get_overdue_loans)
        for loan in loans:
            await context.write(wire.loan_to_pb(loan))

    # ---- client streaming -------------------------------------------------------------------------
    async def BulkAddBooks(
        self,
        request_iterator: AsyncIterator[pb.AddBookRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> pb.BulkAddBooksResponse:
        books: list[NewBook] = []
        try:
            async for request in request_iterator:
                check_batch_index(len(books))  # refuse an endless stream before buffering it
                books.append(wire.new_book_from_pb(request))
            result = self._service.bulk_add_books(books)
        except Exception as exc:
            await _abort(context, exc)
        return pb.BulkAddBooksResponse(added=result.added, ids=result.ids)

    # ---- bidirectional streaming ------------------------------------------------------------------
    async def UpdateLoanStatus(
        self,
        request_iterator: AsyncIterator[pb.LoanStatusUpdate],
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        index = 0
        try:
            async for request in request_iterator:
                check_batch_index(index)
                update = wire.status_update_from_pb(request)
                if "UpdateLoanStatus" in self._service.remote_operations:
                    loan = await asyncio.to_thread(self._service.apply_status_update, update)
                else:
                    loan = self._service.apply_status_update(update)
                index += 1
                await context.write(wire.loan_to_pb(loan))
        except Exception as exc:
            await _abort(context, exc)

    # ---- internal: copy reservations (split topology) ---------------------------------------------------
    async def ReserveCopy(
        self, request: pb.ReserveCopyRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Book:
        book = await self._unary(context, lambda: self._service.reserve_copy(request.book_id, request.key))
        return wire.book_to_pb(book)

    async def ReleaseCopy(
        self, request: pb.ReleaseCopyRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.Book:
        book = await self._unary(context, lambda: self._service.release_copy(request.book_id, request.key))
        return wire.book_to_pb(book)
