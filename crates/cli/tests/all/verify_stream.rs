//! `verify` streams: memory stays flat however long the log is.
//!
//! A log of about 250 MB (60 times the verifier's chunk) is generated on the fly (sealed with the format
//! crate, never stored) and verified through `verify_reader`; the process's
//! peak resident memory must not grow with it. Peak memory is per process,
//! so the measuring test runs alone in a process of its own (this test
//! binary, re-run on just that test), where nothing else moves the peak.

use std::io::Read;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event};
use chainsink_host::verify::{VerifyOptions, verify_reader};
use serde_json::{Map, Value};

/// Produces a valid chained log, record by record, as a reader.
struct LogStream {
    payload: Map<String, Value>,
    prev: Hash,
    seq: u64,
    left: u64,
    line: Vec<u8>,
    pos: usize,
}

impl Read for LogStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.line.len() {
            if self.left == 0 {
                return Ok(0);
            }
            self.left -= 1;
            self.seq += 1;
            self.line.clear();
            self.pos = 0;
            let event = Event {
                timestamp: "2026-06-04T15:30:45.123456+00:00",
                event_type: "stream.test",
                workflow_id: Some("wf"),
                actor: Actor {
                    host_id: "h",
                    user: "u",
                },
                payload: (&self.payload).into(),
            };
            self.prev = seal(&event, self.seq, Some(&self.prev), &mut self.line)
                .unwrap()
                .unwrap();
        }
        let n = buf.len().min(self.line.len() - self.pos);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Peak resident set size of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn stream(records: u64) -> LogStream {
    let pad = "x".repeat(400);
    LogStream {
        payload: parse_object(&format!(r#"{{"pad": "{pad}", "n": 1}}"#)).unwrap(),
        prev: Hash::GENESIS,
        seq: 0,
        left: records,
        line: Vec::new(),
        pos: 0,
    }
}

#[test]
fn a_long_log_verifies_in_flat_memory() {
    let test = "verify_stream::flat_memory_in_a_process_of_its_own";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--test-threads=1"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the measuring test did not run: {text}"
    );
}

#[test]
#[ignore = "run by a_long_log_verifies_in_flat_memory, alone in its own process"]
fn flat_memory_in_a_process_of_its_own() {
    let options = VerifyOptions::default();
    // Warm up: the first chunk's buffers and threads.
    let small = verify_reader(stream(20_000), &options).unwrap();
    assert_eq!(small.records, 20_000);
    let before = peak_rss();
    let records = 420_000; // ~600 bytes each: about 250 MB
    let report = verify_reader(stream(records), &options).unwrap();
    assert_eq!(report.records, records);
    assert!(report.bytes > 240_000_000, "{} bytes", report.bytes);
    let grew = peak_rss().saturating_sub(before);
    assert!(
        grew < 64 << 20,
        "peak memory grew by {} MB verifying {} MB",
        grew >> 20,
        report.bytes >> 20
    );
}
