//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use chainsink_format::record::{Actor, Event};
use chainsink_format::{Hash, chain, json};
use serde_json::{Map, Value};

/// Runs `python3 -c script` once, feeding `input` on stdin; returns stdout. Panics with stderr on
/// failure.
pub fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed as the oracle for these tests; install it");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    // Write from another thread so a large output cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// A fixed, valid timestamp.
pub const TS: &str = "2026-06-04T15:30:45.123456+00:00";

/// An event with the given payload and the usual fixed fields.
pub fn event<'a>(payload: &'a Map<String, Value>, event_type: &'a str) -> Event<'a> {
    Event {
        timestamp: TS,
        event_type,
        workflow_id: Some("wf-42"),
        actor: Actor {
            host_id: "host-a",
            user: "ana",
        },
        payload: payload.into(),
    }
}

/// Seals `payloads` into a log (chain on when `chain`); returns the lines without `\n` and the
/// hashes.
pub fn seal_log(payloads: &[&str], chain: bool) -> (Vec<Vec<u8>>, Vec<Option<Hash>>) {
    let mut lines = Vec::new();
    let mut hashes = Vec::new();
    let mut prev = Hash::GENESIS;
    for (i, p) in payloads.iter().enumerate() {
        let map = json::parse_object(p).unwrap();
        let mut out = Vec::new();
        let h = chain::seal(
            &event(&map, "step.finished"),
            i as u64 + 1,
            chain.then_some(&prev),
            &mut out,
        )
        .unwrap();
        if let Some(h) = h {
            prev = h;
        }
        assert_eq!(out.pop(), Some(b'\n'));
        lines.push(out);
        hashes.push(h);
    }
    (lines, hashes)
}
