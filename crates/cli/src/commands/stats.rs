//! `chainsink stats`: counts over a log: events per type and workflow, task
//! outcomes, the slowest tasks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_host::trail::{Stats, Trail};

use super::show::{FilterArgs, verdict};

/// Arguments of `chainsink stats`.
#[derive(Args)]
pub(crate) struct StatsArgs {
    /// The log to read.
    log: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// How many of the slowest tasks to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    #[command(flatten)]
    filter: FilterArgs,
}

/// Prints the counts: exit 1 when the log did not verify.
pub(crate) fn stats(args: &StatsArgs) -> Result<ExitCode> {
    let read = || format!("cannot read {}", args.log.display());
    let mut trail = Trail::open(&args.log, args.filter.filter()?).with_context(read)?;
    let mut stats = Stats::new(args.top);
    let mut first_broken = None;
    while let Some(entry) = trail.poll_entry().with_context(read)? {
        if entry.verdict.is_broken() && first_broken.is_none() {
            first_broken = Some(entry.line);
        }
        stats.add(&entry);
    }
    stats.trim();
    let report = trail.report();
    if args.json {
        let mut v = stats.to_json();
        v["verified"] = serde_json::json!(report.ok());
        v["broken_lines"] = serde_json::json!(report.broken);
        v["first_broken_line"] = serde_json::json!(first_broken);
        println!("{v}");
    } else {
        let status = if report.ok() {
            "verified".to_owned()
        } else {
            format!(
                "DID NOT VERIFY: {} line(s) fail, the first on line {}",
                report.broken,
                first_broken.unwrap_or_default()
            )
        };
        println!("{} records ({status})", stats.records);
        println!(
            "tasks: {} completed, {} failed, {} skipped",
            stats.completed, stats.failed, stats.skipped
        );
        println!("\nevents by type:");
        for (k, n) in &stats.per_type {
            println!("  {n:>9}  {k}");
        }
        println!("\nevents by workflow:");
        for (k, n) in &stats.per_workflow {
            println!("  {n:>9}  {k}");
        }
        if !stats.slowest.is_empty() {
            println!("\nslowest tasks:");
            for t in &stats.slowest {
                println!(
                    "  {:>10.3}s  {:<9}  {}  {}  {}",
                    t.seconds, t.outcome, t.workflow, t.task_id, t.subject
                );
            }
        }
    }
    if report.ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(verdict(&args.log, &report))
    }
}
