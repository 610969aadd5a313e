//! The native verifier: reads a log and checks every record and link.
//!
//! The rules come from `chainsink-format`, the same crate the sink runs as
//! wasm; this module streams the file through them. The log is read in
//! chunks of whole lines (1 MiB, cut after the last `\n`; the unfinished line
//! moves on to the next chunk). Worker threads check the chunks' lines on
//! all cores (`check_lines`: each line on its own, two hashed at a time),
//! the reading thread being one of them: it checks a chunk itself whenever
//! every worker already has one queued behind the one it is checking. The
//! reading thread links the chunks in order with the one chain rule
//! ([`ChainVerifier`]), so nothing but the order of links is sequential.
//! Reading, checking and linking overlap, and memory stays bounded by a
//! fixed number of chunks (`MAX_CHUNKS`, each a chunk plus the largest
//! record, [`chainsink_format::MAX_RECORD_BYTES`]), whatever the log's size:
//! a longer line cannot be a record, so it is hashed as it streams past and
//! never held (time stays linear in its length), and judged the same way
//! whether or not it happened to fit in a chunk.
//!
//! Bytes that are not records are accepted in exactly two patterns, each
//! decided by the format crate: a torn write the writer closed with a
//! `chain.recovered` record ([`chainsink_format::recovery`]), and bytes a
//! sink appended that the host refused and marked with a `chain.rejected`
//! record ([`chainsink_format::rejection`]). Both are reported. Anything
//! else is tampering, reported at its first line.
//!
//! Refused bytes may be valid records that linked (a sink that wrote them
//! right but lied in its receipts): they are in the chain by the time their
//! `chain.rejected` record comes, and it links to the record before them.
//! For that, the linker remembers the chain's state at a line every MiB of
//! the stretches where every line linked (`rejection::LinkedStretches`), and
//! re-reads the bytes from the last such line before the claim to judge it. That needs a file it can read at an offset;
//! from a pipe, such a claim is reported as not checkable, never as
//! tampering.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::judge_bad_run;
use chainsink_format::rejection::{ClaimError, LinkedStretches, Region, Rejected};
use chainsink_format::verify::{ChainVerifier, LineError, LineInfo, LinkError, Mode, check_lines};

/// Bytes read and checked at a time: small enough that a chunk is still in the core's cache
/// when it is checked, large enough that handing it to a thread costs little.
const CHUNK: usize = 1 << 20;

/// Room in a chunk: [`CHUNK`] bytes, plus the unfinished line carried over from the chunk before
/// (a longer one cannot be a record and is streamed past instead).
const BUF: usize = CHUNK + MAX_RECORD_BYTES + 1;

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
    // A second handle, read only at offsets (it shares the reading one's position, which
    // reading at an offset leaves alone).
    let reread = file.try_clone().ok();
    run(file, reread, options, progress).map_err(|e| match e {
        VerifyError::Unreadable { source, .. } => unreadable(source),
        other => other,
    })
}

/// Verifies a log read from `reader`.
pub fn verify_reader(
    reader: impl Read,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    run(reader, None, options, |_| {})
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
    /// Where the chain's state was known, for a `chain.rejected` record over
    /// records that linked.
    linked: LinkedStretches,
    /// The log, to re-read a claimed stretch at its offset (`None`: a pipe).
    reread: Option<File>,
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
                self.linked.unlinked(offset);
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

    /// Takes in the next line (at `offset` in the log), checked.
    fn take(
        &mut self,
        line: &[u8],
        offset: u64,
        checked: Result<LineInfo, LineError>,
    ) -> Result<(), VerifyError> {
        if line.len() > MAX_RECORD_BYTES {
            // Held whole or streamed past in pieces (which depends only on where the reads
            // fell), a line no record can be is judged one way: never a torn write.
            return self.long_line_part(offset, line, true, true);
        }
        self.line_no += 1;
        let info = match checked {
            Ok(info) => info,
            Err(e) => {
                let (no, at) = (self.line_no, offset);
                self.suspect(at, Some(line), |l| {
                    l.tamper(no, at, line_kind(&e), e.to_string())
                });
                return self.hold(line);
            }
        };
        if self.suspect.is_some() && !self.excuses(line) {
            if self.claims_linked_records(line, offset, &info)? {
                return Ok(());
            }
            // A valid record inside the run: it can only be rejected bytes.
            self.suspect(offset, None, |_| unreachable!("the region is open"));
            return self.hold(line);
        }
        let before = self.chain.clone();
        if let Err(e) = self.chain.push(&info) {
            // A valid record that does not follow: tampering, unless it is
            // the host's mark after records a sink appended that linked, or
            // the host marked it as rejected right after.
            self.chain = before;
            if self.claims_linked_records(line, offset, &info)? {
                return Ok(());
            }
            let (no, at) = (self.line_no, offset);
            let error = self.tamper(no, at, link_kind(&e), e.to_string());
            self.suspect(at, None, |_| error);
            return self.hold(line);
        }
        if self.suspect.is_none() {
            self.linked.linked(offset, self.line_no - 1, &before);
        }
        Ok(())
    }

    /// Whether the valid record `line` (at `offset`) is a `chain.rejected`
    /// record whose claim covers lines that linked (and perhaps lines after
    /// them that did not), judged by the format crate over the bytes re-read
    /// from the last known state before the claim. If so, the claimed lines
    /// leave the chain, which goes on from the record.
    fn claims_linked_records(
        &mut self,
        line: &[u8],
        offset: u64,
        info: &LineInfo,
    ) -> Result<bool, VerifyError> {
        let Some(claim) = Rejected::from_record_line(line) else {
            return Ok(false);
        };
        // The claim must end at this record and start where every line linked (before any
        // suspect run: one that starts at the run is judged by `excuses`).
        let linked_until = self.suspect.as_ref().map_or(offset, |s| s.offset);
        let reread = self.reread.as_ref();
        let judged = self
            .linked
            .judge_claim(&claim, info, offset, linked_until, |at, buf| match reread {
                Some(file) => read_at(file, at, buf),
                None => Err(std::io::Error::from(std::io::ErrorKind::Unsupported)),
            });
        let good = match judged {
            Ok(Some(good)) => good,
            Ok(None) => return Ok(false),
            Err(ClaimError::Read(e)) => {
                return Err(VerifyError::Unreadable {
                    path: PathBuf::from("<input>"),
                    source: std::io::Error::other(format!(
                        "line {} (byte {offset}) is a `{}` record that claims {} bytes from \
                         byte {}, records that were already taken into the chain; checking \
                         that claim means reading them again, which this input does not allow \
                         ({e}): verify the log as a file, not from a pipe",
                        self.line_no,
                        chainsink_format::rejection::REJECTED_EVENT,
                        claim.length,
                        claim.offset,
                    )),
                });
            }
            Err(ClaimError::TooCostly { reread, allowed }) => {
                let detail = format!(
                    "a `{}` record whose claim cannot be checked in time linear in the log: \
                     judging it means re-reading {reread} bytes in all, past the {allowed} that \
                     any log written by an honest host needs; no honest host writes such claims",
                    chainsink_format::rejection::REJECTED_EVENT
                );
                return Err(self.tamper(self.line_no, offset, TamperKind::BadRecord, detail));
            }
        };
        // The claimed bytes are not part of the chain, and neither is anything excused inside
        // them.
        self.recovered.retain(|r| r.offset < claim.offset);
        self.rejected.retain(|r| r.offset < claim.offset);
        self.rejected.push(Rejection {
            line: good.first_line,
            offset: claim.offset,
            length: claim.length,
            record_line: self.line_no,
        });
        self.chain = good.chain;
        self.suspect = None;
        Ok(true)
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
    reader: impl Read,
    reread: Option<File>,
    options: &VerifyOptions,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    run_in_chunks(reader, reread, options, CHUNK, progress)
}

/// Fills `buf` from `file` at `offset`, without moving the file's position.
pub(crate) fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, offset, buf);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// [`run`], reading `chunk` bytes at a time (at most [`CHUNK`]; tests use small ones to put
/// chunk boundaries everywhere).
fn run_in_chunks(
    reader: impl Read,
    reread: Option<File>,
    options: &VerifyOptions,
    chunk: usize,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let chunk = chunk.clamp(1, CHUNK);
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
        linked: LinkedStretches::new(MAX_REGION),
        reread,
    };
    let mut input = Input {
        reader,
        eof: false,
        read: 0,
    };
    let tail = if threads <= 1 {
        let mut pipe = Pipeline {
            workers: None,
            worker_count: 0,
            pending: 0,
            chunk,
            free: Vec::new(),
            allocated: 0,
            max_chunks: 2,
            sent: 0,
            linked: 0,
            done: BTreeMap::new(),
        };
        pipe.read_all(&mut input, &mut linker, mode, &mut progress)?
    } else {
        let (job_tx, job_rx) = mpsc::channel::<Numbered>();
        let (done_tx, done_rx) = mpsc::channel::<Numbered>();
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|s| {
            // The reading thread is one of the `threads`: it checks chunks too whenever the
            // workers have enough queued (see `Pipeline::send`), so on N cores N threads run
            // rather than N workers plus a reader competing for them.
            for _ in 0..threads - 1 {
                let (job_rx, done_tx) = (&job_rx, done_tx.clone());
                s.spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next chunk.
                        let job = job_rx
                            .lock()
                            .map_err(|_| ())
                            .and_then(|rx| rx.recv().map_err(|_| ()));
                        let Ok((seq, mut chunk)) = job else { break };
                        chunk.check(mode);
                        if done_tx.send((seq, chunk)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut pipe = Pipeline {
                workers: Some((job_tx, done_rx)),
                worker_count: threads - 1,
                pending: 0,
                chunk,
                free: Vec::new(),
                allocated: 0,
                max_chunks: (2 * threads + 2).min(MAX_CHUNKS),
                sent: 0,
                linked: 0,
                done: BTreeMap::new(),
            };
            // Returning drops the job queue, so the workers stop.
            pipe.read_all(&mut input, &mut linker, mode, &mut progress)
        })?
    };
    if let Some((offset, length, long)) = tail {
        if let Some(s) = linker.suspect.take() {
            return Err(s.error);
        }
        linker.line_no += u64::from(!long);
        return Err(linker.tamper(
            linker.line_no,
            offset,
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
        bytes: input.read,
        recovered: linker.recovered,
        rejected: linker.rejected,
    })
}

/// The log as it is read.
struct Input<R> {
    reader: R,
    eof: bool,
    /// Bytes read so far.
    read: u64,
}

impl<R: Read> Input<R> {
    /// Reads into `chunk` until it holds `want` bytes or the input ends.
    fn fill(&mut self, chunk: &mut Chunk, want: usize) -> Result<(), VerifyError> {
        while chunk.len < want && !self.eof {
            match self.reader.read(&mut chunk.data[chunk.len..want]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    chunk.len += n;
                    self.read += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(VerifyError::Unreadable {
                        path: PathBuf::from("<input>"),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A piece of the log: whole lines, checked together, then linked in order.
struct Chunk {
    /// [`BUF`] bytes of room.
    data: Box<[u8]>,
    /// Bytes of `data` in use.
    len: usize,
    /// Log offset of `data[0]`.
    base: u64,
    /// Bytes of whole lines (up to and including the last `\n`).
    complete: usize,
    /// (start, end) of each whole line, without the `\n`.
    lines: Vec<(usize, usize)>,
    /// Each line's verdict.
    results: Vec<Result<LineInfo, LineError>>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            data: vec![0; BUF].into_boxed_slice(),
            len: 0,
            base: 0,
            complete: 0,
            lines: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Checks every whole line (each on its own: the links come later, in order).
    fn check(&mut self, mode: Mode) {
        self.lines.clear();
        self.results.clear();
        let whole = &self.data[..self.complete];
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', whole) {
            self.lines.push((start, end));
            start = end + 1;
        }
        check_lines(
            self.lines.iter().map(|&(s, e)| &whole[s..e]),
            mode,
            &mut self.results,
        );
    }
}

/// Most chunks in memory at once, however many threads: bounds memory to about
/// `MAX_CHUNKS * BUF` (32 MiB).
const MAX_CHUNKS: usize = 16;

/// A chunk and its place in the log's order.
type Numbered = (u64, Chunk);

/// Chunks on their way: read, checked (on worker threads, or inline), then linked in order.
struct Pipeline {
    /// The queue to the worker threads and their answers; `None`: check inline.
    workers: Option<(mpsc::Sender<Numbered>, mpsc::Receiver<Numbered>)>,
    /// How many worker threads there are, and chunks sent to them not yet back.
    worker_count: usize,
    pending: usize,
    /// Bytes to read at a time ([`CHUNK`] but in tests).
    chunk: usize,
    /// Chunks ready for reuse.
    free: Vec<Chunk>,
    /// Chunks allocated so far, and the most there may be.
    allocated: usize,
    max_chunks: usize,
    /// Chunks sent off, and linked, so far (their sequence numbers).
    sent: u64,
    linked: u64,
    /// Checked chunks waiting for their turn to be linked.
    done: BTreeMap<u64, Chunk>,
}

impl Pipeline {
    /// Reads, checks and links the whole input. Returns the unterminated tail, if any: (offset,
    /// length, whether it belongs to a line too long to be a record).
    fn read_all(
        &mut self,
        input: &mut Input<impl Read>,
        linker: &mut Linker,
        mode: Mode,
        progress: &mut impl FnMut(u64),
    ) -> Result<Option<(u64, usize, bool)>, VerifyError> {
        let mut cur = self.take(linker, progress)?;
        loop {
            let want = (cur.len + self.chunk).min(BUF);
            input.fill(&mut cur, want)?;
            let complete = memchr::memrchr(b'\n', &cur.data[..cur.len]).map_or(0, |p| p + 1);
            if complete == 0 {
                if cur.len > MAX_RECORD_BYTES {
                    // No record is this long: stream it instead of holding it.
                    self.finish(linker, progress)?;
                    if !stream_long_line(input, &mut cur, self.chunk, linker, progress)? {
                        return Ok(Some((cur.base, cur.len, true)));
                    }
                    continue;
                }
                if input.eof {
                    self.finish(linker, progress)?;
                    return Ok((cur.len > 0).then_some((cur.base, cur.len, false)));
                }
                continue; // a line longer than what was read: read more
            }
            // Whole lines go off to be checked; the start of the next line moves on.
            let mut next = self.take(linker, progress)?;
            let rest = cur.len - complete;
            next.data[..rest].copy_from_slice(&cur.data[complete..cur.len]);
            next.len = rest;
            next.base = cur.base + complete as u64;
            cur.complete = complete;
            cur.len = complete;
            self.send(cur, mode, linker, progress)?;
            cur = next;
        }
    }

    /// A chunk to read into: a free one, a new one, or the next one linked.
    fn take(
        &mut self,
        linker: &mut Linker,
        progress: &mut impl FnMut(u64),
    ) -> Result<Chunk, VerifyError> {
        loop {
            if let Some(mut c) = self.free.pop() {
                c.len = 0;
                c.complete = 0;
                return Ok(c);
            }
            if self.allocated < self.max_chunks {
                self.allocated += 1;
                return Ok(Chunk::new());
            }
            self.wait_one(linker, progress)?;
        }
    }

    /// Hands a chunk of whole lines to be checked.
    fn send(
        &mut self,
        mut chunk: Chunk,
        mode: Mode,
        linker: &mut Linker,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyError> {
        let seq = self.sent;
        self.sent += 1;
        match &self.workers {
            // To the workers while each holds at most two chunks beyond the one it is checking;
            // beyond that none runs dry while this thread checks the chunk itself (below)
            // instead of waiting. With only one queued behind, this thread (which also reads
            // and links) took more than its share: a profile of `--threads 2` showed it with
            // 66% of the samples and the worker idle a third of the time (docs/benchmarks.md).
            Some((jobs, answers)) if self.pending <= 2 * self.worker_count => {
                jobs.send((seq, chunk))
                    .expect("the verify threads stop only when the queue closes");
                self.pending += 1;
                // Link what is ready, so memory is reused and progress moves.
                while let Ok((seq, chunk)) = answers.try_recv() {
                    self.pending -= 1;
                    self.done.insert(seq, chunk);
                }
                self.link_ready(linker, progress)
            }
            _ => {
                chunk.check(mode);
                self.done.insert(seq, chunk);
                self.link_ready(linker, progress)
            }
        }
    }

    /// Waits for one checked chunk, then links every chunk whose turn has come.
    fn wait_one(
        &mut self,
        linker: &mut Linker,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyError> {
        let Some((_, answers)) = &self.workers else {
            unreachable!("inline checking links every chunk as it is sent");
        };
        // Called only while a chunk waits to be linked or reused, and every chunk not linked yet
        // is with a worker or waits behind one that is: so one will come back.
        assert!(self.pending > 0, "no chunk is with the workers");
        let (seq, chunk) = answers.recv().expect("a verify thread panicked");
        self.pending -= 1;
        self.done.insert(seq, chunk);
        self.link_ready(linker, progress)
    }

    /// Links the chunks that are next in order.
    fn link_ready(
        &mut self,
        linker: &mut Linker,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyError> {
        while let Some(mut chunk) = self.done.remove(&self.linked) {
            self.linked += 1;
            for (&(start, end), result) in chunk.lines.iter().zip(chunk.results.drain(..)) {
                linker.take(&chunk.data[start..end], chunk.base + start as u64, result)?;
            }
            progress(chunk.base + chunk.complete as u64);
            self.free.push(chunk);
        }
        Ok(())
    }

    /// Links every chunk sent so far.
    fn finish(
        &mut self,
        linker: &mut Linker,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), VerifyError> {
        while self.linked < self.sent {
            self.wait_one(linker, progress)?;
        }
        Ok(())
    }
}

/// Streams a line too long to be a record past the linker (hashing it for a `chain.rejected`
/// claim), starting with the `cur.len` bytes in `cur`. Returns `true` with `cur` holding what
/// follows the line, or `false` at the end of the input inside the line (`cur.base` is then
/// the line's offset).
fn stream_long_line(
    input: &mut Input<impl Read>,
    cur: &mut Chunk,
    chunk: usize,
    linker: &mut Linker,
    progress: &mut impl FnMut(u64),
) -> Result<bool, VerifyError> {
    let start = cur.base;
    linker.long_line_part(start, &cur.data[..cur.len], true, false)?;
    let mut base = cur.base + cur.len as u64;
    loop {
        progress(base);
        cur.len = 0;
        input.fill(cur, chunk)?;
        if cur.len == 0 {
            cur.base = start;
            return Ok(false);
        }
        match memchr::memchr(b'\n', &cur.data[..cur.len]) {
            Some(p) => {
                linker.long_line_part(start, &cur.data[..p], false, true)?;
                cur.data.copy_within(p + 1..cur.len, 0);
                cur.len -= p + 1;
                cur.base = base + p as u64 + 1;
                return Ok(true);
            }
            None => {
                linker.long_line_part(start, &cur.data[..cur.len], false, false)?;
                base += cur.len as u64;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chainsink_format::record::{Actor, Event};
    use chainsink_format::recovery::{RECOVERED_EVENT, Torn};
    use chainsink_format::{Hash, chain, json};

    /// Appends a record of type `ty` with `payload`, linked to `prev` as record `seq`; returns
    /// its hash.
    fn seal_record(
        out: &mut Vec<u8>,
        ty: &str,
        payload: &serde_json::Map<String, serde_json::Value>,
        seq: u64,
        prev: Hash,
    ) -> Hash {
        let ev = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: ty,
            workflow_id: Some("wf"),
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: payload.into(),
        };
        chain::seal(&ev, seq, Some(&prev), out).unwrap().unwrap()
    }

    /// A chained log of `n` records with payloads of varied size; a torn write recovered by a
    /// `chain.recovered` record at line `torn_at`, if given (a prefix of a record longer than
    /// any record when `long_torn`).
    fn log(n: usize, torn_at: Option<usize>, long_torn: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = Hash::GENESIS;
        let mut seq = 1;
        let seal =
            |out: &mut Vec<u8>,
             payload: &serde_json::Map<String, serde_json::Value>,
             ty: &str,
             seq: u64,
             prev: &mut Hash| *prev = seal_record(out, ty, payload, seq, *prev);
        for i in 0..n {
            if torn_at == Some(i) {
                let mut whole = Vec::new();
                let p = json::parse_object(r#"{"cut": "here"}"#).unwrap();
                seal(&mut whole, &p, "cut", seq, &mut prev.clone());
                let long = [
                    &b"{\"actor\": {\"host_id\": \""[..],
                    &[b'x'; MAX_RECORD_BYTES],
                ]
                .concat();
                let torn = if long_torn {
                    &long[..]
                } else {
                    &whole[..whole.len() / 2]
                };
                let t = Torn::of(out.len() as u64, torn);
                out.extend_from_slice(torn);
                out.push(b'\n');
                seal(&mut out, &t.payload(), RECOVERED_EVENT, seq, &mut prev);
                seq += 1;
            }
            let text = "t".repeat(i * 37 % 700);
            let p = json::parse_object(&format!(r#"{{"i": {i}, "text": "{text}"}}"#)).unwrap();
            seal(&mut out, &p, "step", seq, &mut prev);
            seq += 1;
        }
        out
    }

    /// Offsets of the starts of the lines of `log`.
    fn starts(log: &[u8]) -> Vec<usize> {
        std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', log).map(|p| p + 1))
            .filter(|&p| p < log.len())
            .collect()
    }

    fn verdict(log: &[u8], threads: usize, chunk: usize, strict: bool) -> String {
        let options = VerifyOptions { strict, threads };
        format!("{:?}", run_in_chunks(log, None, &options, chunk, |_| {}))
    }

    /// Logs to verify: intact, recovered, and damaged in many ways and places.
    fn cases() -> Vec<(String, Vec<u8>)> {
        let base = log(400, None, false);
        let lines = starts(&base);
        let mut cases = vec![
            ("intact".to_string(), base.clone()),
            (
                "recovered torn write".to_string(),
                log(300, Some(137), false),
            ),
            (
                "recovered torn write too long to be one".to_string(),
                log(300, Some(137), true),
            ),
            ("empty".to_string(), Vec::new()),
        ];
        for (k, &at) in lines.iter().enumerate().step_by(53) {
            let mut flipped = base.clone();
            flipped[at + 30] ^= 1;
            cases.push((format!("flipped byte in line {k}"), flipped));
            let end = lines.get(k + 1).copied().unwrap_or(base.len());
            let mut removed = base.clone();
            removed.drain(at..end);
            cases.push((format!("line {k} removed"), removed));
            let mut long = base.clone();
            let filler = vec![b'x'; MAX_RECORD_BYTES + 5000];
            long.splice(at..at, filler.iter().copied().chain([b'\n']));
            cases.push((format!("long line before line {k}"), long));
        }
        let mut cut = base.clone();
        cut.truncate(base.len() - 20);
        cases.push(("missing newline".to_string(), cut));
        let mut long_tail = base.clone();
        long_tail.extend(std::iter::repeat_n(b'y', MAX_RECORD_BYTES + 10));
        cases.push(("long unterminated tail".to_string(), long_tail));
        cases
    }

    /// A log that a sink lied in: `before` clean records, then a run of `run` records that a
    /// sink appended and that link (`pad` bytes of payload each), then, if `garbage`, a line
    /// that is not a record, then the host's `chain.rejected` record claiming the run from its
    /// record `skip` on (linked to the record before that), then two records after it.
    /// Returns the log, the claim's offset, and the `chain.rejected` record's line number.
    fn lying_log(
        before: usize,
        run: usize,
        pad: usize,
        garbage: bool,
        skip: usize,
    ) -> (Vec<u8>, u64, u64) {
        lying_log_linked(before, run, pad, garbage, skip, before + skip)
    }

    /// [`lying_log`], with the `chain.rejected` record linked to record `link_to` (0: the
    /// genesis) as the record after it.
    fn lying_log_linked(
        before: usize,
        run: usize,
        pad: usize,
        garbage: bool,
        skip: usize,
        link_to: usize,
    ) -> (Vec<u8>, u64, u64) {
        use chainsink_format::rejection::{REJECTED_EVENT, Rejected};
        let mut out = Vec::new();
        let mut hashes = vec![Hash::GENESIS];
        let mut starts = Vec::new();
        let seal = |out: &mut Vec<u8>, ty: &str, payload: serde_json::Map<_, _>, seq, prev| {
            seal_record(out, ty, &payload, seq, prev)
        };
        for i in 0..before + run {
            starts.push(out.len() as u64);
            let p = json::parse_object(&format!(r#"{{"i": {i}, "text": "{}"}}"#, "t".repeat(pad)))
                .unwrap();
            let h = seal(&mut out, "step", p, i as u64 + 1, *hashes.last().unwrap());
            hashes.push(h);
        }
        if garbage {
            out.extend_from_slice(b"{\"not\": \"a record\"}\n");
        }
        let from = starts[before + skip];
        let claim = Rejected::of(from, &out[from as usize..]);
        let seq = link_to as u64 + 1;
        let payload = claim.payload("liar.wasm", "1 receipts for 2 events");
        let mut head = seal(&mut out, REJECTED_EVENT, payload, seq, hashes[link_to]);
        for k in 1..=2 {
            head = seal(&mut out, "after", serde_json::Map::new(), seq + k, head);
        }
        let mark_line = (before + run + usize::from(garbage) + 1) as u64;
        (out, from, mark_line)
    }

    /// Verifies `log` as a file, at any chunk size and thread count (all must agree).
    fn verify_as_file(log: &[u8]) -> Result<VerifyReport, VerifyError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, log).unwrap();
        let want = verify_file(&path, &VerifyOptions::default());
        for (threads, chunk) in [(1, 997), (2, 4096), (2, 65_536), (1, CHUNK)] {
            let options = VerifyOptions {
                strict: threads == 2,
                threads,
            };
            let file = File::open(&path).unwrap();
            let reread = file.try_clone().ok();
            let got = run_in_chunks(file, reread, &options, chunk, |_| {});
            assert_eq!(
                format!("{got:?}"),
                format!("{want:?}"),
                "{threads} threads, {chunk}-byte chunks"
            );
        }
        want
    }

    #[test]
    fn a_claim_over_records_that_linked_is_a_rejection_not_tampering() {
        // Short and long runs, runs over many remembered states (records of 1 KiB, states
        // every MiB), with and without a line after them that is not a record, claimed from
        // their first record or a later one.
        for (before, run, pad, garbage, skip) in [
            (0, 1, 10, false, 0),
            (5, 3, 10, false, 0),
            (5, 3, 10, true, 0),
            (5, 3, 10, false, 2),
            (5, 3, 10, true, 1),
            (3000, 2500, 1000, false, 0),
            (3000, 2500, 1000, true, 1700),
        ] {
            let (log, from, mark_line) = lying_log(before, run, pad, garbage, skip);
            let report = verify_as_file(&log)
                .unwrap_or_else(|e| panic!("{before}+{run} (garbage {garbage}, skip {skip}): {e}"));
            let claimed = (run - skip) as u64;
            assert_eq!(
                report.rejected,
                vec![Rejection {
                    line: (before + skip + 1) as u64,
                    offset: from,
                    length: report.rejected[0].length,
                    record_line: mark_line,
                }]
            );
            assert_eq!(
                report.rejected[0].length,
                mark_offset(&log, mark_line) - from
            );
            // The claimed records are not counted: the ones before, the mark, two after.
            assert_eq!(
                report.records,
                (before + skip) as u64 + 3,
                "claimed {claimed}"
            );
        }
    }

    /// The offset of line `line` (1-based) of `log`.
    fn mark_offset(log: &[u8], line: u64) -> u64 {
        starts(log)[line as usize - 1] as u64
    }

    #[test]
    fn a_claim_over_records_that_does_not_match_them_is_tampering() {
        let (log, from, mark_line) = lying_log(5, 3, 10, false, 0);
        let at = mark_offset(&log, mark_line) as usize;
        // A byte of a claimed record changed after the host marked it: that record no
        // longer checks, and the claim's SHA-256 no longer matches.
        let mut changed = log.clone();
        changed[from as usize + 40] ^= 1;
        let Err(VerifyError::Tampered(t)) = verify_as_file(&changed) else {
            panic!("accepted a changed claimed record");
        };
        assert_eq!(t.line, 6, "{t}");
        // The second claimed record removed: the third no longer links.
        let lines = starts(&log);
        let mut removed = log.clone();
        removed.drain(lines[6]..lines[7]);
        let Err(VerifyError::Tampered(t)) = verify_as_file(&removed) else {
            panic!("accepted a run with a record removed");
        };
        assert_eq!(t.line, 7, "{t}");
        // The mark moved one line later (an extra record after the run): it claims bytes
        // that end before it.
        let mut late = log[..at].to_vec();
        late.extend_from_slice(&log[lines[7]..at]);
        late.extend_from_slice(&log[at..]);
        assert!(matches!(
            verify_as_file(&late),
            Err(VerifyError::Tampered(_))
        ));
        // The same record linked to the last claimed record instead: then it is just a
        // record in the chain, like those it names, and its claim excuses nothing.
        let (linked, _, _) = lying_log_linked(5, 3, 10, false, 0, 8);
        let report = verify_as_file(&linked).unwrap();
        assert_eq!((report.records, report.rejected.len()), (11, 0));
    }

    #[test]
    fn no_byte_of_a_log_with_a_claim_over_records_changes_unnoticed() {
        // Records, a run of records that linked and a line that is not one, the host's
        // record claiming them, records after: every single-bit change anywhere fails.
        let (log, _, _) = lying_log(3, 2, 5, true, 0);
        verify_as_file(&log).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        for at in 0..log.len() {
            for bit in [0x01, 0x20] {
                let mut changed = log.clone();
                changed[at] ^= bit;
                std::fs::write(&path, &changed).unwrap();
                let options = VerifyOptions {
                    strict: false,
                    threads: 1,
                };
                assert!(
                    verify_file(&path, &options).is_err(),
                    "byte {at} ^ {bit:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn claims_built_to_slow_verify_down_stop_it_in_linear_time() {
        use chainsink_format::rejection::{REJECTED_EVENT, Rejected};
        // 4,000 records, then 2,000 chain.rejected records, each claiming everything from the
        // first record and linked as it is (genesis, seq 1), but with a wrong SHA-256: each
        // passes the cheap check of the first claimed record, and judging each in full means
        // re-reading the whole log (8 GB in all).
        let mut log = log(4000, None, false);
        let head = log.len() as u64;
        for _ in 0..2000 {
            let claim = Rejected {
                offset: 0,
                length: log.len() as u64,
                sha256: Hash([1; 32]),
            };
            let payload = claim.payload("liar.wasm", "slow");
            seal_record(&mut log, REJECTED_EVENT, &payload, 1, Hash::GENESIS);
        }
        let Err(VerifyError::Tampered(t)) = verify_as_file(&log) else {
            panic!("accepted");
        };
        assert!(
            t.detail
                .contains("cannot be checked in time linear in the log"),
            "{t}"
        );
        assert!(t.offset > head, "{t}");
    }

    #[test]
    fn a_claim_over_records_that_linked_cannot_be_checked_from_a_pipe() {
        let (log, from, mark_line) = lying_log(5, 3, 10, false, 0);
        let Err(VerifyError::Unreadable { source, .. }) =
            verify_reader(&log[..], &Default::default())
        else {
            panic!("a stream cannot be re-read, so the claim cannot be judged");
        };
        let msg = source.to_string();
        assert!(msg.contains(&format!("line {mark_line} ")), "{msg}");
        assert!(msg.contains(&format!("from byte {from}")), "{msg}");
        assert!(msg.contains("verify the log as a file"), "{msg}");
    }

    #[test]
    fn one_thread_and_many_agree_at_any_chunk_size() {
        for (name, log) in cases() {
            let want = verdict(&log, 1, CHUNK, false);
            for (threads, chunk) in [(1, 997), (2, 997), (3, 4096), (2, 65_536), (4, CHUNK)] {
                assert_eq!(
                    verdict(&log, threads, chunk, false),
                    want,
                    "{name}: {threads} threads, {chunk}-byte chunks"
                );
            }
            assert_eq!(
                verdict(&log, 2, 5000, true),
                verdict(&log, 1, CHUNK, true),
                "{name}: strict"
            );
        }
    }

    #[test]
    fn the_cases_are_what_they_say() {
        let all = cases();
        let get = |n: &str| {
            verdict(
                &all.iter().find(|(name, _)| name == n).unwrap().1,
                1,
                CHUNK,
                false,
            )
        };
        assert!(
            get("intact").starts_with("Ok(VerifyReport { records: 400"),
            "{}",
            get("intact")
        );
        assert!(
            get("recovered torn write").contains("recovered: [Recovery { line: 138"),
            "{}",
            get("recovered torn write")
        );
        assert!(
            get("flipped byte in line 53").contains("line: 54"),
            "{}",
            get("flipped byte in line 53")
        );
        assert!(
            get("line 53 removed").contains("BrokenLink"),
            "{}",
            get("line 53 removed")
        );
        assert!(
            get("long line before line 106").contains("line: 107"),
            "{}",
            get("long line before line 106")
        );
        assert!(
            get("missing newline").contains("MissingNewline"),
            "{}",
            get("missing newline")
        );
        let long = get("recovered torn write too long to be one");
        assert!(
            long.contains("line: 138") && long.contains("longer than the largest record"),
            "{long}"
        );
    }
}
