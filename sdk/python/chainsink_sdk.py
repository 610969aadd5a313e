"""chainsink SDK for Python: write an audit sink, build it with componentize-py.

A chainsink sink is a WebAssembly component that implements the `audit-sink`
world of `wit/audit.wit` (package `chainsink:audit@0.2.0`). This module does
the contract for you, for the telemachy-json record format:

- `open` resumes the chain from the log's tail (one `log-file.read-tail`, so
  the cost does not grow with the log), `seq` and `prev_hash` continue where
  the log stopped;
- `emit` / `emit_batch` turn events into canonical records (Python's
  `json.dumps(record, sort_keys=True)` is the canonical encoder), chain them
  with SHA-256 and append them in one write, all or nothing;
- durability (`always` syncs before returning, `batch` and `none` leave it to
  the host or to `flush`), `head`, `close`, `describe`, and a `verify` that
  checks a whole log.

An author subclasses `ChainSink`, overrides what is theirs (`name`,
`version`, `payload` to change a payload before it is chained), and exports
it from the app module that componentize-py builds:

    import chainsink_sdk

    class MySink(chainsink_sdk.ChainSink):
        name = "my-sink"
        version = "0.1.0"

    Sink, Verifier = chainsink_sdk.export(MySink())

Build: `componentize-py -d wit -w audit-sink componentize app -o sink.wasm`.

What this SDK does not do: repair a log's tail. A log whose last line is not
a whole valid record (a torn write, a record missing its newline, an edited
line) is refused with `corrupt-log`; the torn-write rule lives once, in
chainsink's Rust format crate, and the default sink applies it. Run
`chainsink verify LOG` and let the default sink write to the log once.

The module runs under plain CPython too (no component needed): give
`ChainSink.open` a `FileLog` and it writes a log file directly, which is how
its tests compare it with the default sink.
"""

import hashlib
import json
import traceback

try:
    # The bindings componentize-py generates. Imported here, when the module
    # loads, because componentize-py keeps only the imports the app loaded
    # while it was pre-initialised; a lazy import inside a call finds nothing.
    from componentize_py_types import Err as _Err
    from wit_world import exports as _exports
    from wit_world.imports import diagnostics as _diagnostics
    from wit_world.imports import digest as _digest
    from wit_world.imports import log_file as _log_file
    from wit_world.imports import types as _types
except ImportError:  # plain CPython: no component, use FileLog
    _exports = None

__all__ = [
    "ChainSink",
    "FileLog",
    "SinkFailure",
    "WitLog",
    "canonical",
    "export",
    "GENESIS",
    "MAX_RECORD_BYTES",
    "MAX_PAYLOAD_DEPTH",
]

#: The SDK's version; the WIT package it implements is `WIT_VERSION`.
__version__ = "0.2.0"
#: The `chainsink:audit` WIT version this module is written for.
WIT_VERSION = "0.2.0"
#: `prev_hash` of the first record.
GENESIS = "0" * 64
#: Longest record line, without its newline (chainsink's MAX_RECORD_BYTES).
MAX_RECORD_BYTES = 1024 * 1024
#: Deepest nesting of a payload (the payload object counts as one level).
MAX_PAYLOAD_DEPTH = 126
#: First window read from the tail on open; doubled until a whole line fits.
#: 8 KiB holds two records of a typical log, as in the Rust SDK: each byte more
#: is copied into the sink by every process that opens the log.
TAIL_WINDOW = 8 * 1024
#: Chunk size for reading the whole log (verify, counting old records).
READ_CHUNK = 1024 * 1024
#: How to repair a log this SDK refuses, for every corrupt-log message.
REPAIR_ADVICE = (
    "this sink does not repair a log's tail: run `chainsink verify` on the log to see "
    "what is there; a torn write is recovered by chainsink's default sink (write to the "
    "log once without --sink), anything else is tampering: keep the log as evidence "
    "and start a new one"
)


class SinkFailure(Exception):
    """A sink call failed; `kind` is the WIT `sink-error` case.

    `kind` is one of "invalid-event", "corrupt-log", "io", "not-open".
    `export` turns it into the WIT error; authors may raise it too.
    """

    def __init__(self, kind, message=""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON; NaN and Infinity are refused")


def _parse_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is too large for a double")
    return value


def parse_payload(text):
    """Parses an event's payload text into a dict (Python's json.loads).

    Refuses what chainsink refuses: NaN, Infinity, numbers too large for a
    double, anything but one object, nesting beyond MAX_PAYLOAD_DEPTH.
    Raises ValueError with a message that names the problem.
    """
    value = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    if not isinstance(value, dict):
        raise ValueError(f"the payload is a JSON {type(value).__name__}, not an object")
    # Brackets inside strings count too, so this over-estimates: only a payload
    # that might be too deep is walked.
    if text.count("{") + text.count("[") > MAX_PAYLOAD_DEPTH:
        _check_depth(value)
    return value


def _check_depth(value):
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise ValueError(
                f"the payload nests deeper than {MAX_PAYLOAD_DEPTH} levels, the limit"
            )
        children = v.values() if isinstance(v, dict) else v
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def canonical(value):
    """`json.dumps(value, sort_keys=True)`, refusing NaN and Infinity: the canonical form."""
    return json.dumps(value, sort_keys=True, allow_nan=False)


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def check_timestamp(ts):
    """Raises ValueError unless `ts` is `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, a real UTC time."""
    shape = "dddd-dd-ddTdd:dd:dd.dddddd+00:00"
    if len(ts) != len(shape) or any(
        (c not in "0123456789") if s == "d" else (c != s) for c, s in zip(ts, shape)
    ):
        raise ValueError(
            f"timestamp {ts[:40]!r} is not UTC ISO-8601 with microseconds; expected "
            "`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, e.g. `2026-06-04T15:30:45.123456+00:00`"
        )
    year, month, day = int(ts[0:4]), int(ts[5:7]), int(ts[8:10])
    hour, minute, second = int(ts[11:13]), int(ts[14:16]), int(ts[17:19])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if year == 0 or not 1 <= month <= 12:
        raise ValueError(f"timestamp {ts!r}: the date does not exist")
    days = 29 if (month == 2 and leap) else _DAYS[month - 1]
    if not 1 <= day <= days or hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"timestamp {ts!r}: the date or time does not exist")


def check_event_type(event_type):
    """Raises ValueError unless `event_type` is 1 to 128 bytes without control characters."""
    if not event_type:
        raise ValueError("event_type is empty; name the event, e.g. `step.finished`")
    size = len(event_type.encode("utf-8", "surrogatepass"))
    if size > 128:
        raise ValueError(f"event_type is {size} bytes long, more than the limit of 128")
    for i, c in enumerate(event_type):
        if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F:
            raise ValueError(
                f"event_type contains control character U+{ord(c):04X}; remove it"
            )


def _hex(b):
    return b.hex()


class FileLog:
    """The `log-file` capability over a real file, for running a sink under CPython."""

    def __init__(self, path):
        self._f = open(path, "a+b")
        self._f.seek(0, 2)

    def append(self, data):
        self._f.seek(0, 2)
        at = self._f.tell()
        self._f.write(data)
        self._f.flush()
        return at

    def read(self, offset, length):
        self._f.seek(offset)
        return self._f.read(length)

    def read_tail(self, length):
        size = self.size()
        start = max(0, size - length)
        return start, self.read(start, length)

    def size(self):
        self._f.seek(0, 2)
        return self._f.tell()

    def sync(self):
        import os

        self._f.flush()
        os.fsync(self._f.fileno())

    def sha256(self, data):
        return hashlib.sha256(data).digest()

    def diagnose(self, level, message):
        pass


class WitLog:
    """The `log-file`, `digest` and `diagnostics` imports of a componentize-py build."""

    def __init__(self, host_digest=False):
        if _exports is None:
            raise RuntimeError("WitLog needs componentize-py's bindings; use FileLog under CPython")
        diagnostics = _diagnostics
        self._log = _log_file
        self._diag = diagnostics
        self._levels = {
            "debug": diagnostics.Level.DEBUG,
            "info": diagnostics.Level.INFO,
            "warn": diagnostics.Level.WARN,
            "error": diagnostics.Level.ERROR,
        }
        if host_digest:
            self.sha256 = lambda data: self._call(_digest.sha256, data)

    def _call(self, f, *args):
        try:
            return f(*args)
        except _Err as e:
            raise SinkFailure("io", str(e.value)) from None

    def append(self, data):
        return self._call(self._log.append, data)

    def read(self, offset, length):
        return self._call(self._log.read, offset, length)

    def read_tail(self, length):
        return self._call(self._log.read_tail, length)

    def size(self):
        return self._call(self._log.size)

    def sync(self):
        return self._call(self._log.sync)

    def sha256(self, data):
        return hashlib.sha256(data).digest()

    def diagnose(self, level, message):
        self._diag.log(self._levels[level], message)


class ChainSink:
    """A telemachy-json sink: subclass it, override what is yours, `export` it.

    Override:
    - `name`, `version`: what `describe` reports;
    - `payload(event, payload)`: returns the payload to record (a dict), e.g.
      with secrets removed; raise ValueError to refuse the event;
    - `on_open(head)`: called after a successful open.
    Call `self.log(level, message)` for diagnostics ("debug", "info", "warn",
    "error"); they go to the host's log, never into the audit log.
    """

    #: The sink's name, as `describe` reports it.
    name = "python-sink"
    #: The sink's own version.
    version = "0.1.0"

    def __init__(self):
        self.io = None
        self.chain = True
        self.durability = "always"
        self.prev = None
        self.records = 0
        self.bytes = 0
        self._stale = False

    # -- hooks for authors ---------------------------------------------------

    def payload(self, event, payload):
        """The payload to record for `event` (a dict): by default, unchanged."""
        return payload

    def on_open(self, head):
        """Called after `open` resumed the chain; `head` is (records, hash, bytes)."""

    def log(self, level, message):
        """Writes one diagnostic line to the host ("debug", "info", "warn" or "error")."""
        if self.io is not None:
            self.io.diagnose(level, message)

    # -- the contract --------------------------------------------------------

    def describe(self):
        """(name, version, format): format is "telemachy-json"."""
        return self.name, self.version, "telemachy-json"

    def open(self, io, hash_chain=True, durability="always"):
        """Opens the log behind `io` and resumes its chain; returns the head."""
        self.io = io
        self.chain = hash_chain
        self.durability = durability
        self._resume()
        head = self.head()
        self.log(
            "info",
            f"{self.name} {self.version}: opened log: {head[0]} records, {head[2]} bytes, "
            f"head {head[1] or '(chain off)'}",
        )
        self.on_open(head)
        return head

    def head(self):
        """(records, hash or None, bytes): where the chain stands."""
        self._need_open()
        return self.records, self.prev, self.bytes

    def emit(self, event):
        """Appends one event as one record; returns its receipt (seq, hash)."""
        return self.emit_batch([event], single=True)[0]

    def emit_batch(self, events, single=False):
        """Appends events in one write, all or nothing; returns their receipts."""
        self._need_open()
        if self._stale:
            self._resume()
        prev, seq = self.prev, self.records
        lines, receipts = [], []
        for i, event in enumerate(events):
            try:
                line, prev = self.encode(event, seq + 1, prev)
            except (ValueError, TypeError, RecursionError) as e:
                where = "" if single else f"event {i} of the batch: "
                raise SinkFailure("invalid-event", f"{where}{e}") from None
            seq += 1
            lines.append(line)
            receipts.append((seq, prev))
        if not lines:
            return receipts
        data = b"".join(lines)
        try:
            at = self.io.append(data)
        except SinkFailure:
            self._stale = True
            raise
        if at != self.bytes:
            self._stale = True
            raise SinkFailure(
                "io",
                f"the log grew from {self.bytes} to {at} bytes behind this sink's back "
                "(another writer?); the chain may fork there: run `chainsink verify`",
            )
        self.bytes = at + len(data)
        self.records, self.prev = seq, prev
        if self.durability == "always":
            self.io.sync()
        return receipts

    def flush(self):
        """Makes every record appended so far durable."""
        self._need_open()
        self.io.sync()

    def close(self):
        """Flushes and stops; later calls fail with not-open. Returns the head."""
        self.flush()
        head = self.head()
        self.io = None
        return head

    def encode(self, event, seq, prev):
        """One record line (bytes, with its newline) and its hash (None with the chain off)."""
        check_timestamp(event.timestamp)
        check_event_type(event.event_type)
        payload = self.payload(event, parse_payload(event.payload))
        if not isinstance(payload, dict):
            raise ValueError(f"{type(self).__name__}.payload must return a dict")
        record = {
            "actor": {"host_id": event.actor.host_id, "user": event.actor.user},
            "event_type": event.event_type,
            "payload": payload,
            "seq": seq,
            "timestamp": event.timestamp,
            "workflow_id": event.workflow_id,
        }
        if prev is None:
            line = canonical(record).encode("ascii")
            digest = None
        else:
            record["prev_hash"] = prev
            body = canonical(record).encode("ascii")
            digest = _hex(self.io.sha256(body))
            # Keys are sorted, so "hash" goes right before "payload"; string
            # values escape their quotes, so the first `, "payload": ` is the key.
            cut = body.index(b', "payload": ') + 2
            line = b"".join(
                (body[:cut], b'"hash": "', digest.encode("ascii"), b'", ', body[cut:])
            )
        if len(line) > MAX_RECORD_BYTES:
            raise ValueError(
                f"record is {len(line)} bytes long once encoded, more than the limit of "
                f"{MAX_RECORD_BYTES} bytes a line; store large data elsewhere and put a "
                "reference in the payload"
            )
        return line + b"\n", digest

    def verify(self, io):
        """Checks a whole log: (records, head, bytes), or raises VerifyError.

        Every line must be a valid record, linked to the one before it, with
        `seq` equal to its line number; the last line must end with a newline.
        A recovered torn write or a region the host marked as refused is not a
        record, so it fails here: `chainsink verify` judges those natively.
        """
        prev, chained, n = GENESIS, None, 0
        size = io.size()
        offset = line_start = 0
        pending = b""
        while offset < size:
            chunk = io.read(offset, min(READ_CHUNK, size - offset))
            if not chunk:
                break
            offset += len(chunk)
            parts = (pending + chunk).split(b"\n")
            pending = parts.pop()
            for line in parts:
                n += 1
                prev, chained = self._verify_line(io, line, n, line_start, prev, chained)
                line_start += len(line) + 1
        if pending:
            raise VerifyError(
                n + 1,
                line_start,
                "the last line has no newline: a torn write or an unfinished record "
                "(`chainsink verify` judges torn writes)",
            )
        return n, (prev if chained else None), size

    def _verify_line(self, io, line, n, start, prev, chained):
        try:
            info = check_record(line, io.sha256)
        except ValueError as e:
            raise VerifyError(
                n, start, f"not a valid record: {e} (`chainsink verify` says more)"
            ) from None
        has_hash = info["hash"] is not None
        if chained is None:
            chained = has_hash
        elif chained != has_hash:
            raise VerifyError(n, start, "the hash chain starts or stops in the middle of the log")
        if info["seq"] is not None and info["seq"] != n:
            raise VerifyError(n, start, f"seq is {info['seq']}, expected {n}")
        if has_hash:
            if info["prev_hash"] != prev:
                raise VerifyError(n, start, "prev_hash is not the previous record's hash")
            prev = info["hash"]
        return prev, chained

    # -- internals -----------------------------------------------------------

    def _need_open(self):
        if self.io is None:
            raise SinkFailure("not-open")

    def _resume(self):
        io = self.io
        self._stale = False
        self.bytes = size = io.size()
        self.records = 0
        self.prev = GENESIS if self.chain else None
        if size == 0:
            return
        window = TAIL_WINDOW
        while True:
            start, buf = io.read_tail(window)
            if not buf.endswith(b"\n"):
                cut = buf.rfind(b"\n") + 1
                raise SinkFailure(
                    "corrupt-log",
                    f"the log does not end with a newline: its last line (at byte "
                    f"{start + cut}) is unfinished, a torn write or a record missing its "
                    f"newline; nothing was written; {REPAIR_ADVICE}",
                )
            p = buf.rfind(b"\n", 0, len(buf) - 1)
            if p >= 0 or start == 0:
                break
            if window >= size or window > 2 * (MAX_RECORD_BYTES + 1):
                raise SinkFailure(
                    "corrupt-log",
                    f"the last line is longer than {MAX_RECORD_BYTES} bytes, the largest a "
                    f"record can be; {REPAIR_ADVICE}",
                )
            window *= 2
        at = start + p + 1
        try:
            info = check_record(buf[p + 1 : -1], io.sha256)
        except ValueError as e:
            raise SinkFailure(
                "corrupt-log",
                f"the last line of the log (at byte {at}) is not a valid record ({e}); it "
                f"ends with a newline, so it is not a torn write; nothing was written; "
                f"{REPAIR_ADVICE}",
            ) from None
        if self.chain:
            if info["hash"] is None:
                raise SinkFailure(
                    "corrupt-log",
                    f"the last record (at byte {at}) has no `hash` (it was written with the "
                    "chain off); a chain cannot continue from it: use a new log or "
                    "AUDIT_HASH_CHAIN=false",
                )
            self.prev = info["hash"]
        elif info["hash"] is not None:
            raise SinkFailure(
                "corrupt-log",
                "the log is hash-chained; refusing to append unchained records to it "
                "(set AUDIT_HASH_CHAIN=true or use a new log)",
            )
        if info["seq"] is not None:
            self.records = info["seq"]
        else:
            self.records = self._count_lines(size)
            self.log(
                "info",
                f"the last record has no `seq` (written by another tool); counted "
                f"{self.records} records once",
            )

    def _count_lines(self, size):
        offset = lines = 0
        while offset < size:
            chunk = self.io.read(offset, min(READ_CHUNK, size - offset))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            offset += len(chunk)
        return lines


class VerifyError(Exception):
    """A log that fails `ChainSink.verify`: the 1-based line, its offset, the reason."""

    def __init__(self, line, offset, reason):
        super().__init__(f"line {line} (byte {offset}): {reason}")
        self.line, self.offset, self.reason = line, offset, reason


def _sha256(data):
    return hashlib.sha256(data).digest()


_HEX = frozenset("0123456789abcdef")


def _is_hash(v):
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEX


def check_record(line, sha256=_sha256):
    """Checks one line (bytes, no newline) is a valid record, as docs/audit-log.md defines it.

    Returns {"hash", "prev_hash", "seq"} (None where absent); raises ValueError.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if json.dumps(record, sort_keys=True).encode("ascii", "replace") != line:
        raise ValueError("not in canonical form (json.dumps(record, sort_keys=True))")
    actor = record.get("actor")
    if not isinstance(actor, dict):
        raise ValueError("`actor` is missing or not an object")
    for key, kind in (("event_type", str), ("payload", dict), ("timestamp", str)):
        if not isinstance(record.get(key), kind):
            raise ValueError(f"`{key}` is missing or not a {kind.__name__}")
    if "workflow_id" not in record or not isinstance(record["workflow_id"], (str, type(None))):
        raise ValueError("`workflow_id` is missing or not a string or null")
    seq = record.get("seq")
    if "seq" in record and (type(seq) is not int or seq < 1):
        raise ValueError("`seq` is not an integer from 1")
    stored = record.pop("hash", None)
    prev = record.get("prev_hash")
    if (stored is None) != (prev is None):
        raise ValueError("`hash` and `prev_hash` must come together")
    if stored is not None:
        if not (_is_hash(stored) and _is_hash(prev)):
            raise ValueError("`hash` and `prev_hash` must be 64 lowercase hex digits")
        if _hex(sha256(json.dumps(record, sort_keys=True).encode("ascii"))) != stored:
            raise ValueError("`hash` does not match the record")
    return {"hash": stored, "prev_hash": prev, "seq": seq}


def export(sink, host_digest=True):
    """The `Sink` and `Verifier` classes componentize-py exports, bound to `sink`.

    Put `Sink, Verifier = chainsink_sdk.export(MySink())` in the app module.
    `Verifier` is None when the build's world (`audit-sink`) has no verifier
    export; build with `-w verifying-sink` to export it.
    Hashes come from the host's `digest.sha256` import (native SHA-256;
    measured 1.7x the events a second of hashlib inside componentize-py,
    docs/benchmarks.md); with `host_digest=False`, from hashlib. A
    `SinkFailure` becomes the WIT error; any other exception is reported on
    the host's diagnostics, then traps.
    """
    if _exports is None:
        raise RuntimeError("export() needs componentize-py's bindings: build with componentize-py")
    Err, exports, types = _Err, _exports, _types
    errors = {
        "invalid-event": types.SinkError_InvalidEvent,
        "corrupt-log": types.SinkError_CorruptLog,
        "io": types.SinkError_Io,
    }
    durability = {
        types.Durability.ALWAYS: "always",
        types.Durability.BATCH: "batch",
        types.Durability.NONE: "none",
    }

    def guarded(f):
        def call(*args):
            try:
                return f(*args)
            except SinkFailure as e:
                if e.kind == "not-open":
                    raise Err(types.SinkError_NotOpen()) from None
                raise Err(errors[e.kind](e.message)) from None
            except Err:
                raise
            except BaseException:
                WitLog().diagnose(
                    "error", f"sink {sink.name} raised:\n{traceback.format_exc()}"
                )
                raise

        return call

    def head(h):
        return types.ChainHead(records=h[0], hash=h[1], bytes=h[2])

    def receipt(r):
        return types.Receipt(seq=r[0], hash=r[1])

    class Sink(exports.Sink):
        def describe(self):
            name, version, fmt = sink.describe()
            if fmt == "telemachy-json":
                fmt = types.RecordFormat_TelemachyJson()
            else:
                fmt = types.RecordFormat_Custom(fmt)
            return types.SinkInfo(name=name, version=version, format=fmt)

        @guarded
        def open(self, options):
            io = WitLog(host_digest)
            return head(sink.open(io, options.hash_chain, durability[options.durability]))

        @guarded
        def emit(self, event):
            return receipt(sink.emit(event))

        @guarded
        def emit_batch(self, events):
            return [receipt(r) for r in sink.emit_batch(events)]

        @guarded
        def flush(self):
            sink.flush()

        @guarded
        def head(self):
            return head(sink.head())

        @guarded
        def close(self):
            return head(sink.close())

    if not hasattr(exports, "Verifier"):
        # Built for the `audit-sink` world, which has no verifier export.
        return Sink, None

    class Verifier(exports.Verifier):
        def verify(self):
            io = WitLog(host_digest)
            try:
                records, head_hash, size = sink.verify(io)
            except VerifyError as e:
                raise Err(types.VerifyFailure(line=e.line, offset=e.offset, reason=e.reason))
            except SinkFailure as e:
                raise Err(types.VerifyFailure(line=0, offset=0, reason=e.message or e.kind))
            return types.VerifyReport(records=records, head=head_hash, bytes=size)

    return Sink, Verifier
