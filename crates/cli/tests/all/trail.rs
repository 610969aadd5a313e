//! `show`, `tail`, `stats`, `completions` and `man` on real logs (issue 14).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// How long to wait for `tail -f` to print something before failing (a
/// bound for a broken test, not a speed requirement).
const PATIENCE: Duration = Duration::from_secs(60);

/// A log of 8 records over two workflows and several types.
fn mixed_log(dir: &Path) -> std::path::PathBuf {
    let log = dir.join("audit.jsonl");
    let input = [
        r#"{"event_type": "workflow.started", "workflow_id": "wf-a", "payload": {"spec_name": "a"}}"#,
        r#"{"event_type": "task.started", "workflow_id": "wf-a", "payload": {"task_id": "task-a-1"}}"#,
        r#"{"event_type": "task.completed", "workflow_id": "wf-a", "payload": {"task_id": "task-a-1", "task_subject": "Build", "duration_seconds": 2.5, "exit_code": 0}}"#,
        r#"{"event_type": "workflow.started", "workflow_id": "wf-b", "payload": {"spec_name": "b"}}"#,
        r#"{"event_type": "task.failed", "workflow_id": "wf-b", "payload": {"task_id": "task-b-1", "task_subject": "Test", "duration_seconds": 7.25, "error": "exited with code 3"}}"#,
        r#"{"event_type": "task.skipped", "workflow_id": "wf-b", "payload": {"task_id": "task-b-2", "reason": "blocked_by \"Test\" failed"}}"#,
        r#"{"event_type": "workflow.failed", "workflow_id": "wf-b", "payload": {"spec_name": "b"}}"#,
        r#"{"event_type": "deploy.note", "workflow_id": null, "payload": {}}"#,
    ]
    .join("\n")
        + "\n";
    let out = run(
        &[
            "emit",
            "--stdin",
            "--durability",
            "none",
            "--log",
            log.to_str().unwrap(),
        ],
        &input,
    );
    assert!(out.status.success(), "emit failed: {}", stderr(&out));
    log
}

/// `show LOG -o jsonl ARGS...`: the records it prints, parsed.
fn show(log: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["show", log.to_str().unwrap(), "-o", "jsonl"];
    all.extend_from_slice(args);
    let out = run(&all, "");
    assert!(out.status.success(), "show {args:?}: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn seqs(records: &[serde_json::Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

#[test]
fn trail_show_filters_each_narrow() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    assert_eq!(seqs(&show(&log, &[])), (1..=8).collect::<Vec<_>>());
    assert_eq!(seqs(&show(&log, &["--workflow", "wf-b"])), vec![4, 5, 6, 7]);
    assert_eq!(seqs(&show(&log, &["-u", "wf-a"])), vec![1, 2, 3]);
    assert_eq!(seqs(&show(&log, &["--type", "task.*"])), vec![2, 3, 5, 6]);
    assert_eq!(
        seqs(&show(&log, &["--type", "workflow.started"])),
        vec![1, 4]
    );
    assert_eq!(
        seqs(&show(&log, &["--type", "task.*", "--workflow", "wf-b"])),
        vec![5, 6]
    );
    assert_eq!(seqs(&show(&log, &["--task", "task-a-1"])), vec![2, 3]);
    assert_eq!(seqs(&show(&log, &["--actor", "tester"])).len(), 8);
    assert!(show(&log, &["--actor", "nobody"]).is_empty());
    assert_eq!(seqs(&show(&log, &["--seq", "3..5"])), vec![3, 4, 5]);
    assert_eq!(seqs(&show(&log, &["--seq", "7.."])), vec![7, 8]);
    assert_eq!(seqs(&show(&log, &["--since", "2000-01-01"])).len(), 8);
    assert!(show(&log, &["--until", "2000-01-01T00:00:00Z"]).is_empty());
    assert!(show(&log, &["--since", "2999-01-01"]).is_empty());
    // A record's own timestamp bounds it on both sides.
    let ts = show(&log, &["--seq", "5"])[0]["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = show(&log, &["--since", &ts, "--until", &ts, "--seq", "5"]);
    assert_eq!(seqs(&at), vec![5]);
    // A time that is not one is refused, naming the forms.
    let out = run(&["show", log.to_str().unwrap(), "--since", "yesterday"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("2026-06-04"), "{}", stderr(&out));
    // The short table has a row per record, with type and workflow.
    let out = run(
        &[
            "show",
            log.to_str().unwrap(),
            "-o",
            "short",
            "--workflow",
            "wf-b",
        ],
        "",
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("task.failed") && text.contains("exited with code 3"));
    assert!(!text.contains('\x1b'), "no colour off a terminal");
    // -o json is one array of the records.
    let out = run(
        &[
            "show",
            log.to_str().unwrap(),
            "-o",
            "json",
            "--type",
            "task.*",
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON array");
    assert_eq!(v.as_array().unwrap().len(), 4);
}

#[test]
fn trail_show_marks_a_tampered_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"Build\"", "\"Built\"", 1)).unwrap();
    let out = run(&["show", log.to_str().unwrap(), "-o", "short"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("VERIFY FAILED at line 3") && text.contains("hash-mismatch"),
        "{text}"
    );
    // The records after it are still shown.
    assert!(text.contains("deploy.note"), "{text}");
    assert!(stderr(&out).contains("did not verify"), "{}", stderr(&out));
    // A filter that leaves the line out still marks it.
    let out = run(
        &[
            "show",
            log.to_str().unwrap(),
            "-o",
            "json",
            "--workflow",
            "wf-b",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON array");
    let errors: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["verify_error"]["reason"].as_str())
        .collect();
    assert!(errors.contains(&"hash-mismatch"), "{v}");
    // jsonl says it on stderr.
    let out = run(&["show", log.to_str().unwrap(), "-o", "jsonl"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

#[test]
fn trail_stats_json_counts() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    let out = run(&["stats", log.to_str().unwrap(), "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["records"], 8);
    assert_eq!(v["verified"], true);
    assert_eq!(v["per_type"]["workflow.started"], 2);
    assert_eq!(v["per_type"]["task.failed"], 1);
    assert_eq!(v["per_workflow"]["wf-a"], 3);
    assert_eq!(v["per_workflow"]["wf-b"], 4);
    assert_eq!(v["per_workflow"]["-"], 1);
    assert_eq!(v["tasks"]["completed"], 1);
    assert_eq!(v["tasks"]["failed"], 1);
    assert_eq!(v["tasks"]["skipped"], 1);
    assert_eq!(v["slowest"][0]["task_id"], "task-b-1");
    assert_eq!(v["slowest"][0]["duration_seconds"], 7.25);
    assert_eq!(v["slowest"][1]["task_id"], "task-a-1");
    let text = stdout(&run(&["stats", log.to_str().unwrap()], ""));
    assert!(
        text.contains("8 records (verified)") && text.contains("task-b-1"),
        "{text}"
    );
}

#[test]
fn trail_tail_follows_appends_a_torn_write_and_a_break() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    let path = log.to_str().unwrap();
    let out = run(&["tail", "-n", "2", path, "-o", "jsonl"], "");
    assert_eq!(seqs_of_lines(&stdout(&out)), vec![7, 8]);

    let mut child = bin()
        .args(["tail", "-f", "-n", "1", "-o", "short", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| -> String {
        loop {
            match rx.recv_timeout(PATIENCE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("tail -f printed no line with {needle:?}: {e}"),
            }
        }
    };
    wait_for("deploy.note");
    let emit = |ty: &str| {
        let out = run(
            &["emit", "--type", ty, "--workflow-id", "wf-c", "--log", path],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
    };
    emit("late.one");
    wait_for("late.one");

    // A torn write: part of a record and no newline; held, then recovered
    // by the next writer.
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&last.as_bytes()[..40]).unwrap();
    drop(f);
    emit("after.torn");
    wait_for("torn write");
    let line = wait_for("after.torn");
    assert!(!line.contains("VERIFY FAILED"));

    // A line that breaks the chain is reported as it arrives.
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .replacen("after.torn", "after.TORN", 1);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(format!("{last}\n").as_bytes()).unwrap();
    drop(f);
    let marker = wait_for("VERIFY FAILED");
    assert!(marker.contains("hash-mismatch"), "{marker}");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn seqs_of_lines(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn trail_completions_and_man_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell], "");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("show"), "{shell}");
    }
    let out = run(&["man"], "");
    assert!(out.status.success());
    assert!(stdout(&out).contains(".TH chainsink"));
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--out", dir.path().to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("chainsink.1").exists());
}

/// `tail -f` with stdout and stderr read line by line on threads.
struct Follower {
    child: std::process::Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Follower {
    fn start(log: &Path) -> Follower {
        let mut child = bin()
            .args(["tail", "-f", "-n", "1", "-o", "short"])
            .arg(log)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    if tx.send(line.unwrap()).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        Follower { child, out, err }
    }

    /// The lines up to the first that holds `needle`, that one included.
    fn until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(PATIENCE) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(e) => {
                    panic!("tail -f printed no line with {needle:?} ({e}); before: {seen:#?}")
                }
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line that breaks the chain is announced as it is read (`??`, held in
/// case the next record excuses it) before it is reported broken.
#[test]
fn tail_f_announces_a_break_before_it_decides_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    let f = Follower::start(&log);
    Follower::until(&f.out, "deploy.note");
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .replacen("deploy.note", "deploy.NOTE", 1);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(format!("{last}\n").as_bytes()).unwrap();
    drop(file);
    let seen = Follower::until(&f.out, "VERIFY FAILED at line 9");
    let held = seen
        .iter()
        .position(|l| l.starts_with("?? line 9 (byte ") && l.contains("hash-mismatch"))
        .unwrap_or_else(|| panic!("no announcement of line 9: {seen:#?}"));
    assert_eq!(held, seen.len() - 2, "{seen:#?}");
}

/// A followed log that is truncated or replaced is said to be on stderr,
/// loudly, and followed again from its first byte.
#[test]
fn tail_f_follows_a_log_truncated_or_replaced_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log(dir.path());
    let path = log.to_str().unwrap();
    let emit = |ty: &str, to: &str| {
        let out = run(&["emit", "--type", ty, "--log", to], "");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let f = Follower::start(&log);
    Follower::until(&f.out, "deploy.note");

    // Replaced: a new log renamed over the path.
    let other = dir.path().join("other.jsonl");
    emit("new.file", other.to_str().unwrap());
    std::fs::rename(&other, &log).unwrap();
    let said = Follower::until(&f.err, "REPLACED");
    assert!(
        said.last().unwrap().contains("ended at 8 records"),
        "{said:?}"
    );
    Follower::until(&f.out, "new.file");
    emit("after.replace", path);
    Follower::until(&f.out, "after.replace");

    // Truncated to nothing, then written again.
    std::fs::File::create(&log).unwrap();
    Follower::until(&f.err, "SHRANK");
    emit("after.truncate", path);
    let seen = Follower::until(&f.out, "after.truncate");
    // Checked as a new chain: seq 1 links to the genesis hash.
    assert!(
        !seen.iter().any(|l| l.contains("VERIFY FAILED")),
        "{seen:#?}"
    );
}
