//! Runs a workflow: provisioning events, a dependency-aware parallel
//! scheduler over the local runtime, timeout, cancellation, teardown, and the
//! audit trail of all of it.
//!
//! # Event order
//!
//! As in telemachy's executor: `workflow.started`; `agent.created` for each
//! agent; for each team `team.created` followed by `task.submitted` for each of
//! its tasks; then task events as tasks run (`task.started`, then one of
//! `task.completed`, `task.failed`, `task.skipped`); then one of
//! `workflow.completed`, `workflow.failed`, `workflow.cancelled`; then, if
//! the teardown policy says so, `team.deleted` for each team and
//! `agent.deleted` for each agent. Every submitted task gets exactly one
//! terminal event. See `docs/audit-log.md` for the payloads.
//!
//! # Scheduling
//!
//! A task becomes ready when every task it is blocked by has completed; ready
//! tasks start in file order, at most `max_parallel` at a time. A task whose
//! dependency failed or was skipped is skipped. A dry run provisions and runs
//! nothing, and emits exactly what a successful real run with `max_parallel =
//! 1` would: tasks in topological order, ties broken by file order.
//!
//! # Teardown (telemachy's rule)
//!
//! `on_completion` tears down after `workflow.completed`; `on_failure` after
//! `workflow.failed` (failed tasks, timeout, audit failure); `never` never. A
//! cancelled run is not torn down under any policy (left for inspection).
//! Teardown releases nothing on the local runtime; it is recorded for parity
//! with telemachy.
//!
//! # Stopping
//!
//! On timeout, cancellation, or an audit failure under fail-closed, no new
//! task starts; running task programs get SIGTERM on their process group, then
//! SIGKILL after `grace`. Tasks that never started are skipped with the reason.
//!
//! # Task output
//!
//! A task's stdout and stderr are pipes, each drained by a reader thread
//! (`process.rs`): every byte is counted and hashed (SHA-256, recorded in
//! `task.completed` / `task.failed` as `stdout_bytes`, `stdout_sha256`,
//! `stderr_bytes`, `stderr_sha256`), copied in full to
//! [`task_output_paths`] when `output_dir` is set, and handed, as whole
//! lines prefixed `<team>/<task subject> | `, to `live_output`
//! ([`crate::output`]). A task ends once its program has exited and its
//! pipes are read to the end, or 500 ms after the exit if something it
//! left behind still holds them; what comes later is not taken.

mod process;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::audit::{AuditPolicy, AuditReceipt, AuditSink, Auditor};
use crate::cancel::CancelToken;
use crate::output::{LiveOutput, OutputDigest, escaped, file_safe};
use crate::workflow::{Agent, Task, TaskRef, Team, Teardown, Workflow};
use process::{Launch, Spawned, describe_exit};

/// How often running programs are polled (cancel wakes the scheduler at once).
const POLL: Duration = Duration::from_millis(10);

/// Options for one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Emit the events of a successful run without running anything.
    pub dry_run: bool,
    /// Most tasks running at once (0 is treated as 1).
    pub max_parallel: usize,
    /// Overrides the workflow's `timeout_seconds` when set.
    pub timeout: Option<Duration>,
    /// What an audit sink failure does.
    pub policy: AuditPolicy,
    /// Set by the binary's SIGINT/SIGTERM handling.
    pub cancel: CancelToken,
    /// Time between SIGTERM and SIGKILL when stopping running tasks.
    pub grace: Duration,
    /// How much of a failed task's stderr goes into its report and event.
    pub stderr_tail_bytes: usize,
    /// Where task output goes, line by line and prefixed with
    /// `<team>/<task subject> | `, while tasks run (`None`: nowhere; see
    /// [`crate::output::TerminalOutput`]).
    pub live_output: Option<Arc<dyn LiveOutput>>,
    /// Put before the task's name in live lines, as `<label>:<team>/<task
    /// subject> | ` (for telling apart workflows that run at once).
    pub output_label: Option<String>,
    /// Keep each task's full stdout and stderr under this directory, as
    /// `<dir>/<workflow id>/<team>--<task id>.stdout` and `.stderr` (team
    /// names made file-name safe: see [`task_output_paths`]).
    pub output_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    /// Not a dry run, one task per available core, the workflow's own
    /// timeout, fail-closed, 5 s grace, 4 KiB stderr tail.
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            max_parallel: std::thread::available_parallelism().map_or(1, |n| n.get()),
            timeout: None,
            policy: AuditPolicy::FailClosed,
            cancel: CancelToken::new(),
            grace: Duration::from_secs(5),
            stderr_tail_bytes: 4096,
            live_output: None,
            output_label: None,
            output_dir: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every task completed.
    Completed,
    /// A task failed or was skipped.
    Failed,
    /// The cancel token fired.
    Cancelled,
    /// The timeout expired.
    TimedOut,
    /// The audit sink failed under fail-closed.
    AuditFailed,
}

impl Outcome {
    /// Lower-case name (`completed`, `failed`, `cancelled`, `timed-out`, `audit-failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed-out",
            Outcome::AuditFailed => "audit-failed",
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Its program exited 0 (or, in a dry run, it would have run).
    Completed,
    /// Its program failed, could not start, or was terminated.
    Failed,
    /// It never started (a dependency did not complete, or the run stopped).
    Skipped,
}

impl TaskStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }
}

/// What happened to one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// Team name.
    pub team: String,
    /// Task subject.
    pub subject: String,
    /// Task id used in the audit log.
    pub task_id: String,
    /// Assigned agent.
    pub agent: String,
    /// Final status.
    pub status: TaskStatus,
    /// Run time of its program, if it started.
    pub duration: Option<Duration>,
    /// Exit code of its program, if it exited normally.
    pub exit_code: Option<i32>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// End of its stdout (up to `stderr_tail_bytes`).
    pub stdout_tail: String,
    /// End of its stderr (up to `stderr_tail_bytes`).
    pub stderr_tail: String,
    /// Size and SHA-256 of its stdout (and its file), if its program ran.
    pub stdout: Option<OutputDigest>,
    /// Size and SHA-256 of its stderr (and its file), if its program ran.
    pub stderr: Option<OutputDigest>,
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// How the run ended.
    pub outcome: Outcome,
    /// Every task of the workflow, in file order.
    pub tasks: Vec<TaskReport>,
    /// Some event could not be recorded (and the run went on: fail-open).
    pub audit_degraded: bool,
    /// Distinct audit failure messages, in order.
    pub audit_errors: Vec<String>,
    /// Number of events the sink failed to record.
    pub audit_lost: u64,
    /// The run's workflow id (`dry-run-` prefixed for dry runs).
    pub workflow_id: String,
    /// `metadata.name`.
    pub spec_name: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Wall time of the run.
    pub duration: Duration,
    /// Receipt of the last recorded event.
    pub last_receipt: Option<AuditReceipt>,
    /// The error of `workflow.failed`, or why the run was cancelled.
    pub error: Option<String>,
    /// Whether teardown events were emitted.
    pub torn_down: bool,
}

impl RunReport {
    /// Process exit code: 0 completed, 1 failed or timed out, 130 cancelled,
    /// 3 audit failure under fail-closed. (2, an invalid workflow, is the
    /// binary's.) Degraded auditing under fail-open does not change it.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Completed => 0,
            Outcome::Failed | Outcome::TimedOut => 1,
            Outcome::Cancelled => 130,
            Outcome::AuditFailed => 3,
        }
    }

    /// Number of tasks with this status.
    pub fn count(&self, status: TaskStatus) -> usize {
        self.tasks.iter().filter(|t| t.status == status).count()
    }
}

/// Why the run stopped early.
#[derive(Debug, Clone)]
enum Stop {
    Cancelled,
    TimedOut(Duration),
    Audit(String),
}

impl Stop {
    fn reason(&self, spec_name: &str) -> String {
        match self {
            Stop::Cancelled => "workflow cancelled".to_string(),
            Stop::TimedOut(t) => format!(
                "Workflow '{spec_name}' exceeded its execution timeout of {}s",
                secs(*t)
            ),
            Stop::Audit(m) => format!("audit sink failed: {m}"),
        }
    }
}

/// A task as scheduled.
struct Node<'w> {
    team: &'w Team,
    team_id: String,
    task: &'w Task,
    /// `None` only for a hand-built workflow whose `assign_to` is unknown.
    agent: Option<&'w Agent>,
    agent_id: String,
    id: String,
    deps: Vec<usize>,
    dependents: Vec<usize>,
}

/// A started task: a program, or a result known at start (dry run, or a
/// task that could not start).
enum Running {
    Program(Spawned),
    Done(Finished),
}

/// A task's end, before it is reported.
struct Finished {
    ok: bool,
    exit_code: Option<i32>,
    duration: Option<Duration>,
    error: Option<String>,
    stdout_tail: String,
    stderr_tail: String,
    /// stdout and stderr, if a program ran.
    outputs: Option<[OutputDigest; 2]>,
}

impl Finished {
    fn failed(error: String) -> Self {
        Finished {
            ok: false,
            exit_code: None,
            duration: Some(Duration::ZERO),
            error: Some(error),
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            outputs: None,
        }
    }
}

/// Run `workflow`, recording events in `sink`. Never panics on task or sink
/// failures; everything that happened is in the report.
pub fn run(workflow: &Workflow, sink: &dyn AuditSink, opts: &RunOptions) -> RunReport {
    let workflow_id = if opts.dry_run {
        format!("dry-run-{}", random_hex8())
    } else {
        random_hex8()
    };
    Runner::new(workflow, sink, opts, workflow_id).run()
}

/// State of one run.
struct Runner<'a> {
    wf: &'a Workflow,
    opts: &'a RunOptions,
    audit: Auditor<'a>,
    workflow_id: String,
    started: Instant,
    nodes: Vec<Node<'a>>,
    reports: Vec<TaskReport>,
    /// Task has been submitted (so it is owed a terminal event).
    submitted: Vec<bool>,
    /// Task has its terminal event.
    finished: Vec<bool>,
    unmet: Vec<usize>,
    ready: BTreeSet<usize>,
    running: Vec<(usize, Running)>,
    stop: Option<Stop>,
    term_sent: Option<Instant>,
    kill_sent: bool,
    agents_created: usize,
    teams_created: usize,
}

impl<'a> Runner<'a> {
    fn new(
        wf: &'a Workflow,
        sink: &'a dyn AuditSink,
        opts: &'a RunOptions,
        workflow_id: String,
    ) -> Self {
        let dry = opts.dry_run;
        let prefix = |kind: &str, name: &str| {
            if dry {
                format!("dry-run-{kind}-{name}")
            } else {
                format!("{kind}-{workflow_id}-{name}")
            }
        };
        let refs: Vec<TaskRef> = wf.task_refs();
        let mut nodes: Vec<Node> = refs
            .iter()
            .enumerate()
            .map(|(g, r)| {
                let team = &wf.teams[r.team];
                let task = wf.task(*r);
                Node {
                    team,
                    team_id: prefix("team", &team.name),
                    task,
                    agent: wf.agent(&task.assign_to),
                    agent_id: prefix("agent", &task.assign_to),
                    id: prefix("task", &(g + 1).to_string()),
                    deps: Vec::new(),
                    dependents: Vec::new(),
                }
            })
            .collect();
        for (g, deps) in wf.dependency_indices().into_iter().enumerate() {
            for d in &deps {
                nodes[*d].dependents.push(g);
            }
            nodes[g].deps = deps;
        }
        let reports = nodes
            .iter()
            .map(|n| TaskReport {
                team: n.team.name.clone(),
                subject: n.task.subject.clone(),
                task_id: n.id.clone(),
                agent: n.task.assign_to.clone(),
                status: TaskStatus::Skipped,
                duration: None,
                exit_code: None,
                error: Some("not submitted".to_string()),
                stdout_tail: String::new(),
                stderr_tail: String::new(),
                stdout: None,
                stderr: None,
            })
            .collect();
        let n = nodes.len();
        Runner {
            wf,
            opts,
            audit: Auditor::new(sink, opts.policy, &workflow_id),
            workflow_id,
            started: Instant::now(),
            unmet: nodes.iter().map(|x| x.deps.len()).collect(),
            nodes,
            reports,
            submitted: vec![false; n],
            finished: vec![false; n],
            ready: BTreeSet::new(),
            running: Vec::new(),
            stop: None,
            term_sent: None,
            kill_sent: false,
            agents_created: 0,
            teams_created: 0,
        }
    }

    /// Emit an event; under fail-closed a failure stops the run.
    fn emit(&mut self, event_type: &str, payload: Map<String, Value>) -> bool {
        let ok = self.audit.emit(event_type, payload);
        if !ok && self.audit.policy() == AuditPolicy::FailClosed && self.stop.is_none() {
            let msg = self.audit.errors.last().cloned().unwrap_or_default();
            self.stop = Some(Stop::Audit(msg));
        }
        ok
    }

    fn run(mut self) -> RunReport {
        let wf = self.wf;
        let timeout = self.opts.timeout.or_else(|| {
            wf.timeout_seconds
                .and_then(|t| Duration::try_from_secs_f64(t).ok())
        });
        self.emit(
            "workflow.started",
            obj(json!({
                "spec_name": wf.name(),
                "agents": wf.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
                "teams": wf.teams.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
                "teardown": wf.teardown.as_str(),
                "dry_run": self.opts.dry_run,
                "timeout_seconds": timeout.map(secs),
            })),
        );
        self.provision();
        self.schedule(timeout);
        self.finish()
    }

    /// agent.created, then team.created + task.submitted per team.
    fn provision(&mut self) {
        let wf = self.wf;
        for agent in &wf.agents {
            if self.stop.is_some() {
                return;
            }
            let id = self.agent_id(&agent.name);
            self.emit(
                "agent.created",
                obj(json!({
                    "agent_name": agent.name,
                    "agent_id": id,
                    "runtime": agent.runtime.as_str(),
                    "program": agent.program,
                    "model": agent.model,
                    "working_dir": agent.working_dir,
                })),
            );
            self.agents_created += 1;
        }
        let mut g = 0;
        for team in &wf.teams {
            if self.stop.is_some() {
                return;
            }
            let team_id = self.team_id(&team.name);
            self.emit(
                "team.created",
                obj(json!({
                    "team_name": team.name,
                    "team_id": team_id,
                    "members": team.agents,
                })),
            );
            self.teams_created += 1;
            for task in &team.tasks {
                if self.stop.is_some() {
                    return;
                }
                let node = &self.nodes[g];
                let blocked_by_ids: Vec<&str> = node
                    .deps
                    .iter()
                    .map(|d| self.nodes[*d].id.as_str())
                    .collect();
                let payload = obj(json!({
                    "team_id": team_id,
                    "team": team.name,
                    "task_subject": task.subject,
                    "task_id": node.id,
                    "assign_to": task.assign_to,
                    "blocked_by": task.blocked_by,
                    "blocked_by_ids": blocked_by_ids,
                }));
                self.emit("task.submitted", payload);
                // Submitted even if the record failed: it is owed an end event.
                self.submitted[g] = true;
                self.reports[g].error = None;
                if self.unmet[g] == 0 {
                    self.ready.insert(g);
                }
                g += 1;
            }
        }
    }

    /// The scheduler loop: start ready tasks, reap ended ones, stop on
    /// cancel/timeout/audit failure.
    fn schedule(&mut self, timeout: Option<Duration>) {
        let max = if self.opts.dry_run {
            1
        } else {
            self.opts.max_parallel.max(1)
        };
        let deadline = timeout.map(|t| (self.started + t, t));
        loop {
            let mut progressed = self.reap();

            if self.stop.is_none() {
                if self.opts.cancel.is_cancelled() {
                    self.stop = Some(Stop::Cancelled);
                } else if let Some((at, t)) = deadline
                    && Instant::now() >= at
                {
                    self.stop = Some(Stop::TimedOut(t));
                }
            }

            if self.stop.is_some() {
                self.terminate_running();
            } else {
                while self.running.len() < max {
                    let Some(g) = self.ready.pop_first() else {
                        break;
                    };
                    self.start(g);
                    progressed = true;
                    if self.stop.is_some() {
                        break;
                    }
                }
            }

            if self.running.is_empty() && (self.stop.is_some() || self.ready.is_empty()) {
                return;
            }
            if !progressed {
                match deadline {
                    _ if self.stop.is_some() => std::thread::sleep(POLL),
                    Some((at, _)) => {
                        let left = at.saturating_duration_since(Instant::now());
                        self.opts.cancel.wait_timeout(POLL.min(left));
                    }
                    None => {
                        self.opts.cancel.wait_timeout(POLL);
                    }
                }
            }
        }
    }

    /// Emit task.started and launch the task (or settle it at once).
    fn start(&mut self, g: usize) {
        let node = &self.nodes[g];
        let payload = obj(json!({
            "workflow_id": self.workflow_id,
            "team": node.team.name,
            "team_id": node.team_id,
            "task_subject": node.task.subject,
            "task_id": node.id,
            "assign_to": node.task.assign_to,
            "agent_id": node.agent_id,
        }));
        if !self.emit("task.started", payload) && self.stop.is_some() {
            // Fail-closed: no unaudited work. The task is skipped at the end.
            return;
        }
        let node = &self.nodes[g];
        let running = if self.opts.dry_run {
            Running::Done(Finished {
                ok: true,
                exit_code: None,
                duration: None,
                error: None,
                stdout_tail: String::new(),
                stderr_tail: String::new(),
                outputs: None,
            })
        } else if let Some(agent) = node.agent {
            let launch = Launch {
                agent,
                stdin: &node.task.description,
                env: vec![
                    ("TASK_SUBJECT", node.task.subject.clone()),
                    ("TASK_ID", node.id.clone()),
                    ("TEAM", node.team.name.clone()),
                    ("AGENT", agent.name.clone()),
                    ("WORKFLOW_ID", self.workflow_id.clone()),
                ],
                tag: format!("{}-{}", self.workflow_id, g + 1),
                // Names come from the workflow file: escaped like the lines.
                prefix: escaped(&format!(
                    "{}{}/{} | ",
                    self.opts
                        .output_label
                        .as_ref()
                        .map_or(String::new(), |l| format!("{l}:")),
                    node.team.name,
                    node.task.subject
                )),
                live: self.opts.live_output.clone(),
                files: self.opts.output_dir.as_ref().map(|dir| {
                    task_output_paths(dir, &self.workflow_id, &node.team.name, &node.id)
                }),
                tail_bytes: self.opts.stderr_tail_bytes,
            };
            match process::spawn(&launch) {
                Ok(p) => Running::Program(p),
                Err(e) => Running::Done(Finished::failed(e)),
            }
        } else {
            Running::Done(Finished::failed(format!(
                "assign_to names unknown agent `{}`",
                node.task.assign_to
            )))
        };
        self.running.push((g, running));
    }

    /// Collect every task that has ended; true if any did.
    fn reap(&mut self) -> bool {
        let mut ended = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            let exit = match &mut self.running[i].1 {
                Running::Done(_) => Ok(None),
                Running::Program(p) => match p.try_wait(self.term_sent.is_some()) {
                    Ok(None) => {
                        i += 1;
                        continue;
                    }
                    other => other,
                },
            };
            let (g, r) = self.running.remove(i);
            ended.push((g, r, exit));
        }
        let any = !ended.is_empty();
        for (g, r, exit) in ended {
            let f = match r {
                Running::Done(f) => f,
                Running::Program(p) => self.settle(p, exit),
            };
            self.end_task(g, f);
        }
        any
    }

    /// Turn an ended program into a result.
    fn settle(&mut self, mut p: Spawned, exit: std::io::Result<Option<process::Exit>>) -> Finished {
        if self.term_sent.is_some() {
            // Stopping: take any stragglers in its group down too.
            p.signal_group(libc::SIGKILL);
        }
        let (stdout_tail, stderr_tail) = p.tails();
        let outputs = Some(p.close_output());
        match exit {
            Ok(Some(exit)) => {
                let code = exit.status.code();
                let ok = exit.status.success();
                let error = (!ok).then(|| {
                    let what = describe_exit(exit.status);
                    match (&self.stop, self.term_sent) {
                        (Some(s), Some(_)) => {
                            format!("terminated: {} ({what})", s.reason(self.wf.name()))
                        }
                        _ => what,
                    }
                });
                Finished {
                    ok,
                    exit_code: code,
                    duration: Some(exit.duration),
                    error,
                    stdout_tail,
                    stderr_tail,
                    outputs,
                }
            }
            Ok(None) => Finished::failed("program state lost".to_string()),
            Err(e) => Finished {
                stdout_tail,
                stderr_tail,
                outputs,
                ..Finished::failed(format!("cannot wait for the program: {e}"))
            },
        }
    }

    /// Record a task's end and release or skip its dependents.
    fn end_task(&mut self, g: usize, f: Finished) {
        self.finished[g] = true;
        let node = &self.nodes[g];
        let duration = f.duration.map_or(0.0, secs);
        let (event, mut payload) = if f.ok {
            (
                "task.completed",
                obj(json!({
                    "workflow_id": self.workflow_id,
                    "team": node.team.name,
                    "task_subject": node.task.subject,
                    "task_id": node.id,
                    "exit_code": f.exit_code,
                    "duration_seconds": duration,
                })),
            )
        } else {
            (
                "task.failed",
                obj(json!({
                    "workflow_id": self.workflow_id,
                    "team": node.team.name,
                    "task_subject": node.task.subject,
                    "task_id": node.id,
                    "error": f.error,
                    "exit_code": f.exit_code,
                    "duration_seconds": duration,
                    "stderr_tail": f.stderr_tail,
                })),
            )
        };
        add_output_fields(&mut payload, f.outputs.as_ref());
        self.emit(event, payload);
        let report = &mut self.reports[g];
        report.status = if f.ok {
            TaskStatus::Completed
        } else {
            TaskStatus::Failed
        };
        report.duration = f.duration;
        report.exit_code = f.exit_code;
        report.error = f.error;
        report.stdout_tail = f.stdout_tail;
        report.stderr_tail = f.stderr_tail;
        if let Some([out, err]) = f.outputs {
            report.stdout = Some(out);
            report.stderr = Some(err);
        }

        if f.ok {
            for j in self.nodes[g].dependents.clone() {
                self.unmet[j] -= 1;
                if self.unmet[j] == 0 && self.submitted[j] && !self.finished[j] {
                    self.ready.insert(j);
                }
            }
        } else if self.stop.is_none() {
            self.skip_dependents(g);
        }
        // When stopping, what is left is skipped with the stop reason (finish).
    }

    /// Skip everything downstream of a task that did not complete.
    fn skip_dependents(&mut self, g: usize) {
        let mut queue = vec![g];
        while let Some(cause) = queue.pop() {
            let verb = if self.reports[cause].status == TaskStatus::Failed {
                "failed"
            } else {
                "was skipped"
            };
            let reason = format!("blocked_by \"{}\" {verb}", self.nodes[cause].task.subject);
            let mut deps = self.nodes[cause].dependents.clone();
            deps.sort_unstable();
            for j in deps.into_iter().rev() {
                if self.submitted[j] && !self.finished[j] {
                    self.skip(j, reason.clone());
                    queue.push(j);
                }
            }
        }
    }

    /// Emit task.skipped for a task that never started.
    fn skip(&mut self, g: usize, reason: String) {
        self.finished[g] = true;
        self.ready.remove(&g);
        let node = &self.nodes[g];
        let payload = obj(json!({
            "workflow_id": self.workflow_id,
            "team": node.team.name,
            "task_subject": node.task.subject,
            "task_id": node.id,
            "reason": reason,
        }));
        self.emit("task.skipped", payload);
        let report = &mut self.reports[g];
        report.status = TaskStatus::Skipped;
        report.error = Some(reason);
    }

    /// SIGTERM running programs once, SIGKILL after the grace period.
    fn terminate_running(&mut self) {
        let now = Instant::now();
        let sig = match self.term_sent {
            None => {
                self.term_sent = Some(now);
                libc::SIGTERM
            }
            Some(t) if !self.kill_sent && now.duration_since(t) >= self.opts.grace => {
                self.kill_sent = true;
                libc::SIGKILL
            }
            Some(_) => return,
        };
        for (_, r) in &self.running {
            if let Running::Program(p) = r {
                p.signal_group(sig);
            }
        }
    }

    /// Skip what never ran, emit the workflow's end, tear down.
    fn finish(mut self) -> RunReport {
        let wf = self.wf;
        let stop_reason = self.stop.as_ref().map(|s| s.reason(wf.name()));
        let leftover: Vec<usize> = (0..self.nodes.len())
            .filter(|g| self.submitted[*g] && !self.finished[*g])
            .collect();
        for g in leftover {
            let reason = stop_reason
                .clone()
                .unwrap_or_else(|| "never became ready".to_string());
            self.skip(g, reason);
        }
        // An audit failure is the run's reason, said once in the summary.
        let not_submitted = match &self.stop {
            Some(Stop::Audit(_)) => "not submitted: the audit sink failed".to_string(),
            _ => format!("not submitted: {}", stop_reason.clone().unwrap_or_default()),
        };
        for g in 0..self.nodes.len() {
            if !self.submitted[g] {
                self.reports[g].error = Some(not_submitted.clone());
            }
        }

        let duration = secs(self.started.elapsed());
        let failed = self.count(TaskStatus::Failed);
        let skipped = self.count(TaskStatus::Skipped);
        // The status the workflow.* event announces.
        let (event, error) = match &self.stop {
            Some(Stop::Cancelled) => ("workflow.cancelled", stop_reason.clone()),
            Some(_) => ("workflow.failed", stop_reason.clone()),
            None if failed + skipped > 0 => (
                "workflow.failed",
                Some(format!(
                    "One or more tasks failed during workflow execution ({failed} failed, \
                     {skipped} skipped)"
                )),
            ),
            None => ("workflow.completed", None),
        };
        let payload = match event {
            "workflow.failed" => obj(json!({
                "spec_name": wf.name(),
                "error": error,
                "duration_seconds": duration,
            })),
            _ => obj(json!({
                "spec_name": wf.name(),
                "duration_seconds": duration,
            })),
        };
        self.emit(event, payload);

        let tear = match wf.teardown {
            Teardown::OnCompletion => event == "workflow.completed",
            Teardown::OnFailure => event == "workflow.failed",
            Teardown::Never => false,
        };
        if tear {
            for team in wf.teams.iter().take(self.teams_created) {
                let id = self.team_id(&team.name);
                self.emit(
                    "team.deleted",
                    obj(json!({"team_name": team.name, "team_id": id})),
                );
            }
            for agent in wf.agents.iter().take(self.agents_created) {
                let id = self.agent_id(&agent.name);
                self.emit(
                    "agent.deleted",
                    obj(json!({"agent_name": agent.name, "agent_id": id})),
                );
            }
        }

        let outcome = if self.audit.any_lost() && self.audit.policy() == AuditPolicy::FailClosed {
            Outcome::AuditFailed
        } else {
            match (&self.stop, event) {
                (Some(Stop::Cancelled), _) => Outcome::Cancelled,
                (Some(Stop::TimedOut(_)), _) => Outcome::TimedOut,
                (Some(Stop::Audit(_)), _) => Outcome::AuditFailed,
                (None, "workflow.completed") => Outcome::Completed,
                (None, _) => Outcome::Failed,
            }
        };
        let error = match (outcome, error) {
            (Outcome::AuditFailed, e) if !matches!(self.stop, Some(Stop::Audit(_))) => {
                let msg = self.audit.errors.first().cloned().unwrap_or_default();
                Some(match e {
                    Some(e) => format!("audit sink failed: {msg} (and: {e})"),
                    None => format!("audit sink failed: {msg}"),
                })
            }
            (_, e) => e,
        };
        RunReport {
            outcome,
            audit_degraded: self.audit.any_lost(),
            audit_errors: std::mem::take(&mut self.audit.errors),
            audit_lost: self.audit.lost,
            workflow_id: self.workflow_id.clone(),
            spec_name: wf.name().to_string(),
            dry_run: self.opts.dry_run,
            duration: self.started.elapsed(),
            last_receipt: self.audit.last_receipt.take(),
            error,
            torn_down: tear,
            tasks: self.reports,
        }
    }

    fn count(&self, status: TaskStatus) -> usize {
        (0..self.nodes.len())
            .filter(|g| self.submitted[*g] && self.reports[*g].status == status)
            .count()
    }

    fn agent_id(&self, name: &str) -> String {
        if self.opts.dry_run {
            format!("dry-run-agent-{name}")
        } else {
            format!("agent-{}-{name}", self.workflow_id)
        }
    }

    fn team_id(&self, name: &str) -> String {
        if self.opts.dry_run {
            format!("dry-run-team-{name}")
        } else {
            format!("team-{}-{name}", self.workflow_id)
        }
    }
}

/// Where `output_dir` keeps a task's stdout and stderr:
/// `<dir>/<workflow id>/<team>--<task id>.stdout` and `.stderr`, the team
/// name made file-name safe (ASCII letters, digits, `.`, `_`, `-` kept,
/// anything else `_`). Task ids are unique within a run, so files never
/// collide; the audit event's `workflow_id`, `team` and `task_id` find them.
pub fn task_output_paths(
    dir: &std::path::Path,
    workflow_id: &str,
    team: &str,
    task_id: &str,
) -> [PathBuf; 2] {
    let base = dir.join(file_safe(workflow_id)).join(format!(
        "{}--{}",
        file_safe(team),
        file_safe(task_id)
    ));
    ["stdout", "stderr"].map(|ext| base.with_extension(ext))
}

/// The task event's output fields: `stdout_bytes`, `stdout_sha256`,
/// `stderr_bytes`, `stderr_sha256` (null when no program ran), and
/// `output_error` when an output file is incomplete.
fn add_output_fields(payload: &mut Map<String, Value>, outputs: Option<&[OutputDigest; 2]>) {
    for (i, name) in ["stdout", "stderr"].into_iter().enumerate() {
        let d = outputs.map(|o| &o[i]);
        payload.insert(format!("{name}_bytes"), json!(d.map(|d| d.bytes)));
        payload.insert(
            format!("{name}_sha256"),
            json!(d.map(|d| d.sha256.as_str())),
        );
    }
    let errors: Vec<&str> = outputs
        .into_iter()
        .flatten()
        .filter_map(|d| d.file_error.as_deref())
        .collect();
    if !errors.is_empty() {
        payload.insert("output_error".into(), json!(errors.join("; ")));
    }
}

/// A JSON object literal as a payload map.
fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Seconds, rounded to milliseconds.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Eight random hex digits, from the standard library's per-process random keys.
fn random_hex8() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_eight_hex_digits_and_vary() {
        let a = random_hex8();
        let b = random_hex8();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn exit_codes() {
        let mut r = RunReport {
            outcome: Outcome::Completed,
            tasks: vec![],
            audit_degraded: true,
            audit_errors: vec![],
            audit_lost: 1,
            workflow_id: "w".into(),
            spec_name: "s".into(),
            dry_run: false,
            duration: Duration::ZERO,
            last_receipt: None,
            error: None,
            torn_down: false,
        };
        let expect = [
            (Outcome::Completed, 0),
            (Outcome::Failed, 1),
            (Outcome::TimedOut, 1),
            (Outcome::Cancelled, 130),
            (Outcome::AuditFailed, 3),
        ];
        for (o, code) in expect {
            r.outcome = o;
            assert_eq!(r.exit_code(), code, "{o:?}");
        }
    }

    #[test]
    fn secs_rounds_to_millis() {
        assert_eq!(secs(Duration::from_micros(1_234_567)), 1.235);
    }
}
