'use strict';
// The Library gRPC service on Node.js: @grpc/grpc-js, with proto/library.proto loaded at run time by
// @grpc/proto-loader (no generated code), the standard health service and server reflection (v1, v1alpha).
//
//   node server.js [--host 127.0.0.1] [--port 0] [--clock system|fixed:<ISO>] [--dataset-file F]
//                  [--delete-dataset-file] [--metrics-port N] [--inject-delay MICROSECONDS]
//
// Prints exactly one line, `READY grpc <host>:<port>`, once it accepts calls (with --metrics-port, `READY grpc
// <host>:<port> metrics=<host>:<metricsport>`: the call counters of lib/metrics.js at GET /metrics on the same
// host; port 0 picks a free one); logs to stderr only; exits 0 on SIGINT/SIGTERM. `bench serve grpc --impl
// node` starts it with the seeded dataset (targets/node/__init__.py).

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');
const { HealthImplementation } = require('grpc-health-check');
const { Library, LibraryError, checkBatchIndex, parseClock } = require('./lib/library');
const { CallCounters, serveMetrics } = require('./lib/metrics');

const PROTO = path.resolve(__dirname, '..', '..', 'proto', 'library.proto');
const SERVICE = 'library.v1.Library';
const MIB = 1024 * 1024;
// targets/limits.py, the same for every implementation.
const SERVER_OPTIONS = {
  'grpc.max_receive_message_length': 8 * MIB,
  'grpc.max_send_message_length': 8 * MIB,
  'grpc.max_concurrent_streams': 256,
  'grpc.max_metadata_size': 64 * 1024,
  'grpc.max_connection_idle_ms': 75000,
};
const STATUS = {
  NotFound: grpc.status.NOT_FOUND,
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Internal: grpc.status.INTERNAL,
};
const KIND_BY_STATUS = new Map(Object.entries(STATUS).map(([kind, code]) => [code, kind]));
const PREFIX = 'LOAN_STATUS_';
const MALFORMED = Symbol('malformed');

function parseArgs(argv) {
  const options = {
    host: '127.0.0.1',
    port: 0,
    clock: 'system',
    datasetFile: null,
    deleteDatasetFile: false,
    metricsPort: null,
    injectDelayUs: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--host') options.host = value();
    else if (flag === '--port') options.port = Number(value());
    else if (flag === '--clock') options.clock = value();
    else if (flag === '--dataset-file') options.datasetFile = value();
    else if (flag === '--delete-dataset-file') options.deleteDatasetFile = true;
    else if (flag === '--metrics-port') options.metricsPort = Number(value());
    else if (flag === '--inject-delay') options.injectDelayUs = Number(value());
    else throw new Error(`unknown option ${flag}`);
  }
  for (const [flag, port] of [['--port', options.port], ['--metrics-port', options.metricsPort]]) {
    if (port !== null && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new Error(`${flag} ${port} is not a TCP port (0..65535)`);
    }
  }
  if (!Number.isFinite(options.injectDelayUs) || options.injectDelayUs < 0) {
    throw new Error(`--inject-delay ${options.injectDelayUs} must be a non-negative number of microseconds`);
  }
  return options;
}

// ---- messages <-> records ---------------------------------------------------------------------------------
const timestamp = (us) => ({ seconds: (us / 1000000n).toString(), nanos: Number(us % 1000000n) * 1000 });

function loanToPb(loan) {
  const message = {
    id: loan.id,
    user_id: loan.user_id,
    book_id: loan.book_id,
    loaned_at: timestamp(loan.loaned_at),
    due_at: timestamp(loan.due_at),
    status: PREFIX + loan.status,
  };
  if (loan.returned_at !== null) message.returned_at = timestamp(loan.returned_at);
  return message;
}

const newBookFromPb = (m) => ({
  isbn: m.isbn ?? '',
  title: m.title ?? '',
  author: m.author ?? '',
  category: m.category ?? '',
  year: m.year ?? 0,
  copies: m.copies ?? 0,
});

// An unknown enum number arrives as a number; UNSPECIFIED as its name. Both become names the service refuses.
function statusFromPb(value) {
  if (typeof value === 'string') return value.startsWith(PREFIX) ? value.slice(PREFIX.length) : value;
  return `UNKNOWN(${value ?? 0})`;
}

function toStatus(error) {
  if (error instanceof LibraryError && error.kind !== 'Internal') {
    return { code: STATUS[error.kind], details: error.message };
  }
  console.error('unexpected error in a gRPC call:', error);
  return { code: grpc.status.INTERNAL, details: 'internal server error' };
}

// ---- decoding: undecodable bytes are INVALID_ARGUMENT, not grpc-js's INTERNAL ----------------------------
// protobufjs decodes invalid UTF-8 in a string field to U+FFFD instead of failing, as the Python target's
// decoder does; a U+FFFD in a decoded string whose bytes never held one (EF BF BD) came from such bytes.
const REPLACEMENT = Buffer.from('\ufffd');

function hasReplacedText(message) {
  for (const value of Object.values(message)) {
    if (typeof value === 'string' && value.includes('\ufffd')) return true;
  }
  return false;
}

function safeDeserializer(deserialize, typeName) {
  return (buffer) => {
    try {
      const message = deserialize(buffer);
      if (hasReplacedText(message) && !buffer.includes(REPLACEMENT)) {
        return { [MALFORMED]: `request is not a valid ${typeName}: a string field is not valid UTF-8` };
      }
      return message;
    } catch (error) {
      return { [MALFORMED]: `request is not a valid ${typeName}: ${error.message}` };
    }
  };
}

function checked(message) {
  if (message[MALFORMED]) throw new LibraryError('InvalidArgument', message[MALFORMED]);
  return message;
}

// ---- handlers ---------------------------------------------------------------------------------------------
function unary(work) {
  return (call, callback) => {
    try {
      callback(null, work(checked(call.request)));
    } catch (error) {
      callback(toStatus(error));
    }
  };
}

function serverStream(work) {
  return (call) => {
    let items;
    try {
      items = work(checked(call.request));
    } catch (error) {
      call.emit('error', toStatus(error));
      return;
    }
    for (const item of items) call.write(item);
    call.end();
  };
}

function handlers(library) {
  return {
    AddBook: unary((r) => library.addBook(newBookFromPb(r))),
    GetBook: unary((r) => library.getBook(r.id ?? '0')),
    DeleteBook: unary((r) => {
      library.deleteBook(r.id ?? '0');
      return {};
    }),
    AddUser: unary((r) => library.addUser({ name: r.name ?? '', email: r.email ?? '' })),
    GetUser: unary((r) => library.getUser(r.id ?? '0')),
    CreateLoan: unary((r) => loanToPb(library.createLoan(r.user_id ?? '0', r.book_id ?? '0', r.days ?? 14))),
    ReturnLoan: unary((r) => loanToPb(library.returnLoan(r.id ?? '0'))),
    GetLoan: unary((r) => loanToPb(library.getLoan(r.id ?? '0'))),
    ListBooksByCategory: serverStream((r) => library.listBooksByCategory(r.category ?? '')),
    GetOverdueLoans: serverStream(() => library.getOverdueLoans().map(loanToPb)),

    // Client streaming: all or nothing; an endless stream is refused before it is buffered.
    BulkAddBooks: (call, callback) => {
      const items = [];
      let failed = false;
      const fail = (error) => {
        if (failed) return;
        failed = true;
        callback(toStatus(error));
      };
      call.on('data', (message) => {
        if (failed) return;
        try {
          checkBatchIndex(items.length);
          items.push(newBookFromPb(checked(message)));
        } catch (error) {
          fail(error);
        }
      });
      call.on('end', () => {
        if (failed) return;
        try {
          callback(null, library.bulkAddBooks(items));
        } catch (error) {
          fail(error);
        }
      });
      call.on('error', () => {
        failed = true; // the client cancelled: nothing to answer
      });
    },

    // Bidirectional streaming: each update is applied as it arrives and answered with the loan; the first
    // failing update ends the call with its status, the earlier ones stay applied.
    UpdateLoanStatus: (call) => {
      let index = 0;
      let failed = false;
      call.on('data', (message) => {
        if (failed) return;
        try {
          checkBatchIndex(index);
          const update = checked(message);
          const loan = library.applyStatusUpdate(update.loan_id ?? '0', statusFromPb(update.status));
          index += 1;
          call.write(loanToPb(loan));
        } catch (error) {
          failed = true;
          call.emit('error', toStatus(error));
        }
      });
      call.on('end', () => {
        if (!failed) call.end();
      });
      call.on('error', () => {
        failed = true;
      });
    },
  };
}

// ---- call counters ----------------------------------------------------------------------------------------
// Every call is counted when its handler starts (once per call: a stream counts once), whatever its request
// holds (an undecodable one is a call of its operation that ends in InvalidArgument, as on the Python
// target); it ends in an error when the handler answers with a gRPC status: through the callback (unary and
// client streaming) or by emitting it as an 'error' on the call (server and bidirectional streaming, the
// way grpc-js handlers send a status). The status code maps back to the core's error kind; anything else is
// Internal. A call the client cancels is not an error of the server (no status is sent, none is counted).
const kindOf = (status) => KIND_BY_STATUS.get(status?.code) ?? 'Internal';

function counted(name, handler, counters) {
  return (call, callback) => {
    counters.enter(name);
    let failed = false;
    const fail = (status) => {
      if (failed) return;
      failed = true;
      counters.fail(name, kindOf(status));
    };
    if (callback === undefined) {
      const emit = call.emit;
      call.emit = function countedEmit(event, ...args) {
        // Only the statuses handlers send (a numeric gRPC code): not a stream's own errors (e.g. a write
        // after the client left, ERR_STREAM_DESTROYED), which grpc-js does not send to the client either.
        if (event === 'error' && typeof args[0]?.code === 'number') fail(args[0]);
        return emit.call(this, event, ...args);
      };
      return handler(call);
    }
    return handler(call, (error, value, ...rest) => {
      if (error) fail(error);
      callback(error, value, ...rest);
    });
  };
}

function countedHandlers(library, counters) {
  const all = handlers(library);
  return Object.fromEntries(Object.entries(all).map(([name, handler]) => [name, counted(name, handler, counters)]));
}

// ---- server -----------------------------------------------------------------------------------------------
function loadContract() {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true, // field names as in the .proto (snake_case), as on the wire of every implementation
    longs: String, // int64 ids as strings: exact beyond 2^53, validated as BigInt
    enums: String,
    defaults: false, // absent fields stay undefined, so `optional int32 days` keeps its presence
    oneofs: true,
  });
  const service = definition[SERVICE];
  for (const method of Object.values(service)) {
    method.requestDeserialize = safeDeserializer(method.requestDeserialize, method.requestType.type.name);
  }
  return { definition, service };
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const clock = parseClock(options.clock);
  let dataset = null;
  if (options.datasetFile) {
    dataset = JSON.parse(fs.readFileSync(options.datasetFile, 'utf8'));
    if (options.deleteDatasetFile) fs.unlinkSync(options.datasetFile);
  }
  const library = new Library(clock, dataset);
  const { definition, service } = loadContract();

  // The operations are the service's methods in the contract (the 14 of targets/core/operations.py;
  // the two internal ones of the split topology, ReserveCopy and ReleaseCopy, are left UNIMPLEMENTED here).
  const counters = new CallCounters(Object.keys(service), { injectDelayUs: options.injectDelayUs });

  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(service, countedHandlers(library, counters));
  new HealthImplementation({ '': 'SERVING', [SERVICE]: 'SERVING' }).addToServer(server);
  new ReflectionService(definition).addToServer(server);

  const shown = options.host.includes(':') ? `[${options.host}]` : options.host;
  const address = `${shown}:${options.port}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) {
      console.error(`cannot serve grpc on ${address}: ${error.message}`);
      process.exit(1);
    }
    if (options.metricsPort === null) {
      process.stdout.write(`READY grpc ${shown}:${port}\n`);
      return;
    }
    serveMetrics(counters, options.host, options.metricsPort, (metricsError, metricsPort) => {
      if (metricsError) {
        console.error(`cannot serve metrics on ${shown}:${options.metricsPort}: ${metricsError.message}`);
        process.exit(1);
      }
      process.stdout.write(`READY grpc ${shown}:${port} metrics=${shown}:${metricsPort}\n`);
    });
  });

  const stop = () => {
    const force = setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    console.error(`node target: ${error.message}`);
    process.exit(2);
  }
}

module.exports = { counted, countedHandlers, handlers, loadContract, loanToPb, parseArgs, statusFromPb };
