'use strict';
// Calls and errors per operation: the server-side ground truth a benchmark checks its own counts against
// (the same counters as the Python targets, targets/core/calls.py and targets/metrics.py), served with
// prom-client on a side port in the Prometheus text format (`--metrics-port`):
//
//   library_calls_total{operation="GetBook"}                     calls that reached the service (on entry)
//   library_errors_total{operation="GetBook",kind="NotFound"}   calls that ended in an error of that kind
//
// Every operation is listed from the start (0 before any call), so a scrape before a window is comparable
// with one after it; an error kind appears once it occurred. The kinds are the core's ErrorKind values.
// `injectDelayUs` makes every call slower by busy-waiting that long on entry (a deliberately slowed target:
// busy, not asleep, so capacity drops as well as latency; Node runs the handlers on one thread, so it holds
// the event loop exactly as the busy-wait in the Python core holds grpc.aio's).

const http = require('node:http');
const client = require('prom-client');

const KINDS = ['NotFound', 'InvalidArgument', 'AlreadyExists', 'FailedPrecondition', 'Internal'];

function busyWait(nanoseconds) {
  const deadline = process.hrtime.bigint() + nanoseconds;
  while (process.hrtime.bigint() < deadline) {
    // spin: the delay must cost CPU
  }
}

class CallCounters {
  constructor(operations, { injectDelayUs = 0 } = {}) {
    if (!Number.isFinite(injectDelayUs) || injectDelayUs < 0) {
      throw new Error(`the injected delay must be a non-negative number of microseconds, got ${injectDelayUs}`);
    }
    this.operations = new Set(operations);
    this.delayNs = BigInt(Math.round(injectDelayUs * 1000));
    this.registry = new client.Registry(); // only these two families: no default process metrics
    this.calls = new client.Counter({
      name: 'library_calls_total',
      help: 'Calls that reached the service, per operation',
      labelNames: ['operation'],
      registers: [this.registry],
    });
    this.errors = new client.Counter({
      name: 'library_errors_total',
      help: 'Calls that ended in an error, per operation and kind',
      labelNames: ['operation', 'kind'],
      registers: [this.registry],
    });
    for (const operation of this.operations) this.calls.inc({ operation }, 0);
  }

  // Once per call, when it reaches the service (a stream counts once, when it starts).
  enter(operation) {
    if (!this.operations.has(operation)) throw new Error(`${operation} is not an operation of the contract`);
    this.calls.inc({ operation });
    if (this.delayNs > 0n) busyWait(this.delayNs);
  }

  fail(operation, kind) {
    this.errors.inc({ operation, kind: KINDS.includes(kind) ? kind : 'Internal' });
  }

  get contentType() {
    return this.registry.contentType; // text/plain; version=0.0.4; charset=utf-8
  }

  exposition() {
    return this.registry.metrics(); // a promise of the text
  }
}

// GET /metrics on host:port (0: a free port); calls back with the bound port, or the listen error.
function serveMetrics(counters, host, port, done) {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('not found: the counters are at GET /metrics\n');
      return;
    }
    counters.exposition().then(
      (text) => {
        response.writeHead(200, { 'Content-Type': counters.contentType });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error) => {
        console.error('cannot render the metrics:', error);
        response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.end('internal server error\n');
      },
    );
  });
  server.once('error', (error) => done(error, null, server));
  server.listen(port, host, () => {
    server.removeAllListeners('error');
    server.on('error', (error) => console.error('metrics server:', error.message));
    done(null, server.address().port, server);
  });
  return server;
}

module.exports = { CallCounters, KINDS, busyWait, serveMetrics };
