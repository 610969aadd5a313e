// chainsink SDK for JavaScript: write an audit sink, build it with componentize-js.
//
// A chainsink sink is a WebAssembly component implementing the `audit-sink`
// world of `wit/audit.wit` (package `chainsink:audit@0.2.0`). This module does
// the contract for the telemachy-json record format: resume from the log's
// tail, `seq`, the SHA-256 chain (`prev_hash`, `hash`), canonical record bytes,
// durability, `describe`, and a `verify` of a whole log. An author extends
// `ChainSink`, overrides what is theirs, and exports it:
//
//   import * as logFile from 'chainsink:audit/log-file@0.2.0';
//   import * as digest from 'chainsink:audit/digest@0.2.0';
//   import * as diagnostics from 'chainsink:audit/diagnostics@0.2.0';
//   import { ChainSink, exportSink } from './chainsink-sdk.js';
//   class MySink extends ChainSink { name = 'my-sink'; }
//   export const { sink, verifier } = exportSink(new MySink(), { logFile, digest, diagnostics });
//
// The canonical form is Python's `json.dumps(x, sort_keys=True)`, byte for
// byte (docs/audit-log.md). JSON.parse cannot carry it: it loses integers past
// 2^53 and the difference between `1` and `1.0`. So payloads are parsed by
// `parseJson` here, which gives integers as BigInt and floats as numbers, the
// way Python gives int and float; `canonical` writes them back as Python does.
//
// This module does not repair a log's tail: a log whose last line is not a
// whole valid record is refused with `corrupt-log`. The torn-write rule lives
// once, in chainsink's Rust format crate; the default sink applies it.
//
// The module has no imports, so it also runs under Node.js (its tests do).

/** The `chainsink:audit` WIT version this module is written for. */
export const WIT_VERSION = '0.2.0';
/** `prev_hash` of the first record. */
export const GENESIS = '0'.repeat(64);
/** Longest record line in bytes, without its newline. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Deepest nesting of a payload (the payload object counts as one level). */
export const MAX_PAYLOAD_DEPTH = 126;
/** Most digits of an integer (Python's default `sys.get_int_max_str_digits()`). */
export const MAX_INT_DIGITS = 4300;
// First window read from the tail on open; doubled until a whole line fits. 8 KiB holds two
// records of a typical log, as in the Rust SDK: each byte more is copied into the sink by every
// process that opens the log.
const TAIL_WINDOW = 8 * 1024;
const READ_CHUNK = 1024 * 1024;
const REPAIR_ADVICE =
  "this sink does not repair a log's tail: run `chainsink verify` on the log to see what is " +
  'there; a torn write is recovered by chainsink\'s default sink (write to the log once ' +
  'without --sink), anything else is tampering: keep the log as evidence and start a new one';

/** A failed sink call; `kind` is the WIT `sink-error` case. */
export class SinkFailure extends Error {
  /**
   * @param {'invalid-event'|'corrupt-log'|'io'|'not-open'} kind
   * @param {string} [message]
   */
  constructor(kind, message = '') {
    super(message ? `${kind}: ${message}` : kind);
    this.kind = kind;
    this.detail = message;
  }
}

/** A log that fails `ChainSink.verify`: the 1-based line, its byte offset, the reason. */
export class VerifyError extends Error {
  constructor(line, offset, reason) {
    super(`line ${line} (byte ${offset}): ${reason}`);
    this.line = line;
    this.offset = offset;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------
// Parsing: Python's json.loads, with integers as BigInt and floats as numbers.

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const SHORT_ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

// Tokens of JSON text that matter for the fast path: a whole string, or a
// number (strings come first, so digits inside strings are never matched).
const TOKENS = /"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/g;
const MARK = '\u0000';

/**
 * `parseJson` through the engine's native JSON.parse, which is many times
 * faster than a parser written in JS inside a component: every number token
 * is first replaced by a marked string holding its text (`"\u0000<text>"`),
 * and the marks are turned into BigInt or float afterwards. Returns
 * undefined when the text holds an escaped NUL (a mark could not be told
 * from data) or is not JSON, so the caller falls back to the exact parser,
 * whose error messages name the problem.
 */
function parseNative(text, maxDepth) {
  if (text.includes('\\u0000')) return undefined;
  let marked;
  try {
    marked = JSON.parse(text.replace(TOKENS, (t) => (t[0] === '"' ? t : `"\\u0000${t}"`)));
  } catch {
    return undefined;
  }
  return unmark(marked, 0, maxDepth);
}

function unmark(v, depth, maxDepth) {
  if (typeof v === 'string') return v[0] === MARK ? number(v.slice(1)) : v;
  if (v === null || typeof v !== 'object') return v;
  if (depth + 1 > maxDepth) throw new RangeError(`nesting deeper than ${maxDepth} levels, the limit`);
  if (Array.isArray(v)) {
    for (let k = 0; k < v.length; k++) v[k] = unmark(v[k], depth + 1, maxDepth);
    return v;
  }
  const obj = Object.create(null);
  for (const key of Object.keys(v)) obj[key] = unmark(v[key], depth + 1, maxDepth);
  return obj;
}

/** A JSON number's text as Python reads it: int as BigInt, float as number. */
function number(lexeme) {
  if (!/[.eE]/.test(lexeme)) {
    const digits = lexeme.length - (lexeme[0] === '-' ? 1 : 0);
    if (digits > MAX_INT_DIGITS) {
      throw new RangeError(`an integer has ${digits} digits, more than the limit of ${MAX_INT_DIGITS}`);
    }
    return BigInt(lexeme);
  }
  const value = Number(lexeme);
  if (!Number.isFinite(value)) throw new RangeError(`number ${lexeme.slice(0, 40)} is too large for a double`);
  return value;
}

/**
 * Parses JSON text as Python's `json.loads` does, refusing NaN, Infinity,
 * numbers too large for a double, integers of more than 4300 digits and
 * nesting deeper than `maxDepth`. Objects have a null prototype; integers are
 * BigInt; floats are numbers. Throws SyntaxError or RangeError.
 * @param {string} text
 * @param {number} [maxDepth]
 */
export function parseJson(text, maxDepth = Infinity) {
  const fast = parseNative(text, maxDepth);
  return fast === undefined ? parseExact(text, maxDepth) : fast;
}

/** `parseJson` by a parser written here: exact, slower, with precise errors. */
export function parseExact(text, maxDepth = Infinity) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at character ${i}`);
  };
  const skip = () => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const string = () => {
    // text[i] is the opening quote.
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('invalid control character in a string');
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e !== undefined && Object.hasOwn(SHORT_ESCAPES, e)) {
          out += SHORT_ESCAPES[e];
          i += 2;
        } else {
          fail('invalid escape');
        }
        start = i;
        continue;
      }
      i++;
    }
  };
  const numberToken = () => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail('expecting a value');
    i += m[0].length;
    return number(m[0]);
  };
  const value = (depth) => {
    skip();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth + 1 > maxDepth) throw new RangeError(`nesting deeper than ${maxDepth} levels, the limit`);
    }
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      skip();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail('expecting a property name in double quotes');
        const key = string();
        skip();
        if (text[i] !== ':') fail("expecting ':'");
        i++;
        obj[key] = value(depth + 1);
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expecting ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      skip();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expecting ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith('null', i)) return (i += 4), null;
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    for (const name of ['NaN', 'Infinity', '-Infinity']) {
      if (text.startsWith(name, i)) throw new RangeError(`${name} is not JSON; NaN and Infinity are refused`);
    }
    return numberToken();
  };
  const result = value(0);
  skip();
  if (i !== text.length) fail('extra data');
  return result;
}

// ---------------------------------------------------------------------------
// The canonical encoder: Python's json.dumps(x, sort_keys=True), byte for byte.

const ESCAPE = /[\u0000-\u001f"\\\u007f-\uffff]/g;
const SURROGATE = /[\ud800-\udfff]/;
const SHORT = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function escapeChar(ch) {
  return SHORT[ch] ?? '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0');
}

/** A string as Python's json.dumps writes it (ensure_ascii): one `\uXXXX` per UTF-16 unit. */
export function encodeString(s) {
  return '"' + s.replace(ESCAPE, escapeChar) + '"';
}

/**
 * A float as Python's `repr` writes it: the shortest digits that round-trip,
 * exponent form when the decimal exponent is below -4 or at least 16.
 * @param {number} x
 */
export function encodeFloat(x) {
  if (!Number.isFinite(x)) throw new RangeError(`${x} is not JSON; NaN and Infinity are refused`);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e');
  const sign = mantissa[0] === '-' ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    const frac = digits.length > 1 ? '.' + digits.slice(1) : '';
    const abs = Math.abs(e);
    return `${sign}${digits[0]}${frac}e${e < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  if (digits.length <= e + 1) return `${sign}${digits}${'0'.repeat(e + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
}

/** Orders strings by code point, as Python sorts str (JS's default sort is by UTF-16 unit). */
export function compareCodePoints(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Units differ at i; earlier units are equal, so a surrogate pair starting
    // before i is shared. Code point order differs from unit order only when
    // one side is a high surrogate of a pair and the other is U+E000..U+FFFF.
    const cx = a.codePointAt(i);
    const cy = b.codePointAt(i);
    return cx < cy ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Python's `json.dumps(value, sort_keys=True)`. Integers are BigInt, floats are
 * numbers, objects are plain objects (keys sorted by code point) or Maps with
 * string keys. Throws TypeError for what JSON cannot hold (undefined, functions,
 * symbols) and RangeError for NaN and Infinity.
 */
export function canonical(value) {
  const out = [];
  write(value, out);
  return out.join('');
}

function write(v, out) {
  switch (typeof v) {
    case 'string':
      out.push(encodeString(v));
      return;
    case 'bigint':
      out.push(v.toString());
      return;
    case 'number':
      out.push(encodeFloat(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'object': {
      if (v === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(v)) {
        out.push('[');
        v.forEach((x, k) => {
          if (k) out.push(', ');
          write(x, out);
        });
        out.push(']');
        return;
      }
      const isMap = v instanceof Map;
      const keys = isMap ? [...v.keys()] : Object.keys(v);
      for (const k of keys) {
        if (typeof k !== 'string') throw new TypeError(`object key ${String(k)} is not a string`);
      }
      // UTF-16 order (the native sort) is code point order unless a key holds a surrogate.
      if (keys.some((k) => SURROGATE.test(k))) keys.sort(compareCodePoints);
      else keys.sort();
      out.push('{');
      keys.forEach((k, n) => {
        if (n) out.push(', ');
        out.push(encodeString(k), ': ');
        write(isMap ? v.get(k) : v[k], out);
      });
      out.push('}');
      return;
    }
    default:
      throw new TypeError(`a ${typeof v} is not JSON`);
  }
}

// ---------------------------------------------------------------------------
// Records.

const TIMESTAMP = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{6}\+00:00$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Throws RangeError unless `ts` is `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, a real UTC time. */
export function checkTimestamp(ts) {
  const m = TIMESTAMP.exec(ts);
  if (!m) {
    throw new RangeError(
      `timestamp ${JSON.stringify(ts.slice(0, 40))} is not UTC ISO-8601 with microseconds; expected ` +
        '`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, e.g. `2026-06-04T15:30:45.123456+00:00`',
    );
  }
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS[month - 1];
  if (year === 0 || !(month >= 1 && month <= 12) || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) {
    throw new RangeError(`timestamp ${JSON.stringify(ts)}: the date or time does not exist`);
  }
}

/** Throws RangeError unless `eventType` is 1 to 128 bytes without control characters. */
export function checkEventType(eventType) {
  if (!eventType) throw new RangeError('event_type is empty; name the event, e.g. `step.finished`');
  let size = 0;
  for (const c of eventType) {
    const cp = c.codePointAt(0);
    size += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  if (size > 128) throw new RangeError(`event_type is ${size} bytes long, more than the limit of 128`);
  for (const c of eventType) {
    const cp = c.codePointAt(0);
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      throw new RangeError(`event_type contains control character U+${cp.toString(16).toUpperCase().padStart(4, '0')}; remove it`);
    }
  }
}

const HEX = /^[0-9a-f]{64}$/;
/** Bytes as a string of the same code units; throws RangeError on a byte above 0x7f. */
function asciiText(bytes) {
  let out = '';
  for (let k = 0; k < bytes.length; k += 8192) {
    const part = bytes.subarray(k, k + 8192);
    if (part.some((b) => b > 0x7f)) throw new RangeError('not ASCII: not in canonical form');
    out += String.fromCharCode.apply(null, part);
  }
  return out;
}
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
// Canonical text is ASCII, so its UTF-8 bytes are its code units.
const utf8 = new TextEncoder();
const fromAscii = (s) => utf8.encode(s);

/**
 * Checks one line (bytes without its newline) is a valid record as
 * docs/audit-log.md defines it: canonical, fields of the right types, `hash`
 * matching. Returns {hash, prevHash, seq} (null where absent); throws RangeError.
 * @param {Uint8Array} line
 * @param {(data: Uint8Array) => Uint8Array} sha256
 */
export function checkRecord(line, sha256) {
  // Canonical lines are ASCII; anything else is refused.
  const text = asciiText(line);
  let record;
  try {
    record = parseJson(text);
  } catch (e) {
    throw new RangeError(`not JSON: ${e.message}`);
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new RangeError('not a JSON object');
  if (canonical(record) !== text) throw new RangeError('not in canonical form (json.dumps(record, sort_keys=True))');
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(record.actor)) throw new RangeError('`actor` is missing or not an object');
  if (typeof record.event_type !== 'string') throw new RangeError('`event_type` is missing or not a string');
  if (!isObject(record.payload)) throw new RangeError('`payload` is missing or not an object');
  if (typeof record.timestamp !== 'string') throw new RangeError('`timestamp` is missing or not a string');
  if (!('workflow_id' in record) || !(record.workflow_id === null || typeof record.workflow_id === 'string')) {
    throw new RangeError('`workflow_id` is missing or not a string or null');
  }
  const seq = 'seq' in record ? record.seq : null;
  if (seq !== null && (typeof seq !== 'bigint' || seq < 1n)) throw new RangeError('`seq` is not an integer from 1');
  const hash = 'hash' in record ? record.hash : null;
  const prevHash = 'prev_hash' in record ? record.prev_hash : null;
  if ((hash === null) !== (prevHash === null)) throw new RangeError('`hash` and `prev_hash` must come together');
  if (hash !== null) {
    if (!HEX.test(hash) || !HEX.test(prevHash)) throw new RangeError('`hash` and `prev_hash` must be 64 lowercase hex digits');
    delete record.hash;
    if (toHex(sha256(fromAscii(canonical(record)))) !== hash) throw new RangeError('`hash` does not match the record');
  }
  return { hash, prevHash, seq };
}

// ---------------------------------------------------------------------------
// The sink.

/**
 * A telemachy-json sink. Extend it and override what is yours:
 * - `name`, `version`: what `describe` reports;
 * - `payload(event, payload)`: the payload to record (a null-prototype object
 *   from `parseJson`: integers BigInt, floats numbers), e.g. with secrets
 *   removed; throw to refuse the event;
 * - `onOpen(head)`: called after a successful open.
 * `this.log(level, message)` writes a diagnostic line to the host.
 *
 * `io` (given to `open` and `verify`) is the log-file capability:
 * {append(bytes) -> offset, read(offset, len) -> bytes, readTail(len) ->
 * [offset, bytes], size(), sync(), sha256(bytes) -> bytes, diagnose(level, msg)};
 * offsets and sizes are numbers.
 */
export class ChainSink {
  name = 'js-sink';
  version = '0.1.0';
  io = null;
  chain = true;
  durability = 'always';
  prev = null;
  records = 0;
  bytes = 0;
  stale = false;

  /** The payload to record for `event`: by default, unchanged. */
  payload(event, payload) {
    return payload;
  }

  /** Called after `open` resumed the chain. */
  onOpen(head) {}

  /** Writes one diagnostic line ('debug', 'info', 'warn', 'error'). */
  log(level, message) {
    if (this.io) this.io.diagnose(level, message);
  }

  /** {name, version, format}: format is 'telemachy-json'. */
  describe() {
    return { name: this.name, version: this.version, format: 'telemachy-json' };
  }

  /** Opens the log behind `io` and resumes its chain; returns the head. */
  open(io, hashChain = true, durability = 'always') {
    this.io = io;
    this.chain = hashChain;
    this.durability = durability;
    this.resume();
    const head = this.head();
    this.log('info', `${this.name} ${this.version}: opened log: ${head.records} records, ${head.bytes} bytes, head ${head.hash ?? '(chain off)'}`);
    this.onOpen(head);
    return head;
  }

  /** {records, hash, bytes}: where the chain stands. */
  head() {
    this.needOpen();
    return { records: this.records, hash: this.prev, bytes: this.bytes };
  }

  /** Appends one event as one record; returns its receipt {seq, hash}. */
  emit(event) {
    return this.emitBatch([event], true)[0];
  }

  /** Appends events in one write, all or nothing; returns their receipts. */
  emitBatch(events, single = false) {
    this.needOpen();
    if (this.stale) this.resume();
    let prev = this.prev;
    let seq = this.records;
    const lines = [];
    const receipts = [];
    events.forEach((event, i) => {
      let line;
      try {
        [line, prev] = this.encode(event, seq + 1, prev);
      } catch (e) {
        if (e instanceof SinkFailure) throw e;
        throw new SinkFailure('invalid-event', `${single ? '' : `event ${i} of the batch: `}${e.message}`);
      }
      seq += 1;
      lines.push(line);
      receipts.push({ seq, hash: prev });
    });
    if (!lines.length) return receipts;
    const data = fromAscii(lines.join(''));
    let at;
    try {
      at = this.io.append(data);
    } catch (e) {
      this.stale = true;
      throw e;
    }
    if (at !== this.bytes) {
      this.stale = true;
      throw new SinkFailure(
        'io',
        `the log grew from ${this.bytes} to ${at} bytes behind this sink's back (another writer?); ` +
          'the chain may fork there: run `chainsink verify`',
      );
    }
    this.bytes = at + data.length;
    this.records = seq;
    this.prev = prev;
    if (this.durability === 'always') this.io.sync();
    return receipts;
  }

  /** Makes every record appended so far durable. */
  flush() {
    this.needOpen();
    this.io.sync();
  }

  /** Flushes and stops; later calls fail with not-open. Returns the head. */
  close() {
    this.flush();
    const head = this.head();
    this.io = null;
    return head;
  }

  /**
   * One record line (a string with its newline; ASCII) and its hash (null
   * with the chain off). `event` has timestamp, eventType, workflowId,
   * actor {hostId, user}, payload (JSON text), as the WIT bindings give it.
   */
  encode(event, seq, prev) {
    checkTimestamp(event.timestamp);
    checkEventType(event.eventType);
    const payload = this.payload(event, parsePayload(event.payload));
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TypeError(`${this.constructor.name}.payload must return an object`);
    }
    const record = {
      actor: { host_id: event.actor.hostId, user: event.actor.user },
      event_type: event.eventType,
      payload,
      seq: BigInt(seq),
      timestamp: event.timestamp,
      workflow_id: event.workflowId ?? null,
    };
    let line;
    let hash = null;
    if (prev === null) {
      line = canonical(record);
    } else {
      record.prev_hash = prev;
      const body = canonical(record);
      hash = toHex(this.io.sha256(fromAscii(body)));
      // Keys are sorted, so "hash" goes right before "payload"; string values
      // escape their quotes, so the first `, "payload": ` is the key.
      const cut = body.indexOf(', "payload": ') + 2;
      line = `${body.slice(0, cut)}"hash": "${hash}", ${body.slice(cut)}`;
    }
    if (line.length > MAX_RECORD_BYTES) {
      throw new RangeError(
        `record is ${line.length} bytes long once encoded, more than the limit of ${MAX_RECORD_BYTES} bytes ` +
          'a line; store large data elsewhere and put a reference in the payload',
      );
    }
    return [line + '\n', hash];
  }

  /**
   * Checks a whole log: {records, head, bytes}, or throws VerifyError. A
   * recovered torn write or a region the host marked as refused is not a
   * record, so it fails here: `chainsink verify` judges those natively.
   */
  verify(io) {
    let prev = GENESIS;
    let chained = null;
    let n = 0;
    const size = io.size();
    let offset = 0;
    let lineStart = 0;
    let pending = new Uint8Array(0);
    while (offset < size) {
      const chunk = io.read(offset, Math.min(READ_CHUNK, size - offset));
      if (!chunk.length) break;
      offset += chunk.length;
      const buf = new Uint8Array(pending.length + chunk.length);
      buf.set(pending);
      buf.set(chunk, pending.length);
      let from = 0;
      for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, from)) {
        const line = buf.subarray(from, nl);
        n += 1;
        let info;
        try {
          info = checkRecord(line, io.sha256);
        } catch (e) {
          throw new VerifyError(n, lineStart, `not a valid record: ${e.message} (\`chainsink verify\` says more)`);
        }
        const hasHash = info.hash !== null;
        if (chained === null) chained = hasHash;
        else if (chained !== hasHash) throw new VerifyError(n, lineStart, 'the hash chain starts or stops in the middle of the log');
        if (info.seq !== null && info.seq !== BigInt(n)) throw new VerifyError(n, lineStart, `seq is ${info.seq}, expected ${n}`);
        if (hasHash) {
          if (info.prevHash !== prev) throw new VerifyError(n, lineStart, "prev_hash is not the previous record's hash");
          prev = info.hash;
        }
        lineStart += line.length + 1;
        from = nl + 1;
      }
      pending = buf.slice(from);
    }
    if (pending.length) {
      throw new VerifyError(n + 1, lineStart, 'the last line has no newline: a torn write or an unfinished record (`chainsink verify` judges torn writes)');
    }
    return { records: n, head: chained ? prev : null, bytes: size };
  }

  needOpen() {
    if (!this.io) throw new SinkFailure('not-open');
  }

  resume() {
    const io = this.io;
    this.stale = false;
    const size = io.size();
    this.bytes = size;
    this.records = 0;
    this.prev = this.chain ? GENESIS : null;
    if (size === 0) return;
    let window = TAIL_WINDOW;
    let start;
    let buf;
    let p;
    for (;;) {
      [start, buf] = io.readTail(window);
      if (buf[buf.length - 1] !== 10) {
        const cut = buf.lastIndexOf(10) + 1;
        throw new SinkFailure(
          'corrupt-log',
          `the log does not end with a newline: its last line (at byte ${start + cut}) is unfinished, a torn write ` +
            `or a record missing its newline; nothing was written; ${REPAIR_ADVICE}`,
        );
      }
      p = buf.lastIndexOf(10, buf.length - 2);
      if (p >= 0 || start === 0) break;
      if (window >= size || window > 2 * (MAX_RECORD_BYTES + 1)) {
        throw new SinkFailure('corrupt-log', `the last line is longer than ${MAX_RECORD_BYTES} bytes, the largest a record can be; ${REPAIR_ADVICE}`);
      }
      window *= 2;
    }
    const at = start + p + 1;
    let info;
    try {
      info = checkRecord(buf.subarray(p + 1, buf.length - 1), io.sha256);
    } catch (e) {
      throw new SinkFailure(
        'corrupt-log',
        `the last line of the log (at byte ${at}) is not a valid record (${e.message}); it ends with a newline, ` +
          `so it is not a torn write; nothing was written; ${REPAIR_ADVICE}`,
      );
    }
    if (this.chain) {
      if (info.hash === null) {
        throw new SinkFailure(
          'corrupt-log',
          `the last record (at byte ${at}) has no \`hash\` (it was written with the chain off); a chain cannot ` +
            'continue from it: use a new log or AUDIT_HASH_CHAIN=false',
        );
      }
      this.prev = info.hash;
    } else if (info.hash !== null) {
      throw new SinkFailure(
        'corrupt-log',
        'the log is hash-chained; refusing to append unchained records to it (set AUDIT_HASH_CHAIN=true or use a new log)',
      );
    }
    if (info.seq !== null) {
      this.records = Number(info.seq);
    } else {
      let lines = 0;
      for (let offset = 0; offset < size; ) {
        const chunk = io.read(offset, Math.min(READ_CHUNK, size - offset));
        if (!chunk.length) break;
        for (const b of chunk) if (b === 10) lines++;
        offset += chunk.length;
      }
      this.records = lines;
      this.log('info', `the last record has no \`seq\` (written by another tool); counted ${lines} records once`);
    }
  }
}

/** Parses an event's payload text: one JSON object, within the depth limit. */
export function parsePayload(text) {
  const value = parseJson(text, MAX_PAYLOAD_DEPTH);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError('the payload must be one JSON object');
  }
  return value;
}

// ---------------------------------------------------------------------------
// The component's exports.

/**
 * The `sink` and `verifier` export objects componentize-js expects, bound to
 * `sink` and to the WIT imports `wit` = {logFile, digest, diagnostics}
 * (import them in your module with `import * as logFile from
 * 'chainsink:audit/log-file@0.2.0'` and so on). A SinkFailure becomes the WIT
 * error; any other exception is written to the host's diagnostics, then traps.
 * Set `hostDigest: false` to hash in JS instead of calling the host's
 * `digest.sha256` (only useful if you bring your own SHA-256).
 */
export function exportSink(sink, wit) {
  const { logFile, digest, diagnostics } = wit;
  const io = {
    append: (data) => Number(call(() => logFile.append(data))),
    read: (offset, len) => call(() => logFile.read(BigInt(offset), len)),
    readTail: (len) => {
      const [start, bytes] = call(() => logFile.readTail(len));
      return [Number(start), bytes];
    },
    size: () => Number(call(() => logFile.size())),
    sync: () => call(() => logFile.sync()),
    sha256: (data) => call(() => digest.sha256(data)),
    diagnose: (level, message) => diagnostics.log(level, message),
  };
  const guarded = (f) => (...args) => {
    try {
      return f(...args);
    } catch (e) {
      if (e instanceof SinkFailure) {
        throw e.kind === 'not-open' ? { tag: 'not-open' } : { tag: e.kind, val: e.detail };
      }
      diagnostics.log('error', `sink ${sink.name} threw: ${e && e.stack ? e.stack : e}`);
      throw e;
    }
  };
  const head = (h) => ({ records: BigInt(h.records), hash: h.hash ?? undefined, bytes: BigInt(h.bytes) });
  const receipt = (r) => ({ seq: BigInt(r.seq), hash: r.hash ?? undefined });
  return {
    sink: {
      describe() {
        const { name, version, format } = sink.describe();
        return {
          name,
          version,
          format: format === 'telemachy-json' ? { tag: 'telemachy-json' } : { tag: 'custom', val: format },
        };
      },
      open: guarded((options) => head(sink.open(io, options.hashChain, options.durability))),
      emit: guarded((event) => receipt(sink.emit(event))),
      emitBatch: guarded((events) => sink.emitBatch(events).map(receipt)),
      flush: guarded(() => sink.flush()),
      head: guarded(() => head(sink.head())),
      close: guarded(() => head(sink.close())),
    },
    verifier: {
      verify() {
        try {
          const r = sink.verify(io);
          return { records: BigInt(r.records), head: r.head ?? undefined, bytes: BigInt(r.bytes) };
        } catch (e) {
          if (e instanceof VerifyError) throw { line: BigInt(e.line), offset: BigInt(e.offset), reason: e.reason };
          if (e instanceof SinkFailure) throw { line: 0n, offset: 0n, reason: e.detail || e.kind };
          throw e;
        }
      },
    },
  };
}

/** Runs `f`, turning a failed log-file import (jco throws {payload}) into an io SinkFailure. */
function call(f) {
  try {
    return f();
  } catch (e) {
    const message = e && typeof e === 'object' && 'payload' in e ? e.payload : String(e);
    throw new SinkFailure('io', String(message));
  }
}
