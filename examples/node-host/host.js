#!/usr/bin/env node
// The chainsink default sink component, embedded in Node.
//
//   node host.js [options] COMPONENT LOG < events.jsonl
//
// COMPONENT is a sink component (`chainsink export-sink sink.wasm` writes the
// default one). It is transpiled with jco, in memory, when the host starts;
// nothing generated is written to disk. LOG is the audit log. Events arrive
// as JSON lines on stdin, in the shape of `chainsink emit --stdin`; one
// receipt line goes to stdout per event, as the Rust CLI prints them.
//
// Versions: a component built against WIT 0.1.0 (`wit/since_v0.1.0/`) or
// 0.2.0 (`wit/audit.wit`) loads. The version of the `chainsink:audit/sink`
// interface it exports decides which interfaces it is granted; every
// `chainsink:audit` import and export must name that same version.
//
// What the sink gets: that version's `chainsink:audit` interfaces and
// nothing else: `log-file`, `diagnostics`, `types`, and for 0.2 `digest`
// (SHA-256, computed here with node:crypto). `log-file` is implemented below
// over ONE file descriptor opened with 'a+' (O_RDWR | O_APPEND | O_CREAT):
// every write lands at the end, so the sink can add to the log but never
// change what is there. The sink never sees the path. No WASI shim is used:
// a component that imports WASI is refused, and jco's preview2-shim would by
// default hand a component the whole host filesystem, environment and
// network.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { componentWit, transpile } from '@bytecodealliance/jco';

/** The WIT package of the contract. */
const PACKAGE = 'chainsink:audit';
/** The contracts this host serves (by minor version), and the interfaces each grants. */
export const SERVED = {
  '0.1': ['log-file', 'diagnostics', 'types'],
  '0.2': ['log-file', 'diagnostics', 'digest', 'types'],
};
/**
 * Exports a component of each version may have besides `sink`. This host
 * calls `sink.emit-batch`, never `packed-batch.emit-packed` (the same call
 * with events packed in bytes), so a sink that exports both still works here.
 */
const OPTIONAL_EXPORTS = { '0.1': [], '0.2': ['verifier', 'packed-batch'] };
/** Most bytes `digest.sha256` hashes in one call (WIT 0.2.0: 1 MiB, the largest record). */
export const DIGEST_LIMIT = 1048576;
/** Most events written with one append, as the Rust CLI. */
const MAX_BATCH = 256;
/** Longest diagnostic line kept. */
const MAX_DIAGNOSTIC = 4096;
const LEVELS = ['debug', 'info', 'warn', 'error'];

// ---------------------------------------------------------------------------
// Loading: check the component's world, transpile with jco, instantiate
// with our imports only.

/**
 * The component's top-level imports and exports, with their versions (jco's
 * transpile reports imports without them), from the WIT jco prints for it.
 */
async function worldOf(bytes) {
  const wit = await componentWit(bytes);
  const start = wit.search(/^world [^{]*\{/m);
  const names = { imports: [], exports: [] };
  if (start < 0) return names;
  let depth = 0;
  for (const line of wit.slice(start).split('\n')) {
    // Only the world's own items, not those of an inline interface.
    const m = depth === 1 && line.match(/^\s*(import|export)\s+([^\s;{]+)/);
    if (m) names[`${m[1]}s`].push(m[2].replace(/:$/, ''));
    depth += (line.match(/\{/g) || []).length - (line.match(/\}/g) || []).length;
    if (depth === 0) break;
  }
  return names;
}

/** `chainsink:audit/NAME@VERSION` as [NAME, VERSION], else null. */
function ours(name) {
  const m = name.match(/^chainsink:audit\/([a-z0-9-]+)@(\d+\.\d+\.\d+)$/);
  return m ? [m[1], m[2]] : null;
}

const minorOf = (version) => version.split('.').slice(0, 2).join('.');

/**
 * Which contract a component speaks, from its exported
 * `chainsink:audit/sink@X.Y.Z`: `{version, minor, granted, sinkExport,
 * verifierExport}`. Throws one line naming what is wrong and how to fix it
 * for a component that exports no sink, a version this host does not serve,
 * mixes versions, or imports anything else.
 */
export function checkWorld({ imports, exports }, what = 'the component') {
  const served = Object.keys(SERVED).map((m) => `${m}.x`).join(' and ');
  const sinks = exports.filter((e) => ours(e) && ours(e)[0] === 'sink');
  if (sinks.length !== 1) {
    throw new Error(
      `${what} exports no \`${PACKAGE}/sink\` interface (exports: ${exports.join(', ') || 'none'}); ` +
        `this host loads chainsink sinks of WIT ${served}: build it against wit/audit.wit`,
    );
  }
  const version = ours(sinks[0])[1];
  const minor = minorOf(version);
  if (!SERVED[minor]) {
    throw new Error(
      `${what} exports ${sinks[0]}; this host serves WIT ${served}: ` +
        'rebuild the sink against wit/audit.wit (0.2.0), or use a host that serves its version',
    );
  }
  const mixed = [...imports, ...exports].filter((n) => ours(n) && minorOf(ours(n)[1]) !== minor);
  if (mixed.length > 0) {
    throw new Error(
      `${what} mixes WIT versions: it exports ${sinks[0]} but ${imports.includes(mixed[0]) ? 'imports' : 'exports'} ${mixed.join(', ')}; ` +
        `a sink uses one version of ${PACKAGE} throughout: rebuild it against one WIT (wit/audit.wit for 0.2.0)`,
    );
  }
  const granted = SERVED[minor];
  const foreign = imports.filter((n) => !(ours(n) && granted.includes(ours(n)[0])));
  if (foreign.length > 0) {
    throw new Error(
      `${what} imports ${foreign.join(', ')}; this host grants a WIT ${version} sink only ` +
        `${granted.map((g) => `${PACKAGE}/${g}@${version}`).join(', ')} ` +
        '(no WASI: no filesystem, environment, clock or network): rebuild the sink without those imports',
    );
  }
  const unknown = exports.filter((n) => ours(n) && n !== sinks[0] && !OPTIONAL_EXPORTS[minor].includes(ours(n)[0]));
  if (unknown.length > 0) {
    throw new Error(`${what} exports ${unknown.join(', ')}, which WIT ${version} does not define: rebuild it against wit/audit.wit`);
  }
  const verifier = exports.find((n) => ours(n) && ours(n)[0] === 'verifier') ?? null;
  return { version, minor, granted, imports, sinkExport: sinks[0], verifierExport: verifier };
}

/**
 * Checks a sink component (see `checkWorld`), transpiles it with jco (no
 * WASI shim, custom instantiation) and returns a loaded component that can
 * be instantiated any number of times, with `version` (the WIT version it
 * speaks, such as `0.2.0`).
 */
export async function loadComponent(bytes, what = 'the component') {
  const world = checkWorld(await worldOf(bytes), what);
  const { files } = await transpile(bytes, {
    name: 'sink',
    instantiation: 'sync',
    wasiShim: false,
    nodejsCompat: false,
    noTypescript: true,
    quiet: true,
  });
  const js = Buffer.from(files['sink.js']).toString('base64');
  const bindings = await import(`data:text/javascript;base64,${js}`);
  const modules = new Map();
  const getCoreModule = (path) => {
    if (!modules.has(path)) modules.set(path, new WebAssembly.Module(files[path]));
    return modules.get(path);
  };
  return {
    ...world,
    /**
     * Instantiates with `provided` ({'log-file': {...}, diagnostics: {...},
     * digest: {...}}): only the interfaces this version grants, each under
     * the name the component imports. jco 1.35 looks imports up without
     * their version (its .d.ts shows them with it), so both spellings are
     * given.
     */
    instantiate: (provided) => {
      const imports = {};
      for (const name of world.granted) {
        const iface = name === 'types' ? {} : provided[name];
        if (!iface) throw new Error(`no implementation of ${PACKAGE}/${name} was given`);
        imports[`${PACKAGE}/${name}`] = iface;
        imports[`${PACKAGE}/${name}@${world.version}`] = iface;
      }
      return bindings.instantiate(getCoreModule, imports);
    },
  };
}

// ---------------------------------------------------------------------------
// The digest capability (WIT 0.2.0).

/**
 * `chainsink:audit/digest`: SHA-256 with node:crypto, at most DIGEST_LIMIT
 * bytes a call (longer input gets the error the WIT describes, and nothing is
 * hashed). `onCall` is told of each call (for counting).
 */
export function digestImports(onCall = () => {}) {
  return {
    sha256: (data) => {
      onCall(data.length);
      if (data.length > DIGEST_LIMIT) {
        throw {
          payload: `sha256: ${data.length} bytes is more than the limit of ${DIGEST_LIMIT} bytes (1 MiB) a call; nothing was hashed: hash such data in wasm`,
        };
      }
      return crypto.createHash('sha256').update(data).digest();
    },
  };
}

// ---------------------------------------------------------------------------
// The log-file capability.

/**
 * One audit log, opened once for read + append. `imports()` is the
 * `chainsink:audit/log-file` interface the sink gets: errors are thrown as
 * `{payload: message}`, which jco turns into the `result`'s error string.
 */
export class LogFile {
  constructor(path, { readOnly = false } = {}) {
    this.path = path;
    this.readOnly = readOnly;
    // O_RDWR | O_APPEND | O_CREAT, mode 0666 less the umask. Every write goes
    // to the end, whatever position is asked for. Read-only (for --verify):
    // O_RDONLY, and `append` and `sync` fail.
    this.fd = fs.openSync(path, readOnly ? 'r' : 'a+');
  }

  #writable() {
    if (this.readOnly) throw new Error('the log is open read-only, to be verified');
  }

  /** Fails the call with `{payload}`, the form jco expects for a `result` error. */
  #guard(what, fn) {
    try {
      return fn();
    } catch (e) {
      throw { payload: `${what} ${this.path}: ${e && e.message ? e.message : String(e)}` };
    }
  }

  #size() {
    return fs.fstatSync(this.fd, { bigint: true }).size;
  }

  #read(offset, len) {
    // Up to `len` bytes: never allocate more than the file holds.
    const size = this.#size();
    if (offset >= size) return Buffer.alloc(0);
    if (BigInt(len) > size - offset) len = Number(size - offset);
    const buf = Buffer.alloc(len);
    let filled = 0;
    while (filled < len) {
      const n = fs.readSync(this.fd, buf, filled, len - filled, offset + BigInt(filled));
      if (n === 0) break;
      filled += n;
    }
    return buf.subarray(0, filled);
  }

  imports() {
    return {
      // One write; O_APPEND puts it at the end. Node has no lseek, so the
      // offset is the size after the write less the length: if another
      // process appended meanwhile, the offset comes out past where the sink
      // expected, and the sink reports the other writer (it never misses one).
      append: (data) =>
        this.#guard('append to', () => {
          this.#writable();
          let written = 0;
          while (written < data.length) {
            written += fs.writeSync(this.fd, data, written, data.length - written);
          }
          return this.#size() - BigInt(data.length);
        }),
      read: (offset, len) => this.#guard('read', () => this.#read(offset, len)),
      readTail: (len) =>
        this.#guard('read', () => {
          const size = this.#size();
          const start = size > BigInt(len) ? size - BigInt(len) : 0n;
          return [start, this.#read(start, Number(size - start))];
        }),
      size: () => this.#guard('stat', () => this.#size()),
      sync: () =>
        this.#guard('sync', () => {
          this.#writable();
          fs.fdatasyncSync(this.fd);
        }),
    };
  }

  close() {
    fs.closeSync(this.fd);
  }
}

// ---------------------------------------------------------------------------
// A live sink instance.

/** A sink call that failed: `kind` is the WIT `sink-error` case, or `trap`. */
export class SinkError extends Error {
  constructor(kind, message) {
    super(kind === 'not-open' ? 'the sink is not open' : `${kind}: ${message}`);
    this.kind = kind;
    this.detail = message;
  }
}

/** The format the WIT 0.2 `describe` names, as text: `telemachy-json` or `custom(NAME)`. */
function formatName(format) {
  return format.tag === 'custom' ? `custom(${format.val})` : format.tag;
}

/**
 * One sink instance over one log. Calls are synchronous and must come from
 * one thread at a time (Node's event loop gives that). A trapped instance is
 * discarded: every later call reports the trap.
 *
 * A WIT 0.2 sink is asked `describe` once, before `open`; `info` keeps the
 * answer (`{name, version, format}`; for a 0.1 sink, which has no
 * `describe`, name and version are null and the format is telemachy-json).
 * This host writes telemachy-json only, so a sink that names a custom
 * format is refused before `open`.
 */
export class Sink {
  constructor(component, logFile, options) {
    this.logFile = logFile;
    this.lastError = null;
    this.gone = null;
    this.digestCalls = 0;
    const minLevel = LEVELS.indexOf(options.diagnostics ?? 'warn');
    this.note = (text) => {
      if (minLevel <= LEVELS.indexOf('info')) process.stderr.write(`chainsink-node: ${text}\n`);
    };
    const diagnostics = {
      log: (level, message) => {
        let text = String(message);
        if (text.length > MAX_DIAGNOSTIC) text = `${text.slice(0, MAX_DIAGNOSTIC)}...`;
        if (level === 'error') this.lastError = text;
        if (LEVELS.indexOf(level) >= minLevel) process.stderr.write(`chainsink-node: sink ${level}: ${text}\n`);
      },
    };
    const root = component.instantiate({
      'log-file': logFile.imports(),
      diagnostics,
      digest: digestImports(() => {
        this.digestCalls++;
      }),
    });
    this.version = component.version;
    this.exports = root[component.sinkExport];
    this.verifier = component.verifierExport ? root[component.verifierExport] : null;
    if (component.minor === '0.1') {
      this.info = { name: null, version: null, format: { tag: 'telemachy-json' } };
      this.note(`sink: WIT ${component.version} (no describe), taken as telemachy-json; granted ${component.granted.join(', ')}`);
    } else {
      this.info = this.#call('describe', () => this.exports.describe());
      this.note(
        `sink: ${this.info.name} ${this.info.version}, WIT ${component.version}, writes ${formatName(this.info.format)}` +
          `${component.verifierExport ? ', has a verifier' : ''}; granted ${component.granted.join(', ')}`,
      );
      if (this.info.format.tag !== 'telemachy-json' && !options.verifyOnly) {
        this.gone = new SinkError('not-open');
        throw new Error(
          `the sink ${this.info.name} ${this.info.version} writes its own record format (${formatName(this.info.format)}); ` +
            'this host writes and prints receipts for telemachy-json only: ' +
            'run such a sink with `chainsink emit --sink SINK.wasm` and check its log with `chainsink verify --sink SINK.wasm`',
        );
      }
    }
    this.durability = options.durability ?? 'always';
    // For --verify the instance is never opened: `verify` reads the log itself.
    if (options.verifyOnly) return;
    this.head = this.#call('open', () =>
      this.exports.open({ hashChain: options.hashChain ?? true, durability: this.durability }),
    );
  }

  #call(name, fn) {
    if (this.gone) throw this.gone;
    try {
      return fn();
    } catch (e) {
      if (e && e.payload && typeof e.payload.tag === 'string') {
        throw new SinkError(e.payload.tag, e.payload.val);
      }
      // Anything else is a trap (or a host bug): the instance is discarded.
      const reason = this.lastError ? `${e.message}; the sink said: ${this.lastError}` : String(e && e.message);
      this.gone = new SinkError('trap', `the sink trapped in \`${name}\`: ${reason}; the instance was discarded`);
      throw this.gone;
    }
  }

  emit(event) {
    return this.#call('emit', () => this.exports.emit(event));
  }

  /**
   * The sink's own check of its log (WIT 0.2 `verifier.verify`), as
   * `chainsink verify --sink` runs it: on an instance made with
   * `{verifyOnly: true}` over a read-only `LogFile`, without `open`. Returns
   * `{report}` (`{records, head, bytes}`) or `{failure}` (`{line, offset, reason}`).
   */
  verify() {
    if (!this.verifier) {
      throw new Error(
        `the component exports no ${PACKAGE}/verifier (WIT 0.2, world verifying-sink): ` +
          'check a telemachy-json log with `chainsink verify LOG`',
      );
    }
    return this.#call('verify', () => {
      try {
        return { report: this.verifier.verify() };
      } catch (e) {
        if (e && e.payload && typeof e.payload.reason === 'string') return { failure: e.payload };
        throw e;
      }
    });
  }

  emitBatch(events) {
    return this.#call('emit-batch', () => this.exports.emitBatch(events));
  }

  flush() {
    this.#call('flush', () => this.exports.flush());
  }

  currentHead() {
    return this.#call('head', () => this.exports.head());
  }

  close() {
    const head = this.#call('close', () => this.exports.close());
    this.gone = new SinkError('not-open');
    if (this.version.startsWith('0.2.')) {
      this.note(`digest: ${this.digestCalls} sha256 call(s) hashed natively`);
    }
    return head;
  }
}

// ---------------------------------------------------------------------------
// Events: the `chainsink emit --stdin` line format.

/** Now, UTC, as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (Python's isoformat). */
export function timestampNow() {
  const wall = Date.now();
  const fine = performance.timeOrigin + performance.now();
  // Microseconds from the high-resolution clock (Date has milliseconds only)
  // while it agrees with the wall clock; it drifts if the clock is stepped.
  const us = BigInt(Math.floor((Math.abs(fine - wall) < 20 ? fine : wall) * 1000));
  const iso = new Date(Number(us / 1000n)).toISOString();
  return `${iso.slice(0, 19)}.${String(us % 1000000n).padStart(6, '0')}+00:00`;
}

/**
 * Byte ranges of the values of a JSON object's top-level keys, so that the
 * payload reaches the sink as written: JSON.parse would turn `1.0` into `1`
 * and round big integers. `text` must already be valid JSON.
 */
function topLevelSpans(text) {
  const spans = new Map();
  let i = 0;
  const ws = () => {
    while (' \t\r\n'.includes(text[i]) && i < text.length) i++;
  };
  const skipString = () => {
    i++; // opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    if (text[i] === '"') return skipString();
    if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      do {
        if (text[i] === '"') {
          skipString();
          continue;
        }
        if (text[i] === '{' || text[i] === '[') depth++;
        else if (text[i] === '}' || text[i] === ']') depth--;
        i++;
      } while (depth > 0);
      return;
    }
    while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++;
  };
  ws();
  i++; // {
  ws();
  while (text[i] !== '}') {
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i));
    ws();
    i++; // :
    ws();
    const start = i;
    skipValue();
    if (spans.has(key)) throw new Error(`duplicate field \`${key}\``);
    spans.set(key, text.slice(start, i));
    ws();
    if (text[i] === ',') {
      i++;
      ws();
    }
  }
  return spans;
}

const SHAPE = 'expected {"event_type": "..", "workflow_id": ".." or null, "payload": {..}}';
const FIELDS = ['event_type', 'workflow_id', 'payload', 'timestamp', 'actor'];

/**
 * Parses one input line into the WIT event. `defaults` gives the actor and
 * the timestamp for events that carry none. Throws a message for bad lines.
 */
export function parseLine(text, defaults) {
  const fail = (msg) => {
    throw new Error(`${msg}; ${SHAPE}`);
  };
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    fail(e.message);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('not a JSON object');
  let spans;
  try {
    spans = topLevelSpans(text);
  } catch (e) {
    fail(e.message);
  }
  for (const key of spans.keys()) {
    if (!FIELDS.includes(key)) fail(`unknown field \`${key}\`, expected one of ${FIELDS.map((f) => `\`${f}\``).join(', ')}`);
  }
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (typeof value.event_type !== 'string') fail('`event_type` must be a string');
  if (value.workflow_id != null && typeof value.workflow_id !== 'string') fail('`workflow_id` must be a string or null');
  if (value.payload != null && !isObject(value.payload)) fail('`payload` must be an object');
  if (value.timestamp != null && typeof value.timestamp !== 'string') fail('`timestamp` must be a string');
  let actor = defaults.actor;
  if (value.actor != null) {
    const a = value.actor;
    if (!isObject(a) || typeof a.host_id !== 'string' || typeof a.user !== 'string' || Object.keys(a).length !== 2) {
      fail('`actor` must be {"host_id": "..", "user": ".."}');
    }
    actor = { hostId: a.host_id, user: a.user };
  }
  return {
    timestamp: value.timestamp ?? null,
    eventType: value.event_type,
    workflowId: value.workflow_id ?? undefined,
    actor,
    payload: value.payload == null ? '{}' : spans.get('payload'),
  };
}

/** The receipt line, byte for byte as `chainsink emit --stdin` prints it. */
function receiptLine(line, receipt) {
  return `{"hash":${receipt.hash == null ? 'null' : JSON.stringify(receipt.hash)},"line":${line},"seq":${receipt.seq}}\n`;
}

function errorLine(line, message) {
  return `{"error":${JSON.stringify(message)},"line":${line}}\n`;
}

/**
 * With durability `batch` the sink leaves syncing to the host, which must
 * sync before it acknowledges. One process writing one stream has nobody to
 * share a sync with, so it syncs after each write call (the Rust host groups
 * the syncs of concurrent emitters instead).
 */
function durable(sink) {
  if (sink.durability === 'batch') sink.flush();
}

/**
 * Writes `batch` ([line, event] pairs) with one append, stamping events
 * without a timestamp now; returns the receipt text. A batch with an invalid
 * event is retried one by one so that only the bad ones are refused.
 */
function writeBatch(sink, batch, report) {
  const now = timestampNow();
  const events = batch.map(([, e]) => ({ ...e, timestamp: e.timestamp ?? now }));
  let out = '';
  try {
    const receipts = sink.emitBatch(events);
    durable(sink);
    batch.forEach(([line], k) => {
      out += receiptLine(line, receipts[k]);
    });
    report.written += batch.length;
    return out;
  } catch (e) {
    if (!(e instanceof SinkError) || e.kind !== 'invalid-event') throw Object.assign(e, { line: batch[0][0] });
  }
  batch.forEach(([line], k) => {
    try {
      const receipt = sink.emit(events[k]);
      durable(sink);
      out += receiptLine(line, receipt);
      report.written++;
    } catch (e) {
      if (!(e instanceof SinkError) || e.kind !== 'invalid-event') {
        process.stdout.write(out);
        throw Object.assign(e, { line });
      }
      report.refused++;
      out += errorLine(line, e.detail);
    }
  });
  return out;
}

/** Reads events from stdin until it ends; a receipt line per event on stdout. */
function streamStdin(sink, defaults) {
  return new Promise((resolve, reject) => {
    const report = { written: 0, refused: 0 };
    let lineNo = 0;
    let pending = '';
    // Lines that arrive together are written together, so a conversation
    // (one line, wait for its receipt) works, and a pipe is written in batches.
    const take = (text) => {
      let batch = [];
      let out = '';
      const flush = () => {
        if (batch.length > 0) out += writeBatch(sink, batch, report);
        batch = [];
      };
      for (const raw of text.split('\n')) {
        lineNo++;
        const line = raw.trim();
        if (line === '') continue;
        try {
          batch.push([lineNo, parseLine(line, defaults)]);
        } catch (e) {
          report.refused++;
          out += errorLine(lineNo, e.message);
        }
        if (batch.length >= MAX_BATCH) flush();
      }
      flush();
      process.stdout.write(out);
    };
    // Decoded as a stream, so a character split between two reads stays whole.
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => {
      try {
        pending += chunk;
        const end = pending.lastIndexOf('\n');
        if (end < 0) return;
        const complete = pending.slice(0, end);
        pending = pending.slice(end + 1);
        take(complete);
      } catch (e) {
        process.stdin.destroy();
        reject(e);
      }
    });
    process.stdin.on('end', () => {
      try {
        if (pending !== '') take(pending);
        resolve(report);
      } catch (e) {
        reject(e);
      }
    });
    process.stdin.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// Benchmark: the same event as the Rust host bench (host/benches/sink.rs).

const BENCH_PAYLOAD =
  '{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}';

function bench(sink, n, durability, actor) {
  const event = () => ({
    timestamp: timestampNow(),
    eventType: 'task.completed',
    workflowId: '3f2a9c1d',
    actor,
    payload: BENCH_PAYLOAD,
  });
  let t = performance.now();
  for (let i = 0; i < n; i++) sink.emit(event());
  const one = (performance.now() - t) / 1000;
  const batches = Math.max(1, Math.floor(n / MAX_BATCH));
  t = performance.now();
  for (let b = 0; b < batches; b++) {
    const now = timestampNow();
    sink.emitBatch(Array.from({ length: MAX_BATCH }, () => ({ ...event(), timestamp: now })));
  }
  const batched = (performance.now() - t) / 1000;
  const line = (mode, events, secs) =>
    JSON.stringify({ host: 'node', mode, events, durability, seconds: Number(secs.toFixed(3)), events_per_s: Math.round(events / secs) });
  console.log(line('emit', n, one));
  console.log(line(`emit-batch-${MAX_BATCH}`, batches * MAX_BATCH, batched));
}

// ---------------------------------------------------------------------------
// Command line.

const USAGE = `usage: node host.js [options] COMPONENT LOG < events.jsonl

Embeds a chainsink sink component (e.g. from \`chainsink export-sink sink.wasm\`)
and writes the events on stdin (JSON lines, as \`chainsink emit --stdin\`) to LOG.

options:
  --durability MODE   always (fsync each write, default), batch or none  [AUDIT_DURABILITY]
  --host-id ID        actor.host_id for events without an actor  [HOST_ID, else the host name]
  --user NAME         actor.user for events without an actor  [USER, else USERNAME, else unknown]
  --bench N           emit N events (one a call, then in batches of ${MAX_BATCH}); print events/s
  --verify            check LOG with the sink's own verifier (WIT 0.2), read-only, as
                      \`chainsink verify --sink\`; exit 0 if it checks out, 1 if not
  --verbose           show the sink's info and debug diagnostics too`;

function defaultHostId() {
  for (const f of ['/proc/sys/kernel/hostname', '/etc/hostname']) {
    try {
      const name = fs.readFileSync(f, 'utf8').trim();
      if (name) return name;
    } catch {
      // try the next
    }
  }
  return 'unknown';
}

function parseArgs(argv) {
  const opts = {
    durability: process.env.AUDIT_DURABILITY || 'always',
    hostId: process.env.HOST_ID || null,
    user: null,
    bench: null,
    verify: false,
    verbose: false,
    positional: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--durability') opts.durability = value();
    else if (a === '--host-id') opts.hostId = value();
    else if (a === '--user') opts.user = value();
    else if (a === '--bench') opts.bench = Number.parseInt(value(), 10);
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '--verify') opts.verify = true;
    else if (a === '-h' || a === '--help') opts.help = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  if (opts.help) return opts;
  if (opts.positional.length !== 2) throw new Error('expected COMPONENT and LOG');
  if (!['always', 'batch', 'none'].includes(opts.durability)) {
    throw new Error(`unknown durability "${opts.durability}": use always, batch or none`);
  }
  if (opts.bench !== null && !(opts.bench > 0)) throw new Error('--bench needs a positive count');
  return opts;
}

/** `--verify`: prints the outcome as `chainsink verify --sink` does; 0 if the log checks out, 1 if not. */
function verifyMain(component, logPath, diagnostics) {
  const log = new LogFile(logPath, { readOnly: true });
  const sink = new Sink(component, log, { verifyOnly: true, diagnostics });
  const { report, failure } = sink.verify();
  log.close();
  const by = `sink ${sink.info.name} ${sink.info.version} (${formatName(sink.info.format)})`;
  if (failure) {
    console.log(`TAMPERED ${logPath}: line ${failure.line} (byte ${failure.offset}): ${failure.reason} (checked by ${by})`);
    return 1;
  }
  const head = report.head === undefined ? '' : `; head ${report.head}`;
  console.log(`OK ${logPath}: ${report.records} record(s), ${report.bytes} bytes, verified by ${by}${head}`);
  return 0;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`chainsink-node: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const [componentPath, logPath] = opts.positional;
  let user = opts.user ?? (process.env.USER || process.env.USERNAME || null);
  if (!user) {
    if (!opts.verify) process.stderr.write('chainsink-node: audit actor.user is "unknown": neither USER nor USERNAME is set\n');
    user = 'unknown';
  }
  const actor = { hostId: opts.hostId ?? defaultHostId(), user };
  let sink;
  try {
    const component = await loadComponent(fs.readFileSync(componentPath), componentPath);
    if (opts.verify) return verifyMain(component, logPath, opts.verbose ? 'debug' : 'warn');
    const log = new LogFile(logPath);
    sink = new Sink(component, log, { hashChain: true, durability: opts.durability, diagnostics: opts.verbose ? 'debug' : 'warn' });
    if (opts.bench !== null) {
      bench(sink, opts.bench, opts.durability, actor);
      sink.close();
      return 0;
    }
    const report = await streamStdin(sink, { actor });
    sink.close();
    log.close();
    if (report.refused > 0) {
      process.stderr.write(
        `chainsink-node: ${report.refused} line(s) refused, ${report.written} written; see the error lines on stdout\n`,
      );
      return 1;
    }
    return 0;
  } catch (e) {
    const where = e && e.line !== undefined ? ` (after line ${e.line}; lines from ${e.line} on were not written)` : '';
    const what = e instanceof SinkError ? `audit log ${logPath}: sink error ${e.message}` : String(e && e.message);
    process.stderr.write(`chainsink-node: error: ${what}${where}\n`);
    return 2;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url))) {
  process.exitCode = await main();
}
