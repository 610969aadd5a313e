//! Errors a user reads: one line each, said once, with advice that fits.

use crate::common::{emit_n, run, stderr, stdout};
use serde_json::Value;

fn dry_run_with_sink(sink: &str, log: &std::path::Path) -> std::process::Output {
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/example.yaml");
    run(
        &[
            "run",
            workflow,
            "--dry-run",
            "--sink",
            sink,
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    )
}

/// stderr without the warnings the tracing layer prints (their own lines).
fn errors(out: &std::process::Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| !l.contains(" WARN "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_sink_that_is_not_wasm_gets_one_line_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("sink.wasm");
    std::fs::write(&not_wasm, "hello, not a component").unwrap();
    let out = dry_run_with_sink(not_wasm.to_str().unwrap(), &dir.path().join("a.jsonl"));
    assert_eq!(out.status.code(), Some(3));
    let lines = errors(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("is not WebAssembly"), "{}", lines[0]);
    assert!(!lines[0].contains("0x"), "raw bytes: {}", lines[0]);
    assert!(!lines[0].contains("cargo component"), "{}", lines[0]);

    // A core module is told how to become a component.
    std::fs::write(&not_wasm, b"\0asm\x01\0\0\0").unwrap();
    let out = dry_run_with_sink(not_wasm.to_str().unwrap(), &dir.path().join("b.jsonl"));
    let lines = errors(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("core wasm module, not a component"),
        "{}",
        lines[0]
    );
}

/// An empty component (it exports nothing, so it fits no sink world) that
/// carries `mark` in a custom section, where toolchains leave theirs.
fn empty_component_marked(mark: &str) -> Vec<u8> {
    let name = b"producers-mark";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(mark.as_bytes());
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.push(0); // custom section
    assert!(section.len() < 128, "one-byte LEB128 size");
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    bytes
}

#[test]
fn a_sink_that_does_not_fit_gets_advice_for_its_own_language() {
    let dir = tempfile::tempdir().unwrap();
    for (mark, language, advice) in [
        (
            "processed-by ComponentizeJS0.23.0",
            "JavaScript sink",
            "npm run build",
        ),
        (
            "componentize_py_runtime.wasm",
            "Python sink",
            "componentize-py -d wit",
        ),
        (
            "processed-by rustc 1.95.0",
            "Rust sink",
            "--target wasm32-wasip2",
        ),
        (
            "processed-by clang 19",
            "unknown sink",
            "docs/writing-a-sink.md",
        ),
    ] {
        let sink = dir.path().join("sink.wasm");
        std::fs::write(&sink, empty_component_marked(mark)).unwrap();
        let out = dry_run_with_sink(sink.to_str().unwrap(), &dir.path().join("a.jsonl"));
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let lines = errors(&out);
        assert_eq!(lines.len(), 1, "one line: {lines:#?}");
        let line = &lines[0];
        assert!(
            line.contains(sink.to_str().unwrap()),
            "names the sink: {line}"
        );
        assert!(
            line.contains("does not export"),
            "says what is wrong: {line}"
        );
        assert!(line.contains(language), "{mark}: {line}");
        assert!(line.contains(advice), "{mark}: {line}");
    }
}

#[test]
fn a_missing_sink_states_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let out = dry_run_with_sink("/nonexistent/sink.wasm", &log);
    let lines = errors(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0].matches("No such file or directory").count(),
        1,
        "{}",
        lines[0]
    );
    let out = run(
        &[
            "emit",
            "--type",
            "t",
            "--sink",
            "/nonexistent/sink.wasm",
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    let lines = errors(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0].matches("No such file or directory").count(),
        1,
        "{}",
        lines[0]
    );
}

#[test]
fn limits_that_cannot_work_are_refused_when_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let log = log.to_str().unwrap();
    for (flag, value) in [
        ("--sink-timeout", "0"),
        ("--sink-fuel", "0"),
        ("--sink-memory", "0"),
        ("--sink-memory", "18446744073709551615"),
        ("--sink-append-limit", "0"),
        ("--sink-append-limit", "4096"),
    ] {
        let out = run(&["emit", "--type", "t", flag, value, "--log", log], "");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag}")),
            "{err}"
        );
        assert!(
            !std::path::Path::new(log).exists(),
            "{flag} {value}: a log was written"
        );
    }
    let out = run(&["verify", "--threads", "100000", log], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value '100000' for '--threads"),
        "{}",
        stderr(&out)
    );
}

/// Rewrites line `n` (1-based) of `log` with `f`.
fn edit_line(log: &std::path::Path, n: usize, f: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut v: Value = serde_json::from_str(&lines[n - 1]).unwrap();
    f(&mut v);
    // Python's separators, sorted keys: canonical apart from the edit.
    lines[n - 1] = python_dumps(&v);
    std::fs::write(log, lines.join("\n") + "\n").unwrap();
}

fn python_dumps(v: &Value) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys; print(json.dumps(json.loads(sys.stdin.read()), sort_keys=True))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(v.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn verify_says_each_reason_once_and_counts_records_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let mismatch = dir.path().join("mismatch.jsonl");
    emit_n(&mismatch, 4, "none");
    edit_line(&mismatch, 3, |v| v["payload"]["i"] = Value::from(99));
    let broken = dir.path().join("broken.jsonl");
    emit_n(&broken, 4, "none");
    let other = dir.path().join("other.jsonl");
    emit_n(&other, 4, "none");
    // Line 3 of another chain: a valid record that does not link.
    let foreign = std::fs::read_to_string(&other)
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&broken).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let mut edited: Value = serde_json::from_str(&foreign).unwrap();
    edited["seq"] = Value::from(3);
    let foreign = python_dumps(&edited);
    lines[2] = &foreign;
    std::fs::write(&broken, lines.join("\n") + "\n").unwrap();
    for (log, kind) in [(&mismatch, "hash mismatch"), (&broken, "")] {
        let out = run(&["verify", log.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{text}");
        for word in [
            "hash mismatch",
            "broken link",
            "broken chain",
            "not canonical",
        ] {
            assert!(text.matches(word).count() <= 1, "{word} twice: {text}");
        }
        assert!(text.contains(kind), "{text}");
        assert!(!text.contains("RFC 8259"), "{text}");
        let out = run(&["verify", "--json", log.to_str().unwrap()], "");
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["line"], 3, "{v}");
        assert_eq!(v["records_ok"], 2, "records before line 3: {v}");
    }
}

#[test]
fn verify_of_an_endless_input_stops_at_its_limit() {
    // /dev/zero never ends and has no newline: no record is that long, and
    // no run of refused bytes can be either (the largest append budget), so
    // verify stops there instead of reading forever.
    let out = run(&["verify", "/dev/zero"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("line 1 (byte 0)"), "{text}");
    assert!(text.contains("longer than the largest record"), "{text}");
}

#[test]
fn wait_lock_says_whom_it_waits_for() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let log_arg = log.to_str().unwrap();
    let mut holder = crate::common::bin()
        .args(["emit", "--stdin", "--log", log_arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = holder.stdin.take().unwrap();
    input
        .write_all(b"{\"event_type\": \"first\", \"payload\": {}}\n")
        .unwrap();
    let mut receipt = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut receipt)
        .unwrap();
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(receipt["seq"], 1, "{receipt}");

    let mut waiter = crate::common::bin()
        .args(["emit", "--type", "second", "--wait-lock", "--log", log_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says at once that it waits, and for whom.
    let mut err = BufReader::new(waiter.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("in use by another writer"), "{line}");
    assert!(line.contains(&format!("pid {}", holder.id())), "{line}");
    assert!(line.contains("waiting"), "{line}");
    // When the holder is done, the waiter writes.
    drop(input);
    assert!(holder.wait().unwrap().success());
    let status = waiter.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    let mut out = String::new();
    waiter
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let receipt: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["seq"], 2, "{receipt}");
}

/// A sink that traps under fail-closed: the summary says the trap in its
/// banners (top and bottom) and its reason, but not again for each task
/// that was never submitted, and the sink's close does not say it again on
/// stderr.
#[test]
fn a_trapped_sink_in_a_run_is_not_said_again_per_task_or_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let out = dry_run_with_sink(
        chainsink_test_programs::CHAINSINK_GUEST_PANICKER,
        &dir.path().join("a.jsonl"),
    );
    assert_eq!(out.status.code(), Some(3));
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(so.matches("trapped in `emit`").count(), 3, "{so}");
    assert_eq!(
        so.matches("not submitted: the audit sink failed\n").count(),
        3,
        "{so}"
    );
    assert!(!se.contains("trapped in `emit`"), "{se}");
}

/// A sink that logs its panic and then traps: the panic is said once, in
/// the trap report, not also as a log line of its own.
#[test]
fn a_sink_panic_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let out = run(
        &[
            "emit",
            "--type",
            "t",
            "--sink",
            chainsink_test_programs::CHAINSINK_GUEST_PANICKER,
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert_eq!(
        err.matches("the panicking test sink refuses event").count(),
        1,
        "{err}"
    );
    assert!(err.contains("trapped in `emit`"), "{err}");
}

/// Warnings go to a pipe or file as plain text: no colour codes off a
/// terminal.
#[test]
fn warnings_off_a_terminal_carry_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let out = crate::common::bin()
        .args(["emit", "--type", "t", "--log", log.to_str().unwrap()])
        .env_remove("USER")
        .env_remove("USERNAME")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(" WARN ") && err.contains("unknown"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");
}
