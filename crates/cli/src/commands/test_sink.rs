//! (Binary only.) `chainsink test-sink`: the sink contract, checked call by
//! call against a component, in a scratch directory (never a user's log).
//!
//! Each check prints one line, `PASS name: what was checked` or
//! `FAIL name: what went wrong; what to fix`. The exit status is 0 when
//! every check passes, 1 when one fails, 2 when the checks cannot run (the
//! file cannot be read, no scratch directory). A check that needs an earlier
//! one (a loaded sink, an open log) is reported as failed with that reason.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_format::verify::{Mode, check_line};
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{
    Actor, AppendChecks, Durability, Event, Head, LogFile, Receipt, RecordFormat, RuntimeConfig,
    Sink, SinkComponent, SinkError, SinkOptions, SinkRuntime,
};

use crate::args::LimitArgs;

/// Arguments of `chainsink test-sink`.
#[derive(Args)]
pub(crate) struct TestSinkArgs {
    /// The sink component (.wasm) to check.
    sink: PathBuf,
    /// Keep the scratch directory (its logs) and print where it is.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// 64 zeros: the head hash of an empty chained log.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The results so far, printed as they come.
struct Report {
    failed: usize,
    passed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<String, String>) -> bool {
        match result {
            Ok(what) => {
                self.passed += 1;
                println!("PASS {name}: {what}");
                true
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
                false
            }
        }
    }
}

/// Runs every check; exit 1 if any fails.
pub(crate) fn test_sink(args: &TestSinkArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&args.sink)
        .with_context(|| format!("cannot read sink component {}", args.sink.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("chainsink-test-sink-")
        .tempdir()
        .context("cannot create a scratch directory for the test logs (is $TMPDIR writable?)")?;
    let runtime = SinkRuntime::with_config(RuntimeConfig {
        limits: args.limits.limits(),
        max_sinks: 4,
        pooling: false,
        // Every append is checked against its receipts, as for any
        // third-party sink, whatever this one is.
        check_appends: AppendChecks::All,
        ..RuntimeConfig::default()
    })?;
    let mut report = Report {
        failed: 0,
        passed: 0,
    };
    let name = args.sink.display().to_string();
    let component = runtime.load_bytes(&name, &bytes);
    let loaded = report.check(
        "load",
        component
            .as_ref()
            .map(|c| {
                format!(
                    "a component that fits the audit-sink world ({} bytes, imports {})",
                    c.size(),
                    c.imports().join(", ")
                )
            })
            .map_err(|e| one_line(&e.to_string())),
    );
    if let (true, Ok(component)) = (loaded, component) {
        let mut checks = Checks {
            runtime: &runtime,
            component: &component,
            dir: scratch.path(),
            custom: false,
        };
        checks.run(&mut report);
    }
    println!(
        "{}: {} passed, {} failed{}",
        if report.failed == 0 { "OK" } else { "FAILED" },
        report.passed,
        report.failed,
        if report.failed == 0 {
            String::new()
        } else {
            " (docs/writing-a-sink.md describes each call)".to_string()
        }
    );
    if args.keep {
        let kept = scratch.keep();
        println!("logs kept in {}", kept.display());
    }
    Ok(ExitCode::from(u8::from(report.failed > 0)))
}

/// A multi-line error on one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The checks of one loaded component.
struct Checks<'a> {
    runtime: &'a SinkRuntime,
    component: &'a SinkComponent,
    dir: &'a Path,
    /// Whether the sink writes a custom record format (its `describe`):
    /// then only the structure of its log is checked here (whole lines, one
    /// per receipt), and its records by its own verifier.
    custom: bool,
}

/// The `n`th test event: fixed time, payload with a number and a string.
fn event(n: u32) -> Event {
    Event {
        event_type: "test.event".into(),
        workflow_id: Some("wf-test-sink".into()),
        payload: format!(r#"{{"n": {n}, "text": "caf\u00e9 \u2603", "ratio": 0.1}}"#),
        timestamp: Some(format!("2026-01-02T03:04:{:02}.000001+00:00", n % 60)),
        actor: None,
    }
}

fn options(hash_chain: bool, durability: Durability) -> SinkOptions {
    SinkOptions {
        hash_chain,
        durability,
        actor: Actor {
            host_id: "test-sink-host".into(),
            user: "test-sink".into(),
        },
    }
}

/// The complete lines of the log at `path`, without their `\n`.
fn lines(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the test log: {e}"))?;
    Ok(bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l).to_vec())
        .collect())
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Each receipt names its own line: the record's `seq` and `hash` (for a
/// custom format, only that the line exists).
fn receipts_match_lines(path: &Path, receipts: &[Receipt], custom: bool) -> Result<(), String> {
    let lines = lines(path)?;
    if custom {
        return match receipts.iter().find(|r| r.seq > lines.len() as u64) {
            Some(r) => Err(format!(
                "receipt seq {} but the log has {} lines; one record is one line, and seq is its \
                 1-based position in the log",
                r.seq,
                lines.len()
            )),
            None => Ok(()),
        };
    }
    for r in receipts {
        let index = usize::try_from(r.seq).unwrap_or(usize::MAX).wrapping_sub(1);
        let line = lines.get(index).ok_or_else(|| {
            format!(
                "receipt seq {} but the log has {} lines; seq is the record's 1-based position in \
                 the log",
                r.seq,
                lines.len()
            )
        })?;
        let info = check_line(line, Mode::Strict).map_err(|e| {
            format!(
                "line {} is not a telemachy-json record: {e}; seal records with chainsink-format \
                 (Rust), json.dumps(sort_keys=True) (Python) or the SDK's encoder",
                r.seq
            )
        })?;
        if info.seq != Some(r.seq) {
            return Err(format!(
                "line {} has seq {:?} but its receipt says {}",
                r.seq, info.seq, r.seq
            ));
        }
        if info.hash.map(|h| h.to_hex()) != r.hash {
            return Err(format!(
                "line {} has hash {:?} but its receipt says {:?}; return the hash of the record \
                 written",
                r.seq,
                info.hash.map(|h| h.to_hex()),
                r.hash
            ));
        }
    }
    Ok(())
}

fn describe_err(e: &SinkError) -> String {
    one_line(&e.to_string())
}

impl Checks<'_> {
    fn open(&self, log: &Path, options: &SinkOptions) -> Result<Sink, String> {
        self.open_raw(log, options)?.map_err(|e| describe_err(&e))
    }

    /// Opens the sink on `log`: the outer error is the test's own (the log
    /// file), the inner one the sink's.
    fn open_raw(
        &self,
        log: &Path,
        options: &SinkOptions,
    ) -> Result<Result<Sink, SinkError>, String> {
        let file = LogFile::open(log).map_err(|e| format!("cannot open the test log: {e}"))?;
        Ok(self.runtime.open(self.component, file, options))
    }

    fn run(&mut self, report: &mut Report) {
        let log = self.dir.join("chained.jsonl");
        let chained = options(true, Durability::Always);
        let Some(sink) = self.open_empty(report, &log, &chained) else {
            return;
        };
        self.describe(report, &sink);
        let mut receipts = Vec::new();
        self.emit(report, &sink, &log, &mut receipts);
        self.emit_batch(report, &sink, &log, &mut receipts);
        self.all_or_nothing(report, &sink, &log);
        self.invalid_payloads(report, &sink, &log);
        self.flush_head(report, &sink, &log, &receipts);
        self.close(report, &sink);
        drop(sink);
        self.reopen(report, &log, &chained, &receipts);
        self.verify(report, &log);
        self.chain_off(report);
        self.durability(report);
        if !self.custom {
            self.torn_tail(report);
            self.corrupt_log(report);
        }
    }

    fn describe(&mut self, report: &mut Report, sink: &Sink) {
        let info = sink.info();
        self.custom = info.format.is_custom();
        let what = if info.described {
            format!(
                "describe: name {:?}, version {:?}, format {}, WIT {}{}",
                info.name,
                info.version,
                info.format,
                info.wit.version(),
                if info.verifier {
                    ", exports a verifier"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "a WIT {} sink: no describe; the host takes its records to be {}",
                info.wit.version(),
                RecordFormat::TelemachyJson
            )
        };
        let result = match &info.format {
            RecordFormat::Custom(name) if !info.verifier => Err(format!(
                "it writes the custom format {name:?} but exports no verifier, so no one can \
                 check its logs; export `verifier` (world verifying-sink)"
            )),
            _ => Ok(what),
        };
        report.check("describe", result);
    }

    fn open_empty(&self, report: &mut Report, log: &Path, options: &SinkOptions) -> Option<Sink> {
        let result = self.open(log, options).and_then(|sink| {
            let head = sink.head().map_err(|e| describe_err(&e))?;
            let want = Head {
                records: 0,
                hash: Some(GENESIS.into()),
                bytes: 0,
            };
            if head != want {
                return Err(format!(
                    "open on an empty log must report records 0, hash 64 zeros, bytes 0; got \
                     records {}, hash {:?}, bytes {}",
                    head.records, head.hash, head.bytes
                ));
            }
            Ok(sink)
        });
        match result {
            Ok(sink) => {
                report.check(
                    "open-empty",
                    Ok("open on an empty log: records 0, hash 64 zeros".into()),
                );
                Some(sink)
            }
            Err(e) => {
                report.check("open-empty", Err(e));
                None
            }
        }
    }

    fn emit(&self, report: &mut Report, sink: &Sink, log: &Path, receipts: &mut Vec<Receipt>) {
        let result = (|| {
            for n in 1..=3u64 {
                let r = sink.emit(&event(n as u32)).map_err(|e| describe_err(&e))?;
                if r.seq != n {
                    return Err(format!(
                        "emit {n} returned seq {}; receipts count 1, 2, 3... from the log's start",
                        r.seq
                    ));
                }
                receipts.push(r);
            }
            receipts_match_lines(log, receipts, self.custom)?;
            Ok("three emits: receipts seq 1, 2, 3, each matching its line".to_string())
        })();
        report.check("emit", result);
    }

    fn emit_batch(
        &self,
        report: &mut Report,
        sink: &Sink,
        log: &Path,
        receipts: &mut Vec<Receipt>,
    ) {
        let before = receipts.len() as u64;
        let result = (|| {
            let batch: Vec<Event> = (4..=6).map(event).collect();
            let got = sink.emit_batch(&batch).map_err(|e| describe_err(&e))?;
            let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
            let want: Vec<u64> = (before + 1..=before + 3).collect();
            if seqs != want {
                return Err(format!(
                    "emit-batch of 3 returned seqs {seqs:?}, want {want:?}"
                ));
            }
            receipts.extend(got);
            receipts_match_lines(log, receipts, self.custom)?;
            Ok(format!(
                "a batch of 3: receipts seq {want:?}, matching their lines"
            ))
        })();
        report.check("emit-batch", result);
    }

    fn all_or_nothing(&self, report: &mut Report, sink: &Sink, log: &Path) {
        let bytes = size(log);
        let mut bad = event(8);
        bad.payload = r#"{"n": NaN}"#.into();
        let batch = vec![event(7), bad, event(9)];
        let result = match sink.emit_batch(&batch) {
            Ok(r) => Err(format!(
                "emit-batch with an invalid event (index 1, payload NaN) succeeded with {} \
                 receipts; a batch is all or nothing: refuse it with invalid-event",
                r.len()
            )),
            Err(SinkError::InvalidEvent(m)) if size(log) != bytes => Err(format!(
                "emit-batch refused the batch ({m}) but the log grew from {bytes} to {} bytes; \
                 validate every event before writing any",
                size(log)
            )),
            Err(SinkError::InvalidEvent(m)) if !m.contains('1') => Err(format!(
                "the invalid-event error does not name the bad event's index (1): {m:?}"
            )),
            Err(SinkError::InvalidEvent(m)) => Ok(format!(
                "an invalid event at index 1 refused the whole batch, nothing written ({m})"
            )),
            Err(e) => Err(format!(
                "emit-batch with an invalid event must fail with invalid-event; got: {}",
                describe_err(&e)
            )),
        };
        report.check("emit-batch-all-or-nothing", result);
    }

    fn invalid_payloads(&self, report: &mut Report, sink: &Sink, log: &Path) {
        for (name, payload, what) in [
            ("invalid-payload-nan", r#"{"x": NaN}"#, "NaN"),
            (
                "invalid-payload-not-object",
                "[1, 2]",
                "an array, not an object",
            ),
            ("invalid-payload-not-json", "{\"x\": ", "not JSON"),
        ] {
            let bytes = size(log);
            let mut e = event(10);
            e.payload = payload.into();
            let result = match sink.emit(&e) {
                Ok(r) => Err(format!(
                    "a payload that is {what} was accepted (seq {}); refuse it with invalid-event",
                    r.seq
                )),
                Err(SinkError::InvalidEvent(_)) if size(log) != bytes => Err(format!(
                    "a payload that is {what} was refused, but the log grew; write nothing"
                )),
                Err(SinkError::InvalidEvent(m)) => Ok(format!("{what} refused: {m}")),
                Err(e) => Err(format!(
                    "a payload that is {what} must fail with invalid-event; got: {}",
                    describe_err(&e)
                )),
            };
            report.check(name, result);
        }
    }

    fn flush_head(&self, report: &mut Report, sink: &Sink, log: &Path, receipts: &[Receipt]) {
        let result = (|| {
            sink.flush().map_err(|e| describe_err(&e))?;
            let head = sink.head().map_err(|e| describe_err(&e))?;
            let last = receipts.last().ok_or("no receipts to compare with")?;
            if head.records != last.seq || head.hash != last.hash || head.bytes != size(log) {
                return Err(format!(
                    "head after {} records says records {}, hash {:?}, bytes {}; want records \
                     {}, the last receipt's hash {:?}, bytes {} (the log's size)",
                    last.seq,
                    head.records,
                    head.hash,
                    head.bytes,
                    last.seq,
                    last.hash,
                    size(log)
                ));
            }
            Ok(format!(
                "flush succeeded; head: records {}, the last hash, bytes {}",
                head.records, head.bytes
            ))
        })();
        report.check("flush-head", result);
    }

    fn close(&self, report: &mut Report, sink: &Sink) {
        let result =
            sink.close()
                .map_err(|e| describe_err(&e))
                .and_then(|_| match sink.emit(&event(11)) {
                    Err(SinkError::NotOpen { .. }) => {
                        Ok("close succeeded; emit after close fails with not-open".to_string())
                    }
                    Ok(r) => Err(format!(
                        "emit after close succeeded (seq {}); fail with not-open",
                        r.seq
                    )),
                    Err(e) => Err(format!(
                        "emit after close must fail with not-open; got: {}",
                        describe_err(&e)
                    )),
                });
        report.check("close", result);
    }

    fn reopen(&self, report: &mut Report, log: &Path, options: &SinkOptions, receipts: &[Receipt]) {
        let result = (|| {
            let last = receipts
                .last()
                .ok_or("no records were written to resume from")?;
            let sink = self.open(log, options)?;
            let head = sink.head().map_err(|e| describe_err(&e))?;
            if head.records != last.seq || head.hash != last.hash {
                return Err(format!(
                    "reopened on a log of {} records, open reported records {}, hash {:?}; \
                     resume from the last record: its seq and hash",
                    last.seq, head.records, head.hash
                ));
            }
            let next = sink.emit(&event(12)).map_err(|e| describe_err(&e))?;
            sink.close().map_err(|e| describe_err(&e))?;
            if next.seq != last.seq + 1 {
                return Err(format!(
                    "the first record after reopening has seq {}, want {}",
                    next.seq,
                    last.seq + 1
                ));
            }
            if self.custom {
                return Ok(format!(
                    "a new instance resumed at record {}: the next is seq {}",
                    last.seq, next.seq
                ));
            }
            let lines = lines(log)?;
            let line = lines.last().ok_or("the log is empty")?;
            let info = check_line(line, Mode::Fast).map_err(|e| e.to_string())?;
            if info.prev_hash.map(|h| h.to_hex()) != last.hash {
                return Err(format!(
                    "the first record after reopening has prev_hash {:?}; it must be the last \
                     record's hash {:?}",
                    info.prev_hash.map(|h| h.to_hex()),
                    last.hash
                ));
            }
            Ok(format!(
                "a new instance resumed at record {}: the next is seq {} with prev_hash linking to it",
                last.seq, next.seq
            ))
        })();
        report.check("reopen-resumes", result);
    }

    fn verify(&self, report: &mut Report, log: &Path) {
        if self.custom {
            self.verify_custom(report, log);
            return;
        }
        let result = verify_file(
            log,
            &VerifyOptions {
                strict: true,
                threads: 1,
            },
        )
        .map(|r| {
            format!(
                "chainsink verify --strict accepts the log: {} records, every line canonical",
                r.records
            )
        })
        .map_err(|e| {
            format!(
                "chainsink verify --strict refuses the log: {}",
                one_line(&e.to_string())
            )
        });
        report.check("verify-log", result);
    }

    /// A custom format is checked by the sink's own verifier: it must accept
    /// the log it wrote, and refuse it once any one byte of a record changes.
    fn verify_custom(&self, report: &mut Report, log: &Path) {
        use chainsink_host::sink_verify::verify_with_sink;
        let run = |path: &Path| {
            verify_with_sink(self.runtime, self.component, path)
                .map(|v| v.outcome)
                .map_err(|e| one_line(&e.to_string()))
        };
        let result = (|| match run(log)? {
            Ok(r) => Ok(format!(
                "its verifier accepts the log it wrote: {} records",
                r.records
            )),
            Err(f) => Err(format!(
                "its verifier refuses the log it wrote, at line {}: {}; a sink must accept \
                 its own records",
                f.line, f.reason
            )),
        })();
        report.check("verify-log", result);

        let result = (|| {
            let bytes = std::fs::read(log).map_err(|e| e.to_string())?;
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            let mut missed = Vec::new();
            // One byte changed in each record, at a spot that moves along the
            // line, never a newline: each copy must be refused.
            let mut start = 0;
            for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
                let body = line.len().saturating_sub(1);
                if body > 0 {
                    let at = start + (n * 7 + 3) % body;
                    let mut changed = bytes.clone();
                    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
                    let copy = self.dir.join("tampered.log");
                    std::fs::write(&copy, &changed).map_err(|e| e.to_string())?;
                    if run(&copy)?.is_ok() {
                        missed.push(format!("line {} byte {}", n + 1, at - start + 1));
                    }
                }
                start += line.len();
            }
            if missed.is_empty() {
                Ok(format!(
                    "its verifier refuses the log with any one of {lines} records changed by a byte"
                ))
            } else {
                Err(format!(
                    "its verifier accepts the log with one byte changed at {}; chain each record \
                     to the one before and check every field",
                    missed.join(", ")
                ))
            }
        })();
        report.check("verify-detects-tampering", result);
    }

    fn chain_off(&self, report: &mut Report) {
        let log = self.dir.join("unchained.jsonl");
        let opts = options(false, Durability::Always);
        let result = (|| {
            let sink = self.open(&log, &opts)?;
            let head = sink.head().map_err(|e| describe_err(&e))?;
            if head.hash.is_some() || head.records != 0 {
                return Err(format!(
                    "open with the chain off on an empty log must report records 0 and no hash; \
                     got records {}, hash {:?}",
                    head.records, head.hash
                ));
            }
            let r = sink.emit(&event(1)).map_err(|e| describe_err(&e))?;
            sink.close().map_err(|e| describe_err(&e))?;
            drop(sink);
            if r.seq != 1 || r.hash.is_some() {
                return Err(format!(
                    "with the chain off, the first receipt must be seq 1 with no hash; got seq \
                     {}, hash {:?}",
                    r.seq, r.hash
                ));
            }
            receipts_match_lines(&log, &[r], self.custom)?;
            let again = self.open(&log, &opts)?;
            let r2 = again.emit(&event(2)).map_err(|e| describe_err(&e))?;
            again.close().map_err(|e| describe_err(&e))?;
            if r2.seq != 2 {
                return Err(format!(
                    "reopened with the chain off, the next record has seq {}, want 2",
                    r2.seq
                ));
            }
            Ok("chain off: records without hash or prev_hash, no hash in receipts or head; seq resumes".to_string())
        })();
        report.check("chain-off", result);
    }

    fn durability(&self, report: &mut Report) {
        for (name, durability) in [
            ("durability-always", Durability::Always),
            ("durability-batch", Durability::Batch),
            ("durability-none", Durability::None),
        ] {
            let log = self.dir.join(format!("{name}.jsonl"));
            let result = (|| {
                let sink = self.open(&log, &options(true, durability))?;
                let r = sink.emit(&event(1)).map_err(|e| describe_err(&e))?;
                sink.emit_batch(&[event(2), event(3)])
                    .map_err(|e| describe_err(&e))?;
                sink.flush().map_err(|e| describe_err(&e))?;
                sink.close().map_err(|e| describe_err(&e))?;
                receipts_match_lines(&log, &[r], self.custom)?;
                Ok(format!(
                    "{durability:?}: emit, emit-batch, flush and close succeed"
                ))
            })();
            report.check(name, result);
        }
    }

    fn torn_tail(&self, report: &mut Report) {
        let log = self.dir.join("torn.jsonl");
        let opts = options(true, Durability::Always);
        let result = (|| {
            let sink = self.open(&log, &opts)?;
            let first = sink.emit(&event(1)).map_err(|e| describe_err(&e))?;
            sink.close().map_err(|e| describe_err(&e))?;
            drop(sink);
            // A crash mid-append: the start of a second record, no newline.
            let torn = br#"{"actor": {"host_id": "test-sink-host", "user": "tes"#;
            let mut bytes = std::fs::read(&log).map_err(|e| e.to_string())?;
            bytes.extend_from_slice(torn);
            std::fs::write(&log, &bytes).map_err(|e| e.to_string())?;
            let sink = match self.open_raw(&log, &opts)? {
                Ok(sink) => sink,
                // The contract lets a sink refuse a log it cannot continue.
                Err(SinkError::CorruptLog { message, .. }) if size(&log) == bytes.len() as u64 => {
                    return Ok(format!(
                        "a torn last line is refused with corrupt-log, nothing written ({}); \
                         allowed, though recovering it (as the default sink and chainsink-sdk \
                         do) keeps the log usable",
                        one_line(&message)
                    ));
                }
                Err(e) => return Err(describe_err(&e)),
            };
            let head = sink.head().map_err(|e| describe_err(&e))?;
            if head.records != first.seq || head.hash != first.hash {
                return Err(format!(
                    "on a log ending in a torn write, open must resume from the last whole \
                     record (records 1, its hash); got records {}, hash {:?}",
                    head.records, head.hash
                ));
            }
            sink.emit(&event(2)).map_err(|e| describe_err(&e))?;
            sink.close().map_err(|e| describe_err(&e))?;
            let report = verify_file(&log, &VerifyOptions::default()).map_err(|e| {
                format!(
                    "after recovering a torn write the log does not verify: {}; end the torn line \
                     with a newline and a `chain.recovered` record (chainsink-format's recovery rule)",
                    one_line(&e.to_string())
                )
            })?;
            if report.recovered.len() != 1 {
                return Err(
                    "the torn write was not recovered with a chain.recovered record".into(),
                );
            }
            Ok("a torn last line is kept, closed off by a chain.recovered record, and the log verifies".to_string())
        })();
        report.check("open-torn-tail", result);
    }

    fn corrupt_log(&self, report: &mut Report) {
        let log = self.dir.join("corrupt.jsonl");
        let result = (|| {
            std::fs::write(&log, b"this line is not a record\n").map_err(|e| e.to_string())?;
            match self.open(&log, &options(true, Durability::Always)) {
                Ok(sink) => {
                    let wrote = sink.emit(&event(1));
                    Err(format!(
                        "open on a log whose last line is not a record succeeded (then emit: \
                         {}); refuse it with corrupt-log, writing nothing",
                        match wrote {
                            Ok(r) => format!("seq {}", r.seq),
                            Err(e) => describe_err(&e),
                        }
                    ))
                }
                Err(e) if e.contains("cannot be continued") => {
                    if size(&log) != 26 {
                        return Err("corrupt-log was reported, but the log changed".into());
                    }
                    Ok("a log whose last line is not a record is refused with corrupt-log".into())
                }
                Err(e) => Err(format!(
                    "open on a corrupt log must fail with corrupt-log; got: {e}"
                )),
            }
        })();
        report.check("open-corrupt-log", result);
    }
}
