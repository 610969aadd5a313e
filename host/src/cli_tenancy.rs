//! (Binary only.) The runtime the commands build, with its component cache,
//! and `chainsink run` over several workflows at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;

use chainsink::audit::{BrokenAudit, SinkAudit, Unaudited};
use chainsink::cache::ComponentCache;
use chainsink::tenants::{SinkSource, Tenant, TenantSpec, Tenants};
use chainsink::{LoadError, RuntimeConfig, SinkRuntime};
use chainsink_executor::{AuditPolicy, AuditSink, RunReport, Workflow};

use super::{AuditArgs, EXIT_AUDIT, RunArgs, load_workflow};

/// Where compiled sink components are cached.
#[derive(Args, Clone, Debug)]
pub(crate) struct CacheArgs {
    /// Cache compiled sink components here (default: $XDG_CACHE_HOME/chainsink,
    /// else ~/.cache/chainsink).
    #[arg(long, env = "CHAINSINK_CACHE_DIR", value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Compile sink components in this process only; read and write no cache
    /// (wins over --cache-dir and CHAINSINK_CACHE_DIR).
    #[arg(long)]
    pub(crate) no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, if any.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(ComponentCache::default_dir)
    }

    /// A runtime from `config` with this cache; if the cache cannot be used,
    /// says why on stderr and goes on without it (a cache is never worth
    /// failing an audit for).
    pub(crate) fn runtime(&self, config: RuntimeConfig) -> Result<SinkRuntime> {
        let config = RuntimeConfig {
            cache_dir: self.dir(),
            ..config
        };
        match SinkRuntime::with_config(config.clone()) {
            Err(LoadError::Cache(e)) => {
                eprintln!("chainsink: warning: {e}; going on without a cache");
                Ok(SinkRuntime::with_config(RuntimeConfig {
                    cache_dir: None,
                    ..config
                })?)
            }
            other => Ok(other?),
        }
    }
}

impl AuditArgs {
    /// The runtime for up to `sinks` live sink instances, with these limits
    /// and the component cache.
    pub(crate) fn runtime(&self, sinks: usize) -> Result<SinkRuntime> {
        self.cache.runtime(RuntimeConfig {
            limits: self.limits(),
            max_sinks: u32::try_from(sinks.max(1)).unwrap_or(u32::MAX),
            ..RuntimeConfig::default()
        })
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

/// `chainsink run A.yaml B.yaml ... [--log-dir DIR]`: runs the workflows
/// concurrently, each audited by its own sink instance (one runtime, one
/// engine, one compiled component) into its own log,
/// `DIR/<metadata.name>.jsonl`.
///
/// Every file is checked before anything runs: an invalid workflow, two
/// workflows with the same name, or a name that cannot name a file stops
/// everything (exit 2). Each workflow's audit policy applies to its own sink
/// only: a sink that fails stops (fail-closed) or degrades (fail-open) its
/// own workflow, never the others. The exit status is the worst of the runs'
/// (130 cancelled > 3 audit failure > 1 failed or timed out > 0 completed).
pub(crate) fn run_many(args: RunArgs) -> Result<ExitCode> {
    let mut workflows: Vec<(PathBuf, Workflow)> = Vec::new();
    let mut invalid = false;
    for path in &args.workflows {
        match load_workflow(path) {
            Ok(wf) => workflows.push((path.clone(), wf)),
            Err(_) => invalid = true,
        }
    }
    if invalid {
        eprintln!("chainsink: nothing was run: fix the invalid workflow(s) above");
        return Ok(ExitCode::from(2));
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for (path, wf) in &workflows {
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
    if workflows.len() > 1 && args.audit.log.is_some() {
        bail!(
            "{} workflows cannot share one --log (AUDIT_LOG_PATH): each gets its own sink \
             and chain; give --log-dir DIR instead, for DIR/<workflow name>.jsonl",
            workflows.len()
        );
    }
    let logs: Vec<Option<PathBuf>> = match &args.log_dir {
        Some(dir) => workflows
            .iter()
            .map(|(_, wf)| log_file_name(wf.name()).map(|f| Some(dir.join(f))))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        None => workflows.iter().map(|_| args.audit.log.clone()).collect(),
    };

    let options = args.run_options()?;

    // One runtime for every sink; each workflow's sink is a tenant.
    let audited = logs.iter().any(Option::is_some);
    let tenants = if audited {
        match args.audit.runtime(workflows.len()) {
            Ok(runtime) => Some(Tenants::new(Arc::new(runtime))),
            Err(e) if args.audit_policy == AuditPolicy::FailClosed => {
                eprintln!("chainsink: error: cannot start the audit runtime: {e:#}");
                eprintln!(
                    "chainsink: no workflow was started (--audit-policy fail-closed); fix the \
                     sink, or run with --audit-policy fail-open"
                );
                return Ok(ExitCode::from(EXIT_AUDIT));
            }
            Err(e) => {
                eprintln!(
                    "chainsink: AUDITING DEGRADED: cannot start the audit runtime: {e:#}; \
                     running anyway (--audit-policy fail-open)"
                );
                None
            }
        }
    } else {
        eprintln!(
            "chainsink: AUDIT_LOG_PATH is not set and no --log or --log-dir was given: these \
             runs are NOT audited"
        );
        None
    };

    /// What audits one workflow.
    enum Audit {
        None,
        Sink(Arc<Tenant>),
        Broken(String),
        NotStarted,
    }
    let source = match &args.audit.sink {
        Some(path) => SinkSource::File(path.clone()),
        None => SinkSource::Default,
    };
    let audits: Vec<Audit> = workflows
        .iter()
        .zip(&logs)
        .map(|((_, wf), log)| match (log, &tenants) {
            (None, _) => Audit::None,
            (Some(_), None) => Audit::Broken("the audit runtime could not start".into()),
            (Some(log), Some(tenants)) => {
                let spec =
                    TenantSpec::new(wf.name(), log, args.audit.options()).with_sink(source.clone());
                match tenants.open(spec) {
                    Ok(t) => Audit::Sink(t),
                    Err(e) if args.audit_policy == AuditPolicy::FailClosed => {
                        eprintln!("chainsink: error: cannot start the audit sink: {e}");
                        eprintln!(
                            "chainsink: workflow {:?} was NOT started (--audit-policy \
                             fail-closed); fix the log or sink, or run with --audit-policy \
                             fail-open",
                            wf.name()
                        );
                        Audit::NotStarted
                    }
                    Err(e) => {
                        eprintln!(
                            "chainsink: AUDITING DEGRADED: cannot start the audit sink: {e}; \
                             running {:?} anyway (--audit-policy fail-open)",
                            wf.name()
                        );
                        Audit::Broken(e.to_string())
                    }
                }
            }
        })
        .collect();

    let reports: Vec<Option<RunReport>> = std::thread::scope(|s| {
        let runs: Vec<_> = workflows
            .iter()
            .zip(&audits)
            .map(|((_, wf), audit)| {
                let options = &options;
                s.spawn(move || {
                    let sink: Box<dyn AuditSink + '_> = match audit {
                        Audit::NotStarted => return None,
                        Audit::None => Box::new(Unaudited),
                        Audit::Sink(t) => Box::new(SinkAudit::new(t.sink())),
                        Audit::Broken(reason) => Box::new(BrokenAudit {
                            reason: format!("audit sink unavailable: {reason}"),
                        }),
                    };
                    Some(chainsink_executor::run(wf, sink.as_ref(), options))
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a workflow run panicked"))
            .collect()
    });

    let mut worst = 0;
    let mut outcomes = Vec::new();
    for ((((path, wf), audit), log), report) in
        workflows.iter().zip(&audits).zip(&logs).zip(&reports)
    {
        let code = match report {
            None => i32::from(EXIT_AUDIT),
            Some(report) => {
                let mut head = None;
                if let Audit::Sink(t) = audit {
                    let closed = tenants.as_ref().map(|ts| ts.close(t.name()));
                    match closed {
                        Some(Ok(h)) => head = h.hash,
                        Some(Err(e)) => eprintln!(
                            "chainsink: AUDITING DEGRADED: closing the audit sink of {:?} \
                             failed: {e}",
                            wf.name()
                        ),
                        None => {}
                    }
                }
                let shown = log
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("(none: not audited)"));
                let summary = report.render_summary(&shown, head.as_deref());
                println!("== {} ({})", wf.name(), path.display());
                println!("{}\n", summary.trim_end());
                report.exit_code()
            }
        };
        if severity(code) > severity(worst) {
            worst = code;
        }
        outcomes.push(format!("{} {code}", wf.name()));
    }
    println!(
        "{} workflows: {}; exit status {worst} (the worst of the runs)",
        workflows.len(),
        outcomes.join(", ")
    );
    Ok(ExitCode::from(u8::try_from(worst).unwrap_or(1)))
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
