//! `chainsink new-sink` and `chainsink test-sink`, end to end: a generated
//! Rust project and the redact example are built with their documented
//! command, pass test-sink, run a workflow and verify; the default sink
//! passes test-sink and each hostile test sink fails the right check.
//!
//! The Rust builds share the cargo registry and get target dirs of their own
//! under the workspace's `target/sink-projects/`, so a second run only
//! rebuilds the sink crates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chainsink_test_programs as guests;

use crate::common::{bin, stderr, stdout};

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A target dir of its own for `project`, under the workspace's target dir.
fn target_dir(project: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("../sink-projects")
        .join(project)
}

fn chainsink(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn chainsink")
}

/// Runs a documented build command in `dir` with `target` as cargo's target
/// dir, failing the test with its output if it fails.
fn build(dir: &Path, target: &Path, command: &str) {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", command])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target);
    // Nothing of the outer cargo's build may leak into the sink's.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MANIFEST_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("spawn bash");
    assert!(
        out.status.success(),
        "`{command}` failed in {}:\n{}\n{}",
        dir.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// test-sink passes; a dry run of the example workflow through the sink
/// writes a log that `chainsink verify` accepts. Returns the log.
fn passes_and_runs(sink: &Path, dir: &Path) -> PathBuf {
    let sink = sink.to_str().unwrap();
    let out = chainsink(&["test-sink", sink]);
    assert!(
        out.status.success(),
        "test-sink failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains("FAIL"), "{}", stdout(&out));
    let log = dir.join("audit.jsonl");
    let workflow = repo().join("workflows/example.yaml");
    let out = chainsink(&[
        "run",
        workflow.to_str().unwrap(),
        "--dry-run",
        "--sink",
        sink,
        "--log",
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "run failed: {}", stderr(&out));
    let out = chainsink(&["verify", log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("OK 17 records"),
        "{}",
        stdout(&out)
    );
    log
}

#[test]
fn new_sink_rust_project_builds_and_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-sink");
    let out = chainsink(&["new-sink", "--lang", "rust", dir.to_str().unwrap()]);
    assert!(out.status.success(), "new-sink failed: {}", stderr(&out));
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "wit/audit.wit",
        "vendor/chainsink-sdk/src/lib.rs",
        "vendor/chainsink-format/src/lib.rs",
    ] {
        assert!(dir.join(file).is_file(), "new-sink did not write {file}");
    }
    let wit = std::fs::read(dir.join("wit/audit.wit")).unwrap();
    assert_eq!(wit, std::fs::read(repo().join("wit/audit.wit")).unwrap());
    // The one documented command, after the toolchain's target.
    let target = target_dir("new-sink-rust");
    build(
        &dir,
        &target,
        "rustup target add wasm32-wasip2 && cargo build --release --target wasm32-wasip2",
    );
    let wasm = target.join("wasm32-wasip2/release/my_sink.wasm");
    passes_and_runs(&wasm, tmp.path());
}

#[test]
fn new_sink_refuses_a_directory_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-sink");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = chainsink(&["new-sink", "--lang", "rust", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "new-sink wrote into a non-empty directory");
    let out = chainsink(&[
        "new-sink",
        "--lang",
        "rust",
        "--name",
        "../evil",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not usable as a package name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn redact_example_builds_passes_and_redacts() {
    let tmp = tempfile::tempdir().unwrap();
    let target = target_dir("redact");
    build(
        &repo().join("examples/sinks/redact"),
        &target,
        "rustup target add wasm32-wasip2 && cargo build --release --target wasm32-wasip2",
    );
    let wasm = target.join("wasm32-wasip2/release/redact_sink.wasm");
    let log = passes_and_runs(&wasm, tmp.path());
    // Configured keys (redact.txt) are gone at every depth, and counted.
    let out = chainsink(&[
        "emit",
        "--sink",
        wasm.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--type",
        "deploy.started",
        "--payload",
        r#"{"service": "api", "password": "hunter2", "auth": {"token": "t0k3n", "scheme": "basic"}, "steps": [{"secret": "s3cr3t"}]}"#,
    ]);
    assert!(out.status.success(), "emit failed: {}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    for secret in ["password", "hunter2", "token", "t0k3n", "secret", "s3cr3t"] {
        assert!(!text.contains(secret), "{secret:?} reached the log: {last}");
    }
    assert!(last.contains(r#""redacted": 3"#), "{last}");
    assert!(last.contains(r#""scheme": "basic""#), "{last}");
    let out = chainsink(&["verify", log.to_str().unwrap()]);
    assert!(
        stdout(&out).starts_with("OK 18 records"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn test_sink_passes_the_default_sink() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("default.wasm");
    let out = chainsink(&["export-sink", wasm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = chainsink(&["test-sink", wasm.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for check in [
        "PASS load",
        "PASS open-empty",
        "PASS emit:",
        "PASS emit-batch:",
        "PASS emit-batch-all-or-nothing",
        "PASS invalid-payload-nan",
        "PASS flush-head",
        "PASS close",
        "PASS reopen-resumes",
        "PASS verify-log",
        "PASS chain-off",
        "PASS open-torn-tail",
        "PASS open-corrupt-log",
    ] {
        assert!(text.contains(check), "no {check:?} in:\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
}

/// test-sink on `sink` fails, and the first failed check is `check`.
fn fails_at(sink: &str, check: &str) -> String {
    let out = chainsink(&["test-sink", sink]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let first = text
        .lines()
        .find(|l| l.starts_with("FAIL "))
        .unwrap_or_else(|| panic!("no FAIL line:\n{text}"));
    assert!(
        first.starts_with(&format!("FAIL {check}:")),
        "first failure is not {check}:\n{text}"
    );
    first.to_string()
}

#[test]
fn test_sink_names_what_each_hostile_sink_breaks() {
    // Receipts whose hash is not the record's: caught at open (its head).
    let line = fails_at(guests::CHAINSINK_GUEST_WRONG_HASH, "open-empty");
    assert!(line.contains("64 lowercase hex"), "{line}");
    // Junk bytes with plausible receipts: caught at the first emit.
    let line = fails_at(guests::CHAINSINK_GUEST_GARBAGE, "emit");
    assert!(line.contains("broke the contract"), "{line}");
    // A panic in emit: the trap and its message.
    let line = fails_at(guests::CHAINSINK_GUEST_PANICKER, "emit");
    assert!(
        line.contains("the panicking test sink refuses event"),
        "{line}"
    );
    // Not a component at all.
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let line = fails_at(junk.to_str().unwrap(), "load");
    assert!(line.contains("is not WebAssembly"), "{line}");
}
