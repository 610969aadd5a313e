//! `chainsink verify`: check every hash and link of an audit log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use chainsink_host::verify::{VerifyError, VerifyOptions};

/// Arguments of `chainsink verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The log to check.
    log: PathBuf,
    /// Also re-encode every record and require its exact canonical bytes.
    #[arg(long)]
    strict: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Threads that hash records (default: one per core; at most 256).
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u16).range(0..=256))]
    threads: u16,
    /// Also check the log against this signed checkpoint (catches a cut tail
    /// or a rewritten chain); needs --key.
    #[arg(long, value_name = "CP", requires = "key")]
    checkpoint: Option<PathBuf>,
    /// The log's verifier key (PREFIX.vkey from chainsink keygen), for --checkpoint.
    #[arg(long, value_name = "VKEY", requires = "checkpoint")]
    key: Option<PathBuf>,
    /// Check the log with this sink's own verifier (for a sink that writes a
    /// custom record format): it runs in the sandbox, the log read-only.
    #[arg(long, value_name = "SINK.wasm", conflicts_with_all = ["strict", "checkpoint"])]
    sink: Option<PathBuf>,
    #[command(flatten)]
    cache: crate::args::CacheArgs,
}

/// Verifies the log: exit 0 intact, 1 tampered, 2 unreadable.
pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    if let Some(sink) = &args.sink {
        return verify_with_sink(args, sink);
    }
    let options = VerifyOptions {
        strict: args.strict,
        threads: usize::from(args.threads),
    };
    let bar = progress_bar(&args.log);
    let result = chainsink_host::verify::verify_file_with_progress(&args.log, &options, |done| {
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
                "rejected": report.rejected.iter().map(|r| serde_json::json!({
                    "line": r.line, "offset": r.offset, "length": r.length,
                    "record_line": r.record_line,
                })).collect::<Vec<_>>(),
            }),
        ),
        // A first line that is not JSON at all may be another sink's own
        // format: say what is wrong, as for any log, then how to check it.
        Err(VerifyError::Tampered(t))
            if t.line == 1 && chainsink_host::sink_verify::foreign_first_line(&args.log) =>
        {
            (
                1,
                format!(
                    "TAMPERED {log}: {t}; it is not a telemachy-json log (its first line is not a \
                     JSON record): if a sink with its own record format wrote it, check it with \
                     `chainsink verify --sink SINK.wasm {log}`",
                    log = args.log.display()
                ),
                serde_json::json!({
                    "ok": false,
                    "line": t.line,
                    "offset": t.offset,
                    "reason": t.kind.as_str(),
                    "detail": t.detail,
                    "records_ok": t.records_before,
                    "hint": "not-telemachy-json: the first line is not a JSON record; check it with verify --sink SINK.wasm",
                }),
            )
        }
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
    let (code, text, json) = match (&args.checkpoint, &args.key) {
        (Some(cp), Some(key)) => {
            super::checkpoint::verify_against(&args.log, cp, key, code, text, json)
        }
        _ => (code, text, json),
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

/// `verify --sink`: the sink's own verifier over the log, read-only, in its
/// sandbox (see `chainsink_host::sink_verify`): exit 0 intact, 1 tampered,
/// 2 when it cannot be checked.
fn verify_with_sink(args: &VerifyArgs, sink: &Path) -> ExitCode {
    use chainsink_host::sink_verify::verify_with_sink as check;
    let log = args.log.display();
    let result = args
        .cache
        .runtime(chainsink_host::RuntimeConfig {
            pooling: false,
            ..chainsink_host::RuntimeConfig::default()
        })
        .and_then(|runtime| {
            let component = runtime.load_file(sink)?;
            Ok(check(&runtime, &component, &args.log)?)
        });
    let (code, text, json) = match result {
        Ok(verified) => {
            let by = format!(
                "sink {} {} ({})",
                verified.info.name, verified.info.version, verified.info.format
            );
            match verified.outcome {
                Ok(r) => (
                    0,
                    format!(
                        "OK {log}: {} record(s), {} bytes, verified by {by}{}",
                        r.records,
                        r.bytes,
                        r.head
                            .as_ref()
                            .map(|h| format!("; head {h}"))
                            .unwrap_or_default()
                    ),
                    serde_json::json!({
                        "ok": true, "records": r.records, "head": r.head, "bytes": r.bytes,
                        "format": verified.info.format.to_string(),
                    }),
                ),
                Err(f) => (
                    1,
                    format!(
                        "TAMPERED {log}: line {} (byte {}): {} (checked by {by})",
                        f.line, f.offset, f.reason
                    ),
                    serde_json::json!({
                        "ok": false, "line": f.line, "offset": f.offset, "detail": f.reason,
                        "format": verified.info.format.to_string(),
                    }),
                ),
            }
        }
        Err(e) => (
            2,
            format!("chainsink: {e:#}"),
            serde_json::json!({"ok": false, "reason": "unreadable", "detail": format!("{e:#}")}),
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
