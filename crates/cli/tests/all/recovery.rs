//! Torn writes whose recovery is cut short too: the next writer still
//! recovers the log, and `verify` accepts exactly that.

use std::io::Write;
use std::process::Stdio;

use crate::common::{bin, emit_n, limit_file_size, stderr, stdout, verify};

#[test]
fn a_recovery_write_cut_short_is_recovered_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    // A few MB first: the limit below also bounds the runtime's own files.
    emit_n(&log, 8_000, "none");
    // A write torn by a crash: a prefix of a record, no newline.
    let torn = b"{\"actor\": {\"host_id\": \"test-host\", \"us";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(torn)
        .unwrap();
    let size = std::fs::metadata(&log).unwrap().len();

    // The writer's recovery (`\n` + `chain.recovered` + the event) is cut
    // after 40 bytes: the disk is full.
    let mut cmd = bin();
    cmd.args([
        "emit",
        "--type",
        "after.crash",
        "--log",
        log.to_str().unwrap(),
    ]);
    limit_file_size(&mut cmd, size + 40);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size + 40);

    // The next writer recovers the torn write and the cut recovery as one
    // run, and the log verifies.
    let out = crate::common::run(
        &[
            "emit",
            "--type",
            "after.recovery",
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = verify(&log, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("OK 8002 records"), "{text}");
    assert!(text.contains("1 torn write(s) recovered"), "{text}");
}
