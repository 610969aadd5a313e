//! `chainsink emit`: write audit records, one from flags or JSON lines from
//! stdin.

use std::io::{BufReader, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use chainsink_host::Event;

use crate::args::AuditArgs;
use crate::commands::checkpoint::CheckpointArgs;

/// Arguments of `chainsink emit`.
#[derive(Args)]
pub(crate) struct EmitArgs {
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    checkpoints: CheckpointArgs,
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

/// Writes the event(s) and prints a receipt for each.
pub(crate) fn emit(args: EmitArgs) -> Result<ExitCode> {
    let Some(log) = args.audit.log.clone() else {
        bail!("no audit log: set AUDIT_LOG_PATH or pass --log PATH");
    };
    let sink = args.audit.open(&log)?;
    let checkpoints = args.checkpoints.start(&log)?;
    if args.stdin {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::stdout().lock();
        let report = chainsink_host::stream::emit_lines(&sink, &mut BufReader::new(stdin), stdout)?;
        sink.close()?;
        checkpoints.map(|c| c.finish()).transpose()?;
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
    checkpoints.map(|c| c.finish()).transpose()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({"seq": receipt.seq, "hash": receipt.hash})
    )?;
    // The sink is closed (its records synced as asked) and the process
    // exits next: unmapping the instance's memory and the sink's code is
    // the kernel's job at exit, and costs a one-shot emit more there.
    std::mem::forget(sink);
    Ok(ExitCode::SUCCESS)
}
