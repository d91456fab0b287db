'use strict';
// The library service in JavaScript: the same records, rules and semantics as targets/core (README, "The
// service"), written without it. Protocol-free: server.js translates gRPC messages to these calls.
//
// Instants are BigInt microseconds since the Unix epoch (the core keeps microseconds; a JS Date keeps only
// milliseconds). Ids are JS numbers once validated: a valid id above 2^53 names no record here.

const LIMITS = Object.freeze({
  title_max: 300,
  author_max: 200,
  category_max: 64,
  name_max: 200,
  email_max: 254,
  year_min: 1000,
  year_max: 2100,
  copies_max: 10000,
  loan_days_min: 1,
  loan_days_max: 365,
  bulk_max: 10000,
  id_max: 2n ** 63n - 1n,
});
const DEFAULT_LOAN_DAYS = 14;
const SETTABLE = ['OVERDUE', 'LOST', 'RETURNED'];
const OPEN = new Set(['ACTIVE', 'OVERDUE', 'LOST']);
const DAY_US = 86400n * 1000000n;

// Python's whitespace (str.isspace): what the core's "must not be empty" and e-mail rule mean by it.
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const BLANK = new RegExp(`^[${WS}]*$`, 'u');
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /[\ud800-\udfff]/u; // with the u flag, a paired surrogate is one code point
const EMAIL = new RegExp(`^[^@${WS}]{1,64}@[^@${WS}.]+(\\.[^@${WS}.]+)+$`, 'u');

class LibraryError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind; // NotFound | InvalidArgument | AlreadyExists | FailedPrecondition | Internal
  }
}
const notFound = (m) => new LibraryError('NotFound', m);
const invalid = (m) => new LibraryError('InvalidArgument', m);
const exists = (m) => new LibraryError('AlreadyExists', m);
const precondition = (m) => new LibraryError('FailedPrecondition', m);

// ---- validation (targets/core/validation.py) --------------------------------------------------------------
function validateText(field, value, maxLen) {
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  if (BLANK.test(value)) throw invalid(`${field} must not be empty`);
  const length = [...value].length; // characters, as Python counts them, not UTF-16 units
  if (length > maxLen) throw invalid(`${field} is ${length} characters long; the limit is ${maxLen}`);
  if (LONE_SURROGATE.test(value)) throw invalid(`${field} is not valid Unicode text (lone surrogate)`);
  if (CONTROL.test(value)) throw invalid(`${field} must not contain control characters`);
  return value;
}

function validateId(field, value) {
  let id;
  try {
    id = BigInt(value);
  } catch {
    throw invalid(`${field} must be an integer`);
  }
  if (id < 1n || id > LIMITS.id_max) throw invalid(`${field} must be a positive integer, got ${id}`);
  return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : -1; // -1: valid, and no record has it
}

function intInRange(field, value, low, high) {
  if (!Number.isInteger(value)) throw invalid(`${field} must be an integer`);
  if (value < low || value > high) throw invalid(`${field} must be between ${low} and ${high}, got ${value}`);
  return value;
}

function normalizeIsbn(value) {
  if (typeof value !== 'string') throw invalid('isbn must be a string');
  const compact = value.replaceAll('-', '').replaceAll(' ', '').toUpperCase();
  if (/^[0-9]{13}$/.test(compact)) {
    let total = 0;
    for (let i = 0; i < 12; i++) total += Number(compact[i]) * (i % 2 === 0 ? 1 : 3);
    if ((10 - (total % 10)) % 10 === Number(compact[12])) return compact;
    throw invalid(`isbn '${value}' has a wrong check digit`);
  }
  if (/^[0-9]{9}[0-9X]$/.test(compact)) {
    let total = 0;
    for (let i = 0; i < 10; i++) total += (10 - i) * (compact[i] === 'X' ? 10 : Number(compact[i]));
    if (total % 11 === 0) return compact;
    throw invalid(`isbn '${value}' has a wrong check digit`);
  }
  throw invalid(`isbn '${[...value].slice(0, 40).join('')}' is not an ISBN-10 or ISBN-13`);
}

function validateNewBook(book) {
  return {
    isbn: normalizeIsbn(book.isbn),
    title: validateText('title', book.title, LIMITS.title_max),
    author: validateText('author', book.author, LIMITS.author_max),
    category: validateText('category', book.category, LIMITS.category_max),
    year: intInRange('year', book.year, LIMITS.year_min, LIMITS.year_max),
    copies: intInRange('copies', book.copies, 0, LIMITS.copies_max),
  };
}

function validateNewUser(user) {
  const name = validateText('name', user.name, LIMITS.name_max);
  const email = validateText('email', user.email, LIMITS.email_max);
  if (!EMAIL.test(email)) throw invalid(`email '${[...email].slice(0, 80).join('')}' is not an e-mail address`);
  return { name, email };
}

function checkBatchIndex(index) {
  if (index >= LIMITS.bulk_max) throw invalid(`one call may hold at most ${LIMITS.bulk_max} items`);
}

// Python's str.casefold for the e-mail uniqueness rule; upper-then-lower folds the same cases (ß -> ss).
const casefold = (text) => text.toUpperCase().toLowerCase();

// ---- instants ---------------------------------------------------------------------------------------------
const INSTANT = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

function parseInstant(text) {
  const m = INSTANT.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)} is not an RFC 3339 instant with an offset`);
  const [, y, mo, d, h, mi, s, fraction = '', zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60000;
  }
  return BigInt(ms) * 1000n + BigInt(fraction.padEnd(6, '0').slice(0, 6));
}

function parseClock(spec) {
  if (spec === 'system') return () => BigInt(Date.now()) * 1000n;
  if (spec.startsWith('fixed:')) {
    const instant = parseInstant(spec.slice('fixed:'.length));
    return () => instant;
  }
  throw new Error(`clock ${JSON.stringify(spec)}: expected 'system' or 'fixed:<ISO 8601 instant>'`);
}

// ---- the service ------------------------------------------------------------------------------------------
class Library {
  /** `clock` returns now in BigInt microseconds; `dataset` is a library-dataset/1 document (or absent). */
  constructor(clock, dataset) {
    this.now = clock;
    this.books = new Map();
    this.users = new Map();
    this.loans = new Map();
    this.bookIdsByIsbn = new Map();
    this.userIdsByEmail = new Map();
    this.bookIdsByCategory = new Map(); // category -> Set of ids, in id order
    this.openLoanIds = new Set(); // in id order
    this.nextIds = { book: 1, user: 1, loan: 1 };
    if (dataset) this.load(dataset);
  }

  load(document) {
    if (document.format !== 'library-dataset/1') throw new Error(`unknown dataset format ${document.format}`);
    for (const book of document.books) this.putBook({ ...book });
    for (const user of document.users) this.putUser({ ...user });
    const loans = [...document.loans].sort((a, b) => a.id - b.id);
    for (const loan of loans) {
      this.putLoan({
        ...loan,
        loaned_at: parseInstant(loan.loaned_at),
        due_at: parseInstant(loan.due_at),
        returned_at: loan.returned_at === null ? null : parseInstant(loan.returned_at),
      });
    }
    this.nextIds = { ...document.next_ids };
  }

  // ---- store ----
  putBook(book) {
    this.books.set(book.id, book);
    this.bookIdsByIsbn.set(book.isbn, book.id);
    if (!this.bookIdsByCategory.has(book.category)) this.bookIdsByCategory.set(book.category, new Set());
    this.bookIdsByCategory.get(book.category).add(book.id);
  }

  putUser(user) {
    this.users.set(user.id, user);
    this.userIdsByEmail.set(casefold(user.email), user.id);
  }

  putLoan(loan) {
    this.loans.set(loan.id, loan);
    if (OPEN.has(loan.status)) this.openLoanIds.add(loan.id);
    else this.openLoanIds.delete(loan.id);
  }

  // ---- books ----
  addBook(input) {
    const book = validateNewBook(input);
    if (this.bookIdsByIsbn.has(book.isbn)) throw exists(`a book with isbn ${book.isbn} already exists`);
    return this.insertBook(book);
  }

  getBook(bookId) {
    const id = validateId('book_id', bookId);
    const book = this.books.get(id);
    if (!book) throw notFound(`book ${bookId} not found`);
    return book;
  }

  deleteBook(bookId) {
    const book = this.getBook(bookId);
    if (book.available_copies !== book.total_copies) {
      throw precondition(`book ${book.id} has ${book.total_copies - book.available_copies} copies on loan`);
    }
    this.books.delete(book.id);
    this.bookIdsByIsbn.delete(book.isbn);
    const ids = this.bookIdsByCategory.get(book.category);
    ids.delete(book.id);
    if (ids.size === 0) this.bookIdsByCategory.delete(book.category);
  }

  listBooksByCategory(category) {
    validateText('category', category, LIMITS.category_max);
    return [...(this.bookIdsByCategory.get(category) ?? [])].map((id) => this.books.get(id));
  }

  /** All or nothing: every item is validated and checked for duplicates before any is stored. */
  bulkAddBooks(items) {
    const books = [];
    const seen = new Map();
    items.forEach((item, index) => {
      checkBatchIndex(index);
      let book;
      try {
        book = validateNewBook(item);
      } catch (error) {
        throw invalid(`book #${index}: ${error.message}`);
      }
      if (seen.has(book.isbn)) throw exists(`book #${index}: isbn ${book.isbn} repeats book #${seen.get(book.isbn)}`);
      seen.set(book.isbn, index);
      books.push(book);
    });
    books.forEach((book, index) => {
      if (this.bookIdsByIsbn.has(book.isbn)) throw exists(`book #${index}: isbn ${book.isbn} already exists`);
    });
    const ids = books.map((book) => this.insertBook(book).id);
    return { added: ids.length, ids };
  }

  insertBook(book) {
    const stored = {
      id: this.nextIds.book++,
      isbn: book.isbn,
      title: book.title,
      author: book.author,
      category: book.category,
      year: book.year,
      total_copies: book.copies,
      available_copies: book.copies,
    };
    this.putBook(stored);
    return stored;
  }

  // ---- users ----
  addUser(input) {
    const user = validateNewUser(input);
    if (this.userIdsByEmail.has(casefold(user.email))) {
      throw exists(`a user with email '${user.email}' already exists`);
    }
    const created = { id: this.nextIds.user++, name: user.name, email: user.email };
    this.putUser(created);
    return created;
  }

  getUser(userId) {
    const id = validateId('user_id', userId);
    const user = this.users.get(id);
    if (!user) throw notFound(`user ${userId} not found`);
    return user;
  }

  // ---- loans ----
  createLoan(userId, bookId, days = DEFAULT_LOAN_DAYS) {
    validateId('user_id', userId);
    validateId('book_id', bookId);
    intInRange('days', days, LIMITS.loan_days_min, LIMITS.loan_days_max);
    const user = this.getUser(userId);
    const book = this.getBook(bookId);
    if (book.available_copies < 1) throw precondition(`book ${book.id} has no copy available`);
    this.putBook({ ...book, available_copies: book.available_copies - 1 });
    const now = this.now();
    const loan = {
      id: this.nextIds.loan++,
      user_id: user.id,
      book_id: book.id,
      loaned_at: now,
      due_at: now + BigInt(days) * DAY_US,
      returned_at: null,
      status: 'ACTIVE',
    };
    this.putLoan(loan);
    return loan;
  }

  getLoan(loanId) {
    const id = validateId('loan_id', loanId);
    const loan = this.loans.get(id);
    if (!loan) throw notFound(`loan ${loanId} not found`);
    return this.asSeenNow(loan);
  }

  returnLoan(loanId) {
    const loan = this.getLoan(loanId);
    if (loan.status === 'RETURNED') throw precondition(`loan ${loan.id} is already returned`);
    return this.closeLoan(loan);
  }

  getOverdueLoans() {
    const now = this.now();
    const overdue = [];
    for (const id of this.openLoanIds) {
      const loan = this.loans.get(id);
      if (loan.status === 'OVERDUE' || (loan.status === 'ACTIVE' && loan.due_at < now)) {
        overdue.push({ ...loan, status: 'OVERDUE' });
      }
    }
    return overdue;
  }

  /** One step of UpdateLoanStatus; `status` is a name (an unknown one is InvalidArgument). */
  applyStatusUpdate(loanId, status) {
    if (!['ACTIVE', 'RETURNED', 'OVERDUE', 'LOST'].includes(status)) {
      throw invalid(`status '${String(status).slice(0, 40)}' is not one of ${SETTABLE.join(', ')}`);
    }
    if (!SETTABLE.includes(status)) throw invalid(`status ${status} cannot be set; use OVERDUE, LOST or RETURNED`);
    const loan = this.getLoan(loanId);
    if (loan.status === 'RETURNED') throw precondition(`loan ${loan.id} is already returned`);
    if (status === 'RETURNED') return this.closeLoan(loan);
    if (loan.status === 'LOST' && status !== 'LOST') {
      throw precondition(`loan ${loan.id} is lost; it can only be returned`);
    }
    const changed = { ...loan, status };
    this.putLoan(changed);
    return changed;
  }

  asSeenNow(loan) {
    if (loan.status === 'ACTIVE' && loan.due_at < this.now()) return { ...loan, status: 'OVERDUE' };
    return loan;
  }

  closeLoan(loan) {
    const book = this.books.get(loan.book_id);
    if (book) this.putBook({ ...book, available_copies: book.available_copies + 1 });
    const closed = { ...loan, status: 'RETURNED', returned_at: this.now() };
    this.putLoan(closed);
    return closed;
  }
}

module.exports = {
  DEFAULT_LOAN_DAYS,
  LIMITS,
  Library,
  LibraryError,
  checkBatchIndex,
  normalizeIsbn,
  parseClock,
  parseInstant,
  validateText,
};
