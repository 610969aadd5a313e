//! The native verifier: reads a log and checks every record and link.
//!
//! The rules come from `chainsink-format`, the same crate the sink runs as
//! wasm; this module streams the file through them. Lines are checked (hashed)
//! on all cores a chunk at a time, then linked in order, so memory stays
//! bounded by the chunk size plus the largest record
//! ([`chainsink_format::MAX_RECORD_BYTES`]), whatever the log's size: a
//! longer line cannot be a record, so it is hashed as it streams past and
//! never held (time stays linear in its length).
//!
//! Bytes that are not records are accepted in exactly two patterns, each
//! decided by the format crate: a torn write the writer closed with a
//! `chain.recovered` record ([`chainsink_format::recovery`]), and bytes a
//! sink appended that the host refused and marked with a `chain.rejected`
//! record ([`chainsink_format::rejection`]). Both are reported. Anything
//! else is tampering, reported at its first line.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::judge_bad_run;
use chainsink_format::rejection::{Region, Rejected};
use chainsink_format::verify::{ChainVerifier, LineError, LineInfo, LinkError, Mode, check_line};

/// Bytes read and checked at a time.
const CHUNK: usize = 4 << 20;

/// The largest run of bytes a `chain.rejected` record can cover: what one
/// call may append at most (`SinkLimits::append_bytes` is capped at
/// [`crate::runtime::limits::MAX_APPEND_BYTES`]) plus the `\n` the host may
/// add. Past this, bytes that are not records cannot be excused, and the
/// verifier stops (so `verify /dev/zero` ends).
pub(crate) const MAX_REGION: u64 = crate::runtime::limits::MAX_APPEND_BYTES + 1;

/// Most lines in one torn run (the writer's own bound is lower).
const MAX_TORN_RUN: usize = 16;

/// How to check.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Re-encode every record and require its exact canonical bytes.
    pub strict: bool,
    /// Threads that hash lines; 0 means one per core.
    pub threads: usize,
}

/// A torn write that the sink closed off with a `chain.recovered` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Line number of the torn bytes.
    pub line: u64,
    /// Their byte offset.
    pub offset: u64,
    /// Their length (without the `\n` the sink added).
    pub length: u64,
}

/// Bytes a sink appended that the host refused and marked with a
/// `chain.rejected` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Line number of the first rejected line.
    pub line: u64,
    /// Byte offset of the rejected bytes.
    pub offset: u64,
    /// How many bytes.
    pub length: u64,
    /// Line number of the host's `chain.rejected` record.
    pub record_line: u64,
}

/// A log that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records in the log (torn lines are not records).
    pub records: u64,
    /// The last record's hash; None when the log is not hash-chained or empty.
    pub head: Option<String>,
    /// Whether the records carry a hash chain.
    pub chained: bool,
    /// Bytes read.
    pub bytes: u64,
    /// Torn writes recovered by the sink, in order.
    pub recovered: Vec<Recovery>,
    /// Appends the host refused and marked, in order: each is a breach of
    /// the sink contract that was caught when it happened.
    pub rejected: Vec<Rejection>,
}

impl VerifyReport {
    /// The one-line summary `chainsink verify` prints.
    pub fn summary(&self) -> String {
        let mut s = match &self.head {
            Some(head) => format!("OK {} records, head {head}", self.records),
            None if self.records == 0 => "OK 0 records (empty log)".to_string(),
            None => format!(
                "OK {} records, no hash chain (written with AUDIT_HASH_CHAIN=false: only the form was checked)",
                self.records
            ),
        };
        if !self.recovered.is_empty() {
            let lines: Vec<String> = self.recovered.iter().map(|r| r.line.to_string()).collect();
            s.push_str(&format!(
                "; {} torn write(s) recovered by the sink (line {})",
                self.recovered.len(),
                lines.join(", ")
            ));
        }
        if !self.rejected.is_empty() {
            let lines: Vec<String> = self
                .rejected
                .iter()
                .map(|r| format!("{} bytes at line {}", r.length, r.line))
                .collect();
            s.push_str(&format!(
                "; {} BREACH(ES) by a sink, refused and marked by the host: {} (see the \
                 `chain.rejected` records)",
                self.rejected.len(),
                lines.join(", ")
            ));
        }
        s
    }
}

/// What kind of damage a line shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TamperKind {
    /// The record's bytes do not hash to its `hash`.
    HashMismatch,
    /// `prev_hash` is not the previous record's `hash`.
    BrokenLink,
    /// The record is JSON but not in canonical form.
    NotCanonical,
    /// The line is not JSON.
    BadJson,
    /// The last line has no `\n`: a torn or truncated write not yet recovered.
    MissingNewline,
    /// `seq` is not the record's position.
    SeqMismatch,
    /// A required field is missing or malformed, or chained and unchained
    /// records are mixed.
    BadRecord,
}

impl TamperKind {
    /// The machine name used in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::HashMismatch => "hash-mismatch",
            TamperKind::BrokenLink => "broken-link",
            TamperKind::NotCanonical => "not-canonical",
            TamperKind::BadJson => "bad-json",
            TamperKind::MissingNewline => "missing-newline",
            TamperKind::SeqMismatch => "seq-mismatch",
            TamperKind::BadRecord => "bad-record",
        }
    }
}

/// The first bad line of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tamper {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset where the line starts.
    pub offset: u64,
    /// What is wrong.
    pub kind: TamperKind,
    /// The details.
    pub detail: String,
    /// Records before this line that checked out.
    pub records_before: u64,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The detail names the kind of damage itself.
        write!(
            f,
            "line {} (byte {}): {}",
            self.line, self.offset, self.detail
        )
    }
}

/// Why verification did not say OK.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The log.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line fails a check.
    #[error("{0}")]
    Tampered(Tamper),
}

/// Verifies the log at `path`.
pub fn verify_file(path: &Path, options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    verify_file_with_progress(path, options, |_| {})
}

/// Verifies the log at `path`, calling `progress` with the bytes done so far
/// after each chunk (for a progress bar).
pub fn verify_file_with_progress(
    path: &Path,
    options: &VerifyOptions,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let unreadable = |source| VerifyError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    if file.metadata().map_err(unreadable)?.is_dir() {
        return Err(unreadable(std::io::Error::other("it is a directory")));
    }
    run(file, options, progress).map_err(|e| match e {
        VerifyError::Unreadable { source, .. } => unreadable(source),
        other => other,
    })
}

/// Verifies a log read from `reader`.
pub fn verify_reader(
    reader: impl Read,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    run(reader, options, |_| {})
}

/// One line of the current chunk, checked.
struct Checked {
    offset: u64,
    result: Result<LineInfo, LineError>,
}

/// Lines that are not (yet) part of the chain: from the first line that
/// failed, until a record excuses them or the log ends.
struct Suspect {
    /// What to report if nothing excuses them.
    error: VerifyError,
    /// Line number and offset of the first of them.
    line: u64,
    offset: u64,
    /// The lines' bytes, for the torn-write rule, while they can still be a
    /// torn run: each one not a record, all of them short (`None` once a
    /// line is too long, or a valid record, or the run too big).
    torn: Option<Vec<Vec<u8>>>,
    /// Lines so far.
    lines: u64,
    /// All their bytes, hashed, for a `chain.rejected` claim.
    region: Region,
}

/// Links checked lines in order, allowing exactly the two patterns the
/// format crate defines.
struct Linker {
    chain: ChainVerifier,
    line_no: u64,
    suspect: Option<Suspect>,
    recovered: Vec<Recovery>,
    rejected: Vec<Rejection>,
}

impl Linker {
    fn tamper(&self, line: u64, offset: u64, kind: TamperKind, detail: String) -> VerifyError {
        VerifyError::Tampered(Tamper {
            line,
            offset,
            kind,
            detail,
            records_before: self.chain.records(),
        })
    }

    /// Starts (or extends) the run of lines that are not in the chain;
    /// `error` is what to report if nothing excuses it.
    fn suspect(
        &mut self,
        offset: u64,
        line: Option<&[u8]>,
        error: impl FnOnce(&Self) -> VerifyError,
    ) {
        match &mut self.suspect {
            Some(s) => {
                s.lines += 1;
                s.torn = match (s.torn.take(), line) {
                    (Some(mut lines), Some(line))
                        if lines.len() < MAX_TORN_RUN
                            && lines.iter().map(Vec::len).sum::<usize>() + line.len()
                                <= 2 * MAX_RECORD_BYTES =>
                    {
                        lines.push(line.to_vec());
                        Some(lines)
                    }
                    _ => None,
                };
            }
            None => {
                let error = error(self);
                self.suspect = Some(Suspect {
                    error,
                    line: self.line_no,
                    offset,
                    torn: line.map(|l| vec![l.to_vec()]),
                    lines: 1,
                    region: Region::new(offset),
                });
            }
        }
    }

    /// Whether the valid record `line` excuses the suspect lines before it.
    fn excuses(&mut self, line: &[u8]) -> bool {
        let Some(s) = &self.suspect else {
            return false;
        };
        if let Some(lines) = &s.torn
            && let Ok(torn) = judge_bad_run(
                s.offset,
                &lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                Some(line),
            )
        {
            self.recovered.push(Recovery {
                line: s.line,
                offset: torn.offset,
                length: torn.length,
            });
            self.suspect = None;
            return true;
        }
        if let Some(claim) = Rejected::from_record_line(line)
            && s.region.is_claimed_by(&claim)
        {
            self.rejected.push(Rejection {
                line: s.line,
                offset: claim.offset,
                length: claim.length,
                record_line: self.line_no,
            });
            self.suspect = None;
            return true;
        }
        false
    }

    /// Adds a line that is not in the chain to the suspect region.
    fn hold(&mut self, line: &[u8]) -> Result<(), VerifyError> {
        let s = self.suspect.as_mut().expect("a suspect region is open");
        s.region.push(line);
        if s.region.len() > MAX_REGION {
            return Err(self.suspect.take().expect("open").error);
        }
        Ok(())
    }

    fn take(&mut self, line: &[u8], checked: Checked) -> Result<(), VerifyError> {
        self.line_no += 1;
        let info = match checked.result {
            Ok(info) => info,
            Err(e) => {
                let (no, at) = (self.line_no, checked.offset);
                self.suspect(at, Some(line), |l| {
                    l.tamper(no, at, line_kind(&e), e.to_string())
                });
                return self.hold(line);
            }
        };
        if self.suspect.is_some() && !self.excuses(line) {
            // A valid record inside the run: it can only be rejected bytes.
            self.suspect(checked.offset, None, |_| unreachable!("the region is open"));
            return self.hold(line);
        }
        let before = self.chain.clone();
        if let Err(e) = self.chain.push(&info) {
            // A valid record that does not follow: tampering, unless the
            // host marked it as rejected right after.
            let (no, at) = (self.line_no, checked.offset);
            self.chain = before;
            let error = self.tamper(no, at, link_kind(&e), e.to_string());
            self.suspect(at, None, |_| error);
            return self.hold(line);
        }
        Ok(())
    }

    /// A line too long to be a record, streamed past: `part` is one piece of
    /// it; `end` marks its last piece (then its `\n` is counted).
    fn long_line_part(
        &mut self,
        offset: u64,
        part: &[u8],
        first_part: bool,
        end: bool,
    ) -> Result<(), VerifyError> {
        if first_part {
            self.line_no += 1;
            let no = self.line_no;
            self.suspect(offset, None, |l| {
                l.tamper(
                    no,
                    offset,
                    TamperKind::BadRecord,
                    format!(
                        "the line is longer than the largest record ({MAX_RECORD_BYTES} bytes), \
                         so it is not a record"
                    ),
                )
            });
        }
        let s = self.suspect.as_mut().expect("a suspect region is open");
        s.region.push_part(part);
        if end {
            s.region.end_line();
        }
        if s.region.len() > MAX_REGION {
            return Err(self.suspect.take().expect("open").error);
        }
        Ok(())
    }
}

fn run(
    mut reader: impl Read,
    options: &VerifyOptions,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let mode = if options.strict {
        Mode::Strict
    } else {
        Mode::Fast
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut linker = Linker {
        chain: ChainVerifier::new(),
        line_no: 0,
        suspect: None,
        recovered: Vec::new(),
        rejected: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut base = 0u64; // file offset of buf[0]
    let mut eof = false;
    // Inside a line too long to be a record: where it started.
    let mut long_line: Option<u64> = None;
    while !eof {
        // Fill the buffer up to CHUNK more bytes.
        let scanned = buf.len();
        let want = buf.len() + CHUNK;
        while buf.len() < want {
            let old = buf.len();
            buf.resize(want, 0);
            let n = match reader.read(&mut buf[old..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(source) => {
                    return Err(VerifyError::Unreadable {
                        path: PathBuf::from("<input>"),
                        source,
                    });
                }
            };
            buf.truncate(old + n);
            if n == 0 {
                eof = true;
                break;
            }
        }
        // Only the new bytes need scanning for the first newline.
        let first_nl = memchr::memchr(b'\n', &buf[scanned..]).map(|p| scanned + p);
        if let Some(start) = long_line {
            // Stream the rest of the long line past.
            let end = first_nl.unwrap_or(buf.len());
            linker.long_line_part(start, &buf[..end], false, first_nl.is_some())?;
            let used = if first_nl.is_some() { end + 1 } else { end };
            if first_nl.is_some() {
                long_line = None;
            }
            buf.drain(..used);
            base += used as u64;
            progress(base);
            if long_line.is_some() {
                continue;
            }
        }
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if buf.len() > MAX_RECORD_BYTES => {
                // No record is this long: stream it instead of holding it.
                linker.long_line_part(base, &buf, true, false)?;
                long_line = Some(base);
                base += buf.len() as u64;
                buf.clear();
                progress(base);
                continue;
            }
            None if eof => 0,
            None => continue, // a line longer than the buffer: read more
        };
        let lines = split_lines(&buf[..complete]);
        let checked = check_all(&buf, base, &lines, mode, threads);
        for ((start, end), c) in lines.iter().zip(checked) {
            linker.take(&buf[*start..*end], c)?;
        }
        progress(base + complete as u64);
        buf.drain(..complete);
        base += complete as u64;
    }
    if long_line.is_some() || !buf.is_empty() {
        if let Some(s) = linker.suspect.take() {
            return Err(s.error);
        }
        linker.line_no += u64::from(long_line.is_none());
        let length = buf.len();
        return Err(linker.tamper(
            linker.line_no,
            long_line.unwrap_or(base),
            TamperKind::MissingNewline,
            format!(
                "the last line ({length} bytes) has no newline: a torn or cut write; \
                 the sink recovers it at its next write"
            ),
        ));
    }
    if let Some(s) = linker.suspect.take() {
        return Err(s.error);
    }
    let chained = linker.chain.head().is_some();
    Ok(VerifyReport {
        records: linker.chain.records(),
        head: linker.chain.head().map(|h| h.to_hex()),
        chained,
        bytes: base,
        recovered: linker.recovered,
        rejected: linker.rejected,
    })
}

/// (start, end) of each line in `chunk`, without the `\n`.
fn split_lines(chunk: &[u8]) -> Vec<(usize, usize)> {
    let mut lines = Vec::with_capacity(chunk.len() / 256 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', chunk) {
        lines.push((start, end));
        start = end + 1;
    }
    lines
}

/// Checks every line, spread over `threads` threads, results in order.
fn check_all(
    buf: &[u8],
    base: u64,
    lines: &[(usize, usize)],
    mode: Mode,
    threads: usize,
) -> Vec<Checked> {
    let check = |&(start, end): &(usize, usize)| Checked {
        offset: base + start as u64,
        result: check_line(&buf[start..end], mode),
    };
    if threads <= 1 || lines.len() < 64 {
        return lines.iter().map(check).collect();
    }
    let per = lines.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = lines
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(check).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("a verify thread panicked"))
            .collect()
    })
}

/// The kind of damage a line error shows (shared with [`crate::trail`]).
pub(crate) fn line_kind(e: &LineError) -> TamperKind {
    match e {
        LineError::BadJson(..) | LineError::NotAnObject { .. } => TamperKind::BadJson,
        LineError::NotCanonical { .. } => TamperKind::NotCanonical,
        LineError::HashMismatch { .. } => TamperKind::HashMismatch,
        _ => TamperKind::BadRecord,
    }
}

/// The kind of damage a link error shows (shared with [`crate::trail`]).
pub(crate) fn link_kind(e: &LinkError) -> TamperKind {
    match e {
        LinkError::SeqMismatch { .. } => TamperKind::SeqMismatch,
        LinkError::BrokenLink { .. } => TamperKind::BrokenLink,
        _ => TamperKind::BadRecord,
    }
}
