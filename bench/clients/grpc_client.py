"""gRPC client: generated stubs over one reused channel (one HTTP/2 connection)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

import grpc

from bench.clients._base import RemoteError, TransportError
from bench.clients.measure import SERVER_TIMING, ByteCounter, Hook, Meter
from targets.core import Book, BulkAddResult, ErrorKind, Loan, NewBook, NewUser, StatusUpdate, User
from targets.grpc import wire
from targets.grpc._generated import library_pb2_grpc
from targets.grpc.server import server_options
from targets.grpc.wire import pb

__all__ = ["GrpcClient", "translate_rpc_error"]

T = TypeVar("T")
M = TypeVar("M")

_KIND_BY_STATUS = {
    grpc.StatusCode.NOT_FOUND: ErrorKind.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS: ErrorKind.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION: ErrorKind.FAILED_PRECONDITION,
    # A message over the size limit is bad input, reported by the transport layer.
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.INVALID_ARGUMENT,
}
# Codes that mean "no valid answer from a library server" rather than a domain error.
_TRANSPORT = {
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
    grpc.StatusCode.CANCELLED: "cancelled",
    grpc.StatusCode.UNIMPLEMENTED: "unimplemented",
}


def translate_rpc_error(exc: grpc.RpcError) -> RemoteError | TransportError:
    code: grpc.StatusCode = exc.code()
    details = exc.details() or ""
    if code in _TRANSPORT:
        return TransportError(_TRANSPORT[code], f"{code.name}: {details}")
    return RemoteError(_KIND_BY_STATUS.get(code, ErrorKind.INTERNAL), code.name, details)


class GrpcClient:
    protocol = "grpc"

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 30.0,
        hook: Hook | None = None,
        byte_counter: ByteCounter | None = None,
        client_name: str = "grpc",
        server_timing: bool = False,
        channel_options: Sequence[tuple[str, int]] = (),
    ) -> None:
        """`target` is host:port; one channel is shared by every call of this client.

        `channel_options` are added to (or override) the channel arguments, e.g. a shorter reconnect backoff
        for a client that must notice a restarted server soon.
        """
        self.target = target
        self.timeout_s = timeout_s
        self.meter = Meter(self.protocol, client_name, hook, byte_counter, server_timing)
        options = dict(server_options()) | dict(channel_options)
        self._channel = grpc.insecure_channel(target, options=list(options.items()))
        self._stub = library_pb2_grpc.LibraryStub(self._channel)

    def _unary(self, operation: str, method: Any, request: Any) -> Any:
        with self.meter.measure(operation) as call:
            try:
                if not self.meter.server_timing:
                    return method(request, timeout=self.timeout_s)
                response, rpc = method.with_call(request, timeout=self.timeout_s)
                call.server_timing(_trailing_timing(rpc))
                return response
            except grpc.RpcError as exc:
                if self.meter.server_timing:
                    call.server_timing(_trailing_timing(exc))
                raise translate_rpc_error(exc) from exc

    def _stream(
        self, operation: str, method: Callable[..., Iterable[M]], request: Any, convert: Callable[[M], T]
    ) -> list[T]:
        with self.meter.measure(operation) as call:
            items: list[T] = []
            try:
                responses = method(request, timeout=self.timeout_s)
                for message in responses:
                    call.item()
                    items.append(convert(message))
                if self.meter.server_timing:
                    call.server_timing(_trailing_timing(responses))
            except grpc.RpcError as exc:
                if self.meter.server_timing:
                    call.server_timing(_trailing_timing(exc))
                raise translate_rpc_error(exc) from exc
            return items

    def add_book(self, book: NewBook) -> Book:
        return wire.book_from_pb(self._unary("AddBook", self._stub.AddBook, wire.new_book_to_pb(book)))

    def get_book(self, book_id: int) -> Book:
        return wire.book_from_pb(self._unary("GetBook", self._stub.GetBook, pb.GetBookRequest(id=book_id)))

    def delete_book(self, book_id: int) -> None:
        self._unary("DeleteBook", self._stub.DeleteBook, pb.DeleteBookRequest(id=book_id))

    def list_books_by_category(self, category: str) -> list[Book]:
        request = pb.ListBooksByCategoryRequest(category=category)
        return self._stream("ListBooksByCategory", self._stub.ListBooksByCategory, request, wire.book_from_pb)

    def bulk_add_books(self, books: Sequence[NewBook]) -> BulkAddResult:
        requests = (wire.new_book_to_pb(b) for b in books)
        return wire.bulk_result_from_pb(self._unary("BulkAddBooks", self._stub.BulkAddBooks, requests))

    def add_user(self, user: NewUser) -> User:
        request = pb.AddUserRequest(name=user.name, email=user.email)
        return wire.user_from_pb(self._unary("AddUser", self._stub.AddUser, request))

    def get_user(self, user_id: int) -> User:
        return wire.user_from_pb(self._unary("GetUser", self._stub.GetUser, pb.GetUserRequest(id=user_id)))

    def create_loan(
        self, user_id: int, book_id: int, days: int | None = None, idempotency_key: str | None = None
    ) -> Loan:
        request = pb.CreateLoanRequest(user_id=user_id, book_id=book_id)
        if days is not None:
            request.days = days
        if idempotency_key is not None:
            request.idempotency_key = idempotency_key
        return wire.loan_from_pb(self._unary("CreateLoan", self._stub.CreateLoan, request))

    def return_loan(self, loan_id: int) -> Loan:
        return wire.loan_from_pb(
            self._unary("ReturnLoan", self._stub.ReturnLoan, pb.ReturnLoanRequest(id=loan_id))
        )

    def get_loan(self, loan_id: int) -> Loan:
        return wire.loan_from_pb(self._unary("GetLoan", self._stub.GetLoan, pb.GetLoanRequest(id=loan_id)))

    def get_overdue_loans(self) -> list[Loan]:
        request = pb.GetOverdueLoansRequest()
        return self._stream("GetOverdueLoans", self._stub.GetOverdueLoans, request, wire.loan_from_pb)

    def update_loan_status(self, updates: Sequence[StatusUpdate]) -> list[Loan]:
        def requests() -> Iterator[pb.LoanStatusUpdate]:
            for update in updates:
                yield pb.LoanStatusUpdate(loan_id=update.loan_id, status=_status_number(update.status))

        return self._stream("UpdateLoanStatus", self._stub.UpdateLoanStatus, requests(), wire.loan_from_pb)

    def reserve_copy(self, book_id: int, key: str) -> Book:
        request = pb.ReserveCopyRequest(book_id=book_id, key=key)
        return wire.book_from_pb(self._unary("ReserveCopy", self._stub.ReserveCopy, request))

    def release_copy(self, book_id: int, key: str) -> Book:
        request = pb.ReleaseCopyRequest(book_id=book_id, key=key)
        return wire.book_from_pb(self._unary("ReleaseCopy", self._stub.ReleaseCopy, request))

    def close(self) -> None:
        self._channel.close()


_TIMING_KEY = SERVER_TIMING.lower()


def _trailing_timing(rpc: Any) -> str | None:
    """The server-timing entry of a finished call's trailing metadata (None when absent)."""
    try:
        metadata = rpc.trailing_metadata() or ()
    except (AttributeError, grpc.RpcError):
        return None
    for key, value in metadata:
        if key == _TIMING_KEY:
            return value if isinstance(value, str) else value.decode("ascii", "replace")
    return None


def _status_number(status: str) -> pb.LoanStatus:
    """Status name -> enum number; an unknown name is sent as 0 (UNSPECIFIED), which the server rejects."""
    try:
        return cast(pb.LoanStatus, pb.LoanStatus.Value("LOAN_STATUS_" + status))
    except ValueError:
        return pb.LOAN_STATUS_UNSPECIFIED
