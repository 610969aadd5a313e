//! End-to-end tests of `chainsink run` and `chainsink validate`: the real
//! binary, the embedded default sink, real log files, and workflows whose
//! programs are plain `sh`.
//!
//! Every wait here is bounded (a hung run is killed and the test fails); no
//! assertion is about speed.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// The example workflow shipped with the repository.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/example.yaml");

/// Longest any single run may take before the test kills it and fails.
const HANG: Duration = Duration::from_secs(60);

const TERMINAL: [&str; 3] = ["task.completed", "task.failed", "task.skipped"];
const WORKFLOW_END: [&str; 3] = [
    "workflow.completed",
    "workflow.failed",
    "workflow.cancelled",
];

// ---------------------------------------------------------------------------
// Running the binary with bounded waits
// ---------------------------------------------------------------------------

/// A `chainsink` process whose stdout and stderr are being collected.
struct Proc {
    child: Child,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Starts `chainsink ARGS` with a clean environment (see `common::bin`, and
/// no `AUDIT_POLICY` either) plus `envs`, in `cwd`.
fn spawn_in(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Proc {
    spawn_with(bin(), cwd, args, envs)
}

/// Like [`spawn_in`], starting from `cmd` (set up by the caller).
fn spawn_with(
    mut cmd: std::process::Command,
    cwd: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Proc {
    cmd.env_remove("AUDIT_POLICY")
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().expect("spawn chainsink");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    Proc { child, out, err }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `limit` for the process to exit; kills it and panics
    /// otherwise.
    fn finish(mut self, limit: Duration) -> Output {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let out = String::from_utf8_lossy(&self.out.join().unwrap()).into_owned();
                let err = String::from_utf8_lossy(&self.err.join().unwrap()).into_owned();
                panic!("chainsink did not exit within {limit:?}; killed it\n{out}\n{err}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: self.out.join().unwrap(),
            stderr: self.err.join().unwrap(),
        }
    }
}

/// `chainsink ARGS` in `cwd`, bounded by [`HANG`].
fn cli_in(cwd: &Path, args: &[&str]) -> Output {
    spawn_in(cwd, args, &[]).finish(HANG)
}

/// `chainsink ARGS`, bounded by [`HANG`], in a fresh directory.
fn cli(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    cli_in(cwd.path(), args)
}

/// Both streams, for assertion messages.
fn both(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", both(o));
}

/// Polls `cond` every 20 ms for at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie, or no entry at all, is dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
    }
}

// ---------------------------------------------------------------------------
// Workflows and logs
// ---------------------------------------------------------------------------

/// Writes `yaml` to `dir/name` and returns its path.
fn write_workflow(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every record of a log, parsed.
fn records(log: &Path) -> Vec<Value> {
    lines(log)
        .iter()
        .map(|l| serde_json::from_str(l.trim_end()).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn types(recs: &[Value]) -> Vec<&str> {
    recs.iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect()
}

fn has_type(recs: &[Value], t: &str) -> bool {
    types(recs).contains(&t)
}

/// The only record of type `t` (panics if there is not exactly one).
fn only<'a>(recs: &'a [Value], t: &str) -> &'a Value {
    let found: Vec<&Value> = recs.iter().filter(|r| r["event_type"] == t).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {t}, log has {:?}",
        types(recs)
    );
    found[0]
}

/// The record of type `t` about task `subject`.
fn task_event<'a>(recs: &'a [Value], t: &str, subject: &str) -> &'a Value {
    let found: Vec<&Value> = recs
        .iter()
        .filter(|r| r["event_type"] == t && r["payload"]["task_subject"] == subject)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {t} for {subject:?}, log has {:?}",
        types(recs)
    );
    found[0]
}

fn seq(r: &Value) -> u64 {
    r["seq"].as_u64().unwrap()
}

/// Whether task `subject` has a `task.started` record.
fn started(recs: &[Value], subject: &str) -> bool {
    recs.iter()
        .any(|r| r["event_type"] == "task.started" && r["payload"]["task_subject"] == subject)
}

/// Invariants of every complete run log: seq counts from 1, one workflow
/// id throughout, exactly one `workflow.*` end, and every submitted task has
/// exactly one terminal event, after its `task.started` if it has one.
fn check_run_log(recs: &[Value]) {
    assert!(!recs.is_empty());
    let wf_id = recs[0]["workflow_id"].as_str().unwrap();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(seq(r), i as u64 + 1, "{r}");
        assert_eq!(r["workflow_id"], wf_id, "{r}");
    }
    let ends = recs
        .iter()
        .filter(|r| WORKFLOW_END.contains(&r["event_type"].as_str().unwrap()))
        .count();
    assert_eq!(ends, 1, "{:?}", types(recs));
    let submitted: Vec<&str> = recs
        .iter()
        .filter(|r| r["event_type"] == "task.submitted")
        .map(|r| r["payload"]["task_id"].as_str().unwrap())
        .collect();
    let mut terminal: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut start: HashMap<&str, u64> = HashMap::new();
    for r in recs {
        let t = r["event_type"].as_str().unwrap();
        let id = r["payload"]["task_id"].as_str();
        if TERMINAL.contains(&t) {
            terminal.entry(id.unwrap()).or_default().push(seq(r));
        } else if t == "task.started" {
            assert!(start.insert(id.unwrap(), seq(r)).is_none(), "{r}");
        }
    }
    assert_eq!(terminal.len(), submitted.len(), "{terminal:?}");
    for id in &submitted {
        let ends = terminal.get(id).map_or(&[][..], Vec::as_slice);
        assert_eq!(
            ends.len(),
            1,
            "task {id} has terminal events at seqs {ends:?}"
        );
        if let Some(st) = start.get(id) {
            assert!(st < &ends[0], "task {id} ended before it started");
        }
    }
}

/// `chainsink verify LOG` must say OK with `n` records; returns the head.
fn verify_ok(log: &Path, n: usize) -> String {
    let out = verify(log, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    let head = text
        .trim_end()
        .strip_prefix(&format!("OK {n} records, head "))
        .unwrap_or_else(|| panic!("expected OK {n} records: {text}"))
        .to_string();
    assert_eq!(head.len(), 64, "{text}");
    head
}

/// The hash on the summary's `head:` line.
fn summary_head(o: &Output) -> String {
    let text = stdout(o);
    let line = text
        .lines()
        .find(|l| l.starts_with("head: "))
        .unwrap_or_else(|| panic!("no head line: {text}"));
    line["head: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------
// 1. Dry run
// ---------------------------------------------------------------------------

#[test]
fn dry_run_of_example_records_the_exact_sequence_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = cli(&["run", EXAMPLE, "--dry-run", "--log", s(&log)]);
    assert_exit(&out, 0);

    let recs = records(&log);
    assert_eq!(
        types(&recs),
        [
            "workflow.started",
            "agent.created",
            "agent.created",
            "team.created",
            "task.submitted",
            "task.submitted",
            "task.submitted",
            "task.started",
            "task.completed",
            "task.started",
            "task.completed",
            "task.started",
            "task.completed",
            "workflow.completed",
            "team.deleted",
            "agent.deleted",
            "agent.deleted",
        ]
    );
    check_run_log(&recs);
    let wf_id = recs[0]["workflow_id"].as_str().unwrap();
    for r in &recs {
        let id = r["workflow_id"].as_str().unwrap();
        assert!(id.starts_with("dry-run-"), "{r}");
        let hex = &id["dry-run-".len()..];
        assert!(
            hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    assert_eq!(recs[0]["payload"]["dry_run"], true);
    assert_eq!(recs[0]["payload"]["spec_name"], "codebase-audit");
    // Topological order, and nothing actually ran.
    let subjects: Vec<&str> = recs
        .iter()
        .filter(|r| r["event_type"] == "task.started")
        .map(|r| r["payload"]["task_subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "Analyse repository structure",
            "Refactor highest-priority module",
            "Write unit tests for refactored module"
        ]
    );
    for r in recs.iter().filter(|r| r["event_type"] == "task.completed") {
        assert_eq!(r["payload"]["exit_code"], Value::Null, "{r}");
        assert_eq!(r["payload"]["workflow_id"], wf_id, "{r}");
    }
    assert_eq!(recs[1]["payload"]["agent_id"], "dry-run-agent-architect");

    // verify agrees, and its head is the summary's and the last record's.
    let head = verify_ok(&log, 17);
    assert_eq!(summary_head(&out), head, "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("head: {head} (seq 17)")),
        "{}",
        stdout(&out)
    );
    assert_eq!(recs[16]["hash"], head.as_str());
    assert!(
        stdout(&out).contains(&format!(
            "dry run of \"codebase-audit\" (id {wf_id}) COMPLETED"
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn dry_run_executes_no_program_but_a_real_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = write_workflow(
        dir.path(),
        "touch.yaml",
        &format!(
            "metadata: {{name: toucher}}
agents: [{{name: a, program: 'touch {m}'}}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: one, description: d, assign_to: a}}
      - {{subject: two, description: d, assign_to: a, blocked_by: [one]}}
",
            m = marker.display()
        ),
    );
    let log = dir.path().join("dry.jsonl");
    let out = cli(&["run", s(&wf), "--dry-run", "--log", s(&log)]);
    assert_exit(&out, 0);
    assert!(!marker.exists(), "a dry run executed a task program");
    let recs = records(&log);
    check_run_log(&recs);
    assert_eq!(
        types(&recs)
            .iter()
            .filter(|t| **t == "task.completed")
            .count(),
        2
    );
    verify_ok(&log, recs.len());

    // The control: the same workflow for real does touch the marker.
    let log = dir.path().join("real.jsonl");
    let out = cli(&["run", s(&wf), "--log", s(&log)]);
    assert_exit(&out, 0);
    assert!(marker.exists(), "the real run did not run the program");
    let recs = records(&log);
    assert!(
        !recs[0]["workflow_id"]
            .as_str()
            .unwrap()
            .starts_with("dry-run-")
    );
    assert_eq!(recs[0]["payload"]["dry_run"], false);
}

// ---------------------------------------------------------------------------
// 2. Real runs: order, parallelism, failure, timeout
// ---------------------------------------------------------------------------

#[test]
fn dependencies_run_in_order_across_parallel_slots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Listed in reverse so that file order alone would get it wrong; B and C
    // fail if their dependency's file is not there yet.
    let wf = write_workflow(
        dir.path(),
        "order.yaml",
        &format!(
            "metadata: {{name: order}}
agents:
  - {{name: first, program: 'sleep 0.2; touch {d}/a'}}
  - {{name: second, program: 'test -e {d}/a && touch {d}/b'}}
  - {{name: third, program: 'test -e {d}/b'}}
teams:
  - name: t
    agents: [first, second, third]
    tasks:
      - {{subject: C, description: x, assign_to: third, blocked_by: [B]}}
      - {{subject: B, description: x, assign_to: second, blocked_by: [A]}}
      - {{subject: A, description: x, assign_to: first}}
"
        ),
    );
    let log = dir.path().join("audit.jsonl");
    let out = cli(&["run", s(&wf), "--max-parallel", "8", "--log", s(&log)]);
    assert_exit(&out, 0);
    let recs = records(&log);
    check_run_log(&recs);
    let done = |t| seq(task_event(&recs, "task.completed", t));
    let start = |t| seq(task_event(&recs, "task.started", t));
    assert!(done("A") < start("B"), "{:?}", types(&recs));
    assert!(done("B") < start("C"), "{:?}", types(&recs));
    assert_eq!(
        task_event(&recs, "task.submitted", "C")["payload"]["blocked_by"],
        serde_json::json!(["B"])
    );
    verify_ok(&log, recs.len());
}

/// Two independent tasks that each leave a marker and then wait (bounded) for
/// the other's: both complete only if they run at the same time.
fn rendezvous(dir: &Path) -> PathBuf {
    let meet = dir.join("meet");
    std::fs::create_dir(&meet).unwrap();
    let program = format!(
        "touch {m}/\"$TASK_SUBJECT\"; i=0; \
         while [ $(ls {m} | wc -l) -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         [ $(ls {m} | wc -l) -ge 2 ]",
        m = meet.display()
    );
    write_workflow(
        dir,
        "meet.yaml",
        &format!(
            "metadata: {{name: meet}}
agents: [{{name: a, program: '{program}'}}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: left, description: d, assign_to: a}}
      - {{subject: right, description: d, assign_to: a}}
"
        ),
    )
}

#[test]
fn independent_tasks_really_run_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let wf = rendezvous(dir.path());
    let log = dir.path().join("audit.jsonl");
    let out = cli(&["run", s(&wf), "--max-parallel", "2", "--log", s(&log)]);
    assert_exit(&out, 0);
    let recs = records(&log);
    check_run_log(&recs);
    // Both were started before either ended.
    let last_start = seq(task_event(&recs, "task.started", "left")).max(seq(task_event(
        &recs,
        "task.started",
        "right",
    )));
    let first_end = seq(task_event(&recs, "task.completed", "left")).min(seq(task_event(
        &recs,
        "task.completed",
        "right",
    )));
    assert!(last_start < first_end, "{:?}", types(&recs));
    verify_ok(&log, recs.len());
}

#[test]
fn the_rendezvous_fails_when_tasks_cannot_overlap() {
    // The same workflow, one slot: the first task waits alone until the run's
    // timeout; the second never starts. Proves the check above can fail.
    let dir = tempfile::tempdir().unwrap();
    let wf = rendezvous(dir.path());
    let log = dir.path().join("audit.jsonl");
    let out = cli(&[
        "run",
        s(&wf),
        "--max-parallel",
        "1",
        "--timeout",
        "3",
        "--grace",
        "1",
        "--log",
        s(&log),
    ]);
    assert_exit(&out, 1);
    let recs = records(&log);
    check_run_log(&recs);
    assert!(has_type(&recs, "task.failed"), "{:?}", types(&recs));
    assert!(!has_type(&recs, "task.completed"), "{:?}", types(&recs));
    assert!(!started(&recs, "right"), "{:?}", types(&recs));
    assert_eq!(
        task_event(&recs, "task.skipped", "right")["payload"]["reason"],
        "Workflow 'meet' exceeded its execution timeout of 3s"
    );
    verify_ok(&log, recs.len());
}

#[test]
fn a_failing_task_skips_its_dependents_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let wf = write_workflow(
        dir.path(),
        "fail.yaml",
        "metadata: {name: failing}
agents:
  - {name: bad, program: 'echo starting; echo boom >&2; exit 3'}
  - {name: good, program: 'true'}
teams:
  - name: t
    agents: [bad, good]
    tasks:
      - {subject: A, description: d, assign_to: bad}
      - {subject: B, description: d, assign_to: good, blocked_by: [A]}
      - {subject: C, description: d, assign_to: good, blocked_by: [B]}
      - {subject: D, description: d, assign_to: good}
teardown: never
",
    );
    let log = dir.path().join("audit.jsonl");
    let out = cli(&["run", s(&wf), "--log", s(&log)]);
    assert_exit(&out, 1);
    let recs = records(&log);
    check_run_log(&recs);

    let a = &task_event(&recs, "task.failed", "A")["payload"];
    assert_eq!(a["exit_code"], 3);
    assert_eq!(a["error"], "exited with code 3");
    assert_eq!(a["stderr_tail"], "boom\n");
    let b = &task_event(&recs, "task.skipped", "B")["payload"];
    assert_eq!(b["reason"], "blocked_by \"A\" failed");
    let c = &task_event(&recs, "task.skipped", "C")["payload"];
    assert_eq!(c["reason"], "blocked_by \"B\" was skipped");
    assert!(!started(&recs, "B") && !started(&recs, "C"));
    assert_eq!(
        task_event(&recs, "task.completed", "D")["payload"]["exit_code"],
        0
    );
    assert_eq!(
        only(&recs, "workflow.failed")["payload"]["error"],
        "One or more tasks failed during workflow execution (1 failed, 2 skipped)"
    );
    assert_eq!(
        types(&recs).last(),
        Some(&"workflow.failed"),
        "teardown: never"
    );
    let head = verify_ok(&log, recs.len());
    assert_eq!(summary_head(&out), head);

    let text = stdout(&out);
    assert!(text.contains("FAILED"), "{text}");
    assert!(
        text.contains("tasks: 1 completed, 1 failed, 2 skipped (of 4)"),
        "{text}"
    );
    assert!(
        text.contains("t / A: exited with code 3 [stderr: boom]"),
        "{text}"
    );
    assert!(text.ends_with("exit code: 1\n"), "{text}");
}

#[test]
fn timeout_stops_a_long_task_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let wf = write_workflow(
        dir.path(),
        "slow.yaml",
        &format!(
            "metadata: {{name: slow}}
agents: [{{name: a, program: 'echo $$ > {p}; sleep 30'}}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: long, description: d, assign_to: a}}
      - {{subject: later, description: d, assign_to: a, blocked_by: [long]}}
teardown: on_failure
timeout_seconds: 600
",
            p = pidfile.display()
        ),
    );
    let log = dir.path().join("audit.jsonl");
    // Well under the task's 30 s, or the run is killed and the test fails.
    let out = spawn_in(
        dir.path(),
        &["run", s(&wf), "--timeout", "1", "--log", s(&log)],
        &[],
    )
    .finish(Duration::from_secs(20));
    assert_exit(&out, 1);
    let recs = records(&log);
    check_run_log(&recs);
    const WHY: &str = "Workflow 'slow' exceeded its execution timeout of 1s";
    assert_eq!(
        recs[0]["payload"]["timeout_seconds"], 1.0,
        "--timeout overrides the file"
    );
    let failed = only(&recs, "workflow.failed");
    assert_eq!(failed["payload"]["error"], WHY);
    let long = &task_event(&recs, "task.failed", "long")["payload"];
    assert_eq!(
        long["error"].as_str().unwrap(),
        format!("terminated: {WHY} (killed by signal 15)")
    );
    assert_eq!(long["exit_code"], Value::Null);
    assert_eq!(
        task_event(&recs, "task.skipped", "later")["payload"]["reason"],
        WHY
    );
    // A timeout is a failure: on_failure tears down after workflow.failed.
    let t = types(&recs);
    assert_eq!(
        &t[t.len() - 3..],
        ["workflow.failed", "team.deleted", "agent.deleted"]
    );
    verify_ok(&log, recs.len());
    assert!(stdout(&out).contains("TIMED-OUT"), "{}", stdout(&out));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the task wrote its pid before the timeout")
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !alive(pid)),
        "the task's process {pid} outlived the run"
    );
}

// ---------------------------------------------------------------------------
// 3. Signals cancel the run
// ---------------------------------------------------------------------------

/// Sends `signal` to a run whose task is sleeping (in the background of its
/// shell), then checks the cancelled run. With `ignore_term` the task shell
/// and its sleep ignore SIGTERM, so only the SIGKILL after `--grace` stops
/// them.
fn cancel_with(signal: &str, teardown: &str, ignore_term: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sh_pid = dir.path().join("sh.pid");
    let sleep_pid = dir.path().join("sleep.pid");
    let wf = write_workflow(
        dir.path(),
        "long.yaml",
        &format!(
            "metadata: {{name: long}}
agents:
  - {{name: a, program: '{trap}echo $$ > {sh}; sleep 60 & echo $! > {sl}.tmp; mv {sl}.tmp {sl}; wait'}}
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: sleeper, description: d, assign_to: a}}
      - {{subject: after, description: d, assign_to: a, blocked_by: [sleeper]}}
teardown: {teardown}
",
            trap = if ignore_term { "trap \"\" TERM; " } else { "" },
            sh = sh_pid.display(),
            sl = sleep_pid.display()
        ),
    );
    let log = dir.path().join("audit.jsonl");
    let proc = spawn_in(
        dir.path(),
        &["run", s(&wf), "--grace", "1", "--log", s(&log)],
        &[],
    );
    let pid = proc.pid();
    let ready = wait_for(Duration::from_secs(30), || {
        sleep_pid.exists()
            && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"task.started\""))
    });
    if !ready {
        let out = proc.finish(Duration::ZERO);
        panic!("the task never started: {}", both(&out));
    }
    let read_pid =
        |p: &Path| -> u32 { std::fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    let (sh, sleeper) = (read_pid(&sh_pid), read_pid(&sleep_pid));
    assert!(
        alive(sleeper),
        "the sleep should be running before the signal"
    );

    let kill = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let out = proc.finish(Duration::from_secs(30));
    assert_exit(&out, 130);

    let recs = records(&log);
    check_run_log(&recs);
    assert_eq!(types(&recs).last(), Some(&"workflow.cancelled"));
    assert!(
        !has_type(&recs, "team.deleted") && !has_type(&recs, "agent.deleted"),
        "a cancelled run is never torn down ({teardown}): {:?}",
        types(&recs)
    );
    assert_eq!(
        task_event(&recs, "task.failed", "sleeper")["payload"]["error"],
        if ignore_term {
            "terminated: workflow cancelled (killed by signal 9)"
        } else {
            "terminated: workflow cancelled (killed by signal 15)"
        }
    );
    assert_eq!(
        task_event(&recs, "task.skipped", "after")["payload"]["reason"],
        "workflow cancelled"
    );
    assert!(!started(&recs, "after"));
    verify_ok(&log, recs.len());
    assert!(stdout(&out).contains("CANCELLED"), "{}", stdout(&out));

    // The task's whole process group is gone, background sleep included.
    for p in [sh, sleeper] {
        assert!(
            wait_for(Duration::from_secs(10), || !alive(p)),
            "process {p} of the cancelled task is still running"
        );
    }
}

#[test]
fn sigint_cancels_the_run_and_kills_the_task_group() {
    cancel_with("INT", "on_failure", false);
}

#[test]
fn sigterm_cancels_the_run_and_kills_the_task_group() {
    cancel_with("TERM", "on_completion", false);
}

#[test]
fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    cancel_with("INT", "never", true);
}

// ---------------------------------------------------------------------------
// 4. Teardown policies
// ---------------------------------------------------------------------------

#[test]
fn teardown_policies_follow_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("on_completion", true, true),
        ("on_completion", false, false),
        ("on_failure", true, false),
        ("on_failure", false, true),
        ("never", true, false),
        ("never", false, false),
    ];
    for (policy, succeed, torn_down) in cases {
        let name = format!("{policy}-{succeed}");
        let program = if succeed { "true" } else { "exit 1" };
        let wf = write_workflow(
            dir.path(),
            &format!("{name}.yaml"),
            &format!(
                "metadata: {{name: td}}
agents: [{{name: a1, program: '{program}'}}, {{name: a2, program: 'true'}}]
teams:
  - name: t1
    agents: [a1]
    tasks: [{{subject: x, description: d, assign_to: a1}}]
  - name: t2
    agents: [a2]
    tasks: [{{subject: y, description: d, assign_to: a2}}]
teardown: {policy}
"
            ),
        );
        let log = dir.path().join(format!("{name}.jsonl"));
        let out = cli(&["run", s(&wf), "--log", s(&log)]);
        assert_exit(&out, if succeed { 0 } else { 1 });
        let recs = records(&log);
        check_run_log(&recs);
        assert_eq!(recs[0]["payload"]["teardown"], policy);
        let t = types(&recs);
        let end = t
            .iter()
            .position(|e| WORKFLOW_END.contains(e))
            .expect("a workflow end");
        assert_eq!(
            t[end],
            if succeed {
                "workflow.completed"
            } else {
                "workflow.failed"
            }
        );
        let after: Vec<(&str, &str)> = recs[end + 1..]
            .iter()
            .map(|r| {
                let p = &r["payload"];
                let name = p["team_name"].as_str().or(p["agent_name"].as_str());
                (r["event_type"].as_str().unwrap(), name.unwrap())
            })
            .collect();
        let expected: Vec<(&str, &str)> = if torn_down {
            vec![
                ("team.deleted", "t1"),
                ("team.deleted", "t2"),
                ("agent.deleted", "a1"),
                ("agent.deleted", "a2"),
            ]
        } else {
            vec![]
        };
        assert_eq!(after, expected, "{name}");
        if torn_down {
            let wf_id = recs[0]["workflow_id"].as_str().unwrap();
            assert_eq!(
                recs[end + 1]["payload"]["team_id"],
                format!("team-{wf_id}-t1")
            );
            assert_eq!(
                recs[end + 3]["payload"]["agent_id"],
                format!("agent-{wf_id}-a1")
            );
        }
        verify_ok(&log, recs.len());
    }
}

// ---------------------------------------------------------------------------
// 5. Scale
// ---------------------------------------------------------------------------

#[test]
fn two_hundred_tasks_with_chains_on_eight_slots() {
    const N: usize = 200;
    const AGENTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("metadata: {name: big}\nagents:\n");
    for a in 0..AGENTS {
        yaml.push_str(&format!("  - {{name: a{a}, program: 'true'}}\n"));
    }
    yaml.push_str("teams:\n  - name: crew\n    agents: [a0, a1, a2, a3]\n    tasks:\n");
    // Chains of four (each task after the previous one), plus a link back
    // 13 tasks from every 25th task: many ready at once, many waiting.
    // deps[i] = the tasks t{i} is blocked by (deps[0] is unused).
    let deps: Vec<Vec<usize>> = (0..=N)
        .map(|i| {
            let mut d = Vec::new();
            if i > 0 && i % 4 != 1 {
                d.push(i - 1);
            }
            if i > 0 && i % 25 == 0 {
                d.push(i - 13);
            }
            d
        })
        .collect();
    for (i, ds) in deps.iter().enumerate().skip(1) {
        let names: Vec<String> = ds.iter().map(|d| format!("t{d}")).collect();
        yaml.push_str(&format!(
            "      - {{subject: t{i}, description: d, assign_to: a{}, blocked_by: [{}]}}\n",
            i % AGENTS,
            names.join(", ")
        ));
    }
    yaml.push_str("teardown: on_completion\n");
    let wf = write_workflow(dir.path(), "big.yaml", &yaml);
    let log = dir.path().join("audit.jsonl");
    let out = cli(&[
        "run",
        s(&wf),
        "--max-parallel",
        "8",
        "--durability",
        "none",
        "--log",
        s(&log),
    ]);
    assert_exit(&out, 0);
    let recs = records(&log);
    check_run_log(&recs);
    // 1 start + 4 agents + 1 team + 200 x (submitted, started, completed)
    // + 1 end + 1 team + 4 agents deleted.
    let expected = 1 + AGENTS + 1 + 3 * N + 1 + 1 + AGENTS;
    assert_eq!(recs.len(), expected);
    verify_ok(&log, expected);

    // Exactly one terminal event per task id, all completions.
    let mut ends: HashMap<String, Vec<&str>> = HashMap::new();
    for r in &recs {
        let t = r["event_type"].as_str().unwrap();
        if TERMINAL.contains(&t) {
            ends.entry(r["payload"]["task_id"].as_str().unwrap().to_string())
                .or_default()
                .push(t);
        }
    }
    assert_eq!(ends.len(), N);
    let wf_id = recs[0]["workflow_id"].as_str().unwrap();
    for i in 1..=N {
        let id = format!("task-{wf_id}-{i}");
        assert_eq!(
            ends.get(&id).map(Vec::as_slice),
            Some(&["task.completed"][..]),
            "{id}"
        );
    }
    // Every task started after all of its dependencies completed.
    for (i, ds) in deps.iter().enumerate().skip(1) {
        let st = seq(task_event(&recs, "task.started", &format!("t{i}")));
        for d in ds {
            let done = seq(task_event(&recs, "task.completed", &format!("t{d}")));
            assert!(done < st, "t{i} started before t{d} completed");
        }
    }
    // Never more than 8 in flight, and the slots were used.
    let mut in_flight = 0i32;
    let mut most = 0;
    for t in types(&recs) {
        if t == "task.started" {
            in_flight += 1;
        } else if TERMINAL.contains(&t) {
            in_flight -= 1;
        }
        most = most.max(in_flight);
    }
    assert_eq!(most, 8, "most tasks in flight at once");
    assert!(
        stdout(&out).contains("tasks: 200 completed, 0 failed, 0 skipped (of 200)"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------
// 6. Audit policy with a failing sink
// ---------------------------------------------------------------------------

/// A one-task workflow whose program creates `marker`.
fn marker_workflow(dir: &Path, marker: &Path) -> PathBuf {
    write_workflow(
        dir,
        "marker.yaml",
        &format!(
            "metadata: {{name: marked}}
agents: [{{name: a, program: 'touch {m}'}}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: mark, description: d, assign_to: a}}
teardown: on_completion
",
            m = marker.display()
        ),
    )
}

/// A log path that cannot be created: its parent is a regular file.
fn unopenable_log(dir: &Path) -> PathBuf {
    let file = dir.join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    file.join("audit.jsonl")
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn fail_closed_with_an_unopenable_log_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    let log = unopenable_log(dir.path());
    let out = cli(&["run", s(&wf), "--log", s(&log)]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("chainsink: error: cannot start the audit sink: "),
        "{err}"
    );
    assert!(
        err.contains("cannot create or open the audit log's directory"),
        "{err}"
    );
    assert!(
        err.contains("; the workflow was NOT started (--audit-policy fail-closed)"),
        "{err}"
    );
    // One line, and no advice to turn auditing off.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("fail-open"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", both(&out));
    assert!(
        !marker.exists(),
        "fail-closed ran the program without a log"
    );

    // fail-closed is the default; spelling it out changes nothing.
    let out = cli(&[
        "run",
        s(&wf),
        "--audit-policy",
        "fail-closed",
        "--log",
        s(&log),
    ]);
    assert_exit(&out, 3);
    assert!(!marker.exists());
}

#[test]
fn fail_open_with_an_unopenable_log_runs_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    let log = unopenable_log(dir.path());
    let out = cli(&[
        "run",
        s(&wf),
        "--audit-policy",
        "fail-open",
        "--log",
        s(&log),
    ]);
    assert_exit(&out, 0);
    assert!(marker.exists(), "fail-open did not run the workflow");
    let err = stderr(&out);
    assert!(
        err.contains("chainsink: AUDITING DEGRADED: cannot start the audit sink: "),
        "{err}"
    );
    assert!(
        err.contains("running the workflow anyway, NOT audited (--audit-policy fail-open)"),
        "{err}"
    );
    // One distinct failure, printed once although every event was lost.
    assert_eq!(count(&err, "the audit sink failed to record"), 1, "{err}");
    let text = stdout(&out);
    // 9 events: started, agent, team, submitted, task started + completed,
    // workflow.completed, team + agent deleted.
    let banner = "!! AUDITING DEGRADED: 9 event(s) could not be recorded: audit sink unavailable: ";
    assert!(text.starts_with(banner), "{text}");
    assert_eq!(count(&text, banner), 2, "banner at top and bottom: {text}");
    assert!(!text.contains("the run was stopped"), "{text}");
    assert!(text.contains("COMPLETED"), "{text}");
    assert!(text.ends_with("exit code: 0\n"), "{text}");

    // The policy can come from the environment too.
    std::fs::remove_file(&marker).unwrap();
    let out = spawn_in(
        dir.path(),
        &["run", s(&wf), "--log", s(&log)],
        &[("AUDIT_POLICY", "fail-open")],
    )
    .finish(HANG);
    assert_exit(&out, 0);
    assert!(marker.exists());
    assert!(stdout(&out).starts_with("!! AUDITING DEGRADED"));
}

/// `chainsink ARGS` on a "full disk": no file can grow past `limit` (see
/// [`full_disk_log`]).
fn cli_on_full_disk(cwd: &Path, limit: u64, args: &[&str]) -> Output {
    let mut cmd = bin();
    limit_file_size(&mut cmd, limit);
    spawn_with(cmd, cwd, args, &[]).finish(HANG)
}

#[test]
fn fail_closed_with_a_full_disk_stops_at_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    let (log, limit) = full_disk_log(dir.path());
    let out = cli_on_full_disk(dir.path(), limit, &["run", s(&wf), "--log", s(&log)]);
    assert_exit(&out, 3);
    assert!(
        !marker.exists(),
        "a task ran although nothing could be recorded"
    );
    let text = stdout(&out);
    // workflow.started failed; only workflow.failed was still offered.
    assert!(
        text.starts_with(
            "!! AUDITING DEGRADED: 2 event(s) could not be recorded; \
             the run was stopped (fail-closed): "
        ),
        "{text}"
    );
    assert!(text.contains("File too large"), "{text}");
    // What is in the log, against what was acknowledged.
    assert!(
        text.contains("the last acknowledged record is seq 1, and the log ends with it"),
        "{text}"
    );
    assert!(text.contains("AUDIT-FAILED"), "{text}");
    assert!(
        text.contains(&format!(
            "  reason: audit sink failed: audit log {}: I/O failed: ",
            log.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("tasks: 0 completed, 0 failed, 1 skipped (of 1)"),
        "{text}"
    );
    assert!(text.ends_with("exit code: 3\n"), "{text}");
}

#[test]
fn fail_open_with_a_full_disk_completes_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    let (log, limit) = full_disk_log(dir.path());
    let out = cli_on_full_disk(
        dir.path(),
        limit,
        &[
            "run",
            s(&wf),
            "--audit-policy",
            "fail-open",
            "--log",
            s(&log),
        ],
    );
    assert_exit(&out, 0);
    assert!(marker.exists(), "fail-open did not run the workflow");
    let err = stderr(&out);
    assert_eq!(
        count(
            &err,
            &format!(
                "chainsink: AUDITING DEGRADED: the audit sink failed to record workflow.started: \
                 audit log {}: I/O failed: ",
                log.display()
            )
        ),
        1,
        "{err}"
    );
    assert_eq!(count(&err, "the audit sink failed to record"), 1, "{err}");
    assert!(
        err.contains("continuing because the policy is fail-open"),
        "{err}"
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("!! AUDITING DEGRADED: 9 event(s) could not be recorded: "),
        "{text}"
    );
    assert!(text.contains("File too large"), "{text}");
    assert!(!text.contains("the run was stopped"), "{text}");
    assert!(text.contains("COMPLETED"), "{text}");
    assert!(text.contains("head: "), "{text}");
    assert!(text.ends_with("exit code: 0\n"), "{text}");
}

// ---------------------------------------------------------------------------
// 7. Invalid workflows
// ---------------------------------------------------------------------------

#[test]
fn invalid_workflow_is_reported_with_positions_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = write_workflow(
        dir.path(),
        "bad.yaml",
        &format!(
            "metadata: {{name: bad}}
agents:
  - name: a
    program: 'touch {m}'
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: x, description: d, assign_to: ghost}}
      - {{subject: p, description: d, assign_to: a, blocked_by: [q]}}
      - {{subject: q, description: d, assign_to: a, blocked_by: [p]}}
      - {{subject: fine, description: d, assign_to: a}}
",
            m = marker.display()
        ),
    );
    let path = s(&wf);
    let out = cli(&["validate", path]);
    assert_exit(&out, 2);
    assert!(stdout(&out).is_empty(), "{}", both(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    // Line 9, column 49 is `ghost`; line 10, column 65 is the `q` of p's blocked_by.
    assert!(
        lines[0].starts_with(&format!("{path}:9:49: "))
            && lines[0].contains("unknown agent `ghost`"),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!("{path}:10:65: ")) && lines[1].contains("dependency cycle"),
        "{err}"
    );
    assert_eq!(
        lines[2],
        format!("chainsink: {path} is not a valid workflow (2 problem(s)); nothing was run")
    );

    // run refuses it the same way, and touches no log: neither a new one...
    let log = dir.path().join("new.jsonl");
    let out = cli(&["run", path, "--log", s(&log)]);
    assert_exit(&out, 2);
    assert_eq!(stderr(&out), err);
    assert!(!log.exists(), "run created a log for an invalid workflow");
    // ...nor an existing one.
    let existing = dir.path().join("existing.jsonl");
    emit_n(&existing, 2, "none");
    let before = std::fs::read(&existing).unwrap();
    let out = cli(&["run", path, "--log", s(&existing)]);
    assert_exit(&out, 2);
    assert_eq!(std::fs::read(&existing).unwrap(), before);
    assert!(!marker.exists(), "a task of an invalid workflow ran");

    // The control: a valid file passes.
    let out = cli(&["validate", EXAMPLE]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).trim_end(),
        format!("OK {EXAMPLE}: workflow \"codebase-audit\", 2 agent(s), 1 team(s), 3 task(s)")
    );
}

// ---------------------------------------------------------------------------
// 8. No log configured
// ---------------------------------------------------------------------------

#[test]
fn without_a_log_the_run_says_it_is_not_audited_once_and_runs() {
    const NOTICE: &str = "chainsink: AUDIT_LOG_PATH is not set and no --log was given: \
                          this run is NOT audited";
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    let out = cli_in(dir.path(), &["run", s(&wf)]);
    assert_exit(&out, 0);
    assert!(marker.exists(), "an unaudited run must still run");
    let err = stderr(&out);
    assert_eq!(count(&err, "NOT audited"), 1, "{err}");
    assert!(err.contains(NOTICE), "{err}");
    assert!(
        stdout(&out).contains("audit log: (none: not audited)"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("DEGRADED"), "{}", stdout(&out));
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files.len(),
        2,
        "nothing but the workflow and marker: {files:?}"
    );

    // The control: with AUDIT_LOG_PATH set there is no notice, and a log.
    std::fs::remove_file(&marker).unwrap();
    let log = dir.path().join("env.jsonl");
    let out = spawn_in(dir.path(), &["run", s(&wf)], &[("AUDIT_LOG_PATH", s(&log))]).finish(HANG);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("NOT audited"), "{}", stderr(&out));
    assert!(marker.exists());
    let recs = records(&log);
    check_run_log(&recs);
    verify_ok(&log, recs.len());
}

// ---------------------------------------------------------------------------
// Bad durations are usage errors (they used to panic).
// ---------------------------------------------------------------------------

#[test]
fn bad_durations_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let wf = marker_workflow(dir.path(), &marker);
    for flag in [
        "--timeout=-1",
        "--timeout=NaN",
        "--timeout=inf",
        "--grace=-1",
    ] {
        let out = cli(&["run", s(&wf), flag]);
        assert_exit(&out, 2);
        assert!(!stderr(&out).contains("panicked"), "{flag}: {}", both(&out));
        assert!(!marker.exists(), "{flag}");
    }
}

#[test]
fn run_json_is_one_object_with_every_task_and_the_logs_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = cli(&["run", EXAMPLE, "--dry-run", "--json", "--log", s(&log)]);
    assert_exit(&out, 0);
    let v: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", both(&out)));
    assert_eq!(v["exit_code"], 0);
    let wf = &v["workflows"][0];
    assert_eq!(wf["outcome"], "completed", "{wf}");
    assert_eq!(wf["dry_run"], true);
    assert_eq!(wf["tasks"]["total"], 3);
    assert_eq!(wf["tasks"]["completed"], 3);
    assert_eq!(wf["tasks"]["each"].as_array().unwrap().len(), 3);
    assert_eq!(wf["audit"]["log"], s(&log));
    assert_eq!(wf["audit"]["degraded"], false);
    // The head it reports is the log's last record.
    let last: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(wf["audit"]["head"], last["hash"]);
    assert_eq!(wf["audit"]["last_seq"], last["seq"]);

    // Unaudited: the log is null, and stdout is still only the JSON.
    let out = cli(&["run", EXAMPLE, "--dry-run", "--json"]);
    assert_exit(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["workflows"][0]["audit"]["log"].is_null(), "{v}");
}

#[test]
fn a_log_in_a_missing_directory_is_refused_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let log = missing.join("audit.jsonl");
    for args in [
        vec!["run", EXAMPLE, "--dry-run", "--log", s(&log)],
        vec!["emit", "--type", "t", "--log", s(&log)],
    ] {
        let out = cli(&args);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains("does not exist"), "{err}");
        assert!(
            err.contains(&format!("mkdir -p {}", missing.display())),
            "{err}"
        );
        assert!(!missing.exists(), "{args:?} created the directory");
    }
}
