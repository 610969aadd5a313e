//! The native verifier: reads a log and checks every record and link.
//!
//! The rules come from `chainsink-format`, the same crate the sink runs as
//! wasm; this module streams the file through them. Lines are checked (hashed)
//! on all cores a chunk at a time, then linked in order, so memory stays
//! bounded by the chunk size plus the longest line, whatever the log's size.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use chainsink_format::recovery::Torn;
use chainsink_format::verify::{ChainVerifier, LineError, LineInfo, LinkError, Mode, check_line};

/// Bytes read and checked at a time.
const CHUNK: usize = 4 << 20;

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
        write!(
            f,
            "line {} (byte {}): {}: {}",
            self.line,
            self.offset,
            self.kind.as_str().replace('-', " "),
            self.detail
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

/// Links checked lines in order, allowing exactly the torn-write pattern.
struct Linker {
    chain: ChainVerifier,
    line_no: u64,
    /// A bad line that may yet be a recovered torn write: its number, the
    /// claim that would cover it, and its own error.
    torn: Option<(u64, Torn, LineError)>,
    recovered: Vec<Recovery>,
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

    fn torn_error(&self) -> Option<VerifyError> {
        let (line, torn, err) = self.torn.as_ref()?;
        Some(self.tamper(*line, torn.offset, line_kind(err), err.to_string()))
    }

    fn take(&mut self, line: &[u8], checked: Checked) -> Result<(), VerifyError> {
        self.line_no += 1;
        let info = match checked.result {
            Ok(info) => info,
            Err(e) => {
                if let Some(err) = self.torn_error() {
                    return Err(err);
                }
                self.torn = Some((self.line_no, Torn::of(checked.offset, line), e));
                return Ok(());
            }
        };
        if let Some((torn_line, torn, _)) = self.torn {
            match Torn::from_record_line(line) {
                Some(claim) if claim == torn => {
                    self.recovered.push(Recovery {
                        line: torn_line,
                        offset: torn.offset,
                        length: torn.length,
                    });
                    self.torn = None;
                }
                _ => return Err(self.torn_error().expect("torn is set")),
            }
        }
        self.chain
            .push(&info)
            .map_err(|e| self.tamper(self.line_no, checked.offset, link_kind(&e), e.to_string()))
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
        torn: None,
        recovered: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut base = 0u64; // file offset of buf[0]
    let mut eof = false;
    while !eof {
        // Fill the buffer up to CHUNK more bytes (more if a line is longer).
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
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(p) => p + 1,
            None if eof => 0,
            None => continue, // one line longer than the buffer: read more
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
    if !buf.is_empty() {
        linker.line_no += 1;
        if let Some(err) = linker.torn_error() {
            return Err(err);
        }
        return Err(linker.tamper(
            linker.line_no,
            base,
            TamperKind::MissingNewline,
            format!(
                "the last line ({} bytes) has no newline: a torn or cut write; \
                 the sink recovers it at its next write",
                buf.len()
            ),
        ));
    }
    if let Some(err) = linker.torn_error() {
        return Err(err);
    }
    let chained = linker.chain.head().is_some();
    Ok(VerifyReport {
        records: linker.chain.records(),
        head: linker.chain.head().map(|h| h.to_hex()),
        chained,
        bytes: base,
        recovered: linker.recovered,
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

fn line_kind(e: &LineError) -> TamperKind {
    match e {
        LineError::BadJson(..) | LineError::NotAnObject { .. } => TamperKind::BadJson,
        LineError::NotCanonical { .. } => TamperKind::NotCanonical,
        LineError::HashMismatch { .. } => TamperKind::HashMismatch,
        _ => TamperKind::BadRecord,
    }
}

fn link_kind(e: &LinkError) -> TamperKind {
    match e {
        LinkError::SeqMismatch { .. } => TamperKind::SeqMismatch,
        LinkError::BrokenLink { .. } => TamperKind::BrokenLink,
        _ => TamperKind::BadRecord,
    }
}
