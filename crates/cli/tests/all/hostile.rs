//! Holes that hostile sinks found in the first wave, each closed and pinned
//! here with the guest that found it: appends past the call's budget,
//! forked chains, wall clock and entropy through WASI, and diagnostics that
//! try to forge host output.

use std::path::Path;
use std::time::Duration;

use chainsink_host::SinkLimits;
use chainsink_host::tenants::{SinkSource, TenantSpec, Tenants};
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_test_programs as guests;

use crate::common::{run, stderr};
use crate::sandbox::{beside_good_tenants, breach, event, options, runtime, trap};

#[test]
fn an_append_flood_never_lands_more_than_the_call_budget() {
    let (err, _, verified) =
        beside_good_tenants(guests::CHAINSINK_GUEST_APPEND_FLOOD, None, |sink| {
            sink.emit(&event("hostile", 0)).unwrap_err()
        });
    let (sink, call, reason) = trap(&err);
    assert_eq!((sink, call), (guests::CHAINSINK_GUEST_APPEND_FLOOD, "emit"));
    assert!(reason.contains("append limit reached"), "{reason}");
    assert!(reason.contains("--sink-append-limit"), "{reason}");
    // What landed is at most the budget, and the host marked it.
    let report = verified.unwrap();
    let budget = SinkLimits::default().append_bytes;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(report.rejected[0].length <= budget, "{report:?}");
    assert_eq!(report.records, 1, "only the host's record: {report:?}");
}

#[test]
fn an_append_past_the_deadline_is_refused_at_the_append() {
    let limits = SinkLimits {
        append_bytes: 4 << 30,
        call_timeout: Duration::from_millis(20),
        ..SinkLimits::default()
    };
    let (err, _, verified) =
        beside_good_tenants(guests::CHAINSINK_GUEST_APPEND_FLOOD, Some(limits), |sink| {
            sink.emit(&event("hostile", 0)).unwrap_err()
        });
    let (_, call, reason) = trap(&err);
    assert_eq!(call, "emit");
    assert!(reason.contains("deadline exceeded"), "{reason}");
    let report = verified.unwrap();
    let landed: u64 = report.rejected.iter().map(|r| r.length).sum();
    assert!(landed < 64 * (16 << 20), "every append landed: {report:?}");
}

/// A log of `n` records written by the default sink.
fn default_log(path: &Path, n: usize) {
    let tenants = Tenants::new(runtime());
    let t = tenants
        .open(TenantSpec::new("writer", path, options()))
        .unwrap();
    for i in 0..n {
        t.sink().emit(&event("writer", i)).unwrap();
    }
    tenants.close_all();
}

#[test]
fn a_forked_chain_is_refused_at_its_first_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    default_log(&log, 3);
    let before = std::fs::read(&log).unwrap();
    let tenants = Tenants::new(runtime());
    let forker = tenants
        .open(
            TenantSpec::new("forker", &log, options())
                .with_sink(SinkSource::File(guests::CHAINSINK_GUEST_FORKER.into())),
        )
        .unwrap();
    let err = forker.sink().emit(&event("forker", 0)).unwrap_err();
    let (sink, call, message) = breach(&err);
    assert_eq!((sink, call), (guests::CHAINSINK_GUEST_FORKER, "emit"));
    assert!(message.contains("prev_hash"), "{message}");
    // Nothing acknowledged, and later calls report the breach.
    assert!(forker.sink().emit(&event("forker", 1)).is_err());
    tenants.close_all();
    drop((forker, tenants));
    // History is untouched; what the sink appended is marked by the host, so
    // the log verifies and says so; the default sink continues it.
    let after = std::fs::read(&log).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    let report = verify_file(&log, &VerifyOptions::default()).unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    default_log(&log, 1);
    verify_file(&log, &VerifyOptions::default()).unwrap();
}

#[test]
fn a_sinks_diagnostics_cannot_forge_host_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/example.yaml");
    let out = run(
        &[
            "run",
            workflow,
            "--dry-run",
            "--sink",
            guests::CHAINSINK_GUEST_CHATTY,
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for line in err.lines() {
        assert!(
            !line.starts_with("chainsink: dry run"),
            "forged line: {line:?}"
        );
        assert!(!line.contains('\x1b'), "terminal escape: {line:?}");
    }
    assert!(
        err.contains(r#"ok\nchainsink: dry run of "forged" COMPLETED\r\u{1b}[2K"#),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "diagnostic line(s) from sink {} dropped",
            guests::CHAINSINK_GUEST_CHATTY
        )),
        "{err}"
    );
    let report = verify_file(&log, &VerifyOptions::default()).unwrap();
    assert!(report.records > 0);
}

/// A one-shot `emit` exits without dropping its sink (a measured saving,
/// issue 15), so `close` must say what the rate limit dropped: before, only
/// the instance's drop did, and the one-shot emit never printed it.
#[test]
fn a_one_shot_emit_still_reports_dropped_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = run(
        &[
            "emit",
            "--sink",
            guests::CHAINSINK_GUEST_CHATTY,
            "--log",
            log.to_str().unwrap(),
            "--type",
            "t",
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "diagnostic line(s) from sink {} dropped",
            guests::CHAINSINK_GUEST_CHATTY
        )),
        "{err}"
    );
}

#[test]
fn a_sink_that_lies_only_in_its_receipts_leaves_a_log_that_verifies() {
    // The sink appends two valid records that link, then returns one receipt: the host
    // refuses the call and marks both records with a `chain.rejected` record linked to the
    // record before them. By the format's definition that log is valid, with a breach.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let path = log.to_str().unwrap();
    let lines = "{\"event_type\":\"honest\",\"payload\":{}}\n\
                 {\"event_type\":\"lie.count\",\"payload\":{}}\n";
    let args = ["emit", "--stdin", "--durability", "none", "--log", path];
    let out = run(
        &[&args[..], &["--sink", guests::CHAINSINK_GUEST_WRONG_HASH]].concat(),
        lines,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 receipts for 2 events"),
        "{}",
        stderr(&out)
    );
    // The default sink goes on from the host's record.
    let out = run(&args, "{\"event_type\":\"after\",\"payload\":{}}\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = crate::common::verify(&log, &[]);
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.starts_with("OK 2 records"), "{text}");
    assert!(text.contains("1 BREACH(ES) by a sink"), "{text}");
    let out = crate::common::verify(&log, &["--json", "--threads", "1"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["records"], 2, "{json}");
    let mark: serde_json::Value = serde_json::from_str(&crate::common::lines(&log)[2]).unwrap();
    assert_eq!(
        json["rejected"],
        serde_json::json!([{
            "line": 1,
            "offset": 0,
            "length": mark["payload"]["rejected_length"],
            "record_line": 3,
        }])
    );

    // So do show and stats: the two records shown before the host's record are taken back.
    let out = run(&["show", path], "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("-- line 1: shown above as a record"), "{err}");
    assert!(err.contains("-- line 2: shown above as a record"), "{err}");
    // tail has not printed them yet: the last records show them for what they are.
    let out = run(&["tail", "-n", "3", "-o", "short", path], "");
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(!text.contains("shown above"), "{text}");
    assert!(text.contains("-- line 2: bytes a sink appended"), "{text}");
    assert!(
        !text.contains("-- line 1:"),
        "only the last 3 entries: {text}"
    );
    let out = run(&["stats", path], "");
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.starts_with("2 records (verified"), "{text}");

    // The default sink's own verifier, in the sandbox, agrees.
    let sink = dir.path().join("default.wasm");
    let out = run(&["export-sink", sink.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = crate::common::verify(&log, &["--sink", sink.to_str().unwrap()]);
    let text = crate::common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));

    // The claim can be checked only by reading the claimed records again, which a pipe
    // does not allow: that is said, and not called tampering.
    let mut child = crate::common::bin()
        .args(["verify", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&log).unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("verify the log as a file"), "{err}");
    assert!(!err.contains("TAMPERED"), "{err}");
}

/// The event types of a log, in order.
fn event_types(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_type"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn fail_open_replaces_a_trapped_sink_and_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/example.yaml");
    let reference = dir.path().join("reference.jsonl");
    let out = run(
        &[
            "run",
            workflow,
            "--dry-run",
            "--log",
            reference.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = dir.path().join("audit.jsonl");
    let out = run(
        &[
            "run",
            workflow,
            "--dry-run",
            "--audit-policy",
            "fail-open",
            "--sink",
            guests::CHAINSINK_GUEST_TRAP_ONCE,
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("restarted sink"), "{err}");
    assert!(err.contains("trap-once: refusing record 6"), "{err}");
    let text = crate::common::stdout(&out);
    assert!(!text.contains("could not be recorded"), "{text}");
    // Every event of the run is in the log, in order, plus the record of the
    // restart at the place it happened; and the log verifies.
    let mut types = event_types(&log);
    assert_eq!(types[5], "audit.sink_restarted", "{types:?}");
    types.remove(5);
    assert_eq!(types, event_types(&reference));
    let record: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .nth(5)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["payload"]["restart"], 1);
    assert_eq!(record["payload"]["lost_events"], 0);
    assert!(
        record["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("trapped"),
        "{record}"
    );
    verify_file(&log, &VerifyOptions::default()).unwrap();
}
