//! End-to-end tests of task output in `chainsink run`: the real binary
//! streams each task's lines prefixed with its name, `--output-dir` keeps
//! them, the log's task events carry their SHA-256, `--quiet` prints only
//! the summary.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use serde_json::Value;

/// One agent saying hello on stdout and something on stderr.
const HELLO: &str = "apiVersion: telemachy/v1
metadata:
  name: hello
agents:
  - name: greeter
    program: 'cat > /dev/null; echo \"hel\"\"lo world\"; echo \"careful now\" >&2'
teams:
  - name: audit-team
    agents: [greeter]
    tasks:
      - subject: Analyse repository structure
        description: Say hello
        assign_to: greeter
";

/// SHA-256 of bytes, by python3's hashlib (independent of chainsink).
fn python_sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The log's records of `event_type`.
fn records(log: &Path, event_type: &str) -> Vec<Value> {
    lines(log)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event_type"] == event_type)
        .collect()
}

#[test]
fn task_output_is_streamed_prefixed_kept_and_hashed_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("hello.yaml");
    std::fs::write(&wf, HELLO).unwrap();
    let log = dir.path().join("audit.jsonl");
    let out_dir = dir.path().join("out");
    let out = run(
        &[
            "run",
            wf.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--output-dir",
            out_dir.to_str().unwrap(),
        ],
        "",
    );
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(
        so.lines()
            .any(|l| l == "audit-team/Analyse repository structure | hello world"),
        "{so}"
    );
    assert!(
        se.lines()
            .any(|l| l == "audit-team/Analyse repository structure | careful now"),
        "{se}"
    );
    // The live output comes before the summary.
    let hello = so.find("| hello world").unwrap();
    assert!(hello < so.find("COMPLETED").expect("summary"), "{so}");

    let done = records(&log, "task.completed");
    assert_eq!(done.len(), 1);
    let p = &done[0]["payload"];
    assert_eq!(p["stdout_bytes"], 12);
    assert_eq!(p["stdout_sha256"], python_sha256(b"hello world\n").as_str());
    assert_eq!(p["stderr_bytes"], 12);
    assert_eq!(p["stderr_sha256"], python_sha256(b"careful now\n").as_str());
    // The output itself is not in the log.
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("hello world")
    );

    // The files: DIR/<workflow id>/<team>--<task id>.{stdout,stderr}.
    let id = done[0]["workflow_id"].as_str().unwrap();
    let task_id = p["task_id"].as_str().unwrap();
    let base = out_dir.join(id).join(format!("audit-team--{task_id}"));
    let kept = std::fs::read(base.with_extension("stdout")).unwrap();
    assert_eq!(kept, b"hello world\n");
    assert_eq!(p["stdout_sha256"], python_sha256(&kept).as_str());
    let kept = std::fs::read(base.with_extension("stderr")).unwrap();
    assert_eq!(p["stderr_sha256"], python_sha256(&kept).as_str());

    let ok = verify(&log, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
}

#[test]
fn several_workflows_say_whose_lines_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, HELLO).unwrap();
    std::fs::write(&b, HELLO.replace("name: hello", "name: again")).unwrap();
    let logs = dir.path().join("logs");
    let out = run(
        &[
            "run",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
        "",
    );
    let so = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{so}\n{}", stderr(&out));
    for name in ["hello", "again"] {
        let line = format!("{name}:audit-team/Analyse repository structure | hello world");
        assert!(so.lines().any(|l| l == line), "{so}");
    }
}

#[test]
fn quiet_prints_only_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("hello.yaml");
    std::fs::write(&wf, HELLO).unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = run(
        &[
            "run",
            wf.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--quiet",
        ],
        "",
    );
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(so.contains("COMPLETED"), "{so}");
    assert!(!so.contains(" | "), "{so}");
    assert!(!se.contains(" | "), "{se}");
    // Still hashed.
    let done = records(&log, "task.completed");
    assert_eq!(
        done[0]["payload"]["stdout_sha256"],
        python_sha256(b"hello world\n").as_str()
    );
}

/// A task that prints terminal control sequences (clear screen, an OSC
/// window title, BEL, CR over its own prefix to forge a chainsink line,
/// backspace, a colour left open) gets them escaped on the terminal, tab
/// kept; the output file and the hash in the log keep the raw bytes.
#[test]
fn control_characters_in_task_output_are_escaped_live_and_kept_raw() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hostile.sh");
    std::fs::write(
        &script,
        "printf '\\033[2J\\033]0;owned\\007\\rchainsink: error: forged\\010\\tend\\n'\n\
         printf 'two\\r\\n' >&2\n\
         printf 'no newline \\033[31m'\n",
    )
    .unwrap();
    let wf = dir.path().join("hostile.yaml");
    std::fs::write(
        &wf,
        format!(
            "apiVersion: telemachy/v1
metadata:
  name: hostile
agents:
  - name: printer
    program: 'cat > /dev/null; sh {}'
teams:
  - name: t
    agents: [printer]
    tasks:
      - subject: Print escapes
        description: Print control bytes
        assign_to: printer
",
            script.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("audit.jsonl");
    let out_dir = dir.path().join("out");
    let out = run(
        &[
            "run",
            wf.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--output-dir",
            out_dir.to_str().unwrap(),
        ],
        "",
    );
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad: Vec<u8> = bytes
            .iter()
            .copied()
            .filter(|b| (*b < 0x20 && !matches!(b, b'\n' | b'\t')) || *b == 0x7f)
            .collect();
        assert!(
            bad.is_empty(),
            "raw control bytes {bad:?} on {name}:\n{so}{se}"
        );
    }
    let lines: Vec<&str> = so.lines().collect();
    assert!(
        lines.contains(
            &"t/Print escapes | \\u{1b}[2J\\u{1b}]0;owned\\u{7}\\rchainsink: error: forged\\u{8}\tend"
        ),
        "{so}"
    );
    assert!(
        lines.contains(&"t/Print escapes | no newline \\u{1b}[31m"),
        "{so}"
    );
    assert!(se.lines().any(|l| l == "t/Print escapes | two\\r"), "{se}");

    // The file and the hash: the raw bytes.
    let raw: &[u8] =
        b"\x1b[2J\x1b]0;owned\x07\rchainsink: error: forged\x08\tend\nno newline \x1b[31m";
    let done = records(&log, "task.completed");
    let p = &done[0]["payload"];
    let id = done[0]["workflow_id"].as_str().unwrap();
    let task_id = p["task_id"].as_str().unwrap();
    let base = out_dir.join(id).join(format!("t--{task_id}"));
    assert_eq!(std::fs::read(base.with_extension("stdout")).unwrap(), raw);
    assert_eq!(p["stdout_sha256"], python_sha256(raw).as_str());
    assert_eq!(p["stdout_bytes"], raw.len());
    assert_eq!(
        std::fs::read(base.with_extension("stderr")).unwrap(),
        b"two\r\n"
    );
}
