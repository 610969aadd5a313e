//! Dry runs: the exact event sequence of a successful run, nothing executed.

use std::path::Path;

use crate::common::{opts, scratch, types, wf};
use chainsink_executor::{MemorySink, Outcome, RunOptions, TaskStatus, Workflow, run};
use serde_json::{Value, json};

fn example() -> Workflow {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/example.yaml");
    Workflow::from_path(&path).unwrap()
}

#[test]
fn dry_run_of_example_emits_the_full_sequence() {
    let sink = MemorySink::new();
    let report = run(
        &example(),
        &sink,
        &RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
    );
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(report.exit_code(), 0);
    assert!(report.dry_run);
    assert!(
        report.workflow_id.starts_with("dry-run-"),
        "{}",
        report.workflow_id
    );
    assert_eq!(report.workflow_id.len(), "dry-run-".len() + 8);

    let ev = sink.events();
    const A1: &str = "Analyse repository structure";
    const A2: &str = "Refactor highest-priority module";
    const A3: &str = "Write unit tests for refactored module";
    let expected: Vec<(&str, Value)> = vec![
        (
            "workflow.started",
            json!({"spec_name": "codebase-audit", "agents": ["architect", "implementer"],
                   "teams": ["audit-team"], "teardown": "on_completion", "dry_run": true}),
        ),
        (
            "agent.created",
            json!({"agent_name": "architect", "agent_id": "dry-run-agent-architect",
                   "runtime": "local", "model": "claude-opus-4-5", "working_dir": "/tmp"}),
        ),
        (
            "agent.created",
            json!({"agent_name": "implementer", "agent_id": "dry-run-agent-implementer",
                   "runtime": "local", "model": "claude-sonnet-4-5"}),
        ),
        (
            "team.created",
            json!({"team_name": "audit-team", "team_id": "dry-run-team-audit-team",
                   "members": ["architect", "implementer"]}),
        ),
        (
            "task.submitted",
            json!({"team_id": "dry-run-team-audit-team", "task_subject": A1,
                   "task_id": "dry-run-task-1", "assign_to": "architect", "blocked_by": []}),
        ),
        (
            "task.submitted",
            json!({"team_id": "dry-run-team-audit-team", "task_subject": A2,
                   "task_id": "dry-run-task-2", "assign_to": "implementer", "blocked_by": [A1],
                   "blocked_by_ids": ["dry-run-task-1"]}),
        ),
        (
            "task.submitted",
            json!({"team_id": "dry-run-team-audit-team", "task_subject": A3,
                   "task_id": "dry-run-task-3", "assign_to": "implementer", "blocked_by": [A2]}),
        ),
        (
            "task.started",
            json!({"task_subject": A1, "task_id": "dry-run-task-1",
                   "agent_id": "dry-run-agent-architect"}),
        ),
        (
            "task.completed",
            json!({"team": "audit-team", "task_subject": A1, "task_id": "dry-run-task-1"}),
        ),
        ("task.started", json!({"task_subject": A2})),
        ("task.completed", json!({"task_subject": A2})),
        ("task.started", json!({"task_subject": A3})),
        (
            "task.completed",
            json!({"team": "audit-team", "task_subject": A3, "exit_code": null}),
        ),
        ("workflow.completed", json!({"spec_name": "codebase-audit"})),
        (
            "team.deleted",
            json!({"team_name": "audit-team", "team_id": "dry-run-team-audit-team"}),
        ),
        (
            "agent.deleted",
            json!({"agent_name": "architect", "agent_id": "dry-run-agent-architect"}),
        ),
        (
            "agent.deleted",
            json!({"agent_name": "implementer", "agent_id": "dry-run-agent-implementer"}),
        ),
    ];
    assert_eq!(
        types(&ev),
        expected.iter().map(|(t, _)| *t).collect::<Vec<_>>()
    );
    for (i, (e, (_, want))) in ev.iter().zip(&expected).enumerate() {
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(
                e.payload.get(k),
                Some(v),
                "event {i} {} field {k}",
                e.event_type
            );
        }
        // Every record carries the run's workflow id.
        assert_eq!(e.workflow_id.as_deref(), Some(report.workflow_id.as_str()));
    }
    // task.completed carries the run's workflow id in its payload too (telemachy).
    assert_eq!(ev[8].payload["workflow_id"], json!(report.workflow_id));
    assert!(
        report
            .tasks
            .iter()
            .all(|t| t.status == TaskStatus::Completed)
    );
    assert!(report.torn_down);
}

#[test]
fn dry_run_executes_nothing() {
    let dir = scratch("dry-nothing");
    let marker = dir.join("ran");
    let w = wf(&format!(
        "metadata: {{name: d}}
agents: [{{name: a, program: 'touch {m}', working_dir: /nonexistent/dir}}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {{subject: s, description: d, assign_to: a}}
",
        m = marker.display()
    ));
    let sink = MemorySink::new();
    let r = run(
        &w,
        &sink,
        &RunOptions {
            dry_run: true,
            ..opts(4)
        },
    );
    assert_eq!(r.outcome, Outcome::Completed);
    assert!(!marker.exists());
}

/// Key fields of an event, without run-specific ids and times.
fn shape(e: &chainsink_executor::RecordedEvent) -> (String, Option<String>, Option<String>) {
    let get = |k: &str| e.payload.get(k).and_then(Value::as_str).map(str::to_string);
    (
        e.event_type.clone(),
        get("task_subject"),
        get("agent_name").or(get("team_name")),
    )
}

#[test]
fn dry_run_matches_a_real_sequential_run() {
    // Diamond plus an independent task and a cross-team dependency; ties
    // must break by file order, and the join must wait for both branches.
    let w = wf("
metadata: {name: shape}
agents: [{name: a, program: 'cat >/dev/null'}, {name: b, program: 'cat >/dev/null'}]
teams:
  - name: t1
    agents: [a, b]
    tasks:
      - {subject: join, description: d, assign_to: a, blocked_by: [left, right]}
      - {subject: right, description: d, assign_to: b, blocked_by: [root]}
      - {subject: root, description: d, assign_to: a}
      - {subject: left, description: d, assign_to: a, blocked_by: [root]}
      - {subject: lone, description: d, assign_to: b}
  - name: t2
    agents: [b]
    tasks:
      - {subject: after, description: d, assign_to: b, blocked_by: [join]}
teardown: on_completion
");
    let dry = MemorySink::new();
    run(
        &w,
        &dry,
        &RunOptions {
            dry_run: true,
            ..opts(8)
        },
    );
    let real = MemorySink::new();
    let r = run(&w, &real, &opts(1));
    assert_eq!(r.outcome, Outcome::Completed, "{:?}", r.tasks);
    let dry_shape: Vec<_> = dry.events().iter().map(shape).collect();
    let real_shape: Vec<_> = real.events().iter().map(shape).collect();
    assert_eq!(dry_shape, real_shape);

    // Topological order, ties by file order: root (3rd) is the first task with
    // no dependencies, then right (2nd in file) before left (4th), then join.
    let started: Vec<String> = dry
        .events()
        .iter()
        .filter(|e| e.event_type == "task.started")
        .map(|e| e.payload["task_subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["root", "right", "left", "join", "lone", "after"]);
}
