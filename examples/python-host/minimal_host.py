# The hand-written Python host of docs/embedding.md ("Python (wasmtime-py)"):
# run by crates/cli/tests/all/polyglot.rs with wasmtime-py on PYTHONPATH, in a
# directory holding sink.wasm.
import hashlib, os, wasmtime
from wasmtime import component as wc

config = wasmtime.Config(); config.epoch_interruption = True
engine = wasmtime.Engine(config)                           # tick engine.increment_epoch() from a thread
component = wc.Component.from_file(engine, "sink.wasm")
fd = os.open("audit.jsonl", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)

def append(_store, data):
    try:
        os.write(fd, data)
        return os.lseek(fd, 0, os.SEEK_CUR) - len(data)     # ok: an int
    except OSError as e:
        return f"append: {e.strerror}"                      # error: a str

def read_tail(_store, n):                                  # (handle OSError as in append)
    size = os.fstat(fd).st_size
    start = max(0, size - n)
    return (start, os.pread(fd, size - start, start))

linker = wc.Linker(engine)
with linker.root() as root:
    with root.add_instance("chainsink:audit/log-file@0.2.0") as log_file:
        log_file.add_func("append", append)
        log_file.add_func("read", lambda _s, off, n: os.pread(fd, n, off))
        log_file.add_func("read-tail", read_tail)
        log_file.add_func("size", lambda _s: os.fstat(fd).st_size)
        log_file.add_func("sync", lambda _s: os.fdatasync(fd))
    with root.add_instance("chainsink:audit/diagnostics@0.2.0") as diag:
        diag.add_func("log", lambda _s, level, msg: print(f"sink {level}: {msg}"))
    with root.add_instance("chainsink:audit/digest@0.2.0") as digest:  # SHA-256 by the host, at most 1 MiB a call
        digest.add_func("sha256", lambda _s, data: hashlib.sha256(data).digest() if len(data) <= 1 << 20
                        else f"sha256: {len(data)} bytes is more than the limit of 1048576 bytes (1 MiB)")
store = wasmtime.Store(engine)
store.set_limits(memory_size=64 << 20)
store.set_epoch_deadline(100)                              # ticks, before each call
instance = linker.instantiate(store, component)            # no add_wasip2(): no WASI
sink = instance.get_export_index(store, "chainsink:audit/sink@0.2.0")
call = lambda name, *args: instance.get_func(store, instance.get_export_index(store, name, sink))(store, *args)

def record(**fields):                                      # WIT field names keep their dashes
    r = wc.Record()
    for k, v in fields.items():
        setattr(r, k.replace("_", "-"), v)
    return r

info = call("describe")                                    # once, before open
if info.format is not None:                                # None: telemachy-json; a str: custom(name)
    raise SystemExit(f"{info.name} writes {info.format}, not telemachy-json")
call("open", record(hash_chain=True, durability="always"))
receipt = call("emit", record(
    timestamp="2026-06-04T15:30:45.123456+00:00", event_type="deploy.started", workflow_id="wf-1",
    actor=record(host_id="build-1", user="alice"), payload='{"service": "api"}'))
call("close")
