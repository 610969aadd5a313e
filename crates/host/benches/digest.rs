//! The `digest` import (WIT 0.2: SHA-256 by the host, natively) against
//! SHA-256 computed in wasm, in a real sink.
//!
//! `cargo bench -p chainsink-host --bench digest`
//!
//! The same sink source, `tsv-chain` (a custom-format test sink that hashes
//! each 534-byte record once), is built twice by `crates/test-programs`:
//! hashing through the `digest` import, and with `sha2` compiled to wasm
//! (`tsv-chain-wasm-sha`). Both write the same bytes (a test checks that).
//! Each is timed side by side in one run, alternating, best of 5 rounds:
//! one `emit` per record, and `emit-batch` of 100; durability none, so the
//! figures are the call, the hashing and the append. A third line times the
//! host's native SHA-256 of one record alone, for scale.

use std::path::Path;
use std::time::{Duration, Instant};

use chainsink_host::capability::digest::sha256;
use chainsink_host::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};
use chainsink_test_programs as guests;

/// The record size the figures are for (a typical `task.completed`).
const RECORD_BYTES: usize = 534;
const SINGLE: usize = 2000;
const BATCHES: usize = 40;
const BATCH: usize = 100;
const ROUNDS: usize = 5;

fn options() -> SinkOptions {
    SinkOptions {
        hash_chain: true,
        durability: Durability::None,
        actor: Actor {
            host_id: "bench-host".into(),
            user: "bench".into(),
        },
    }
}

fn event(pad: usize) -> Event {
    Event {
        event_type: "task.completed".into(),
        workflow_id: Some("3f2a9c1d".into()),
        timestamp: Some("2026-06-04T15:30:45.123456+00:00".into()),
        payload: format!(
            r#"{{"team": "audit-team", "task_subject": "Analyse repository structure", "exit_code": 0, "note": "{}"}}"#,
            "x".repeat(pad)
        ),
        actor: None,
    }
}

/// The padding that makes a record `RECORD_BYTES` long in `wasm`'s format.
fn padding(runtime: &SinkRuntime, wasm: &str, dir: &Path) -> usize {
    let log = dir.join("probe.tsv");
    let c = runtime.load_file(Path::new(wasm)).unwrap();
    let sink = runtime
        .open(&c, LogFile::open(&log).unwrap(), &options())
        .unwrap();
    sink.emit(&event(0)).unwrap();
    sink.close().unwrap();
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    std::fs::remove_file(&log).unwrap();
    RECORD_BYTES
        .checked_sub(len)
        .expect("the bare record is shorter than 534 bytes")
}

/// (per record with one emit each, per record in batches of 100).
fn time(
    runtime: &SinkRuntime,
    wasm: &str,
    dir: &Path,
    pad: usize,
    round: usize,
) -> (Duration, Duration) {
    let c = runtime.load_file(Path::new(wasm)).unwrap();
    let log = dir.join(format!("{round}-{}.tsv", wasm.len()));
    let sink = runtime
        .open(&c, LogFile::open(&log).unwrap(), &options())
        .unwrap();
    let e = event(pad);
    let start = Instant::now();
    for _ in 0..SINGLE {
        sink.emit(&e).unwrap();
    }
    let single = start.elapsed() / SINGLE as u32;
    let batch: Vec<Event> = (0..BATCH).map(|_| e.clone()).collect();
    let start = Instant::now();
    for _ in 0..BATCHES {
        sink.emit_batch(&batch).unwrap();
    }
    let batched = start.elapsed() / (BATCHES * BATCH) as u32;
    sink.close().unwrap();
    // `seq` grows from 1 to 6000: records are 534 bytes give or take its digits.
    let size = std::fs::metadata(&log).unwrap().len() as usize;
    let average = size / (SINGLE + BATCHES * BATCH);
    assert!(
        average.abs_diff(RECORD_BYTES) <= 4,
        "records average {average} bytes"
    );
    std::fs::remove_file(&log).unwrap();
    (single, batched)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let sinks = [
        ("digest import", guests::CHAINSINK_GUEST_TSV_CHAIN),
        ("sha256 in wasm", guests::CHAINSINK_GUEST_TSV_CHAIN_WASM_SHA),
    ];
    let pad = padding(&runtime, sinks[0].1, dir.path());
    assert_eq!(pad, padding(&runtime, sinks[1].1, dir.path()));
    let mut best = [(Duration::MAX, Duration::MAX); 2];
    for round in 0..ROUNDS {
        for (i, (_, wasm)) in sinks.iter().enumerate() {
            let (s, b) = time(&runtime, wasm, dir.path(), pad, round);
            best[i] = (best[i].0.min(s), best[i].1.min(b));
        }
    }
    let record = vec![b'x'; RECORD_BYTES];
    let n = 100_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(sha256(std::hint::black_box(&record)).unwrap());
    }
    let native = start.elapsed() / n;
    println!("tsv-chain, {RECORD_BYTES}-byte records, durability none, best of {ROUNDS} rounds");
    println!(
        "{:<16} {:>12} {:>16}",
        "sha-256 by", "emit (µs)", "batch/100 (µs)"
    );
    for (i, (label, _)) in sinks.iter().enumerate() {
        println!(
            "{label:<16} {:>12.2} {:>16.2}",
            best[i].0.as_secs_f64() * 1e6,
            best[i].1.as_secs_f64() * 1e6
        );
    }
    println!(
        "in wasm / import: emit {:.2}x, batch {:.2}x; native SHA-256 of one record alone: {:.2} µs",
        best[1].0.as_secs_f64() / best[0].0.as_secs_f64(),
        best[1].1.as_secs_f64() / best[0].1.as_secs_f64(),
        native.as_secs_f64() * 1e6
    );
}
