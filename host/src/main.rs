//! The `chainsink` command: a thin layer over the `chainsink` library.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use chainsink::audit::{BrokenAudit, SinkAudit, Unaudited};
use chainsink::verify::{VerifyError, VerifyOptions};
use chainsink::{Actor, Durability, Event, LogFile, Sink, SinkLimits, SinkOptions};
use chainsink_executor::{AuditPolicy, AuditSink, CancelToken, RunOptions, Workflow};

mod cli_inspect;
mod cli_tenancy;

#[derive(Parser)]
#[command(
    name = "chainsink",
    version,
    about = "A workflow executor whose audit trail is a sandboxed wasm sink",
    long_about = "A workflow executor whose audit trail is a sandboxed wasm sink.\n\n\
                  Records form a SHA-256 hash chain, byte-compatible with the telemachy audit log."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write audit records: one from flags, or JSON lines from stdin.
    Emit(EmitArgs),
    /// Check every hash and link of an audit log.
    Verify(VerifyArgs),
    /// Run a telemachy/v1 workflow, auditing every transition.
    Run(RunArgs),
    /// Check a workflow file without running it.
    Validate(ValidateArgs),
    /// Show a sink component's world, size and whether it fits chainsink's.
    Inspect(cli_inspect::InspectArgs),
    /// Write the embedded default sink component to a file, for other hosts.
    ExportSink(ExportSinkArgs),
}

#[derive(Args)]
struct ExportSinkArgs {
    /// Where to write the component (.wasm).
    out: PathBuf,
}

#[derive(Args)]
struct RunArgs {
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
}

#[derive(Args)]
struct ValidateArgs {
    /// The workflow file (telemachy/v1 YAML).
    workflow: PathBuf,
}

/// Where records go and how: flags override the environment.
#[derive(Args, Clone)]
struct AuditArgs {
    /// The audit log (JSON lines). Unset means no audit.
    #[arg(long = "log", env = "AUDIT_LOG_PATH", value_name = "PATH")]
    log: Option<PathBuf>,
    /// Link records with the SHA-256 hash chain.
    #[arg(long, env = "AUDIT_HASH_CHAIN", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    hash_chain: bool,
    /// A sink component (.wasm) to use instead of the embedded default.
    #[arg(long, env = "AUDIT_SINK", value_name = "WASM")]
    sink: Option<PathBuf>,
    /// When records are durable: always (fsync each), batch, or none.
    #[arg(
        long,
        env = "AUDIT_DURABILITY",
        default_value = "always",
        value_name = "MODE"
    )]
    durability: Durability,
    /// The host identity in each record (default: this machine's host name).
    #[arg(long, env = "HOST_ID")]
    host_id: Option<String>,
    /// The user in each record (default: $USER, else $USERNAME).
    #[arg(long)]
    user: Option<String>,
    /// Largest linear memory of the sink, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    sink_memory: usize,
    /// Longest one call into the sink may run, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    sink_timeout: u64,
    /// Fuel (instruction budget) per call into the sink; unset: unmetered.
    #[arg(long, value_name = "UNITS")]
    sink_fuel: Option<u64>,
    /// Largest table of the sink, in elements.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    sink_table_elements: usize,
    /// Most core wasm instances the sink component may create.
    #[arg(long, default_value_t = 64, value_name = "N")]
    sink_instances: usize,
    #[command(flatten)]
    cache: cli_tenancy::CacheArgs,
    /// Wait for another writer to release the log instead of failing.
    #[arg(long)]
    wait_lock: bool,
}

#[derive(Args)]
struct EmitArgs {
    #[command(flatten)]
    audit: AuditArgs,
    /// Event type, such as `deploy.started`.
    #[arg(
        long = "type",
        value_name = "TYPE",
        required_unless_present = "stdin",
        conflicts_with = "stdin"
    )]
    event_type: Option<String>,
    /// The workflow the event belongs to.
    #[arg(long, conflicts_with = "stdin")]
    workflow_id: Option<String>,
    /// The event's fields, as a JSON object.
    #[arg(long, default_value = "{}", conflicts_with = "stdin")]
    payload: String,
    /// Read events as JSON lines on stdin; print one receipt line per event.
    #[arg(long)]
    stdin: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// The log to check.
    log: PathBuf,
    /// Also re-encode every record and require its exact canonical bytes.
    #[arg(long)]
    strict: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Threads that hash records (default: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

/// A number of seconds: finite, not negative (`1`, `0.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (such as 30 or 0.5)"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} seconds is not a duration: give a finite number, 0 or more"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHAINSINK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Emit(args) => emit(args),
        Command::Verify(args) => Ok(verify(&args)),
        Command::Run(args) => run(args),
        Command::Validate(args) => Ok(validate(&args)),
        Command::Inspect(args) => cli_inspect::inspect_command(&args),
        Command::ExportSink(args) => export_sink(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chainsink: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

impl AuditArgs {
    fn options(&self) -> SinkOptions {
        SinkOptions {
            hash_chain: self.hash_chain,
            durability: self.durability,
            actor: Actor {
                host_id: self
                    .host_id
                    .clone()
                    .unwrap_or_else(chainsink::config::default_host_id),
                user: self
                    .user
                    .clone()
                    .unwrap_or_else(chainsink::config::user_from_env),
            },
        }
    }

    fn limits(&self) -> SinkLimits {
        SinkLimits {
            memory_bytes: self.sink_memory << 20,
            call_timeout: Duration::from_millis(self.sink_timeout),
            fuel: self.sink_fuel,
            table_elements: self.sink_table_elements,
            instances: self.sink_instances,
        }
    }

    /// Builds the runtime, loads the sink and opens it on `log`.
    fn open(&self, log: &Path) -> Result<Sink> {
        let runtime = self.runtime(1)?;
        let component = match &self.sink {
            Some(path) => runtime.load_file(path)?,
            None => runtime.default_component()?,
        };
        let wait = if self.wait_lock {
            chainsink::capability::LockWait::Yes
        } else {
            chainsink::capability::LockWait::No
        };
        let file = LogFile::open_with(log, wait)?;
        let sink = runtime
            .open(&component, file, &self.options())
            .with_context(|| format!("opening sink {} on {}", component.name(), log.display()))?;
        Ok(sink)
    }
}

fn emit(args: EmitArgs) -> Result<ExitCode> {
    let Some(log) = args.audit.log.clone() else {
        bail!("no audit log: set AUDIT_LOG_PATH or pass --log PATH");
    };
    let sink = args.audit.open(&log)?;
    if args.stdin {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::stdout().lock();
        let report = chainsink::stream::emit_lines(&sink, &mut BufReader::new(stdin), stdout)?;
        sink.close()?;
        if report.refused > 0 {
            eprintln!(
                "chainsink: {} line(s) refused, {} written; see the error lines on stdout",
                report.refused, report.written
            );
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let event = Event {
        event_type: args.event_type.unwrap_or_default(),
        workflow_id: args.workflow_id,
        payload: args.payload,
        ..Event::default()
    };
    let receipt = sink.emit(&event)?;
    sink.close()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({"seq": receipt.seq, "hash": receipt.hash})
    )?;
    Ok(ExitCode::SUCCESS)
}

fn verify(args: &VerifyArgs) -> ExitCode {
    let options = VerifyOptions {
        strict: args.strict,
        threads: args.threads,
    };
    let bar = progress_bar(&args.log);
    let result = chainsink::verify::verify_file_with_progress(&args.log, &options, |done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (code, text, json) = match &result {
        Ok(report) => (
            0,
            report.summary(),
            serde_json::json!({
                "ok": true,
                "records": report.records,
                "head": report.head,
                "chained": report.chained,
                "bytes": report.bytes,
                "recovered": report.recovered.iter().map(|r| serde_json::json!({
                    "line": r.line, "offset": r.offset, "length": r.length,
                })).collect::<Vec<_>>(),
            }),
        ),
        Err(VerifyError::Tampered(t)) => (
            1,
            format!("TAMPERED {}: {t}", args.log.display()),
            serde_json::json!({
                "ok": false,
                "line": t.line,
                "offset": t.offset,
                "reason": t.kind.as_str(),
                "detail": t.detail,
                "records_ok": t.records_before,
            }),
        ),
        Err(e @ VerifyError::Unreadable { .. }) => (
            2,
            format!("chainsink: {e}"),
            serde_json::json!({"ok": false, "reason": "unreadable", "detail": e.to_string()}),
        ),
    };
    if args.json {
        println!("{json}");
    } else if code == 2 {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
    ExitCode::from(code)
}

/// A progress bar on stderr for large logs, when stderr is a terminal.
fn progress_bar(log: &Path) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let len = std::fs::metadata(log).ok()?.len();
    if len < 64 << 20 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .ok()?,
    );
    Some(bar)
}

/// Exit status when the audit sink cannot be built under fail-closed.
const EXIT_AUDIT: u8 = 3;

fn load_workflow(path: &Path) -> Result<Workflow, ExitCode> {
    Workflow::from_path(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!(
            "chainsink: {} is not a valid workflow ({} problem(s)); nothing was run",
            path.display(),
            errors.errors.len()
        );
        ExitCode::from(2)
    })
}

fn validate(args: &ValidateArgs) -> ExitCode {
    match load_workflow(&args.workflow) {
        Ok(wf) => {
            println!(
                "OK {}: workflow \"{}\", {} agent(s), {} team(s), {} task(s)",
                args.workflow.display(),
                wf.name(),
                wf.agents.len(),
                wf.teams.len(),
                wf.task_count()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

impl RunArgs {
    /// The executor's options, with SIGINT and SIGTERM wired to its cancel token.
    pub(crate) fn run_options(&self) -> Result<RunOptions> {
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
            ..RunOptions::default()
        };
        if let Some(n) = self.max_parallel {
            options.max_parallel = n as usize;
        }
        Ok(options)
    }
}

fn run(args: RunArgs) -> Result<ExitCode> {
    if args.workflows.len() > 1 || args.log_dir.is_some() {
        return cli_tenancy::run_many(args);
    }
    let workflow = match load_workflow(&args.workflows[0]) {
        Ok(wf) => wf,
        Err(code) => return Ok(code),
    };
    let options = args.run_options()?;

    let sink = match &args.audit.log {
        None => {
            eprintln!(
                "chainsink: AUDIT_LOG_PATH is not set and no --log was given: this run is NOT audited"
            );
            None
        }
        Some(log) => match args.audit.open(log) {
            Ok(sink) => Some(Ok(sink)),
            Err(e) if args.audit_policy == AuditPolicy::FailClosed => {
                eprintln!("chainsink: error: cannot start the audit sink: {e:#}");
                eprintln!(
                    "chainsink: the workflow was NOT started (--audit-policy fail-closed); fix the log or sink, or run with --audit-policy fail-open"
                );
                return Ok(ExitCode::from(EXIT_AUDIT));
            }
            Err(e) => {
                eprintln!(
                    "chainsink: AUDITING DEGRADED: cannot start the audit sink: {e:#}; running anyway (--audit-policy fail-open)"
                );
                Some(Err(format!("{e:#}")))
            }
        },
    };
    let audit: Box<dyn AuditSink + '_> = match &sink {
        None => Box::new(Unaudited),
        Some(Ok(sink)) => Box::new(SinkAudit::new(sink)),
        Some(Err(reason)) => Box::new(BrokenAudit {
            reason: format!("audit sink unavailable: {reason}"),
        }),
    };
    let report = chainsink_executor::run(&workflow, audit.as_ref(), &options);
    let mut head = None;
    if let Some(Ok(sink)) = &sink {
        match sink.close() {
            Ok(h) => head = h.hash,
            Err(e) => eprintln!("chainsink: AUDITING DEGRADED: closing the audit sink failed: {e}"),
        }
    }
    let log_shown = match &args.audit.log {
        Some(log) => log.clone(),
        None => PathBuf::from("(none: not audited)"),
    };
    print!("{}", report.render_summary(&log_shown, head.as_deref()));
    Ok(ExitCode::from(report.exit_code() as u8))
}

fn export_sink(args: &ExportSinkArgs) -> Result<ExitCode> {
    std::fs::write(&args.out, chainsink::loader::DEFAULT_SINK_WASM)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "chainsink: wrote the default sink component ({} bytes) to {}",
        chainsink::loader::DEFAULT_SINK_WASM.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
