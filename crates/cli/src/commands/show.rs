//! `chainsink show`: the records of a log, filtered, checked as they are read.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

use chainsink_executor::output::escaped;
use chainsink_host::trail::{
    Entry, Filter, Trail, TrailReport, Verdict, normalize_time, parse_seq_range,
};
use chainsink_host::verify::TamperKind;

/// Which records to show; every filter given must hold.
#[derive(Args, Clone, Default)]
pub(crate) struct FilterArgs {
    /// Only records of this workflow (`workflow_id`).
    #[arg(short = 'u', long, value_name = "ID")]
    workflow: Option<String>,
    /// Only records whose event type matches this glob, such as `task.*`.
    #[arg(long = "type", value_name = "GLOB")]
    event_type: Option<String>,
    /// Only records about this task (the payload's `task_id`).
    #[arg(long, value_name = "ID")]
    task: Option<String>,
    /// Only records by this user (`actor.user`).
    #[arg(long, value_name = "USER")]
    actor: Option<String>,
    /// Only records at or after this time: a date (2026-06-04) or an ISO 8601
    /// timestamp (2026-06-04T15:30:45, optional fraction and Z or +HH:MM; UTC
    /// if no offset).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only records at or before this time (same forms as --since; a date
    /// means its first instant).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only records whose position (`seq`) is in A..B (inclusive; A.., ..B
    /// and N work too).
    #[arg(long, value_name = "A..B")]
    seq: Option<String>,
}

impl FilterArgs {
    /// The library filter these flags describe.
    pub(crate) fn filter(&self) -> Result<Filter> {
        let time = |t: &Option<String>| {
            t.as_deref()
                .map(normalize_time)
                .transpose()
                .map_err(anyhow::Error::msg)
        };
        Ok(Filter {
            workflow: self.workflow.clone(),
            event_type: self.event_type.clone(),
            task: self.task.clone(),
            actor: self.actor.clone(),
            since: time(&self.since)?,
            until: time(&self.until)?,
            seq: self
                .seq
                .as_deref()
                .map(parse_seq_range)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        })
    }
}

/// How records are printed.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Output {
    /// One row a record: seq, time, type, workflow, a summary of the payload.
    Short,
    /// One JSON array of the records.
    Json,
    /// The records' lines as they are in the log.
    Jsonl,
}

/// Arguments of `chainsink show`.
#[derive(Args)]
pub(crate) struct ShowArgs {
    /// The log to read.
    log: PathBuf,
    #[command(flatten)]
    filter: FilterArgs,
    /// Output format (default: short on a terminal, jsonl otherwise).
    #[arg(short = 'o', long, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Shows the records: exit 0 when the log verified, 1 when it did not, 2
/// when it cannot be read.
pub(crate) fn show(args: &ShowArgs) -> Result<ExitCode> {
    let trail = Trail::open(&args.log, args.filter.filter()?)
        .with_context(|| format!("cannot read {}", args.log.display()))?;
    let stdout = io::stdout();
    let mut printer = Printer::new(args.output, stdout.is_terminal());
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut trail = trail;
    let written = (|| -> Result<()> {
        printer.start(&mut out)?;
        while let Some(entry) = trail
            .poll_entry()
            .with_context(|| format!("cannot read {}", args.log.display()))?
        {
            printer.entry(&mut out, &entry)?;
        }
        printer.end(&mut out)?;
        out.flush()?;
        Ok(())
    })();
    if let Err(e) = written {
        if is_broken_pipe(&e) {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e);
    }
    Ok(verdict(&args.log, &trail.report()))
}

/// Whether `e` is a write to a closed pipe (`show | head`): not an error.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Says on stderr whether the log verified; the exit code.
pub(crate) fn verdict(log: &std::path::Path, report: &TrailReport) -> ExitCode {
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "chainsink: {} did not verify: {} line(s) fail (marked above); run `chainsink verify` for the report",
            log.display(),
            report.broken
        );
        ExitCode::from(1)
    }
}

/// Prints entries in one output format.
pub(crate) struct Printer {
    output: Output,
    colour: bool,
    first: bool,
    /// Lines said on stderr to fail (jsonl), so that an excuse that comes
    /// later is said there too.
    flagged: std::collections::BTreeSet<u64>,
}

impl Printer {
    /// A printer for `output` (default by whether stdout is a terminal).
    pub(crate) fn new(output: Option<Output>, terminal: bool) -> Printer {
        Printer {
            output: output.unwrap_or(if terminal {
                Output::Short
            } else {
                Output::Jsonl
            }),
            colour: terminal && std::env::var_os("NO_COLOR").is_none(),
            first: true,
            flagged: Default::default(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Before the first entry.
    pub(crate) fn start(&mut self, out: &mut impl Write) -> Result<()> {
        if self.output == Output::Json {
            out.write_all(b"[")?;
        }
        Ok(())
    }

    /// After the last entry.
    pub(crate) fn end(&mut self, out: &mut impl Write) -> Result<()> {
        if self.output == Output::Json {
            out.write_all(if self.first { b"]\n" } else { b"\n]\n" })?;
        }
        Ok(())
    }

    /// Prints one entry.
    pub(crate) fn entry(&mut self, out: &mut impl Write, entry: &Entry) -> Result<()> {
        match self.output {
            Output::Jsonl => {
                match &entry.verdict {
                    Verdict::Broken { kind, detail } => {
                        self.flagged.insert(entry.line);
                        eprintln!(
                            "chainsink: line {} (byte {}) fails verification: {}: {}",
                            entry.line,
                            entry.offset,
                            kind.as_str(),
                            escaped(detail)
                        );
                    }
                    Verdict::Held { kind, detail } => {
                        self.flagged.insert(entry.line);
                        eprintln!("chainsink: {}", held_message(entry, *kind, detail));
                    }
                    Verdict::Torn { .. } | Verdict::Rejected { .. }
                        if self.flagged.remove(&entry.line) =>
                    {
                        eprintln!("chainsink: {}", excused_message(entry));
                    }
                    // Printed above as a record: say at once that it is not one.
                    Verdict::Retracted { .. } => {
                        eprintln!("chainsink: {}", excused_message(entry));
                    }
                    _ => {}
                }
                if entry.matched && matches!(entry.verdict, Verdict::Ok | Verdict::Broken { .. }) {
                    out.write_all(&entry.bytes)?;
                    out.write_all(b"\n")?;
                }
            }
            Output::Json => {
                let value = match &entry.verdict {
                    Verdict::Ok => {
                        // The record's own bytes: canonical JSON, hash intact.
                        out.write_all(if self.first { b"\n" } else { b",\n" })?;
                        self.first = false;
                        out.write_all(&entry.bytes)?;
                        return Ok(());
                    }
                    Verdict::Broken { kind, detail } => {
                        let mut v = match entry.json() {
                            Some(Value::Object(m)) if entry.matched => Value::Object(m),
                            _ => serde_json::json!({
                                "raw": String::from_utf8_lossy(&entry.bytes[..entry.bytes.len().min(4096)]),
                            }),
                        };
                        v["verify_error"] = serde_json::json!({
                            "line": entry.line, "offset": entry.offset,
                            "reason": kind.as_str(), "detail": detail,
                        });
                        Some(v)
                    }
                    // Listed above as a record: say that it is not one.
                    Verdict::Retracted { record_line } => Some(serde_json::json!({
                        "retracted": {
                            "line": entry.line, "offset": entry.offset,
                            "rejected_by_line": record_line,
                        },
                    })),
                    _ => None,
                };
                if let Some(v) = value {
                    out.write_all(if self.first { b"\n" } else { b",\n" })?;
                    self.first = false;
                    serde_json::to_writer(&mut *out, &v)?;
                }
            }
            Output::Short => match &entry.verdict {
                Verdict::Ok => writeln!(out, "{}", self.row(entry))?,
                Verdict::Held { kind, detail } => {
                    let marker = format!("?? {}", held_message(entry, *kind, detail));
                    writeln!(out, "{}", self.paint("1;33", &marker))?;
                }
                Verdict::Broken { kind, detail } => {
                    let marker = format!(
                        "!! VERIFY FAILED at line {} (byte {}): {}: {}",
                        entry.line,
                        entry.offset,
                        kind.as_str(),
                        escaped(detail)
                    );
                    writeln!(out, "{}", self.paint("1;31", &marker))?;
                    if entry.matched && entry.json().is_some() {
                        writeln!(out, "{}", self.row(entry))?;
                    }
                }
                Verdict::Torn { .. } => {
                    writeln!(out, "{}", self.paint("2", &excused_message(entry)))?
                }
                Verdict::Rejected { .. } | Verdict::Retracted { .. } => {
                    writeln!(out, "{}", self.paint("33", &excused_message(entry)))?
                }
            },
        }
        Ok(())
    }

    /// One row of the short format.
    fn row(&self, entry: &Entry) -> String {
        // Everything shown comes from the log (a task's stderr tail, a
        // tampered line): control characters escaped, as in live output.
        let Some(v) = entry.json() else {
            return escaped(&String::from_utf8_lossy(&entry.bytes));
        };
        let s = |k: &str| escaped(v.get(k).and_then(Value::as_str).unwrap_or("-"));
        let seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .map_or_else(|| format!("l{}", entry.line), |n| n.to_string());
        let time = s("timestamp").replacen('T', " ", 1);
        let time = time.get(..23).unwrap_or(&time);
        let ty = s("event_type");
        let ty = ty.as_str();
        let ty_col =
            if ty.ends_with(".failed") || ty.starts_with("chain.") || ty.starts_with("audit.") {
                self.paint("31", &format!("{ty:<18}"))
            } else {
                format!("{ty:<18}")
            };
        format!(
            "{seq:>7} {time} {ty_col} {:<12} {}",
            s("workflow_id"),
            summary(v.get("payload"))
        )
    }
}

/// What `tail -f` says at once of a line that fails its check but may
/// still be excused by the record after it.
fn held_message(entry: &Entry, kind: TamperKind, detail: &str) -> String {
    format!(
        "line {} (byte {}) does not verify: {}: {}; held: unless the next record excuses it \
         (a torn write's chain.recovered, a refused append's chain.rejected), it breaks the chain",
        entry.line,
        entry.offset,
        kind.as_str(),
        escaped(detail)
    )
}

/// What a torn or rejected line is, by the record that excuses it.
fn excused_message(entry: &Entry) -> String {
    match entry.verdict {
        Verdict::Torn { record_line } => format!(
            "-- line {}: torn write, recovered by the chain.recovered record on line {record_line}",
            entry.line
        ),
        Verdict::Rejected { record_line } => format!(
            "-- line {}: bytes a sink appended that the host refused (breach), marked by the \
             chain.rejected record on line {record_line}",
            entry.line
        ),
        Verdict::Retracted { record_line } => format!(
            "-- line {}: shown above as a record, but a sink appended it and the host refused \
             it (breach): the chain.rejected record on line {record_line} claims it; it is not \
             in the chain",
            entry.line
        ),
        _ => String::new(),
    }
}

/// A short summary of a payload: its telling fields first, then the rest,
/// cut to about 100 characters.
fn summary(payload: Option<&Value>) -> String {
    let Some(Value::Object(m)) = payload else {
        return String::new();
    };
    const FIRST: [&str; 12] = [
        "task_subject",
        "spec_name",
        "agent_name",
        "team_name",
        "error",
        "reason",
        "exit_code",
        "duration_seconds",
        "team",
        "task_id",
        "runtime",
        "breach",
    ];
    let mut keys: Vec<&String> = FIRST
        .iter()
        .filter_map(|k| m.get_key_value(*k).map(|(k, _)| k))
        .collect();
    keys.extend(
        m.keys()
            .filter(|k| !FIRST.contains(&k.as_str()) && *k != "workflow_id"),
    );
    let mut out = String::new();
    for k in keys {
        let v = &m[k];
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let text = escaped(&text);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{}={text}", escaped(k)));
        if out.chars().count() > 100 {
            let cut: String = out.chars().take(99).collect();
            return cut + "…";
        }
    }
    out
}
