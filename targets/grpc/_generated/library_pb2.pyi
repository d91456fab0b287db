import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoanStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOAN_STATUS_UNSPECIFIED: _ClassVar[LoanStatus]
    LOAN_STATUS_ACTIVE: _ClassVar[LoanStatus]
    LOAN_STATUS_RETURNED: _ClassVar[LoanStatus]
    LOAN_STATUS_OVERDUE: _ClassVar[LoanStatus]
    LOAN_STATUS_LOST: _ClassVar[LoanStatus]
LOAN_STATUS_UNSPECIFIED: LoanStatus
LOAN_STATUS_ACTIVE: LoanStatus
LOAN_STATUS_RETURNED: LoanStatus
LOAN_STATUS_OVERDUE: LoanStatus
LOAN_STATUS_LOST: LoanStatus

class Book(_message.Message):
    __slots__ = ("id", "isbn", "title", "author", "category", "year", "total_copies", "available_copies")
    ID_FIELD_NUMBER: _ClassVar[int]
    ISBN_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COPIES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_COPIES_FIELD_NUMBER: _ClassVar[int]
    id: int
    isbn: str
    title: str
    author: str
    category: str
    year: int
    total_copies: int
    available_copies: int
    def __init__(self, id: _Optional[int] = ..., isbn: _Optional[str] = ..., title: _Optional[str] = ..., author: _Optional[str] = ..., category: _Optional[str] = ..., year: _Optional[int] = ..., total_copies: _Optional[int] = ..., available_copies: _Optional[int] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("id", "name", "email")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    email: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class Loan(_message.Message):
    __slots__ = ("id", "user_id", "book_id", "loaned_at", "due_at", "returned_at", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    LOANED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    user_id: int
    book_id: int
    loaned_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    returned_at: _timestamp_pb2.Timestamp
    status: LoanStatus
    def __init__(self, id: _Optional[int] = ..., user_id: _Optional[int] = ..., book_id: _Optional[int] = ..., loaned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., returned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[LoanStatus, str]] = ...) -> None: ...

class AddBookRequest(_message.Message):
    __slots__ = ("isbn", "title", "author", "category", "year", "copies")
    ISBN_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    COPIES_FIELD_NUMBER: _ClassVar[int]
    isbn: str
    title: str
    author: str
    category: str
    year: int
    copies: int
    def __init__(self, isbn: _Optional[str] = ..., title: _Optional[str] = ..., author: _Optional[str] = ..., category: _Optional[str] = ..., year: _Optional[int] = ..., copies: _Optional[int] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteBookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteBookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBooksByCategoryRequest(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: str
    def __init__(self, category: _Optional[str] = ...) -> None: ...

class BulkAddBooksResponse(_message.Message):
    __slots__ = ("added", "ids")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    added: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, added: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ...) -> None: ...

class AddUserRequest(_message.Message):
    __slots__ = ("name", "email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class CreateLoanRequest(_message.Message):
    __slots__ = ("user_id", "book_id", "days", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    book_id: int
    days: int
    idempotency_key: str
    def __init__(self, user_id: _Optional[int] = ..., book_id: _Optional[int] = ..., days: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ReturnLoanRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class GetLoanRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class GetOverdueLoansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoanStatusUpdate(_message.Message):
    __slots__ = ("loan_id", "status")
    LOAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    loan_id: int
    status: LoanStatus
    def __init__(self, loan_id: _Optional[int] = ..., status: _Optional[_Union[LoanStatus, str]] = ...) -> None: ...

class ReserveCopyRequest(_message.Message):
    __slots__ = ("book_id", "key")
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    book_id: int
    key: str
    def __init__(self, book_id: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class ReleaseCopyRequest(_message.Message):
    __slots__ = ("book_id", "key")
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    book_id: int
    key: str
    def __init__(self, book_id: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...
