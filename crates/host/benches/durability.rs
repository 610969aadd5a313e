//! Durability and verification benchmarks, each a ratio within one run.
//!
//! `cargo bench -p chainsink-host --bench durability` (`-- --quick` for a short run).
//!
//! 1. Emit events/s through the wasm sink against the Python reference
//!    algorithm (`crates/cli/tests/fixtures/reference_sink.py bench`), same payload,
//!    without fsync and with fsync per record.
//! 2. `--durability batch` against `always`, 8 and 64 synchronous emitters,
//!    and records per fsync (`-- --group-commit` runs only this part).
//! 3. `chainsink verify` MB/s against reading the same file and SHA-256 of
//!    all of it, on one core and on all cores.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chainsink_host::sink::group_commit::GroupCommit;
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};
use sha2::Digest;

const PAYLOAD: &str = r#"{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}"#;

fn event() -> Event {
    Event {
        event_type: "task.completed".into(),
        workflow_id: Some("3f2a9c1d".into()),
        payload: PAYLOAD.into(),
        ..Event::default()
    }
}

fn options(durability: Durability) -> SinkOptions {
    SinkOptions {
        hash_chain: true,
        durability,
        actor: Actor {
            host_id: "bench-host".into(),
            user: "bench".into(),
        },
    }
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join(format!("{name}.lock")));
    path
}

/// Events/s emitting `n` events from `threads` threads.
fn emit_rate(
    rt: &SinkRuntime,
    c: &chainsink_host::SinkComponent,
    path: &Path,
    durability: Durability,
    threads: usize,
    n: usize,
) -> f64 {
    let sink = Arc::new(
        rt.open(c, LogFile::open(path).unwrap(), &options(durability))
            .unwrap(),
    );
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let e = event();
                for _ in 0..n / threads {
                    sink.emit(&e).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sink.close().unwrap();
    (n / threads * threads) as f64 / secs
}

/// `threads` synchronous emitters on a sink with durability none, each
/// waiting for its record to be durable through a [`GroupCommit`] on the
/// log: what `Durability::Batch` does inside `Sink::emit` (append under the
/// sink's lock, then wait outside it), with the syncs counted. Returns
/// (events/s, records per fsync).
fn group_commit_rate(
    rt: &SinkRuntime,
    c: &chainsink_host::SinkComponent,
    path: &Path,
    threads: usize,
    n: usize,
) -> (f64, f64) {
    let sink = Arc::new(
        rt.open(c, LogFile::open(path).unwrap(), &options(Durability::None))
            .unwrap(),
    );
    let commit = Arc::new(GroupCommit::new(std::fs::File::open(path).unwrap(), 0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (sink, commit) = (sink.clone(), commit.clone());
            std::thread::spawn(move || {
                let e = event();
                for _ in 0..n / threads {
                    let r = sink.emit(&e).unwrap();
                    commit.wait_durable(r.seq).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sink.close().unwrap();
    let records = (n / threads * threads) as f64;
    (records / secs, records / commit.syncs() as f64)
}

/// Prints records per fsync for 8 and 64 synchronous emitters, as
/// tab-separated lines for scripts/compare.sh and as a table.
fn group_commit_section(rt: &SinkRuntime, c: &chainsink_host::SinkComponent, dir: &Path, k: usize) {
    let always = emit_rate(rt, c, &fresh(dir, "c"), Durability::Always, 8, k);
    let mut rows = Vec::new();
    for (threads, n) in [(8, k * 4), (64, k * 8)] {
        let batch = emit_rate(rt, c, &fresh(dir, "d"), Durability::Batch, threads, n);
        let (counted, per_sync) = group_commit_rate(rt, c, &fresh(dir, "g"), threads, n);
        println!(
            "group-commit\t{threads}\t{per_sync:.1}\t{batch:.0}\t{always:.0}\t{:.1}\t{:.2}",
            batch / always,
            per_sync / threads as f64
        );
        rows.push((threads, batch, counted, per_sync));
    }
    println!("## group commit (every emit returns once its record is durable)");
    println!(
        "| mode | emitting threads | events/s | against always | records per fsync (counted run: events/s) |"
    );
    println!("|---|---|---|---|---|");
    println!("| always | 8 | {always:.0} | 1.0x | 1 |");
    for (threads, batch, counted, per_sync) in rows {
        println!(
            "| batch | {threads} | {batch:.0} | {:.1}x | {per_sync:.1} ({counted:.0}) |",
            batch / always
        );
    }
    println!();
}

/// Events/s of the Python reference algorithm.
fn python_rate(path: &Path, n: usize, fsync: bool) -> f64 {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures/reference_sink.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("bench").arg(path).arg(n.to_string());
    if fsync {
        cmd.arg("--fsync");
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["events_per_second"].as_f64().unwrap()
}

/// MB/s reading `path` and hashing all of it, on `threads` threads (each
/// hashes its own part, as verify does).
fn read_and_hash_rate(path: &Path, threads: usize) -> f64 {
    let start = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    let mut total = 0usize;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        let part = n.div_ceil(threads);
        std::thread::scope(|s| {
            for chunk in buf[..n].chunks(part) {
                s.spawn(move || std::hint::black_box(sha2::Sha256::digest(chunk)));
            }
        });
    }
    total as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn verify_rate(path: &Path, threads: usize) -> f64 {
    let bytes = std::fs::metadata(path).unwrap().len() as f64;
    let start = Instant::now();
    let report = verify_file(
        path,
        &VerifyOptions {
            strict: false,
            threads,
        },
    )
    .unwrap();
    assert!(report.records > 0);
    bytes / 1e6 / start.elapsed().as_secs_f64()
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
    let component = rt.default_component().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    if std::env::args().any(|a| a == "--group-commit") {
        group_commit_section(&rt, &component, dir.path(), if quick { 800 } else { 4_000 });
        return;
    }

    let n = if quick { 20_000 } else { 100_000 };
    let ours = emit_rate(
        &rt,
        &component,
        &fresh(dir.path(), "a"),
        Durability::None,
        1,
        n,
    );
    let py = python_rate(&fresh(dir.path(), "py"), n, false);
    let m = if quick { 500 } else { 2_000 };
    let ours_sync = emit_rate(
        &rt,
        &component,
        &fresh(dir.path(), "b"),
        Durability::Always,
        1,
        m,
    );
    let py_sync = python_rate(&fresh(dir.path(), "pys"), m, true);
    println!("## emit against the Python reference (1 thread, same payload)");
    println!("| durability | wasm sink events/s | Python reference events/s | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| none ({n} events) | {ours:.0} | {py:.0} | {:.1}x |",
        ours / py
    );
    println!(
        "| fsync each ({m} events) | {ours_sync:.0} | {py_sync:.0} | {:.1}x |",
        ours_sync / py_sync
    );
    println!();

    let k = if quick { 800 } else { 4_000 };
    group_commit_section(&rt, &component, dir.path(), k);

    // A log of realistic records, built fast with batches.
    let records = if quick { 100_000 } else { 1_000_000 };
    let path = fresh(dir.path(), "verify.jsonl");
    {
        let sink = rt
            .open(
                &component,
                LogFile::open(&path).unwrap(),
                &options(Durability::None),
            )
            .unwrap();
        let batch: Vec<Event> = (0..1000).map(|_| event()).collect();
        for _ in 0..records / 1000 {
            sink.emit_batch(&batch).unwrap();
        }
        sink.close().unwrap();
    }
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    // Warm the page cache so both sides read from memory.
    read_and_hash_rate(&path, 1);
    println!("## verify ({records} records, {mb:.0} MB, page cache warm)");
    println!("| threads | verify MB/s | read + SHA-256 MB/s | ratio |");
    println!("|---|---|---|---|");
    for threads in [1, cores] {
        let v = verify_rate(&path, threads);
        let h = read_and_hash_rate(&path, threads);
        println!("| {threads} | {v:.0} | {h:.0} | {:.2} |", v / h);
    }
}
