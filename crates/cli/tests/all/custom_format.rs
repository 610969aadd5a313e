//! Custom record formats and WIT versions (issue 12): a 0.2 sink that
//! writes its own format (`tsv-chain`, with a verifier), a sink built
//! against the frozen 0.1.0 WIT, `chainsink verify --sink`, and what the
//! host says about each.

use std::path::Path;

use chainsink_host::runtime::world::WitVersion;
use chainsink_host::sink::RecordFormat;
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{LogFile, Sink};
use chainsink_test_programs as guests;

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
