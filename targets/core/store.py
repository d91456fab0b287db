"""In-memory state of the library; one lock makes every service operation atomic across threads."""

from __future__ import annotations

import itertools
import threading

from targets.core.models import Book, Loan, LoanStatus, User

__all__ = ["OPEN_STATUSES", "LibraryStore"]

# A loan is "open" while the copy is out of the library.
OPEN_STATUSES = frozenset({LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.LOST})


class LibraryStore:
    """Plain dictionaries plus the indexes the operations need; callers hold `lock` while they mutate.

    Records are immutable, so a list of them taken under the lock is a consistent snapshot that a stream can
    send after the lock is released.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.books: dict[int, Book] = {}
        self.users: dict[int, User] = {}
        self.loans: dict[int, Loan] = {}
        self.book_ids_by_isbn: dict[str, int] = {}
        self.user_ids_by_email: dict[str, int] = {}
        # category -> ordered set of book ids (dict keys keep insertion order = id order)
        self.book_ids_by_category: dict[str, dict[int, None]] = {}
        # ids of loans whose copy is still out, in id order; GetOverdueLoans scans only these
        self.open_loan_ids: dict[int, None] = {}
        # CreateLoan idempotency keys -> the loan each one created (a retried request gets that loan back)
        self.loan_ids_by_key: dict[str, int] = {}
        # copy reservations held in this store (ReserveCopy): reservation key -> book id
        self.reservations: dict[str, int] = {}
        self._book_ids = itertools.count(1)
        self._user_ids = itertools.count(1)
        self._loan_ids = itertools.count(1)

    def next_book_id(self) -> int:
        return next(self._book_ids)

    def next_user_id(self) -> int:
        return next(self._user_ids)

    def next_loan_id(self) -> int:
        return next(self._loan_ids)

    def put_book(self, book: Book) -> None:
        self.books[book.id] = book
        self.book_ids_by_isbn[book.isbn] = book.id
        self.book_ids_by_category.setdefault(book.category, {})[book.id] = None

    def remove_book(self, book: Book) -> None:
        del self.books[book.id]
        del self.book_ids_by_isbn[book.isbn]
        ids = self.book_ids_by_category[book.category]
        del ids[book.id]
        if not ids:
            del self.book_ids_by_category[book.category]

    def put_user(self, user: User) -> None:
        self.users[user.id] = user
        self.user_ids_by_email[user.email.casefold()] = user.id

    def put_loan(self, loan: Loan) -> None:
        self.loans[loan.id] = loan
        if loan.status in OPEN_STATUSES:
            self.open_loan_ids[loan.id] = None
        else:
            self.open_loan_ids.pop(loan.id, None)
