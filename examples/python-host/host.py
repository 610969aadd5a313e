#!/usr/bin/env python3
"""The chainsink default sink component, embedded in Python with wasmtime-py.

    python3 host.py [options] COMPONENT LOG < events.jsonl

COMPONENT is a sink component (`chainsink export-sink sink.wasm` writes the
default one), loaded unchanged through `wasmtime.component`. LOG is the audit
log. Events arrive as JSON lines on stdin, in the shape of
`chainsink emit --stdin`; one receipt line goes to stdout per event, as the
Rust CLI prints them.

Versions: a component built against WIT 0.1.0 (`wit/since_v0.1.0/`) or 0.2.0
(`wit/audit.wit`) loads. The version of the `chainsink:audit/sink` interface
it exports decides which interfaces it is granted; every `chainsink:audit`
import and export must name that same version.

What the sink gets: that version's `chainsink:audit` interfaces and nothing
else: `log-file`, `diagnostics`, `types`, and for 0.2 `digest` (SHA-256,
computed here with hashlib). `log-file` is implemented below over ONE file
descriptor opened with O_RDWR | O_APPEND | O_CREAT: every write lands at the
end, so the sink can add to the log but never change what is there. The sink
never sees the path. The linker has no WASI (`add_wasip2` is never called),
and a component that imports WASI is refused before it is instantiated.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Optional

import wasmtime
from wasmtime import component as wc

PACKAGE = "chainsink:audit"
# The contracts this host serves (by minor version), and the interfaces each grants.
SERVED = {
    "0.1": ("log-file", "diagnostics", "types"),
    "0.2": ("log-file", "diagnostics", "digest", "types"),
}
# Exports a component of each version may have besides `sink`. This host calls
# `sink.emit-batch`, never `packed-batch.emit-packed` (the same call with the
# events packed in bytes), so a sink that exports both still works here.
OPTIONAL_EXPORTS = {"0.1": (), "0.2": ("verifier", "packed-batch")}
DIGEST_LIMIT = 1048576  # most bytes `digest.sha256` hashes in one call (WIT 0.2.0: 1 MiB)
MAX_BATCH = 256  # most events written with one append, as the Rust CLI
MAX_DIAGNOSTIC = 4096
LEVELS = ("debug", "info", "warn", "error")
EPOCH_TICK = 0.010  # seconds; call deadlines are counted in these ticks


class HostError(Exception):
    """The host could not do what was asked (bad component, bad file)."""


class SinkError(Exception):
    """A sink call failed: `kind` is the WIT `sink-error` case, or `trap`."""

    def __init__(self, kind: str, detail: Optional[str] = None):
        super().__init__("the sink is not open" if kind == "not-open" else f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# ---------------------------------------------------------------------------
# The log-file capability.


class LogFile:
    """One audit log, opened once for read + append.

    `functions()` is the `chainsink:audit/log-file` interface the sink gets.
    For a `result<T, string>` wasmtime-py takes the ok value as it is and a
    `str` as the error (the types are told apart by class), so each
    function returns the message string on failure.
    """

    def __init__(self, path: str, read_only: bool = False):
        self.path = path
        self.read_only = read_only
        # A log is a regular file: a FIFO would hang, a device keeps no history.
        if os.path.exists(path) and not os.path.isfile(path):
            raise HostError(f"audit log {path} is not a regular file; point it at a file")
        if read_only:
            # For --verify: O_RDONLY, no lock, and `append` and `sync` fail.
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            return
        # Every write goes to the end, whatever position is asked for.
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
        # One writer per log, as the Rust host: an exclusive flock on the
        # log's own descriptor, so every path to the file meets the same lock.
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise HostError(
                f"audit log {path} is in use by another writer; a log has one writer at a time"
            )

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OSError as e:
            return f"{what} {self.path}: {e.strerror or e}"

    def _read(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            chunk = os.pread(self.fd, length, offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(parts)

    def _writable(self) -> None:
        if self.read_only:
            raise OSError("the log is open read-only, to be verified")

    def _append(self, data: bytes) -> int:
        self._writable()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        # With O_APPEND the write moved the position to the end, so the
        # position now, less the length, is where these bytes landed.
        return os.lseek(self.fd, 0, os.SEEK_CUR) - len(data)

    def _read_tail(self, length: int) -> tuple:
        size = os.fstat(self.fd).st_size
        start = max(0, size - length)
        return (start, self._read(start, size - start))

    def _sync(self) -> None:
        self._writable()
        os.fdatasync(self.fd)

    def functions(self) -> dict:
        return {
            "append": lambda _store, data: self._guard("append to", lambda: self._append(data)),
            "read": lambda _store, offset, length: self._guard("read", lambda: self._read(offset, length)),
            "read-tail": lambda _store, length: self._guard("read", lambda: self._read_tail(length)),
            "size": lambda _store: self._guard("stat", lambda: os.fstat(self.fd).st_size),
            "sync": lambda _store: self._guard("sync", self._sync),
        }

    def close(self) -> None:
        os.close(self.fd)


# ---------------------------------------------------------------------------
# The digest capability (WIT 0.2.0).


def digest_functions(on_call: Callable[[int], None] = lambda _n: None) -> dict:
    """`chainsink:audit/digest`: SHA-256 with hashlib, at most DIGEST_LIMIT
    bytes a call (longer input gets the error the WIT describes, as a `str`,
    and nothing is hashed). `on_call` is told of each call (for counting)."""

    def sha256(_store: Any, data: bytes) -> Any:
        on_call(len(data))
        if len(data) > DIGEST_LIMIT:
            return (f"sha256: {len(data)} bytes is more than the limit of {DIGEST_LIMIT} bytes "
                    "(1 MiB) a call; nothing was hashed: hash such data in wasm")
        return hashlib.sha256(data).digest()

    return {"sha256": sha256}


# ---------------------------------------------------------------------------
# Loading and a live sink instance.


class SinkRuntime:
    """One engine for every sink in the process, with call deadlines."""

    def __init__(self, memory_bytes: int = 64 << 20, call_timeout: float = 1.0):
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.memory_bytes = memory_bytes
        self.deadline_ticks = int(call_timeout / EPOCH_TICK) + 1
        ticker = threading.Thread(target=self._tick, name="chainsink-epoch", daemon=True)
        ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(EPOCH_TICK)
            self.engine.increment_epoch()

    def load(self, path: str) -> "SinkComponent":
        """Compiles a component and checks its world (see `check_world`)."""
        component = wc.Component.from_file(self.engine, path)
        ty = component.type
        world = check_world(list(ty.imports(self.engine)), list(ty.exports(self.engine)), path)
        return SinkComponent(component=component, **world)


class SinkComponent:
    """A compiled sink component and the contract it speaks: `version` (such
    as `0.2.0`), `minor` (`0.2`), `granted` (the interfaces it gets),
    `imports` (the names it imports), `sink_export`, `verifier_export`."""

    def __init__(self, component: wc.Component, **world: Any):
        self.component = component
        self.__dict__.update(world)


def _ours(name: str) -> Optional[tuple]:
    """`chainsink:audit/NAME@X.Y.Z` as (NAME, X.Y.Z), else None."""
    if not name.startswith(PACKAGE + "/") or "@" not in name:
        return None
    iface, _, version = name[len(PACKAGE) + 1:].partition("@")
    parts = version.split(".")
    if not iface or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return (iface, version)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_world(imports: list, exports: list, what: str = "the component") -> dict:
    """Which contract a component speaks, from its exported
    `chainsink:audit/sink@X.Y.Z`. Raises HostError, one line naming what is
    wrong and how to fix it, for a component that exports no sink, a version
    this host does not serve, mixes versions, or imports anything else."""
    served = " and ".join(f"{m}.x" for m in SERVED)
    sinks = [e for e in exports if _ours(e) and _ours(e)[0] == "sink"]
    if len(sinks) != 1:
        raise HostError(
            f"{what} exports no `{PACKAGE}/sink` interface (exports: {', '.join(exports) or 'none'}); "
            f"this host loads chainsink sinks of WIT {served}: build it against wit/audit.wit")
    version = _ours(sinks[0])[1]
    minor = _minor(version)
    if minor not in SERVED:
        raise HostError(
            f"{what} exports {sinks[0]}; this host serves WIT {served}: rebuild the sink against "
            "wit/audit.wit (0.2.0), or use a host that serves its version")
    mixed = [n for n in imports + exports if _ours(n) and _minor(_ours(n)[1]) != minor]
    if mixed:
        how = "imports" if mixed[0] in imports else "exports"
        raise HostError(
            f"{what} mixes WIT versions: it exports {sinks[0]} but {how} {', '.join(mixed)}; "
            f"a sink uses one version of {PACKAGE} throughout: rebuild it against one WIT "
            "(wit/audit.wit for 0.2.0)")
    granted = SERVED[minor]
    foreign = [n for n in imports if not (_ours(n) and _ours(n)[0] in granted)]
    if foreign:
        raise HostError(
            f"{what} imports {', '.join(foreign)}; this host grants a WIT {version} sink only "
            f"{', '.join(f'{PACKAGE}/{g}@{version}' for g in granted)} (no WASI: no filesystem, "
            "environment, clock or network): rebuild the sink without those imports")
    unknown = [n for n in exports
               if _ours(n) and n != sinks[0] and _ours(n)[0] not in OPTIONAL_EXPORTS[minor]]
    if unknown:
        raise HostError(f"{what} exports {', '.join(unknown)}, which WIT {version} does not define: "
                        "rebuild it against wit/audit.wit")
    verifier = next((n for n in exports if _ours(n) and _ours(n)[0] == "verifier"), None)
    return {"version": version, "minor": minor, "granted": granted, "imports": list(imports),
            "sink_export": sinks[0], "verifier_export": verifier}


def format_name(fmt: Any) -> str:
    """The `record-format` a 0.2 `describe` names, as text. wasmtime-py
    gives this variant untagged: None for `telemachy-json`, the name (a
    `str`) for `custom(name)`."""
    if isinstance(fmt, wc.Variant):
        return fmt.tag if fmt.payload is None else f"{fmt.tag}({fmt.payload})"
    return "telemachy-json" if fmt is None else f"custom({fmt})"


def _record(**fields: Any) -> wc.Record:
    """A WIT record; field `hash_chain` is WIT's `hash-chain`."""
    rec = wc.Record()
    for name, value in fields.items():
        setattr(rec, name.replace("_", "-"), value)
    return rec


class Sink:
    """One sink instance (one store) over one log.

    Calls must come from one thread at a time. A trapped instance is
    discarded: every later call reports the trap.

    A WIT 0.2 sink is asked `describe` once, before `open`; `info` keeps the
    answer (`name`, `version`, `format` as text; for a 0.1 sink, which has no
    `describe`, name and version are None and the format is telemachy-json).
    This host writes telemachy-json only, so a sink that names a custom
    format is refused before `open`.
    """

    def __init__(self, runtime: SinkRuntime, component: SinkComponent, log: LogFile,
                 durability: str = "always", hash_chain: bool = True, diagnostics: str = "warn",
                 verify_only: bool = False):
        self.runtime = runtime
        self.log = log
        self.last_error: Optional[str] = None
        self.gone: Optional[SinkError] = None
        self.min_level = LEVELS.index(diagnostics)
        self.version = component.version
        self.digest_calls = 0
        self.store = wasmtime.Store(runtime.engine)
        self.store.set_limits(memory_size=runtime.memory_bytes)

        def count(_n: int) -> None:
            self.digest_calls += 1

        provided = {"log-file": log.functions(), "diagnostics": {"log": self._diagnostic},
                    "digest": digest_functions(count)}
        linker = wc.Linker(runtime.engine)
        with linker.root() as root:
            # Only what this version grants, under the names the component
            # imports (`types` has no functions to provide).
            for name in component.imports:
                functions = provided.get(_ours(name)[0])
                if functions is None:
                    continue
                with root.add_instance(name) as iface:
                    for func, fn in functions.items():
                        iface.add_func(func, fn)
        self.store.set_epoch_deadline(runtime.deadline_ticks)
        instance = linker.instantiate(self.store, component.component)
        sink = instance.get_export_index(self.store, component.sink_export)
        names = ["open", "emit", "emit-batch", "flush", "head", "close"]
        if component.minor != "0.1":
            names.append("describe")
        self.funcs = {
            name: instance.get_func(self.store, instance.get_export_index(self.store, name, sink))
            for name in names
        }
        if component.verifier_export:
            verifier = instance.get_export_index(self.store, component.verifier_export)
            self.funcs["verify"] = instance.get_func(
                self.store, instance.get_export_index(self.store, "verify", verifier))
        granted = ", ".join(component.granted)
        if component.minor == "0.1":
            self.info = {"name": None, "version": None, "format": "telemachy-json"}
            self._note(f"sink: WIT {component.version} (no describe), taken as telemachy-json; "
                       f"granted {granted}")
        else:
            described = self._call("describe")
            self.info = {"name": described.name, "version": described.version,
                         "format": format_name(described.format)}
            verifier = ", has a verifier" if component.verifier_export else ""
            self._note(f"sink: {self.info['name']} {self.info['version']}, WIT {component.version}, "
                       f"writes {self.info['format']}{verifier}; granted {granted}")
            if self.info["format"] != "telemachy-json" and not verify_only:
                self.gone = SinkError("not-open")
                raise HostError(
                    f"the sink {self.info['name']} {self.info['version']} writes its own record format "
                    f"({self.info['format']}); this host writes and prints receipts for telemachy-json "
                    "only: run such a sink with `chainsink emit --sink SINK.wasm` and check its log "
                    "with `chainsink verify --sink SINK.wasm`")
        self.durability = durability
        if verify_only:
            return  # for --verify the instance is never opened: `verify` reads the log itself
        self.head = self._call("open", _record(hash_chain=hash_chain, durability=durability))

    def _note(self, text: str) -> None:
        """A line of the host's own, shown with --verbose."""
        if self.min_level <= LEVELS.index("info"):
            print(f"chainsink-python: {text}", file=sys.stderr, flush=True)

    def _diagnostic(self, _store: Any, level: str, message: str) -> None:
        if len(message) > MAX_DIAGNOSTIC:
            message = message[:MAX_DIAGNOSTIC] + "..."
        if level == "error":
            self.last_error = message
        if LEVELS.index(level) >= self.min_level:
            print(f"chainsink-python: sink {level}: {message}", file=sys.stderr, flush=True)

    def _call(self, name: str, *args: Any) -> Any:
        if self.gone is not None:
            raise self.gone
        self.store.set_epoch_deadline(self.runtime.deadline_ticks)
        try:
            result = self.funcs[name](self.store, *args)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if self.last_error:
                reason += f"; the sink said: {self.last_error}"
            self.gone = SinkError("trap", f"the sink trapped in `{name}`: {reason}; the instance was discarded")
            raise self.gone from None
        # `result<T, sink-error>`: the ok value as it is, the error as a Variant.
        if isinstance(result, wc.Variant):
            raise SinkError(result.tag, result.payload)
        return result

    def emit(self, event: wc.Record) -> wc.Record:
        return self._call("emit", event)

    def verify(self, deadline: float = 60.0) -> tuple:
        """The sink's own check of its log (WIT 0.2 `verifier.verify`), as
        `chainsink verify --sink` runs it: on an instance made with
        `verify_only=True` over a read-only `LogFile`, without `open`, with a
        longer deadline. Returns (report, None) or (None, failure)."""
        if "verify" not in self.funcs:
            raise HostError(f"the component exports no {PACKAGE}/verifier (WIT 0.2, world "
                            "verifying-sink): check a telemachy-json log with `chainsink verify LOG`")
        self.store.set_epoch_deadline(int(deadline / EPOCH_TICK) + 1)
        try:
            result = self.funcs["verify"](self.store)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SinkError("trap", f"the sink trapped in `verify`: {reason}") from None
        # `result<verify-report, verify-failure>`: both cases are records, so
        # wasmtime-py gives a tagged Variant (`ok` or `err`).
        if isinstance(result, wc.Variant):
            return (result.payload, None) if result.tag == "ok" else (None, result.payload)
        return (None, result) if hasattr(result, "reason") else (result, None)

    def emit_batch(self, events: list) -> list:
        return self._call("emit-batch", events)

    def flush(self) -> None:
        self._call("flush")

    def current_head(self) -> wc.Record:
        return self._call("head")

    def close(self) -> wc.Record:
        head = self._call("close")
        self.gone = SinkError("not-open")
        if self.version.startswith("0.2."):
            self._note(f"digest: {self.digest_calls} sha256 call(s) hashed natively")
        return head


# ---------------------------------------------------------------------------
# Events: the `chainsink emit --stdin` line format.


def timestamp_now() -> str:
    """Now, UTC, as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


SHAPE = 'expected {"event_type": "..", "workflow_id": ".." or null, "payload": {..}}'
FIELDS = ("event_type", "workflow_id", "payload", "timestamp", "actor")


def _no_duplicates(pairs: list) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate field `{key}`")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_line(text: str, actor: dict) -> dict:
    """One input line as event fields; raises ValueError with a message for bad lines.

    The payload is handed to the sink as `json.dumps` of what `json.loads`
    read: the sink's canonical form is Python's, so nothing is lost (`1.0`
    stays a float, big integers stay exact).
    """
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{e}; {SHAPE}") from None

    def fail(msg: str) -> None:
        raise ValueError(f"{msg}; {SHAPE}")

    if not isinstance(value, dict):
        fail("not a JSON object")
    for key in value:
        if key not in FIELDS:
            fail(f"unknown field `{key}`, expected one of {', '.join(f'`{f}`' for f in FIELDS)}")
    if not isinstance(value.get("event_type"), str):
        fail("`event_type` must be a string")
    workflow_id = value.get("workflow_id")
    if workflow_id is not None and not isinstance(workflow_id, str):
        fail("`workflow_id` must be a string or null")
    payload = value.get("payload")
    if payload is not None and not isinstance(payload, dict):
        fail("`payload` must be an object")
    timestamp = value.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        fail("`timestamp` must be a string")
    given = value.get("actor")
    if given is not None:
        if (not isinstance(given, dict) or set(given) != {"host_id", "user"}
                or not all(isinstance(v, str) for v in given.values())):
            fail('`actor` must be {"host_id": "..", "user": ".."}')
        actor = given
    return {
        "timestamp": timestamp,
        "event_type": value["event_type"],
        "workflow_id": workflow_id,
        "actor": actor,
        "payload": "{}" if payload is None else json.dumps(payload),
    }


def to_wit(event: dict, now: str) -> wc.Record:
    return _record(
        timestamp=event["timestamp"] if event["timestamp"] is not None else now,
        event_type=event["event_type"],
        workflow_id=event["workflow_id"],
        actor=_record(host_id=event["actor"]["host_id"], user=event["actor"]["user"]),
        payload=event["payload"],
    )


def receipt_line(line: int, receipt: wc.Record) -> str:
    """The receipt line, byte for byte as `chainsink emit --stdin` prints it."""
    return json.dumps({"hash": receipt.hash, "line": line, "seq": receipt.seq}, separators=(",", ":")) + "\n"


def error_line(line: int, message: str) -> str:
    return json.dumps({"error": message, "line": line}, separators=(",", ":"), ensure_ascii=False) + "\n"


class StreamFailed(Exception):
    """The sink failed in a way that stops the stream (not a bad line)."""

    def __init__(self, line: int, error: SinkError):
        super().__init__(f"{error} (after line {line}; lines from {line} on were not written)")
        self.error = error


def durable(sink: Sink) -> None:
    """With durability `batch` the sink leaves syncing to the host, which must
    sync before it acknowledges. One process writing one stream has nobody to
    share a sync with, so it syncs after each write call (the Rust host groups
    the syncs of concurrent emitters instead)."""
    if sink.durability == "batch":
        sink.flush()


def write_batch(sink: Sink, batch: list, report: dict) -> str:
    """Writes `batch` ([(line, event)]) with one append; returns the receipt text.

    A batch with an invalid event is retried one by one so that only the bad
    ones are refused."""
    now = timestamp_now()
    events = [to_wit(e, now) for _, e in batch]
    out = []
    try:
        receipts = sink.emit_batch(events)
        durable(sink)
        out = [receipt_line(line, r) for (line, _), r in zip(batch, receipts)]
        report["written"] += len(batch)
        return "".join(out)
    except SinkError as e:
        if e.kind != "invalid-event":
            raise StreamFailed(batch[0][0], e) from None
    for (line, _), event in zip(batch, events):
        try:
            receipt = sink.emit(event)
            durable(sink)
            out.append(receipt_line(line, receipt))
            report["written"] += 1
        except SinkError as e:
            if e.kind != "invalid-event":
                sys.stdout.write("".join(out))
                raise StreamFailed(line, e) from None
            report["refused"] += 1
            out.append(error_line(line, e.detail or ""))
    return "".join(out)


def stream_stdin(sink: Sink, actor: dict) -> dict:
    """Reads events from stdin until it ends; a receipt line per event on stdout.

    Lines that arrive together (one read) are written together, so a
    conversation (one line, wait for its receipt) works, and a pipe is
    written in batches."""
    report = {"written": 0, "refused": 0}
    line_no = 0
    pending = b""
    fd = sys.stdin.fileno()
    while True:
        chunk = os.read(fd, 1 << 16)
        pending += chunk
        if chunk:
            end = pending.rfind(b"\n")
            if end < 0:
                continue
            complete, pending = pending[:end], pending[end + 1:]
        else:
            if not pending:
                return report
            complete, pending = pending, b""
        out = []
        batch: list = []
        for raw in complete.split(b"\n"):
            line_no += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                batch.append((line_no, parse_line(text, actor)))
            except ValueError as e:
                report["refused"] += 1
                out.append(error_line(line_no, str(e)))
            if len(batch) >= MAX_BATCH:
                out.append(write_batch(sink, batch, report))
                batch = []
        if batch:
            out.append(write_batch(sink, batch, report))
        sys.stdout.write("".join(out))
        sys.stdout.flush()


# ---------------------------------------------------------------------------
# Benchmark: the same event as the Rust host bench (host/benches/sink.rs).

BENCH_PAYLOAD = ('{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": '
                 '"Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, '
                 '"duration_seconds": 1.234}')


def bench(sink: Sink, n: int, durability: str, actor: dict) -> None:
    def event(now: str) -> wc.Record:
        return to_wit({"timestamp": None, "event_type": "task.completed", "workflow_id": "3f2a9c1d",
                       "actor": actor, "payload": BENCH_PAYLOAD}, now)

    start = time.perf_counter()
    for _ in range(n):
        sink.emit(event(timestamp_now()))
    one = time.perf_counter() - start
    batches = max(1, n // MAX_BATCH)
    start = time.perf_counter()
    for _ in range(batches):
        now = timestamp_now()
        sink.emit_batch([event(now) for _ in range(MAX_BATCH)])
    batched = time.perf_counter() - start
    for mode, events, secs in (("emit", n, one), (f"emit-batch-{MAX_BATCH}", batches * MAX_BATCH, batched)):
        print(json.dumps({"host": "python", "mode": mode, "events": events, "durability": durability,
                          "seconds": round(secs, 3), "events_per_s": round(events / secs)}))


# ---------------------------------------------------------------------------
# Command line.


def default_host_id() -> str:
    for path in ("/proc/sys/kernel/hostname", "/etc/hostname"):
        try:
            with open(path) as f:
                name = f.read().strip()
            if name:
                return name
        except OSError:
            pass
    return "unknown"


def verify_main(runtime: SinkRuntime, component: SinkComponent, path: str, diagnostics: str) -> int:
    """`--verify`: prints the outcome as `chainsink verify --sink` does; 0 if the log checks out, 1 if not."""
    log = LogFile(path, read_only=True)
    sink = Sink(runtime, component, log, diagnostics=diagnostics, verify_only=True)
    report, failure = sink.verify()
    log.close()
    by = f"sink {sink.info['name']} {sink.info['version']} ({sink.info['format']})"
    if failure is not None:
        print(f"TAMPERED {path}: line {failure.line} (byte {failure.offset}): {failure.reason} (checked by {by})")
        return 1
    head = "" if report.head is None else f"; head {report.head}"
    print(f"OK {path}: {report.records} record(s), {report.bytes} bytes, verified by {by}{head}")
    return 0


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="host.py",
        description="Embeds a chainsink sink component (e.g. from `chainsink export-sink sink.wasm`) "
                    "and writes the events on stdin (JSON lines, as `chainsink emit --stdin`) to LOG.")
    parser.add_argument("component", help="the sink component (.wasm)")
    parser.add_argument("log", help="the audit log")
    parser.add_argument("--durability", choices=("always", "batch", "none"),
                        default=os.environ.get("AUDIT_DURABILITY") or "always",
                        help="always (fsync each write, default), batch or none [AUDIT_DURABILITY]")
    parser.add_argument("--host-id", default=os.environ.get("HOST_ID") or None,
                        help="actor.host_id for events without an actor [HOST_ID, else the host name]")
    parser.add_argument("--user", help="actor.user for events without an actor [USER, else USERNAME, else unknown]")
    parser.add_argument("--bench", type=int, metavar="N",
                        help=f"emit N events (one a call, then in batches of {MAX_BATCH}); print events/s")
    parser.add_argument("--verbose", action="store_true", help="show the sink's info and debug diagnostics too")
    parser.add_argument("--verify", action="store_true",
                        help="check LOG with the sink's own verifier (WIT 0.2), read-only, as "
                             "`chainsink verify --sink`; exit 0 if it checks out, 1 if not")
    args = parser.parse_args(argv)
    if args.bench is not None and args.bench <= 0:
        parser.error("--bench needs a positive count")

    user = args.user or os.environ.get("USER") or os.environ.get("USERNAME")
    if not user:
        if not args.verify:
            print('chainsink-python: audit actor.user is "unknown": neither USER nor USERNAME is set',
                  file=sys.stderr)
        user = "unknown"
    actor = {"host_id": args.host_id or default_host_id(), "user": user}
    try:
        runtime = SinkRuntime()
        component = runtime.load(args.component)
        if args.verify:
            return verify_main(runtime, component, args.log, "debug" if args.verbose else "warn")
        log = LogFile(args.log)
        sink = Sink(runtime, component, log, durability=args.durability,
                    diagnostics="debug" if args.verbose else "warn")
        if args.bench is not None:
            bench(sink, args.bench, args.durability, actor)
            sink.close()
            return 0
        report = stream_stdin(sink, actor)
        sink.close()
        log.close()
    except SinkError as e:
        print(f"chainsink-python: error: audit log {args.log}: sink error {e}", file=sys.stderr)
        return 2
    except StreamFailed as e:
        print(f"chainsink-python: error: audit log {args.log}: sink error {e}", file=sys.stderr)
        return 2
    except (HostError, OSError, wasmtime.WasmtimeError) as e:
        print(f"chainsink-python: error: {e}", file=sys.stderr)
        return 2
    if report["refused"]:
        print(f"chainsink-python: {report['refused']} line(s) refused, {report['written']} written; "
              "see the error lines on stdout", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
