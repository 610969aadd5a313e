//! Task output: streamed live with the task's name before each line, whole
//! lines only; kept in full under `output_dir`; counted and hashed in the
//! task's audit event.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::{find, opts, s, scratch, wf};
use chainsink_executor::{
    LiveOutput, MemorySink, Outcome, OutputStream, RunOptions, TaskStatus, run, task_output_paths,
};
use serde_json::Value;

/// Records every write the executor makes to the live output; optionally
/// creates `release.1` once a write contains `release.0`.
#[derive(Debug, Default)]
struct Recorder {
    writes: Mutex<Vec<(OutputStream, Vec<u8>)>>,
    release: Option<(Vec<u8>, PathBuf)>,
}

impl LiveOutput for Recorder {
    fn write_lines(&self, stream: OutputStream, lines: &[u8]) {
        if let Some((needle, file)) = &self.release
            && lines.windows(needle.len()).any(|w| w == needle.as_slice())
        {
            std::fs::write(file, b"").unwrap();
        }
        self.writes.lock().unwrap().push((stream, lines.to_vec()));
    }
}

impl Recorder {
    /// Every line written to `stream`, without its `\n`.
    fn lines(&self, stream: OutputStream) -> Vec<String> {
        let writes = self.writes.lock().unwrap();
        let mut all = Vec::new();
        for (st, bytes) in writes.iter() {
            assert_eq!(bytes.last(), Some(&b'\n'), "a write ends mid-line");
            if *st == stream {
                all.extend_from_slice(bytes);
            }
        }
        String::from_utf8(all)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// SHA-256 of a file, by python3's hashlib (independent of the executor).
fn python_sha256(path: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// SHA-256 of some bytes, by python3's hashlib.
fn python_sha256_of(bytes: &[u8], dir: &Path) -> String {
    let path = dir.join("sha-input");
    std::fs::write(&path, bytes).unwrap();
    python_sha256(&path)
}

fn with_live(live: &Arc<Recorder>, max_parallel: usize) -> RunOptions {
    RunOptions {
        live_output: Some(Arc::clone(live) as Arc<dyn LiveOutput>),
        ..opts(max_parallel)
    }
}

fn n(e: &chainsink_executor::RecordedEvent, key: &str) -> u64 {
    e.payload
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{} has no integer {key}: {:?}", e.event_type, e.payload))
}

#[test]
fn output_streams_live_with_the_task_name_before_each_line() {
    let dir = scratch("live");
    let go = dir.join("go");
    // The task says `first`, then waits (bounded) for the live output to
    // have seen it: `released` proves the line went out while it ran.
    let w = wf(&format!(
        "metadata: {{name: live}}
agents:
  - name: a
    program: 'cat >/dev/null; echo hello world; echo first; echo oops >&2; i=0; while [ ! -e {go} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; if [ -e {go} ]; then echo released; else echo not-live; fi; printf no-newline'
teams:
  - name: audit-team
    agents: [a]
    tasks:
      - {{subject: Analyse repository structure, description: x, assign_to: a}}
",
        go = go.display()
    ));
    let live = Arc::new(Recorder {
        release: Some((b"| first\n".to_vec(), go)),
        ..Recorder::default()
    });
    let r = run(&w, &MemorySink::new(), &with_live(&live, 1));
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let p = "audit-team/Analyse repository structure | ";
    assert_eq!(
        live.lines(OutputStream::Stdout),
        [
            format!("{p}hello world"),
            format!("{p}first"),
            format!("{p}released"),
            format!("{p}no-newline"),
        ]
    );
    assert_eq!(live.lines(OutputStream::Stderr), [format!("{p}oops")]);
}

#[test]
fn a_label_goes_before_the_task_name() {
    let w = wf("metadata: {name: labelled}
agents:
  - {name: a, program: 'cat >/dev/null; echo hi'}
teams:
  - name: t
    agents: [a]
    tasks:
      - {subject: Say, description: x, assign_to: a}
");
    let live = Arc::new(Recorder::default());
    let o = RunOptions {
        output_label: Some("nightly".into()),
        ..with_live(&live, 1)
    };
    assert_eq!(run(&w, &MemorySink::new(), &o).outcome, Outcome::Completed);
    assert_eq!(live.lines(OutputStream::Stdout), ["nightly:t/Say | hi"]);
}

#[test]
fn lines_of_parallel_tasks_never_interleave() {
    // Four tasks at once, each writing long lines (longer than a pipe's
    // atomic write) in several pieces, and many short ones.
    let w = wf("metadata: {name: busy}
agents:
  - name: a
    program: 'cat >/dev/null; long=$(head -c 9000 /dev/zero | tr \"\\0\" \"$TASK_SUBJECT\"); i=0; while [ $i -lt 200 ]; do printf \"%s\" \"$TASK_SUBJECT\"; printf \"%s\\n\" \"$long\"; echo \"$TASK_SUBJECT$i\" >&2; i=$((i+1)); done'
teams:
  - name: t
    agents: [a]
    tasks:
      - {subject: p, description: x, assign_to: a}
      - {subject: q, description: x, assign_to: a}
      - {subject: r, description: x, assign_to: a}
      - {subject: s, description: x, assign_to: a}
");
    let live = Arc::new(Recorder::default());
    let r = run(&w, &MemorySink::new(), &with_live(&live, 4));
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let out = live.lines(OutputStream::Stdout);
    assert_eq!(out.len(), 800);
    for line in &out {
        let (prefix, body) = line.split_once(" | ").expect("prefixed");
        let subject = prefix.strip_prefix("t/").expect("team first");
        assert_eq!(body, subject.repeat(9001), "a line was cut or mixed");
    }
    let err = live.lines(OutputStream::Stderr);
    for subject in ["p", "q", "r", "s"] {
        let prefix = format!("t/{subject} | ");
        let mine: Vec<&str> = err
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with(&prefix))
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("{prefix}{subject}{i}")).collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn output_dir_keeps_everything_and_events_carry_its_hashes() {
    let dir = scratch("files");
    let outdir = dir.join("out");
    // 4 MiB to stdout, far more than a pipe holds, from a task no one reads
    // live; a failing task's stderr; a task with a slash in its team name.
    let w = wf("metadata: {name: files}
agents:
  - {name: big, program: 'cat >/dev/null; head -c 4194304 /dev/urandom; echo done >&2'}
  - {name: bad, program: 'cat >/dev/null; echo \"part\"\"ial\"; echo \"it broke\" >&2; exit 3'}
  - {name: quiet, program: 'cat >/dev/null'}
teams:
  - name: t
    agents: [big, bad]
    tasks:
      - {subject: Big, description: x, assign_to: big}
      - {subject: Bad, description: x, assign_to: bad}
  - name: a/b c
    agents: [quiet]
    tasks:
      - {subject: Quiet, description: x, assign_to: quiet}
");
    let sink = MemorySink::new();
    let r = run(
        &w,
        &sink,
        &RunOptions {
            output_dir: Some(outdir.clone()),
            ..opts(3)
        },
    );
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.tasks[0].status, TaskStatus::Completed);
    assert_eq!(r.tasks[1].status, TaskStatus::Failed);
    let ev = sink.events();

    // The layout: DIR/<workflow id>/<team>--<task id>.{stdout,stderr}.
    let wf_dir = outdir.join(&r.workflow_id);
    let mut names: Vec<String> = std::fs::read_dir(&wf_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let id = &r.workflow_id;
    assert_eq!(
        names,
        [
            format!("a_b_c--task-{id}-3.stderr"),
            format!("a_b_c--task-{id}-3.stdout"),
            format!("t--task-{id}-1.stderr"),
            format!("t--task-{id}-1.stdout"),
            format!("t--task-{id}-2.stderr"),
            format!("t--task-{id}-2.stdout"),
        ]
    );

    for (event, subject) in [
        ("task.completed", "Big"),
        ("task.failed", "Bad"),
        ("task.completed", "Quiet"),
    ] {
        let e = &ev[find(&ev, event, subject)];
        let [out, err] = task_output_paths(&outdir, id, s(e, "team"), s(e, "task_id"));
        let team = if s(e, "team") == "t" { "t" } else { "a_b_c" };
        let base = format!("{team}--{}", s(e, "task_id"));
        assert_eq!(out, wf_dir.join(format!("{base}.stdout")));
        assert_eq!(err, wf_dir.join(format!("{base}.stderr")));
        for (path, field) in [(&out, "stdout"), (&err, "stderr")] {
            let len = std::fs::metadata(path).unwrap().len();
            assert_eq!(n(e, &format!("{field}_bytes")), len, "{subject} {field}");
            assert_eq!(
                s(e, &format!("{field}_sha256")),
                python_sha256(path),
                "{subject} {field}"
            );
        }
        let report = r.tasks.iter().find(|t| t.subject == subject).unwrap();
        assert_eq!(report.stdout.as_ref().unwrap().path.as_ref(), Some(&out));
        assert_eq!(
            report.stdout.as_ref().unwrap().sha256,
            s(e, "stdout_sha256")
        );
    }
    let big = &ev[find(&ev, "task.completed", "Big")];
    assert_eq!(n(big, "stdout_bytes"), 4_194_304);
    assert_eq!(n(big, "stderr_bytes"), 5);
    let bad = &ev[find(&ev, "task.failed", "Bad")];
    assert_eq!(
        std::fs::read(wf_dir.join(format!("t--task-{id}-2.stderr"))).unwrap(),
        b"it broke\n"
    );
    assert_eq!(s(bad, "stderr_tail"), "it broke\n");
    let quiet = &ev[find(&ev, "task.completed", "Quiet")];
    // SHA-256 of nothing.
    assert_eq!(
        s(quiet, "stdout_sha256"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // The output itself stays out of the log.
    let log = serde_json::to_string(&ev.iter().map(|e| &e.payload).collect::<Vec<_>>()).unwrap();
    assert!(!log.contains("partial"), "{log}");
}

#[test]
fn hashes_are_recorded_without_an_output_dir() {
    let dir = scratch("hashes");
    let w = wf("metadata: {name: hashes}
agents:
  - {name: a, program: 'cat >/dev/null; echo hello world; printf \"warn\\n\" >&2'}
  - {name: d, runtime: docker, program: 'true'}
teams:
  - name: t
    agents: [a, d]
    tasks:
      - {subject: Hello, description: x, assign_to: a}
      - {subject: Docker, description: x, assign_to: d}
");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(2));
    assert_eq!(r.tasks[0].status, TaskStatus::Completed);
    let ev = sink.events();
    let hello = &ev[find(&ev, "task.completed", "Hello")];
    assert_eq!(n(hello, "stdout_bytes"), 12);
    assert_eq!(
        s(hello, "stdout_sha256"),
        python_sha256_of(b"hello world\n", &dir)
    );
    assert_eq!(n(hello, "stderr_bytes"), 5);
    assert_eq!(s(hello, "stderr_sha256"), python_sha256_of(b"warn\n", &dir));
    assert_eq!(r.tasks[0].stdout.as_ref().unwrap().path, None);
    // A task whose program never ran has no output to account for.
    let docker = &ev[find(&ev, "task.failed", "Docker")];
    for key in [
        "stdout_bytes",
        "stdout_sha256",
        "stderr_bytes",
        "stderr_sha256",
    ] {
        assert_eq!(docker.payload.get(key), Some(&Value::Null), "{key}");
    }
}

#[test]
fn a_dry_run_records_no_output() {
    let w = wf("metadata: {name: dry}
agents:
  - {name: a, program: 'echo hi'}
teams:
  - name: t
    agents: [a]
    tasks:
      - {subject: Hello, description: x, assign_to: a}
");
    let sink = MemorySink::new();
    let live = Arc::new(Recorder::default());
    let r = run(
        &w,
        &sink,
        &RunOptions {
            dry_run: true,
            ..with_live(&live, 1)
        },
    );
    assert_eq!(r.outcome, Outcome::Completed);
    let ev = sink.events();
    let done = &ev[find(&ev, "task.completed", "Hello")];
    assert_eq!(done.payload.get("stdout_sha256"), Some(&Value::Null));
    assert!(live.writes.lock().unwrap().is_empty());
}

#[test]
fn a_program_that_leaves_a_writer_behind_does_not_hold_up_its_task() {
    // The background sleep keeps the pipes open after `sh` exits.
    let dir = scratch("writer-behind");
    let pidfile = dir.join("pid");
    let w = wf(&format!(
        "metadata: {{name: bg}}
agents:
  - {{name: a, program: 'cat >/dev/null; echo started; sleep 600 & echo $! > {}; echo left'}}
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: Leaves, description: x, assign_to: a}}
",
        pidfile.display()
    ));
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(1));
    // The run is over while the writer it left behind still runs: the task
    // ended with `sh`, not with the last holder of its pipes.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    // SAFETY: ends the test's own background sleep.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(alive, "the run waited for the background writer {pid}");
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let ev = sink.events();
    let e = &ev[find(&ev, "task.completed", "Leaves")];
    assert_eq!(n(e, "stdout_bytes"), "started\nleft\n".len() as u64);
}
