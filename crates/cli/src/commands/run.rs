//! `chainsink run`: run telemachy/v1 workflows, each audited by its own
//! sink instance.
//!
//! One workflow or many, the path is the same: every workflow is loaded and
//! checked before anything runs, one runtime hosts every sink (each
//! workflow's sink is a tenant of it), the workflows run concurrently, and
//! each gets its summary. Each workflow's audit policy applies to its own
//! sink only: a sink that fails stops (fail-closed) or degrades (fail-open)
//! its own workflow, never the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_executor::{
    AuditPolicy, AuditSink, CancelToken, RunOptions, RunReport, TerminalOutput, Workflow,
};
use chainsink_host::tenants::{SinkSource, Tenant, TenantSpec, Tenants};

use crate::args::{AuditArgs, parse_seconds};
use crate::audit::{BrokenAudit, SinkAudit, Unaudited};
use crate::commands::checkpoint::CheckpointArgs;
use crate::commands::validate::load_workflow;
use crate::policy::{self, OnFailure};

/// Exit status when auditing fails under fail-closed.
pub(crate) const EXIT_AUDIT: u8 = 3;

/// Arguments of `chainsink run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The workflow file(s) (telemachy/v1 YAML); several run concurrently,
    /// each with its own sink instance (exit status: the worst of the runs).
    #[arg(required = true, num_args = 1.., value_name = "WORKFLOW")]
    workflows: Vec<PathBuf>,
    /// Audit each workflow into its own log, DIR/<metadata.name>.jsonl.
    #[arg(long, value_name = "DIR", conflicts_with = "log")]
    log_dir: Option<PathBuf>,
    /// Provision and run nothing; emit the events a successful run would.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    checkpoints: CheckpointArgs,
    /// Most tasks running at once (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_parallel: Option<u64>,
    /// Stop the workflow after this many seconds (overrides timeout_seconds).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// What a sink failure does: fail-closed stops the run, fail-open goes on degraded.
    #[arg(
        long,
        env = "AUDIT_POLICY",
        default_value = "fail-closed",
        value_name = "POLICY"
    )]
    audit_policy: AuditPolicy,
    /// Seconds between SIGTERM and SIGKILL when stopping tasks.
    #[arg(long, default_value = "5", value_name = "SECONDS", value_parser = parse_seconds)]
    grace: Duration,
    /// Keep each task's full stdout and stderr, as
    /// `DIR/<workflow id>/<team>--<task id>.stdout` and `.stderr`.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Print no task output, just the summary (task output is otherwise
    /// streamed live, each line prefixed with `<team>/<task subject> | `).
    #[arg(long)]
    quiet: bool,
    /// Print the result as JSON on stdout instead of the summary: one
    /// object, `{"exit_code": N, "workflows": [...]}`, each workflow with its
    /// outcome, every task, and the audit log's state. Task output is then
    /// not printed (keep it with --output-dir).
    #[arg(long)]
    json: bool,
}

impl RunArgs {
    /// The executor's options, with SIGINT and SIGTERM wired to its cancel token.
    fn run_options(&self) -> Result<RunOptions> {
        let cancel = CancelToken::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, cancel.flag())
                .context("installing signal handlers")?;
        }
        let mut options = RunOptions {
            dry_run: self.dry_run,
            timeout: self.timeout,
            policy: self.audit_policy,
            cancel,
            grace: self.grace,
            live_output: (!self.quiet && !self.json).then(|| Arc::new(TerminalOutput) as _),
            output_dir: self.output_dir.clone(),
            ..RunOptions::default()
        };
        if let Some(n) = self.max_parallel {
            options.max_parallel = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(options)
    }

    /// One workflow, one log given with --log (or none): the plain summary.
    fn single(&self) -> bool {
        self.workflows.len() == 1 && self.log_dir.is_none()
    }

    /// What a workflow is called in messages.
    fn subject(&self, wf: &Workflow) -> String {
        if self.single() {
            "the workflow".into()
        } else {
            format!("workflow {:?}", wf.name())
        }
    }
}

/// What audits one workflow.
enum Audit {
    /// No log configured (said once on stderr).
    None,
    /// Its sink, a tenant of the run's runtime.
    Sink(Arc<Tenant>),
    /// Fail-open without a sink: every event fails with this reason.
    Broken(String),
    /// Fail-closed without a sink: the workflow does not run.
    NotStarted,
}

/// Runs the workflows; the exit status is the worst of the runs'
/// (130 cancelled > 3 audit failure > 1 failed or timed out > 0 completed),
/// or 2 when any workflow is invalid (then nothing runs).
pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    let Some(workflows) = load_all(&args.workflows) else {
        return Ok(ExitCode::from(2));
    };
    check_names(&workflows)?;
    let logs = log_paths(&args, &workflows)?;
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --output-dir {}", dir.display()))?;
    }
    let options = args.run_options()?;
    let tenants = match start_runtime(&args, &workflows, &logs) {
        Ok(tenants) => tenants,
        Err(code) => return Ok(code),
    };
    let audits = open_audits(&args, &workflows, &logs, tenants.as_ref());
    let opened: Vec<_> = audits
        .iter()
        .zip(&logs)
        .map(|(a, log)| log.clone().filter(|_| matches!(a, Audit::Sink(_))))
        .collect();
    let checkpoints = args.checkpoints.start_all(&opened)?;
    let reports = run_all(&workflows, &audits, &options);
    let code = finish(
        &args,
        &workflows,
        &audits,
        &logs,
        &reports,
        tenants.as_ref(),
    );
    // The final checkpoints, once every sink has closed.
    let mut failed = false;
    for c in checkpoints {
        if let Err(e) = c.finish() {
            eprintln!("chainsink: AUDITING DEGRADED: {}", policy::one_line(&e));
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_AUDIT)
    } else {
        code
    })
}

/// Loads every workflow, printing each one's problems; `None` if any is invalid.
fn load_all(paths: &[PathBuf]) -> Option<Vec<(PathBuf, Workflow)>> {
    let loaded: Vec<_> = paths
        .iter()
        .map(|path| load_workflow(path).map(|wf| (path.clone(), wf)))
        .collect();
    if loaded.iter().any(Result::is_err) {
        if paths.len() > 1 {
            eprintln!("chainsink: nothing was run: fix the invalid workflow(s) above");
        }
        return None;
    }
    Some(loaded.into_iter().flatten().collect())
}

/// Each workflow gets its own sink and log, named after it: names must differ.
fn check_names(workflows: &[(PathBuf, Workflow)]) -> Result<()> {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for (path, wf) in workflows {
        if let Some(first) = seen.insert(wf.name(), path) {
            bail!(
                "{} and {} are both named {:?} (metadata.name): each workflow gets its own \
                 sink and log, named after it, so names must differ; nothing was run",
                first.display(),
                path.display(),
                wf.name()
            );
        }
    }
    Ok(())
}

/// Each workflow's log: `DIR/<name>.jsonl` with --log-dir, else --log (one
/// workflow only), else none.
fn log_paths(args: &RunArgs, workflows: &[(PathBuf, Workflow)]) -> Result<Vec<Option<PathBuf>>> {
    if workflows.len() > 1 && args.audit.log.is_some() {
        bail!(
            "{} workflows cannot share one --log (AUDIT_LOG_PATH): each gets its own sink \
             and chain; give --log-dir DIR instead, for DIR/<workflow name>.jsonl",
            workflows.len()
        );
    }
    Ok(match &args.log_dir {
        Some(dir) => workflows
            .iter()
            .map(|(_, wf)| log_file_name(wf.name()).map(|f| Some(dir.join(f))))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        None => {
            if let Some(log) = &args.audit.log {
                crate::args::check_log_dir(log)?;
            }
            workflows.iter().map(|_| args.audit.log.clone()).collect()
        }
    })
}

/// The runtime every sink runs on, or `None` when nothing is audited or
/// (fail-open) the runtime cannot start; `Err` is the exit status when it
/// cannot start under fail-closed.
fn start_runtime(
    args: &RunArgs,
    workflows: &[(PathBuf, Workflow)],
    logs: &[Option<PathBuf>],
) -> Result<Option<Tenants>, ExitCode> {
    if logs.iter().all(Option::is_none) {
        let (given, run) = if args.single() {
            ("--log", "this run is")
        } else {
            ("--log or --log-dir", "these runs are")
        };
        eprintln!(
            "chainsink: AUDIT_LOG_PATH is not set and no {given} was given: {run} NOT audited"
        );
        return Ok(None);
    }
    match args.audit.runtime(workflows.len()) {
        Ok(runtime) => Ok(Some(Tenants::new(Arc::new(runtime)))),
        Err(e) => {
            let subject = if args.single() {
                "the workflow"
            } else {
                "every workflow"
            };
            let error = format!("cannot start the audit runtime: {}", policy::one_line(&e));
            match policy::start_failed(args.audit_policy, subject, &error) {
                OnFailure::Stop => Err(ExitCode::from(EXIT_AUDIT)),
                OnFailure::Degrade(_) => Ok(None),
            }
        }
    }
}

/// Opens each workflow's sink as a tenant, applying the audit policy to
/// those that cannot open.
fn open_audits(
    args: &RunArgs,
    workflows: &[(PathBuf, Workflow)],
    logs: &[Option<PathBuf>],
    tenants: Option<&Tenants>,
) -> Vec<Audit> {
    let source = match &args.audit.sink {
        Some(path) => SinkSource::File(path.clone()),
        None => SinkSource::Default,
    };
    workflows
        .iter()
        .zip(logs)
        .map(|((_, wf), log)| match (log, tenants) {
            (None, _) => Audit::None,
            (Some(_), None) => Audit::Broken("the audit runtime could not start".into()),
            (Some(log), Some(tenants)) => {
                let spec = TenantSpec::new(wf.name(), log, args.audit.options())
                    .with_sink(source.clone())
                    .with_lock_wait(args.audit.lock_wait());
                match tenants.open(spec) {
                    Ok(t) => Audit::Sink(t),
                    Err(e) => {
                        let error = format!("cannot start the audit sink: {e}");
                        match policy::start_failed(args.audit_policy, &args.subject(wf), &error) {
                            OnFailure::Stop => Audit::NotStarted,
                            OnFailure::Degrade(reason) => Audit::Broken(reason),
                        }
                    }
                }
            }
        })
        .collect()
}

/// Runs the workflows concurrently; `None` for one that was not started.
fn run_all(
    workflows: &[(PathBuf, Workflow)],
    audits: &[Audit],
    options: &RunOptions,
) -> Vec<Option<RunReport>> {
    std::thread::scope(|s| {
        let runs: Vec<_> = workflows
            .iter()
            .zip(audits)
            .map(|((_, wf), audit)| {
                // Several workflows at once: live lines say whose they are.
                let options = RunOptions {
                    output_label: (workflows.len() > 1).then(|| wf.name().to_string()),
                    ..options.clone()
                };
                s.spawn(move || {
                    let sink: Box<dyn AuditSink + '_> = match audit {
                        Audit::NotStarted => return None,
                        Audit::None => Box::new(Unaudited),
                        Audit::Sink(t) => Box::new(SinkAudit::new(
                            t.sink(),
                            options.policy == AuditPolicy::FailOpen,
                        )),
                        Audit::Broken(reason) => Box::new(BrokenAudit {
                            reason: format!("audit sink unavailable: {reason}"),
                        }),
                    };
                    Some(chainsink_executor::run(wf, sink.as_ref(), &options))
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a workflow run panicked"))
            .collect()
    })
}

/// Closes each sink, prints each summary, and returns the worst status.
fn finish(
    args: &RunArgs,
    workflows: &[(PathBuf, Workflow)],
    audits: &[Audit],
    logs: &[Option<PathBuf>],
    reports: &[Option<RunReport>],
    tenants: Option<&Tenants>,
) -> ExitCode {
    let mut worst = 0;
    let mut outcomes = Vec::new();
    let mut json = Vec::new();
    for ((((path, wf), audit), log), report) in workflows.iter().zip(audits).zip(logs).zip(reports)
    {
        let code = match report {
            None => {
                json.push(serde_json::json!({
                    "workflow": wf.name(),
                    "file": path.display().to_string(),
                    "outcome": "not-started",
                    "exit_code": EXIT_AUDIT,
                    "error": "the audit sink could not start (--audit-policy fail-closed)",
                }));
                i32::from(EXIT_AUDIT)
            }
            Some(report) if args.json => {
                let head = close(args, wf, audit, tenants, report);
                let mut v = report.to_json(log.as_deref(), head.as_deref());
                v["file"] = path.display().to_string().into();
                json.push(v);
                report.exit_code()
            }
            Some(report) => {
                let head = close(args, wf, audit, tenants, report);
                let shown = log
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("(none: not audited)"));
                let summary = report.render_summary(&shown, head.as_deref());
                if !args.single() {
                    println!("== {} ({})", wf.name(), path.display());
                }
                println!("{}", summary.trim_end());
                if !args.single() {
                    println!();
                }
                report.exit_code()
            }
        };
        if severity(code) > severity(worst) {
            worst = code;
        }
        outcomes.push(format!("{} {code}", wf.name()));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"exit_code": worst, "workflows": json})
        );
    } else if !args.single() {
        println!(
            "{} workflows: {}; exit status {worst} (the worst of the runs)",
            workflows.len(),
            outcomes.join(", ")
        );
    }
    ExitCode::from(u8::try_from(worst).unwrap_or(1))
}

/// Closes a workflow's sink; its head hash, when it closed cleanly. A
/// failure the run's report already holds (a trapped sink fails its close
/// the same way) is not said again.
fn close(
    args: &RunArgs,
    wf: &Workflow,
    audit: &Audit,
    tenants: Option<&Tenants>,
    report: &RunReport,
) -> Option<String> {
    let (Audit::Sink(t), Some(tenants)) = (audit, tenants) else {
        return None;
    };
    match tenants.close(t.name()) {
        Ok(head) => head.hash,
        Err(e) => {
            let text = e.to_string();
            if !report
                .audit_errors
                .iter()
                .any(|r| text.contains(r.as_str()))
            {
                eprintln!(
                    "chainsink: AUDITING DEGRADED: closing the audit sink of {} failed: {text}",
                    args.subject(wf)
                );
            }
            None
        }
    }
}

/// A workflow name that can name a file in `--log-dir`.
fn log_file_name(name: &str) -> Result<String, String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.')
    {
        return Err(format!(
            "workflow name {name:?} cannot name a log file in --log-dir (it must not be empty, \
             start with a dot, or contain a slash); rename metadata.name"
        ));
    }
    Ok(format!("{name}.jsonl"))
}

/// How bad an exit status is: the run's outcome ranks 130 cancelled > 3
/// audit failure > 1 failed or timed out > 0 completed.
fn severity(code: i32) -> u8 {
    match code {
        0 => 0,
        1 => 1,
        3 => 2,
        130 => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_cannot_escape_the_log_dir() {
        assert_eq!(
            log_file_name("nightly-build").unwrap(),
            "nightly-build.jsonl"
        );
        for bad in ["", ".", "..", "../etc/x", "a/b", ".hidden"] {
            assert!(log_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_worst_status_wins() {
        let worst = |codes: &[i32]| {
            codes
                .iter()
                .copied()
                .fold(0, |w, c| if severity(c) > severity(w) { c } else { w })
        };
        assert_eq!(worst(&[0, 1, 0]), 1);
        assert_eq!(worst(&[1, 3, 0]), 3);
        assert_eq!(worst(&[3, 130, 1]), 130);
        assert_eq!(worst(&[0, 0]), 0);
    }
}
