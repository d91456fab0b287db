'use strict';
// Unit tests of the JavaScript service (node --test). The conformance table runs against the whole server
// from pytest (tests/node, bench verify); these pin the rules whose JavaScript spelling differs from Python's.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Library, LibraryError, normalizeIsbn, parseClock, parseInstant, validateText } = require('../lib/library');

const NOW = parseInstant('2026-01-15T12:00:00Z');
const library = () => new Library(() => NOW, null);
const kind = (work) => {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof LibraryError, String(error));
    return error.kind;
  }
  return 'ok';
};
const book = (n, changes = {}) => ({
  isbn: isbn13(n),
  title: `Book ${n}`,
  author: 'Author',
  category: 'tests',
  year: 2001,
  copies: 2,
  ...changes,
});

function isbn13(serial) {
  const body = `979${String(serial).padStart(9, '0')}`;
  let total = 0;
  for (let i = 0; i < 12; i++) total += Number(body[i]) * (i % 2 === 0 ? 1 : 3);
  return body + String((10 - (total % 10)) % 10);
}

test('text: Python whitespace, characters not UTF-16 units, control characters', () => {
  assert.equal(kind(() => validateText('t', ' \u3000\u2028', 10)), 'InvalidArgument'); // only whitespace
  assert.equal(kind(() => validateText('t', '\ufeff', 10)), 'ok'); // not whitespace to Python
  assert.equal(kind(() => validateText('t', '📚'.repeat(10), 10)), 'ok'); // 10 characters, 20 UTF-16 units
  assert.equal(kind(() => validateText('t', 'x'.repeat(11), 10)), 'InvalidArgument');
  assert.equal(kind(() => validateText('t', 'a\u0085b', 10)), 'InvalidArgument'); // C1 control
  assert.equal(kind(() => validateText('t', 'a\ud800', 10)), 'InvalidArgument'); // lone surrogate
});

test('isbn: check digits, X, hyphens and spaces', () => {
  assert.equal(normalizeIsbn('0-8044-2957-x'), '080442957X');
  assert.equal(normalizeIsbn('978 0 306 40615 7'), '9780306406157');
  assert.equal(kind(() => normalizeIsbn('9780306406158')), 'InvalidArgument');
  assert.equal(kind(() => normalizeIsbn('978030640615٧')), 'InvalidArgument'); // not an ASCII digit
});

test('bulk add is all or nothing; duplicates within the batch are AlreadyExists', () => {
  const lib = library();
  assert.equal(kind(() => lib.bulkAddBooks([book(1), book(2, { year: 5 })])), 'InvalidArgument');
  assert.equal(lib.books.size, 0);
  assert.equal(kind(() => lib.bulkAddBooks([book(3), book(3)])), 'AlreadyExists');
  assert.deepEqual(lib.bulkAddBooks([book(4), book(5)]), { added: 2, ids: [1, 2] });
});

test('loans: due date, overdue as seen by the clock, lost can only be returned', () => {
  let now = NOW;
  const lib = new Library(() => now, null);
  lib.addBook(book(1));
  lib.addUser({ name: 'Ada', email: 'ada@example.org' });
  assert.equal(kind(() => lib.addUser({ name: 'Other', email: 'ADA@example.org' })), 'AlreadyExists');
  const loan = lib.createLoan('1', '1', 3);
  assert.equal(loan.due_at - loan.loaned_at, 3n * 86400n * 1000000n);
  now = NOW + 4n * 86400n * 1000000n;
  assert.equal(lib.getLoan('1').status, 'OVERDUE');
  assert.deepEqual(lib.getOverdueLoans().map((l) => l.id), [1]);
  lib.applyStatusUpdate('1', 'LOST');
  assert.equal(kind(() => lib.applyStatusUpdate('1', 'OVERDUE')), 'FailedPrecondition');
  assert.equal(lib.applyStatusUpdate('1', 'RETURNED').status, 'RETURNED');
  assert.equal(kind(() => lib.applyStatusUpdate('1', 'ACTIVE')), 'InvalidArgument');
});

test('ids: 64-bit range checked exactly, beyond 2^53 is simply not found', () => {
  const lib = library();
  assert.equal(kind(() => lib.getBook('0')), 'InvalidArgument');
  assert.equal(kind(() => lib.getBook('-3')), 'InvalidArgument');
  assert.equal(kind(() => lib.getBook('9223372036854775807')), 'NotFound');
  assert.equal(kind(() => lib.getBook('9223372036854775808')), 'InvalidArgument');
});

test('instants keep microseconds; clocks', () => {
  assert.equal(parseInstant('1970-01-01T00:00:01.000002Z'), 1000002n);
  assert.equal(parseInstant('2026-01-15T13:00:00+01:00'), NOW);
  assert.equal(parseClock('fixed:2026-01-15T12:00:00+00:00')(), NOW);
  assert.throws(() => parseClock('tomorrow'));
});
