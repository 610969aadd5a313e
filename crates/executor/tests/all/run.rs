//! Real runs on the local runtime with `sh` programs.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{FlakySink, TERMINAL, find, opts, s, scratch, types, wf};
use chainsink_executor::{
    AuditPolicy, MemorySink, Outcome, RunOptions, TaskStatus, run, workflow::Workflow,
};
use serde_json::{Value, json};

/// One agent `a` running `program`, one team `t` with the given task lines.
fn one_agent(program: &str, tasks: &str, extra: &str) -> Workflow {
    wf(&format!(
        "metadata: {{name: test}}
agents:
  - name: a
    program: '{program}'
teams:
  - name: t
    agents: [a]
    tasks:
{tasks}
{extra}
"
    ))
}

fn task(subject: &str, blocked_by: &[&str]) -> String {
    let deps: Vec<String> = blocked_by.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "      - {{subject: \"{subject}\", description: \"do {subject}\", assign_to: a, \
         blocked_by: [{}]}}\n",
        deps.join(", ")
    )
}

#[test]
fn dependencies_run_in_order() {
    let dir = scratch("order");
    let d = dir.display();
    // B only succeeds if A's file already exists; C likewise for B.
    let w = wf(&format!(
        "metadata: {{name: order}}
agents:
  - {{name: first, program: 'cat >/dev/null; touch {d}/a'}}
  - {{name: second, program: 'cat >/dev/null; test -e {d}/a && touch {d}/b'}}
  - {{name: third, program: 'cat >/dev/null; test -e {d}/b'}}
teams:
  - name: t
    agents: [first, second, third]
    tasks:
      - {{subject: C, description: x, assign_to: third, blocked_by: [B]}}
      - {{subject: B, description: x, assign_to: second, blocked_by: [A]}}
      - {{subject: A, description: x, assign_to: first}}
"
    ));
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(8));
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let ev = sink.events();
    assert!(find(&ev, "task.completed", "A") < find(&ev, "task.started", "B"));
    assert!(find(&ev, "task.completed", "B") < find(&ev, "task.started", "C"));
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn independent_tasks_really_overlap() {
    let dir = scratch("overlap");
    // Each task announces itself, then waits (bounded) for the other one:
    // both succeed only if they run at the same time.
    let program = format!(
        "cat >/dev/null; touch {d}/\"$TASK_SUBJECT\"; i=0; \
         while [ $(ls {d} | wc -l) -lt 2 ] && [ $i -lt 40 ]; do sleep 0.1; i=$((i+1)); done; \
         [ $(ls {d} | wc -l) -ge 2 ]",
        d = dir.display()
    );
    let tasks = format!("{}{}", task("left", &[]), task("right", &[]));
    let w = one_agent(&program, &tasks, "");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(2));
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let ev = sink.events();
    let first_end = find(&ev, "task.completed", "left").min(find(&ev, "task.completed", "right"));
    assert!(find(&ev, "task.started", "left") < first_end);
    assert!(find(&ev, "task.started", "right") < first_end);

    // Control: with max_parallel 1 they cannot meet, so the first one fails.
    let _serial = scratch("overlap-serial");
    let program = program
        .replace("overlap", "overlap-serial")
        .replace("40", "5");
    let w = one_agent(&program, &tasks, "");
    let r = run(&w, &MemorySink::new(), &opts(1));
    assert_eq!(r.tasks[0].status, TaskStatus::Failed, "{:#?}", r.tasks);
}

#[test]
fn failure_skips_dependents_and_reports_stderr_and_exit_code() {
    let program = "cat >/dev/null; if [ \"$TASK_SUBJECT\" = bad ]; then echo oops >&2; exit 3; fi";
    let tasks = [
        task("bad", &[]),
        task("child", &["bad"]),
        task("grandchild", &["child"]),
        task("independent", &[]),
    ]
    .concat();
    let w = one_agent(program, &tasks, "");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(4));
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.exit_code(), 1);
    let st: Vec<_> = r.tasks.iter().map(|t| t.status).collect();
    use TaskStatus::*;
    assert_eq!(st, [Failed, Skipped, Skipped, Completed]);
    assert_eq!(r.tasks[0].exit_code, Some(3));
    assert_eq!(r.tasks[0].stderr_tail, "oops\n");

    let ev = sink.events();
    let failed = &ev[find(&ev, "task.failed", "bad")];
    assert_eq!(failed.payload["exit_code"], json!(3));
    assert_eq!(s(failed, "stderr_tail"), "oops\n");
    assert_eq!(s(failed, "error"), "exited with code 3");
    assert_eq!(s(failed, "workflow_id"), r.workflow_id);
    let skipped = &ev[find(&ev, "task.skipped", "child")];
    assert_eq!(s(skipped, "reason"), "blocked_by \"bad\" failed");
    let skipped = &ev[find(&ev, "task.skipped", "grandchild")];
    assert_eq!(s(skipped, "reason"), "blocked_by \"child\" was skipped");
    // Skipped tasks never start.
    assert!(
        !ev.iter()
            .any(|e| e.event_type == "task.started" && s(e, "task_subject") == "child")
    );
    let wf_failed = ev
        .iter()
        .find(|e| e.event_type == "workflow.failed")
        .unwrap();
    assert!(s(wf_failed, "error").contains("One or more tasks failed"));
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if gone(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn timeout_kills_the_process_group_and_fails_the_workflow() {
    let dir = scratch("timeout");
    let pidfile = dir.join("pid");
    // The sleep is a grandchild in the task's process group.
    let finished = dir.join("finished");
    let program = format!(
        "cat >/dev/null; sleep 30 & echo $! > {}; wait; touch {}",
        pidfile.display(),
        finished.display()
    );
    let tasks = [task("slow", &[]), task("after", &["slow"])].concat();
    let w = one_agent(&program, &tasks, "timeout_seconds: 1\nteardown: on_failure");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(2));
    // Killed at the timeout, not left to finish its sleep.
    assert!(!finished.exists(), "the task ran to its end");
    assert_eq!(r.outcome, Outcome::TimedOut);
    assert_eq!(r.exit_code(), 1);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(pid), "sleep {pid} survived the timeout");

    let ev = sink.events();
    let t = types(&ev);
    let failed = &ev[find(&ev, "task.failed", "slow")];
    assert!(s(failed, "error").starts_with("terminated: Workflow 'test' exceeded"));
    let skipped = &ev[find(&ev, "task.skipped", "after")];
    assert!(s(skipped, "reason").contains("exceeded its execution timeout of 1s"));
    let wf_failed = ev
        .iter()
        .find(|e| e.event_type == "workflow.failed")
        .unwrap();
    assert_eq!(
        s(wf_failed, "error"),
        "Workflow 'test' exceeded its execution timeout of 1s"
    );
    // on_failure: a timed-out run is torn down.
    assert_eq!(&t[t.len() - 2..], ["team.deleted", "agent.deleted"]);
    assert!(r.torn_down);
}

#[test]
fn options_timeout_overrides_the_workflow() {
    let dir = scratch("options-timeout");
    let finished = dir.join("finished");
    let w = one_agent(
        &format!("cat >/dev/null; sleep 30; touch {}", finished.display()),
        &task("slow", &[]),
        "timeout_seconds: 600",
    );
    let r = run(
        &w,
        &MemorySink::new(),
        &RunOptions {
            timeout: Some(Duration::from_millis(300)),
            ..opts(1)
        },
    );
    assert_eq!(r.outcome, Outcome::TimedOut);
    // Stopped at the options' 0.3 s, not the workflow's 600 s.
    assert!(!finished.exists(), "the task ran to its end");
    assert_eq!(
        r.error.as_deref(),
        Some("Workflow 'test' exceeded its execution timeout of 0.3s")
    );
}

#[test]
fn cancel_terminates_tasks_and_emits_workflow_cancelled() {
    let dir = scratch("cancel");
    let finished = dir.join("finished");
    let tasks = [task("long", &[]), task("later", &["long"])].concat();
    let w = one_agent(
        &format!("cat >/dev/null; sleep 30; touch {}", finished.display()),
        &tasks,
        "teardown: on_failure",
    );
    let sink = MemorySink::new();
    let o = opts(2);
    let token = o.cancel.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        token.cancel();
    });
    let r = run(&w, &sink, &o);
    canceller.join().unwrap();
    assert!(!finished.exists(), "the task ran to its end");
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(r.exit_code(), 130);
    let ev = sink.events();
    let t = types(&ev);
    assert_eq!(
        &t[t.len() - 3..],
        ["task.failed", "task.skipped", "workflow.cancelled"]
    );
    assert!(
        s(&ev[find(&ev, "task.failed", "long")], "error")
            .starts_with("terminated: workflow cancelled")
    );
    assert_eq!(
        s(&ev[find(&ev, "task.skipped", "later")], "reason"),
        "workflow cancelled"
    );
    let last = ev.last().unwrap();
    assert_eq!(s(last, "spec_name"), "test");
    // Cancelled runs are not torn down, whatever the policy.
    assert!(!r.torn_down);
}

#[test]
fn cancel_escalates_to_sigkill_after_grace() {
    // The program (and its sleep) ignore SIGTERM.
    let w = one_agent(
        "trap \"\" TERM; cat >/dev/null; sleep 30",
        &task("stubborn", &[]),
        "",
    );
    let o = RunOptions {
        grace: Duration::from_millis(300),
        ..opts(1)
    };
    o.cancel.cancel(); // cancelled before anything starts: nothing runs
    let r = run(&w, &MemorySink::new(), &o);
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(r.tasks[0].status, TaskStatus::Skipped);

    let o = RunOptions {
        grace: Duration::from_millis(300),
        ..opts(1)
    };
    let token = o.cancel.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        token.cancel();
    });
    let r = run(&w, &MemorySink::new(), &o);
    canceller.join().unwrap();
    // The task's error below ("killed by signal 9") shows how it ended.
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(r.tasks[0].status, TaskStatus::Failed);
    assert!(
        r.tasks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("killed by signal 9"),
        "{:?}",
        r.tasks[0].error
    );
}

/// Event types after workflow.* for a run of `program` under `teardown`.
fn teardown_events(program: &str, teardown: &str) -> (Outcome, Vec<String>) {
    let w = wf(&format!(
        "metadata: {{name: td}}
agents: [{{name: a, program: '{program}'}}, {{name: b, program: '{program}'}}]
teams:
  - {{name: t1, agents: [a], tasks: [{{subject: x, description: d, assign_to: a}}]}}
  - {{name: t2, agents: [b], tasks: [{{subject: y, description: d, assign_to: b}}]}}
teardown: {teardown}
"
    ));
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(2));
    let ev = sink.events();
    let end = ev
        .iter()
        .position(|e| e.event_type.starts_with("workflow.") && e.event_type != "workflow.started")
        .unwrap();
    let after = ev[end + 1..]
        .iter()
        .map(|e| {
            let name = e
                .payload
                .get("team_name")
                .or(e.payload.get("agent_name"))
                .and_then(Value::as_str)
                .unwrap();
            format!("{} {name}", e.event_type)
        })
        .collect();
    assert_eq!(r.torn_down, !ev[end + 1..].is_empty());
    (r.outcome, after)
}

#[test]
fn teardown_policies() {
    let all = vec![
        "team.deleted t1",
        "team.deleted t2",
        "agent.deleted a",
        "agent.deleted b",
    ];
    let none: Vec<&str> = vec![];
    let ok = "cat >/dev/null";
    let bad = "cat >/dev/null; exit 1";
    assert_eq!(
        teardown_events(ok, "on_completion"),
        (Outcome::Completed, to(&all))
    );
    assert_eq!(
        teardown_events(bad, "on_completion"),
        (Outcome::Failed, to(&none))
    );
    assert_eq!(
        teardown_events(ok, "on_failure"),
        (Outcome::Completed, to(&none))
    );
    assert_eq!(
        teardown_events(bad, "on_failure"),
        (Outcome::Failed, to(&all))
    );
    assert_eq!(
        teardown_events(ok, "never"),
        (Outcome::Completed, to(&none))
    );
    assert_eq!(teardown_events(bad, "never"), (Outcome::Failed, to(&none)));
}

fn to(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn unstartable_tasks_fail_clearly_and_the_run_continues() {
    let dir = scratch("unstartable");
    let w = wf(&format!(
        "metadata: {{name: u}}
agents:
  - {{name: missing, program: chainsink-no-such-program-xyz}}
  - {{name: nodir, program: 'true', working_dir: {d}/absent}}
  - {{name: boxed, program: 'true', runtime: docker, docker_image: alpine}}
  - {{name: fine, program: 'cat > {d}/fine'}}
teams:
  - name: t
    agents: [missing, nodir, boxed, fine]
    tasks:
      - {{subject: m, description: d, assign_to: missing}}
      - {{subject: n, description: d, assign_to: nodir}}
      - {{subject: b, description: d, assign_to: boxed}}
      - {{subject: f, description: hello, assign_to: fine}}
",
        d = dir.display()
    ));
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(1));
    assert_eq!(r.outcome, Outcome::Failed);
    let st: Vec<_> = r.tasks.iter().map(|t| t.status).collect();
    use TaskStatus::*;
    assert_eq!(st, [Failed, Failed, Failed, Completed]);
    let err = |i: usize| r.tasks[i].error.clone().unwrap();
    assert!(
        err(0).contains("exited with code 127: command not found"),
        "{}",
        err(0)
    );
    assert!(
        r.tasks[0]
            .stderr_tail
            .contains("chainsink-no-such-program-xyz")
    );
    assert!(
        err(1).contains("does not exist or is not a directory"),
        "{}",
        err(1)
    );
    assert_eq!(
        err(2),
        "docker runtime not available here; use runtime: local"
    );
    assert_eq!(std::fs::read_to_string(dir.join("fine")).unwrap(), "hello");
    let ev = sink.events();
    assert_eq!(
        s(&ev[find(&ev, "task.failed", "b")], "error"),
        "docker runtime not available here; use runtime: local"
    );
}

#[test]
fn programs_get_stdin_env_and_working_dir() {
    let dir = scratch("env");
    let out = dir.join("out");
    let program = format!(
        "cat > {o}.stdin; pwd > {o}.pwd; \
         echo \"$TASK_SUBJECT|$TASK_ID|$TEAM|$AGENT|$WORKFLOW_ID\" > {o}.env",
        o = out.display()
    );
    let w = wf(&format!(
        "metadata: {{name: e}}
agents: [{{name: worker, program: '{program}', working_dir: {d}}}]
teams:
  - {{name: crew, agents: [worker], tasks: [{{subject: the job, description: 'line one', assign_to: worker}}]}}
",
        d = dir.display()
    ));
    let r = run(&w, &MemorySink::new(), &opts(1));
    assert_eq!(r.outcome, Outcome::Completed, "{:#?}", r.tasks);
    let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", out.display())).unwrap();
    assert_eq!(read("stdin"), "line one");
    assert_eq!(
        Path::new(read("pwd").trim()).canonicalize().unwrap(),
        dir.canonicalize().unwrap()
    );
    let id = &r.workflow_id;
    assert_eq!(
        read("env"),
        format!("the job|task-{id}-1|crew|worker|{id}\n")
    );
    assert_eq!(r.tasks[0].task_id, format!("task-{id}-1"));
}

#[test]
fn stderr_tail_is_bounded() {
    let w = one_agent(
        "cat >/dev/null; i=0; while [ $i -lt 500 ]; do echo xxxxxxxxxxxxxxxxxxxx >&2; i=$((i+1)); done; echo THE-END >&2; exit 1",
        &task("noisy", &[]),
        "",
    );
    let sink = MemorySink::new();
    let r = run(
        &w,
        &sink,
        &RunOptions {
            stderr_tail_bytes: 64,
            ..opts(1)
        },
    );
    let t = &r.tasks[0];
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.stderr_tail.len(), 64);
    assert!(t.stderr_tail.ends_with("THE-END\n"));
    let ev = sink.events();
    assert_eq!(
        s(&ev[find(&ev, "task.failed", "noisy")], "stderr_tail"),
        t.stderr_tail
    );
}

fn marker_workflow(dir: &Path) -> Workflow {
    let tasks = [task("one", &[]), task("two", &["one"])].concat();
    one_agent(
        &format!("cat >/dev/null; touch {}/\"$TASK_SUBJECT\"", dir.display()),
        &tasks,
        "",
    )
}

#[test]
fn fail_closed_stops_before_unaudited_work() {
    // The very first task.started cannot be recorded: nothing may run.
    let dir = scratch("closed-start");
    let sink = FlakySink::new(|t, _| t == "task.started");
    let r = run(&marker_workflow(&dir), &sink, &opts(2));
    assert_eq!(r.outcome, Outcome::AuditFailed);
    assert_eq!(r.exit_code(), 3);
    assert!(!dir.join("one").exists() && !dir.join("two").exists());
    assert_eq!(r.audit_errors, ["sink unavailable: disk full"]);
    assert!(r.error.as_deref().unwrap().starts_with("audit sink failed"));
    assert!(r.tasks.iter().all(|t| t.status == TaskStatus::Skipped));
    // The end of the story is still offered to the sink.
    let t = sink.inner.event_types();
    assert_eq!(
        &t[t.len() - 3..],
        ["task.skipped", "task.skipped", "workflow.failed"]
    );

    // A failure mid-run (one's task.completed) stops before "two" starts.
    let dir = scratch("closed-mid");
    let sink = FlakySink::new(|t, _| t == "task.completed");
    let r = run(&marker_workflow(&dir), &sink, &opts(2));
    assert_eq!(r.outcome, Outcome::AuditFailed);
    assert!(dir.join("one").exists());
    assert!(!dir.join("two").exists());
    assert_eq!(r.tasks[1].status, TaskStatus::Skipped);
}

#[test]
fn fail_closed_failure_at_the_last_event_still_fails_the_run() {
    let dir = scratch("closed-last");
    let sink = FlakySink::new(|t, _| t == "workflow.completed");
    let r = run(&marker_workflow(&dir), &sink, &opts(2));
    assert_eq!(r.outcome, Outcome::AuditFailed);
    assert_eq!(r.exit_code(), 3);
    assert!(r.audit_degraded);
}

#[test]
fn fail_open_continues_and_marks_the_report_degraded() {
    let dir = scratch("open");
    // Every task event fails (same kind of failure each time).
    let sink = FlakySink::new(|t, _| t.starts_with("task."));
    let r = run(
        &marker_workflow(&dir),
        &sink,
        &RunOptions {
            policy: AuditPolicy::FailOpen,
            ..opts(2)
        },
    );
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.exit_code(), 0);
    assert!(dir.join("one").exists() && dir.join("two").exists());
    assert!(r.audit_degraded);
    assert_eq!(r.audit_lost, 6); // 2 submitted + 2 started + 2 completed
    assert_eq!(r.audit_errors, ["sink unavailable: disk full"]);
    let summary = r.render_summary(Path::new("/tmp/audit.jsonl"), None);
    assert!(summary.contains("!! AUDITING DEGRADED: 6 event(s) could not be recorded"));
    assert!(
        sink.inner
            .event_types()
            .iter()
            .all(|t| !t.starts_with("task."))
    );
    assert!(r.last_receipt.is_some());
}

#[test]
fn two_hundred_tasks_each_end_exactly_once() {
    // Task i depends on task i-10 (when i >= 10): ten chains of twenty.
    let tasks: String = (0..200)
        .map(|i| {
            if i >= 10 {
                task(&format!("t{i}"), &[&format!("t{}", i - 10)])
            } else {
                task(&format!("t{i}"), &[])
            }
        })
        .collect();
    let w = one_agent("cat >/dev/null", &tasks, "");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(8));
    assert_eq!(r.outcome, Outcome::Completed);
    let ev = sink.events();
    let mut ends = std::collections::HashMap::new();
    let (mut running, mut peak) = (0i32, 0i32);
    for e in &ev {
        if e.event_type == "task.started" {
            running += 1;
            peak = peak.max(running);
        }
        if TERMINAL.contains(&e.event_type.as_str()) {
            running -= 1;
            *ends.entry(s(e, "task_id").to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(ends.len(), 200);
    assert!(ends.values().all(|n| *n == 1));
    assert!(peak <= 8, "peak concurrency {peak}");
    assert!(peak >= 2, "tasks never overlapped");
    assert_eq!(r.count(TaskStatus::Completed), 200);
}

#[test]
fn every_record_carries_the_workflow_id() {
    let w = one_agent("cat >/dev/null", &task("x", &[]), "");
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(1));
    assert_eq!(r.workflow_id.len(), 8);
    let ev = sink.events();
    assert!(
        ev.iter()
            .all(|e| e.workflow_id.as_deref() == Some(r.workflow_id.as_str()))
    );
    assert_eq!(
        types(&ev),
        [
            "workflow.started",
            "agent.created",
            "team.created",
            "task.submitted",
            "task.started",
            "task.completed",
            "workflow.completed",
            "team.deleted",
            "agent.deleted"
        ]
    );
    assert_eq!(s(&ev[1], "agent_id"), format!("agent-{}-a", r.workflow_id));
    assert_eq!(r.last_receipt.as_ref().map(|x| x.seq), Some(9));
}

#[test]
fn shipped_workflows_complete() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    for name in ["example.yaml", "hello-world.yaml", "fanout.yaml"] {
        let w = Workflow::from_path(&dir.join(name)).unwrap();
        let sink = MemorySink::new();
        let r = run(&w, &sink, &opts(4));
        assert_eq!(r.outcome, Outcome::Completed, "{name}: {:#?}", r.tasks);
        println!("{}\n", r.render_summary(Path::new("audit.jsonl"), None));
        if name == "fanout.yaml" {
            // The three shards overlap; the merge starts after all of them.
            let ev = sink.events();
            let first_shard_end = ["Shard 1", "Shard 2", "Shard 3"]
                .map(|s| find(&ev, "task.completed", s))
                .into_iter()
                .min()
                .unwrap();
            for s in ["Shard 1", "Shard 2", "Shard 3"] {
                assert!(find(&ev, "task.started", s) < first_shard_end);
                assert!(find(&ev, "task.completed", s) < find(&ev, "task.started", "Merge"));
            }
            assert!(r.tasks[4].stdout_tail.contains("Shard 2 by worker"));
        }
    }
}

#[test]
fn hand_built_invalid_workflow_neither_panics_nor_hangs() {
    let tasks = [task("x", &[]), task("y", &[]), task("z", &["y"])].concat();
    let mut w = one_agent("cat >/dev/null", &tasks, "");
    // Public fields allow what validation forbids: an unknown agent, a cycle
    // and a negative timeout.
    w.teams[0].tasks[0].assign_to = "ghost".into();
    w.teams[0].tasks[1].blocked_by = vec!["z".into()];
    w.timeout_seconds = Some(-1.0);
    let sink = MemorySink::new();
    let r = run(&w, &sink, &opts(2));
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.tasks[0].error.as_deref(),
        Some("assign_to names unknown agent `ghost`")
    );
    assert_eq!(r.tasks[1].error.as_deref(), Some("never became ready"));
    assert_eq!(r.tasks[2].status, TaskStatus::Skipped);
}
