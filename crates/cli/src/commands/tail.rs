//! `chainsink tail`: the last records of a log, and with `-f` each record as
//! it is appended, checked as it arrives.

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_host::trail::Trail;

use super::show::{FilterArgs, Output, Printer, is_broken_pipe, verdict};

/// How often a followed log's size is polled.
const POLL: Duration = Duration::from_millis(25);

/// How long lines that are not records wait for the record that excuses
/// them (a `chain.recovered` or `chain.rejected` record) before they are
/// reported as breaking the chain.
const SETTLE: Duration = Duration::from_millis(250);

/// Arguments of `chainsink tail`.
#[derive(Args)]
pub(crate) struct TailArgs {
    /// The log to read.
    log: PathBuf,
    /// Keep reading: print each record as it is appended (Ctrl-C stops).
    #[arg(short, long)]
    follow: bool,
    /// How many of the last records to print first.
    #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
    lines: usize,
    #[command(flatten)]
    filter: FilterArgs,
    /// Output format (default: short on a terminal, jsonl otherwise).
    #[arg(short = 'o', long, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Prints the last records (and follows): exit 1 when the log did not verify.
pub(crate) fn tail(args: &TailArgs) -> Result<ExitCode> {
    if args.follow && args.output == Some(Output::Json) {
        bail!("tail -f cannot print one JSON array; use -o jsonl");
    }
    let read = || format!("cannot read {}", args.log.display());
    let mut trail = Trail::open(&args.log, args.filter.filter()?).with_context(read)?;
    if args.follow {
        trail = trail.follow(SETTLE);
    }
    let stdout = io::stdout();
    let mut printer = Printer::new(args.output, stdout.is_terminal());
    let mut out = stdout.lock();
    let result = (|| -> Result<()> {
        // The whole log is read and checked; the last records are kept.
        let mut last = VecDeque::with_capacity(args.lines.min(4096));
        while let Some(entry) = trail.poll_entry().with_context(read)? {
            if args.lines > 0 {
                if last.len() == args.lines {
                    last.pop_front();
                }
                last.push_back(entry);
            }
        }
        printer.start(&mut out)?;
        for entry in &last {
            printer.entry(&mut out, entry)?;
        }
        out.flush()?;
        if !args.follow {
            printer.end(&mut out)?;
            return Ok(());
        }
        loop {
            match trail.poll_entry().with_context(read)? {
                Some(entry) => {
                    printer.entry(&mut out, &entry)?;
                    out.flush()?;
                }
                None => {
                    let (read_to, len) = trail.file_position().with_context(read)?;
                    if len < read_to {
                        bail!(
                            "{} shrank from {read_to} to {len} bytes while followed: it was \
                             truncated or replaced, which an audit log never is",
                            args.log.display()
                        );
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    })();
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(verdict(&args.log, &trail.report())),
    }
}
