//! Rough timings of the format's hot path (encode, seal, line check) against
//! plain SHA-256. Run with `cargo bench -p chainsink-format --bench hot_path`.

#[path = "../tests/all/common.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use chainsink_format::verify::{Mode, check_line, check_lines};
use chainsink_format::{Hash, chain, json};
use common::event;

/// A typical payload: the record around it is about 300 bytes.
const PAYLOAD: &str = r#"{"step": "deploy-web", "status": "ok", "exit_code": 0, "duration_ms": 1834, "attempt": 1, "cmd": "kubectl rollout status deploy/web"}"#;

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

fn hot_path_timings() {
    let payload = json::parse_object(PAYLOAD).unwrap();
    let ev = event(&payload, "step.finished");
    let mut out = Vec::with_capacity(512);
    let mut prev = Hash::GENESIS;
    chain::seal(&ev, 1, Some(&prev), &mut out).unwrap();
    let line = out[..out.len() - 1].to_vec();
    println!("record: {} bytes", out.len());
    let n = 200_000;
    let seal = per_op(n, || {
        out.clear();
        prev = chain::seal(black_box(&ev), 7, Some(&prev), &mut out)
            .unwrap()
            .unwrap();
    });
    let seal_off = per_op(n, || {
        out.clear();
        chain::seal(black_box(&ev), 7, None, &mut out).unwrap();
    });
    let parse = per_op(n, || {
        black_box(json::parse_object(black_box(PAYLOAD)).unwrap());
    });
    let fast = per_op(n, || {
        check_line(black_box(&line), Mode::Fast).unwrap();
    });
    let strict = per_op(n / 4, || {
        check_line(black_box(&line), Mode::Strict).unwrap();
    });
    let sha = per_op(n, || {
        black_box(Hash::of(black_box(&line)));
    });
    println!("seal (chain on):  {seal:7.0} ns/record");
    println!("seal (chain off): {seal_off:7.0} ns/record");
    println!("parse_object:     {parse:7.0} ns/payload");
    println!("check_line fast:  {fast:7.0} ns/line");
    println!("check_line strict:{strict:7.0} ns/line");
    println!("sha256 alone:     {sha:7.0} ns/line");
}

/// The `emit` comparison's payload (`scripts/compare.sh`): keys out of order, a float.
const EMIT_PAYLOAD: &str = r#"{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}"#;

/// A payload's canonical text made three ways (issue 15): parse into a tree and encode it (what
/// sealing did for every payload before), straight from the text (`write_object_text_within`) when
/// it is not canonical, and from text that is canonical already (a scan and a copy).
fn payload_text_vs_tree() {
    let n = 200_000;
    let mut canonical = Vec::new();
    json::write_object_text_within(&mut canonical, EMIT_PAYLOAD, 126).unwrap();
    let canonical = String::from_utf8(canonical).unwrap();
    let mut out = Vec::with_capacity(512);
    let tree = per_op(n, || {
        out.clear();
        let m = json::parse_object(black_box(EMIT_PAYLOAD)).unwrap();
        json::write_object_within(&mut out, &m, 126).unwrap();
    });
    let text = per_op(n, || {
        out.clear();
        json::write_object_text_within(&mut out, black_box(EMIT_PAYLOAD), 126).unwrap();
    });
    let copy = per_op(n, || {
        out.clear();
        json::write_object_text_within(&mut out, black_box(&canonical), 126).unwrap();
    });
    println!("payload ({} bytes), canonical text:", EMIT_PAYLOAD.len());
    println!("  parse + encode the tree: {tree:7.0} ns");
    println!(
        "  from the text:           {text:7.0} ns ({:.2}x)",
        tree / text
    );
    println!(
        "  canonical already:       {copy:7.0} ns ({:.2}x)",
        tree / copy
    );
}

/// A record of about 520 bytes: the figure `check_line` Fast is tuned against.
const PAYLOAD_520: &str = r#"{"step": "deploy-web", "status": "ok", "exit_code": 0, "duration_ms": 1834, "attempt": 1, "cmd": "kubectl rollout status deploy/web --timeout=120s", "note": "rolled out 3/3 replicas in \"prod-eu\"\nno restarts", "tags": ["web", "prod", "eu-west-1"], "ratio": 0.75}"#;

/// Throughput of `check_line(Mode::Fast)` against SHA-256 alone over the same bytes (the target
/// is at least 0.8 of SHA-256). Run with
/// `cargo test --release -p chainsink-format --test speed -- --ignored --nocapture fast_vs_sha256`.
fn fast_vs_sha256() {
    let payload = json::parse_object(PAYLOAD_520).unwrap();
    let ev = event(&payload, "step.finished");
    let mut out = Vec::with_capacity(1024);
    chain::seal(&ev, 12345, Some(&Hash::of(b"prev")), &mut out).unwrap();
    let line = out[..out.len() - 1].to_vec();
    check_line(&line, Mode::Fast).unwrap();
    let n = 1_000_000;
    // Best of a few rounds, to shrug off noise from the other core's work.
    let best = |f: &mut dyn FnMut()| (0..5).map(|_| per_op(n, &mut *f)).fold(f64::MAX, f64::min);
    let fast = best(&mut || {
        check_line(black_box(&line), Mode::Fast).unwrap();
    });
    let sha = best(&mut || {
        black_box(Hash::of(black_box(&line)));
    });
    let mbs = |ns: f64| line.len() as f64 / ns * 1e3;
    println!("line: {} bytes", line.len());
    println!("check_line fast: {fast:6.0} ns/line {:6.0} MB/s", mbs(fast));
    println!("sha256 alone:    {sha:6.0} ns/line {:6.0} MB/s", mbs(sha));
    println!("fast / sha256:   {:.2}", sha / fast);
}

/// A line holding `payload`, sealed over its own bytes (only right when
/// they are canonical, as these are).
fn sealed_line(payload: &str) -> String {
    const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let line = format!(
        r#"{{"actor": {{"host_id": "h", "user": "u"}}, "event_type": "e", "hash": "{ZERO}", "payload": {payload}, "prev_hash": "{ZERO}", "seq": 1, "timestamp": "2026-06-04T15:30:45.123456+00:00", "workflow_id": null}}"#
    );
    let member = format!("\"hash\": \"{ZERO}\", ");
    let h = Hash::of(line.replacen(&member, "", 1).as_bytes());
    line.replacen(ZERO, &h.to_hex(), 1)
}

/// Builds a payload of about the given size.
type PayloadOfSize = Box<dyn Fn(usize) -> String>;

/// check_line's time per byte on 200 KB and 800 KB lines of five shapes
/// that would expose a quadratic step (many keys, keys with a long shared
/// prefix, deep nesting, many floats, lone surrogates). Linear means the
/// ratio stays near 1; best of 9 runs each, since the machine is shared.
fn linearity() {
    let shapes: Vec<(&str, PayloadOfSize)> = vec![
        (
            "many keys",
            Box::new(|n| {
                let members: Vec<String> =
                    (0..n / 20).map(|i| format!("\"k{i:08}\": {i}")).collect();
                format!("{{{}}}", members.join(", "))
            }),
        ),
        (
            "long shared key prefix",
            Box::new(|n| {
                let p = "p".repeat(n / 2);
                format!("{{\"{p}a\": 1, \"{p}b\": 2}}")
            }),
        ),
        (
            "deep nesting",
            Box::new(|n| {
                let deep = format!("{}{}", "[".repeat(800), "]".repeat(800));
                format!("{{\"a\": [{}]}}", vec![deep; n / 1602].join(", "))
            }),
        ),
        (
            "many floats",
            Box::new(|n| {
                let xs: Vec<String> = (0..n / 10).map(|i| format!("{i}.25")).collect();
                format!("{{\"a\": [{}]}}", xs.join(", "))
            }),
        ),
        (
            "lone surrogates",
            Box::new(|n| format!("{{\"s\": \"{}\"}}", "\\ud800".repeat(n / 6))),
        ),
    ];
    println!("| shape | 200 KB: ns/byte | 800 KB: ns/byte | ratio |\n|---|---|---|---|");
    for (name, shape) in &shapes {
        let per_byte = |n: usize| {
            let line = sealed_line(&shape(n));
            let best = (0..9)
                .map(|_| {
                    let t = Instant::now();
                    let _ = black_box(check_line(line.as_bytes(), Mode::Fast));
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min);
            best * 1e9 / line.len() as f64
        };
        let (small, large) = (per_byte(200_000), per_byte(800_000));
        println!(
            "| {name} | {small:.2} | {large:.2} | {:.2} |",
            large / small
        );
    }
}

/// A log's worth of lines in memory (20,000 records of about 530 bytes, payloads of varied
/// length): `check_lines` (what the verifier runs, hashes two lines at a time) and `check_line`
/// on each, against SHA-256 of the whole buffer in one stream (what `openssl dgst -sha256` does
/// with the file). Best of 5 rounds each.
fn log_throughput() {
    let mut buf = Vec::new();
    // The same records without the chain: checking them is the scan alone, with no SHA-256.
    let mut unchained = Vec::new();
    let mut prev = Hash::GENESIS;
    for i in 0..20_000u64 {
        let payload = json::parse_object(&format!(
            r#"{{"team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-{i}", "exit_code": 0, "duration_seconds": {}.5, "stdout_bytes": {}, "note": "{}"}}"#,
            i % 977,
            i * 7,
            "n".repeat((i % 61) as usize)
        ))
        .unwrap();
        let ev = event(&payload, "task.completed");
        prev = chain::seal(&ev, i + 1, Some(&prev), &mut buf)
            .unwrap()
            .unwrap();
        chain::seal(&ev, i + 1, None, &mut unchained).unwrap();
    }
    fn split(buf: &[u8]) -> Vec<&[u8]> {
        buf.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect()
    }
    let lines = split(&buf);
    let unchained_lines = split(&unchained);
    let mut out = Vec::with_capacity(lines.len());
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let batch = best(&mut || {
        out.clear();
        check_lines(lines.iter().copied(), Mode::Fast, &mut out);
        assert!(out.iter().all(Result::is_ok));
    });
    let scan = best(&mut || {
        out.clear();
        check_lines(unchained_lines.iter().copied(), Mode::Fast, &mut out);
        assert!(out.iter().all(Result::is_ok));
    });
    let single = best(&mut || {
        for l in &lines {
            black_box(check_line(black_box(l), Mode::Fast).unwrap());
        }
    });
    let sha = best(&mut || {
        black_box(Hash::of(black_box(&buf)));
    });
    let mbs = |s: f64| buf.len() as f64 / s / 1e6;
    println!(
        "log of {} lines, {} bytes (two-way SHA-256: {})",
        lines.len(),
        buf.len(),
        chainsink_format::sha::interleaved()
    );
    println!("check_lines fast:        {:6.0} MB/s", mbs(batch));
    println!(
        "the scan alone:          {:6.0} MB/s ({:.0} ns a line; the same records unchained)",
        unchained.len() as f64 / scan / 1e6,
        scan * 1e9 / unchained_lines.len() as f64
    );
    println!("check_line fast, each:   {:6.0} MB/s", mbs(single));
    println!("sha256 of the buffer:    {:6.0} MB/s", mbs(sha));
    println!("check_lines / sha256:    {:.2}", sha / batch);
}

fn main() {
    // `cargo bench -p chainsink-format --bench hot_path -- NAME...` runs only the parts named.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let parts: [(&str, fn()); 5] = [
        ("hot_path_timings", hot_path_timings),
        ("payload_text_vs_tree", payload_text_vs_tree),
        ("fast_vs_sha256", fast_vs_sha256),
        ("log_throughput", log_throughput),
        ("linearity", linearity),
    ];
    for (name, part) in parts {
        if only.is_empty() || only.iter().any(|o| name.contains(o.as_str())) {
            part();
        }
    }
}
