//! Rough timings of the format's hot path (encode, seal, line check) against
//! plain SHA-256. Run with `cargo bench -p chainsink-format --bench hot_path`.

#[path = "../tests/all/common.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use chainsink_format::verify::{Mode, check_line};
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

fn main() {
    hot_path_timings();
    fast_vs_sha256();
}
