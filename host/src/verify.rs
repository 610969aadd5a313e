//! The native verifier: reads a log and checks every record and link.
//!
//! The rules come from `chainsink-format`, the same crate the sink runs as
//! wasm; this module only streams the file through them, so memory stays
//! bounded by the longest line.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chainsink_format::verify::{ChainVerifier, LineError, LinkError, Mode, check_line};

/// How strictly to check.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Re-encode every record and require its exact canonical bytes.
    pub strict: bool,
}

/// A log that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records in the log.
    pub records: u64,
    /// The last record's hash (64 zeros for an empty log); None when the log
    /// is not hash-chained.
    pub head: Option<String>,
    /// Whether the records carry a hash chain.
    pub chained: bool,
    /// Bytes read.
    pub bytes: u64,
}

impl VerifyReport {
    /// The one-line summary `chainsink verify` prints.
    pub fn summary(&self) -> String {
        match &self.head {
            Some(head) => format!("OK {} records, head {head}", self.records),
            None if self.records == 0 => "OK 0 records, head (empty log)".to_string(),
            None => format!(
                "OK {} records, no hash chain (written with AUDIT_HASH_CHAIN=false: only the form was checked)",
                self.records
            ),
        }
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
    /// The last line has no `\n`: a torn or truncated write.
    MissingNewline,
    /// `seq` is not the record's position.
    SeqMismatch,
    /// A required field is missing or malformed.
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
    let unreadable = |source| VerifyError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    if file.metadata().map_err(unreadable)?.is_dir() {
        return Err(unreadable(std::io::Error::other("it is a directory")));
    }
    verify_reader(file, options).map_err(|e| match e {
        VerifyError::Unreadable { source, .. } => unreadable(source),
        other => other,
    })
}

/// Verifies a log read from `reader`.
pub fn verify_reader(
    reader: impl Read,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let mode = if options.strict {
        Mode::Strict
    } else {
        Mode::Fast
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut chain = ChainVerifier::new();
    let mut line = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| VerifyError::Unreadable {
                path: PathBuf::from("<input>"),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let tamper = |kind, detail: String| {
            VerifyError::Tampered(Tamper {
                line: line_no,
                offset,
                kind,
                detail,
                records_before: line_no - 1,
            })
        };
        if line.last() != Some(&b'\n') {
            return Err(tamper(
                TamperKind::MissingNewline,
                format!("the last line ({n} bytes) has no newline: a torn or cut write"),
            ));
        }
        let body = &line[..line.len() - 1];
        let info = check_line(body, mode).map_err(|e| tamper(line_kind(&e), e.to_string()))?;
        chain
            .push(&info)
            .map_err(|e| tamper(link_kind(&e), e.to_string()))?;
        offset += n as u64;
    }
    Ok(VerifyReport {
        records: chain.records(),
        head: chain.head().map(|h| h.to_hex()),
        chained: chain.head().is_some() && chain.records() > 0,
        bytes: offset,
    })
}

fn line_kind(e: &LineError) -> TamperKind {
    match e {
        LineError::BadJson(..) => TamperKind::BadJson,
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
