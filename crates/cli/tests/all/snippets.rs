//! Code in the docs runs as written: each snippet checked here is taken out
//! of its document and run, so it cannot rot.

use std::path::Path;
use std::process::Command;

use crate::common::{emit_n, run, stderr};

/// The first fenced block of `lang` in the document `doc` (repo-relative).
fn snippet(doc: &str, lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let fence = format!("```{lang}\n");
    let start = text
        .find(&fence)
        .unwrap_or_else(|| panic!("no {lang} block in {doc}"))
        + fence.len();
    let end = start + text[start..].find("```").unwrap();
    text[start..end].to_string()
}

#[test]
fn the_python_verifier_in_audit_log_md_runs_on_every_kind_of_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("verify.py");
    std::fs::write(&script, snippet("docs/audit-log.md", "python")).unwrap();
    let python = |log: &Path| {
        Command::new("python3")
            .arg(&script)
            .arg(log)
            .output()
            .expect("python3")
    };
    // A chained log.
    let chained = dir.path().join("chained.jsonl");
    emit_n(&chained, 5, "none");
    let out = python(&chained);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK 5 records, head "));
    // A log written with the chain off.
    let plain = dir.path().join("plain.jsonl");
    let out = run(
        &[
            "emit",
            "--type",
            "t",
            "--hash-chain",
            "false",
            "--log",
            plain.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = python(&plain);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "OK 1 records, no hash chain"
    );
    // A tampered one fails.
    let text = std::fs::read_to_string(&chained)
        .unwrap()
        .replacen("\"i\": 2", "\"i\": 7", 1);
    std::fs::write(&chained, text).unwrap();
    let out = python(&chained);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 3: hash mismatch"),
        "{}",
        stderr(&out)
    );
}
