'use strict';
// Unit tests of the call counters (lib/metrics.js) and of how server.js counts calls (node --test). The
// whole server is tested from pytest (tests/impls/test_impl_metrics.py).
const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const grpc = require('@grpc/grpc-js');
const { CallCounters, serveMetrics } = require('../lib/metrics');
const { counted, loadContract } = require('../server');

const OPERATIONS = [
  'AddBook',
  'GetBook',
  'DeleteBook',
  'AddUser',
  'GetUser',
  'CreateLoan',
  'ReturnLoan',
  'GetLoan',
  'ListBooksByCategory',
  'GetOverdueLoans',
  'BulkAddBooks',
  'UpdateLoanStatus',
  // The internal operations of the split topology (a loan reserves a copy in the books service). This
  // implementation does not serve them (grpc-js answers UNIMPLEMENTED) but exposes their series, at 0, so
  // that every implementation's exposition has the same series.
  'ReserveCopy',
  'ReleaseCopy',
];

// The samples of an exposition: {'library_calls_total{operation="GetBook"}': 3, ...}
async function samples(counters) {
  const values = {};
  for (const line of (await counters.exposition()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return values;
}

test('the contract has the 14 operations of targets/core/operations.py, each at 0 before any call', async () => {
  const { service } = loadContract();
  assert.deepEqual(Object.keys(service).sort(), [...OPERATIONS].sort());
  const counters = new CallCounters(Object.keys(service));
  const text = await counters.exposition();
  assert.match(text, /^# HELP library_calls_total .+\n# TYPE library_calls_total counter\n/);
  assert.match(text, /\n# HELP library_errors_total .+\n# TYPE library_errors_total counter\n/);
  assert.deepEqual(
    await samples(counters),
    Object.fromEntries(OPERATIONS.map((op) => [`library_calls_total{operation="${op}"}`, 0])),
  );
  assert.equal(counters.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.throws(() => counters.enter('Nope'), /not an operation/);
});

test('a unary call is counted on entry; an error status counts as its kind', async () => {
  const counters = new CallCounters(OPERATIONS);
  const order = [];
  const enter = counters.enter.bind(counters);
  counters.enter = (operation) => {
    order.push('counted');
    enter(operation);
  };
  const handler = counted(
    'GetBook',
    (call, callback) => {
      order.push('handled');
      callback(call.request.fail ? { code: grpc.status.NOT_FOUND, details: 'no' } : null, {});
    },
    counters,
  );
  handler({ request: {} }, (error) => order.push(error));
  handler({ request: { fail: true } }, (error) => order.push(error?.code));
  assert.deepEqual(order, ['counted', 'handled', null, 'counted', 'handled', grpc.status.NOT_FOUND]);
  const values = await samples(counters);
  assert.equal(values['library_calls_total{operation="GetBook"}'], 2);
  assert.equal(values['library_errors_total{operation="GetBook",kind="NotFound"}'], 1);
});

test('a stream counts once; the status it emits counts once; a stream error without a status does not', async () => {
  const counters = new CallCounters(OPERATIONS);
  const handler = counted(
    'UpdateLoanStatus',
    (call) => {
      call.on('error', () => {});
      call.emit('data', {});
      call.emit('data', {});
      call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: 'returned' });
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'a second status is not sent' });
    },
    counters,
  );
  handler(new EventEmitter());
  const destroyed = (call) => call.emit('error', { code: 'ERR_STREAM_DESTROYED' });
  const other = counted('ListBooksByCategory', destroyed, counters);
  const call = new EventEmitter();
  call.on('error', () => {});
  other(call);
  const values = await samples(counters);
  assert.equal(values['library_calls_total{operation="UpdateLoanStatus"}'], 1);
  assert.equal(values['library_errors_total{operation="UpdateLoanStatus",kind="FailedPrecondition"}'], 1);
  assert.equal(values['library_calls_total{operation="ListBooksByCategory"}'], 1);
  assert.equal(Object.keys(values).filter((key) => key.startsWith('library_errors_total')).length, 1);
});

test('an unknown status code is Internal', async () => {
  const counters = new CallCounters(OPERATIONS);
  counted('AddUser', (call, callback) => callback({ code: grpc.status.UNAVAILABLE }), counters)({}, () => {});
  assert.equal((await samples(counters))['library_errors_total{operation="AddUser",kind="Internal"}'], 1);
});

test('the injected delay busy-waits: it costs CPU, not only time', () => {
  const counters = new CallCounters(OPERATIONS, { injectDelayUs: 20000 });
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < 5; i++) counters.enter('GetBook');
  const elapsedUs = Number(process.hrtime.bigint() - started) / 1000;
  const used = process.cpuUsage(cpu);
  assert.ok(elapsedUs >= 100000, `${elapsedUs} µs`);
  assert.ok(used.user + used.system >= 50000, `${used.user + used.system} µs of CPU`);
  assert.throws(() => new CallCounters(OPERATIONS, { injectDelayUs: -1 }), /non-negative/);
});

test('GET /metrics on a side port; anything else is 404', async () => {
  const counters = new CallCounters(OPERATIONS);
  counters.enter('GetBook');
  const { server, port } = await new Promise((resolve, reject) => {
    serveMetrics(counters, '127.0.0.1', 0, (error, bound, listening) => {
      if (error) reject(error);
      else resolve({ server: listening, port: bound });
    });
  });
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(await response.text(), /\nlibrary_calls_total\{operation="GetBook"\} 1\n/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
  } finally {
    server.close();
  }
});
