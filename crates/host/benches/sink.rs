//! Sink benchmarks: figures compared as ratios within one run.
//!
//! `cargo bench -p chainsink-host --bench sink` (add `-- --quick` for a short run).
//!
//! 1. Emit events/s through the wasm sink (the real host API: mutex, time
//!    stamp, component call, receipt checks) against the same writer code
//!    (`chainsink-sdk`'s `ChainWriter`, the default sink's) compiled natively, over the
//!    same `LogFile` I/O: one `write` per record, durability none, chain on.
//! 2. Resume (instantiate + open: read the tail, seed the chain) on logs of
//!    10k, 100k and 1M records.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chainsink_host::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};
use chainsink_sdk::Level;
use chainsink_sdk::bindings::chainsink::audit::types as wit;
use chainsink_sdk::writer::{ChainWriter, LogIo};

/// The native side: the same writer over the host's `LogFile`.
struct NativeLog(LogFile);

impl LogIo for NativeLog {
    fn append(&mut self, data: &[u8]) -> Result<u64, String> {
        self.0.append(data).map_err(|e| e.to_string())
    }
    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        self.0.read(offset, len).map_err(|e| e.to_string())
    }
    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        self.0.read_tail(len).map_err(|e| e.to_string())
    }
    fn size(&mut self) -> Result<u64, String> {
        self.0.size().map_err(|e| e.to_string())
    }
    fn sync(&mut self) -> Result<(), String> {
        self.0.sync().map_err(|e| e.to_string())
    }
    fn diagnose(&mut self, _: Level, _: &str) {}
}

const PAYLOAD: &str = r#"{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}"#;
const TIMESTAMP: &str = "2026-06-04T15:30:45.123456+00:00";

fn host_event() -> Event {
    Event {
        event_type: "task.completed".into(),
        workflow_id: Some("3f2a9c1d".into()),
        payload: PAYLOAD.into(),
        timestamp: None,
        actor: None,
    }
}

fn wit_event() -> wit::Event {
    wit::Event {
        timestamp: TIMESTAMP.into(),
        event_type: "task.completed".into(),
        workflow_id: Some("3f2a9c1d".into()),
        actor: wit::Actor {
            host_id: "bench-host".into(),
            user: "bench".into(),
        },
        payload: PAYLOAD.into(),
    }
}

/// The writer's events: each payload parsed, as the sink parses it per call.
fn parsed(events: Vec<wit::Event>) -> Vec<chainsink_sdk::Event> {
    events
        .into_iter()
        .map(chainsink_sdk::Event::from_wit)
        .collect()
}

fn sink_options() -> SinkOptions {
    SinkOptions {
        hash_chain: chain_on(),
        durability: Durability::None,
        actor: Actor {
            host_id: "bench-host".into(),
            user: "bench".into(),
        },
    }
}

/// `BENCH_CHAIN=off` measures without the hash chain.
fn chain_on() -> bool {
    std::env::var("BENCH_CHAIN").map_or(true, |v| v != "off")
}

fn wit_options() -> wit::Options {
    wit::Options {
        hash_chain: chain_on(),
        durability: wit::Durability::None,
    }
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Events/s through the wasm sink, one emit per event.
fn wasm_emit(rt: &SinkRuntime, c: &chainsink_host::SinkComponent, path: &Path, n: usize) -> f64 {
    let sink = rt
        .open(c, LogFile::open(path).unwrap(), &sink_options())
        .unwrap();
    let event = host_event();
    let start = Instant::now();
    for _ in 0..n {
        sink.emit(&event).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sink.close().unwrap();
    n as f64 / secs
}

/// Events/s through the wasm sink, `batch` events per `emit_batch`.
fn wasm_batch(
    rt: &SinkRuntime,
    c: &chainsink_host::SinkComponent,
    path: &Path,
    n: usize,
    batch: usize,
) -> f64 {
    let sink = rt
        .open(c, LogFile::open(path).unwrap(), &sink_options())
        .unwrap();
    let events: Vec<Event> = (0..batch).map(|_| host_event()).collect();
    let start = Instant::now();
    for _ in 0..n / batch {
        sink.emit_batch(&events).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sink.close().unwrap();
    (n / batch * batch) as f64 / secs
}

/// Events/s through the native writer, `batch` events per append.
fn native_batch(path: &Path, n: usize, batch: usize) -> f64 {
    let mut w = ChainWriter::open(NativeLog(LogFile::open(path).unwrap()), wit_options()).unwrap();
    let start = Instant::now();
    for _ in 0..n / batch {
        let now = chainsink_host::timestamp::now();
        let events: Vec<wit::Event> = (0..batch)
            .map(|_| {
                let mut e = wit_event();
                e.timestamp = now.clone();
                e
            })
            .collect();
        w.append(&parsed(events)).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    w.flush().unwrap();
    (n / batch * batch) as f64 / secs
}

/// Events/s through the native writer, one append per event.
fn native_emit(path: &Path, n: usize) -> f64 {
    let mut w = ChainWriter::open(NativeLog(LogFile::open(path).unwrap()), wit_options()).unwrap();
    let event = wit_event();
    let start = Instant::now();
    for _ in 0..n {
        // Stamp each event as the host does, so both sides format a time.
        let mut e = event.clone();
        e.timestamp = chainsink_host::timestamp::now();
        w.append(&parsed(vec![e])).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    w.flush().unwrap();
    n as f64 / secs
}

/// Builds a log of `records` records with the native writer, in batches.
fn build_log(path: &Path, records: usize) {
    let mut w = ChainWriter::open(NativeLog(LogFile::open(path).unwrap()), wit_options()).unwrap();
    let batch: Vec<wit::Event> = (0..1000).map(|_| wit_event()).collect();
    let mut left = records;
    while left > 0 {
        let k = left.min(batch.len());
        w.append(&parsed(batch[..k].to_vec())).unwrap();
        left -= k;
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::Builder::new()
        .prefix("chainsink-bench")
        .tempdir_in(
            std::env::var_os("BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        )
        .unwrap();
    let rt = SinkRuntime::new(SinkLimits::default()).unwrap();
    let t = Instant::now();
    let component = rt.default_component().unwrap();
    let compile = t.elapsed();

    let n = if quick { 20_000 } else { 200_000 };
    let rounds = if quick { 3 } else { 5 };
    let (mut wasm, mut native, mut wasm_b, mut native_b) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let path = fresh(dir.path(), "wasm.jsonl");
        wasm.push(wasm_emit(&rt, &component, &path, n));
        native.push(native_emit(&fresh(dir.path(), "native.jsonl"), n));
        let path = fresh(dir.path(), "wasm-b.jsonl");
        wasm_b.push(wasm_batch(&rt, &component, &path, n, 256));
        native_b.push(native_batch(&fresh(dir.path(), "native-b.jsonl"), n, 256));
    }
    let (wasm, native) = (median(wasm), median(native));
    let (wasm_b, native_b) = (median(wasm_b), median(native_b));
    println!("## emit (durability none, chain on, {n} events x {rounds} rounds, median)");
    println!("| path | events/s |");
    println!("|---|---|");
    println!("| wasm sink via chainsink_host::Sink::emit | {wasm:.0} |");
    println!("| same writer, native | {native:.0} |");
    println!("| ratio wasm / native | {:.2} |", wasm / native);
    println!("| wasm sink via Sink::emit_batch (256 a call) | {wasm_b:.0} |");
    println!("| same writer, native, 256 an append | {native_b:.0} |");
    println!(
        "| ratio wasm / native, batched | {:.2} |",
        wasm_b / native_b
    );
    println!();

    println!("## resume (instantiate + open on an existing log, median of 20)");
    println!("| records | log MB | wasm open | native open |");
    println!("|---|---|---|---|");
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &records in sizes {
        let path = fresh(dir.path(), &format!("resume-{records}.jsonl"));
        build_log(&path, records);
        let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
        let mut wasm_open = Vec::new();
        let mut native_open = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let sink = rt
                .open(&component, LogFile::open(&path).unwrap(), &sink_options())
                .unwrap();
            wasm_open.push(t.elapsed().as_secs_f64());
            assert_eq!(sink.head().unwrap().records, records as u64);
            drop(sink);
            let t = Instant::now();
            let w =
                ChainWriter::open(NativeLog(LogFile::open(&path).unwrap()), wit_options()).unwrap();
            native_open.push(t.elapsed().as_secs_f64());
            assert_eq!(w.head().records, records as u64);
        }
        println!(
            "| {records} | {mb:.0} | {} | {} |",
            fmt(median(wasm_open)),
            fmt(median(native_open))
        );
    }
    println!();
    println!(
        "compile of the default component (no cache): {}",
        fmt(compile.as_secs_f64())
    );
}

fn fmt(secs: f64) -> String {
    let d = Duration::from_secs_f64(secs);
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", secs * 1e6)
    } else {
        format!("{:.2} ms", secs * 1e3)
    }
}
