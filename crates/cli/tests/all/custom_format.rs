//! Custom record formats and WIT versions (issue 12): a 0.2 sink that
//! writes its own format (`tsv-chain`, with a verifier), a sink built
//! against the frozen 0.1.0 WIT, `chainsink verify --sink`, and what the
//! host says about each.

use std::path::Path;

use chainsink_host::runtime::world::WitVersion;
use chainsink_host::sink::RecordFormat;
use chainsink_host::sink_verify;
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{LogFile, Sink};
use chainsink_test_programs as guests;

use crate::common::{run, stderr, stdout};
use crate::sandbox::{event, options, runtime};

/// Opens `wasm` on `log` with the default (third-party) append checks.
fn open(wasm: &str, log: &Path) -> Sink {
    let runtime = runtime();
    let component = runtime.load_file(Path::new(wasm)).unwrap();
    runtime
        .open(&component, LogFile::open(log).unwrap(), &options())
        .unwrap()
}

#[test]
fn a_sink_built_against_wit_0_1_0_still_loads_and_its_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("v0-1.jsonl");
    let sink = open(guests::CHAINSINK_GUEST_V0_1_0, &log);
    let info = sink.info().clone();
    assert_eq!(info.wit, WitVersion::V0_1);
    assert_eq!(info.format, RecordFormat::TelemachyJson);
    assert!(!info.described && !info.verifier, "{info:?}");
    for i in 0..3 {
        assert_eq!(sink.emit(&event("old", i)).unwrap().seq, i as u64 + 1);
    }
    let receipts = sink
        .emit_batch(&[event("old", 3), event("old", 4)])
        .unwrap();
    assert_eq!(receipts[1].seq, 5);
    sink.close().unwrap();
    drop(sink);
    // It resumes its own log, and the log verifies natively.
    let sink = open(guests::CHAINSINK_GUEST_V0_1_0, &log);
    assert_eq!(sink.emit(&event("old", 5)).unwrap().seq, 6);
    sink.close().unwrap();
    let report = verify_file(&log, &VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 6);
}

#[test]
fn a_custom_format_sink_is_checked_by_structure_only_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.tsv");
    let sink = open(guests::CHAINSINK_GUEST_TSV_CHAIN, &log);
    let info = sink.info().clone();
    assert_eq!(info.wit, WitVersion::V0_2);
    assert_eq!(info.format, RecordFormat::Custom("tsv-chain/1".into()));
    assert_eq!(
        (info.name.as_str(), info.described, info.verifier),
        ("tsv-chain", true, true)
    );
    assert_eq!(sink.emit(&event("tsv", 0)).unwrap().seq, 1);
    let receipts = sink
        .emit_batch(&[event("tsv", 1), event("tsv", 2), event("tsv", 3)])
        .unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    sink.close().unwrap();
    drop(sink);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.lines().all(|l| l.split('\t').count() == 9), "{text}");
    // The native verifier does not read it as telemachy records...
    assert!(verify_file(&log, &VerifyOptions::default()).is_err());
    // ...and the host counts its lines to check the next receipts.
    let sink = open(guests::CHAINSINK_GUEST_TSV_CHAIN, &log);
    assert_eq!(sink.emit(&event("tsv", 4)).unwrap().seq, 5);
    sink.close().unwrap();
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/example.yaml");

/// `chainsink run workflows/example.yaml --dry-run` with `wasm`, into `log`.
fn dry_run(wasm: &str, log: &Path) {
    let out = run(
        &[
            "run",
            EXAMPLE,
            "--dry-run",
            "--sink",
            wasm,
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The 1-based line that holds byte `at` of `bytes` (its newline included).
fn line_of(bytes: &[u8], at: usize) -> u64 {
    bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

#[test]
fn a_custom_format_log_verifies_with_its_sink_and_one_changed_byte_is_found_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("example.tsv");
    dry_run(guests::CHAINSINK_GUEST_TSV_CHAIN, &log);
    let original = std::fs::read(&log).unwrap();
    let lines = original.iter().filter(|&&b| b == b'\n').count();
    assert!(lines > 5, "{lines} records");

    // The CLI: the sink's verifier passes the log.
    let out = run(
        &[
            "verify",
            "--sink",
            guests::CHAINSINK_GUEST_TSV_CHAIN,
            log.to_str().unwrap(),
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("{lines} record(s)")), "{text}");
    assert!(text.contains("custom(tsv-chain/1)"), "{text}");

    // Native verify says it is not its format, and what to run, on one line.
    let out = run(&["verify", log.to_str().unwrap()], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(text.contains("not a telemachy-json log"), "{text}");
    assert!(text.contains("chainsink verify --sink SINK.wasm"), "{text}");
    assert!(!text.contains("torn"), "{text}");

    // One byte changed anywhere is reported at its line: every byte of the
    // first line and the last, and one byte in 7 elsewhere (library API,
    // one runtime; each check is a fresh instance).
    let runtime = runtime();
    let component = runtime
        .load_file(Path::new(guests::CHAINSINK_GUEST_TSV_CHAIN))
        .unwrap();
    let first_end = original.iter().position(|&b| b == b'\n').unwrap();
    let last_start = original[..original.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let positions =
        (0..original.len()).filter(|&i| i <= first_end || i >= last_start || i % 7 == 3);
    let tampered = dir.path().join("tampered.tsv");
    let mut checked = 0;
    for at in positions {
        let mut bytes = original.clone();
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        std::fs::write(&tampered, &bytes).unwrap();
        let verdict = sink_verify::verify_with_sink(&runtime, &component, &tampered).unwrap();
        let failure = verdict
            .outcome
            .expect_err(&format!("byte {at} changed, but the log verified"));
        assert_eq!(
            failure.line,
            line_of(&original, at),
            "byte {at} changed: {failure:?}"
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked}");

    // And through the CLI, one byte in the middle.
    let mut bytes = original.clone();
    let at = original.len() / 2;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(&tampered, &bytes).unwrap();
    let out = run(
        &[
            "verify",
            "--sink",
            guests::CHAINSINK_GUEST_TSV_CHAIN,
            tampered.to_str().unwrap(),
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(&format!(
            "TAMPERED {}: line {} ",
            tampered.display(),
            line_of(&original, at)
        )),
        "{text}"
    );
}

#[test]
fn a_verifier_that_appends_during_verify_gets_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    dry_run(guests::CHAINSINK_GUEST_V0_1_0, &log);
    let before = std::fs::read(&log).unwrap();
    let out = run(
        &[
            "verify",
            "--sink",
            guests::CHAINSINK_GUEST_GARBAGE,
            log.to_str().unwrap(),
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("append during verify refused"), "{text}");
    assert!(text.contains("read-only"), "{text}");
    assert!(text.contains("sync refused"), "{text}");
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log changed");
}

#[test]
fn a_wit_0_1_0_sink_runs_the_example_and_its_log_verifies_natively() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    dry_run(guests::CHAINSINK_GUEST_V0_1_0, &log);
    let out = run(&["verify", log.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // It has no verifier: verify --sink says to verify natively.
    let out = run(
        &[
            "verify",
            "--sink",
            guests::CHAINSINK_GUEST_V0_1_0,
            log.to_str().unwrap(),
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exports no verifier"), "{err}");
    assert!(err.contains("run `chainsink verify LOG`"), "{err}");
}

#[test]
fn inspect_says_which_version_and_format_a_sink_has() {
    let out = run(&["inspect", guests::CHAINSINK_GUEST_TSV_CHAIN], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("  wit:     chainsink:audit@0.2.0"), "{text}");
    assert!(
        text.contains("  sink:    tsv-chain 0.1.0, writes custom(tsv-chain/1), verifier: yes"),
        "{text}"
    );
    assert!(
        text.contains("fits chainsink:audit/audit-sink@0.2.0: yes"),
        "{text}"
    );
    let out = run(&["inspect", "--json", guests::CHAINSINK_GUEST_V0_1_0], "");
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["wit_version"], "0.1.0");
    assert_eq!(json["sink"]["format"], "telemachy-json");
    assert_eq!(json["sink"]["described"], false);
    assert_eq!(json["world"], "chainsink:audit/audit-sink@0.1.0");
}

#[test]
fn the_digest_import_and_sha256_in_wasm_give_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for (i, wasm) in [
        guests::CHAINSINK_GUEST_TSV_CHAIN,
        guests::CHAINSINK_GUEST_TSV_CHAIN_WASM_SHA,
    ]
    .into_iter()
    .enumerate()
    {
        let log = dir.path().join(format!("{i}.tsv"));
        let sink = open(wasm, &log);
        let events: Vec<_> = (0..20)
            .map(|n| chainsink_host::Event {
                timestamp: Some("2026-06-04T15:30:45.123456+00:00".into()),
                ..event("same", n)
            })
            .collect();
        sink.emit_batch(&events).unwrap();
        sink.close().unwrap();
        logs.push(std::fs::read(&log).unwrap());
    }
    assert_eq!(logs[0].len(), logs[1].len());
    assert!(logs[0] == logs[1], "the two hashes differ");
}

/// `test-sink` checks a custom-format sink with its own verifier: it must
/// accept the log it wrote and refuse every copy with one byte changed.
#[test]
fn test_sink_runs_a_custom_sinks_verifier_on_its_own_log_and_on_tampered_copies() {
    let out = run(&["test-sink", guests::CHAINSINK_GUEST_TSV_CHAIN], "");
    let report = stdout(&out);
    assert!(out.status.success(), "{report}{}", stderr(&out));
    let line = |check: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("PASS {check}")))
            .unwrap_or_else(|| panic!("no PASS {check}: {report}"))
            .to_string()
    };
    assert!(
        line("verify-log").contains("its verifier accepts"),
        "{report}"
    );
    assert!(
        line("verify-detects-tampering").contains("changed by a byte"),
        "{report}"
    );
}
