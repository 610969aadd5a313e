//! Reading the trail: a streaming iterator over a log's lines, each checked
//! as it is read, for `chainsink show`, `tail` and `stats`.
//!
//! [`Trail`] reads a log a chunk at a time, checks every line with the same
//! format crate rules as [`crate::verify`] (`check_line`, hashed on all
//! cores, then linked in order with a `ChainVerifier`), and yields an
//! [`Entry`] for each line that passes a [`Filter`] and for every line that
//! fails verification, whatever the filter. Bytes that are not records are
//! accepted in the same two patterns as `verify`: a torn write closed by a
//! `chain.recovered` record and bytes the host refused and marked with a
//! `chain.rejected` record. Until a record excuses them (or the log ends)
//! such lines are held, at most as many bytes as one refused append; when
//! nothing excuses them each one is reported with its own reason and the
//! chain goes on from the last record among them, so one edited record is
//! marked where it is and the records after it are still checked.
//!
//! Filters are cheap first: a byte search for the value's canonical form
//! (`"workflow_id": "wf-1"`) rules most lines out before any JSON parse.
//!
//! [`Trail::poll_entry`] never blocks: with [`Trail::follow`] set it is the
//! building block of `tail -f` (a torn last line is held until a write ends
//! it). While following, a line that fails its check is announced at once
//! ([`Verdict::Held`]) and decided later: excused by the record that follows
//! it, or broken once nothing excuses it for the settle time. An excusing
//! record that comes later than that (a recovery written by the next
//! writer) still excuses the lines just reported broken, and says so.
//! A `chain.rejected` record over records that had linked (a sink that wrote
//! them right but lied in its receipts) is judged as `verify` judges it,
//! from the bytes re-read at the last chain state kept
//! (`rejection::LinkedStretches`; a trail opened on a file only): those
//! records, yielded before as valid, are yielded again as
//! [`Verdict::Retracted`], and [`Stats`] takes them back out.
//! [`Stats`] counts a trail.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::judge_bad_run;
use chainsink_format::rejection::{LinkedStretches, Region, Rejected};
use chainsink_format::verify::{ChainVerifier, LineError, LineInfo, Mode, check_line};
use serde_json::Value;

use crate::verify::{MAX_REGION, TamperKind, line_kind, link_kind};

/// Bytes read at a time.
const CHUNK: usize = 4 << 20;

/// Most lines in one torn run.
const MAX_TORN_RUN: usize = 16;

/// What the check says about one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid record, linked into the chain.
    Ok,
    /// Torn bytes, recovered by the `chain.recovered` record on `record_line`.
    Torn {
        /// Line of the recovery record.
        record_line: u64,
    },
    /// Bytes a sink appended that the host refused and marked with the
    /// `chain.rejected` record on `record_line`.
    Rejected {
        /// Line of the host's record.
        record_line: u64,
    },
    /// While following only: the line fails its own check (or does not
    /// link) and is held, since the next record may still excuse it (a
    /// torn write's `chain.recovered`, a refused append's `chain.rejected`).
    /// A final verdict for the line follows.
    Held {
        /// What is wrong so far.
        kind: TamperKind,
        /// The details.
        detail: String,
    },
    /// A line yielded before as [`Verdict::Ok`] that the `chain.rejected`
    /// record on `record_line` claims: bytes a sink appended, valid records
    /// that linked, that the host refused. It is not in the chain after all.
    Retracted {
        /// Line of the host's record.
        record_line: u64,
    },
    /// The line fails verification.
    Broken {
        /// What is wrong (the names `verify --json` uses).
        kind: TamperKind,
        /// The details.
        detail: String,
    },
}

impl Verdict {
    /// Whether the line fails verification.
    pub fn is_broken(&self) -> bool {
        matches!(self, Verdict::Broken { .. })
    }
}

/// One line of the log, checked.
#[derive(Clone, Debug)]
pub struct Entry {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// The line's bytes without `\n` (empty for a line too long to be a record).
    pub bytes: Vec<u8>,
    /// Whether it passes the filter (a broken line is yielded either way).
    pub matched: bool,
    /// The verdict.
    pub verdict: Verdict,
}

impl Entry {
    /// The line as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }
}

/// Which lines to yield. Every condition set must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The record's `workflow_id`.
    pub workflow: Option<String>,
    /// A glob (`*`, `?`) over `event_type`.
    pub event_type: Option<String>,
    /// The payload's `task_id`.
    pub task: Option<String>,
    /// `actor.user`.
    pub actor: Option<String>,
    /// Records at or after this time (a record timestamp, see [`normalize_time`]).
    pub since: Option<String>,
    /// Records at or before this time.
    pub until: Option<String>,
    /// Records whose position (`seq`) is in this inclusive range.
    pub seq: Option<(u64, u64)>,
}

/// A filter ready to run: the byte needles worked out once.
#[derive(Clone, Debug)]
struct Compiled {
    filter: Filter,
    /// Byte strings a matching line must contain, their searchers built once.
    needles: Vec<memchr::memmem::Finder<'static>>,
    /// Whether the line must be parsed (some condition needs more than bytes).
    parse: bool,
    /// Whether any condition but `seq` is set.
    any: bool,
}

fn needle(key: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    chainsink_format::json::write_str(&mut out, key);
    out.extend_from_slice(b": ");
    chainsink_format::json::write_str(&mut out, value);
    out
}

impl Compiled {
    fn new(filter: Filter) -> Compiled {
        let mut needles = Vec::new();
        if let Some(w) = &filter.workflow {
            needles.push(needle("workflow_id", w));
        }
        if let Some(t) = &filter.task {
            needles.push(needle("task_id", t));
        }
        if let Some(a) = &filter.actor {
            needles.push(needle("user", a));
        }
        if let Some(glob) = &filter.event_type {
            let literal: String = glob
                .chars()
                .take_while(|c| *c != '*' && *c != '?')
                .collect();
            let mut n = needle("event_type", &literal);
            if literal.len() != glob.len() {
                n.pop(); // the closing quote: the type only starts so
            }
            needles.push(n);
        }
        let any = filter.workflow.is_some()
            || filter.event_type.is_some()
            || filter.task.is_some()
            || filter.actor.is_some()
            || filter.since.is_some()
            || filter.until.is_some();
        Compiled {
            parse: any,
            needles: needles
                .iter()
                .map(|n| memchr::memmem::Finder::new(n).into_owned())
                .collect(),
            filter,
            any,
        }
    }

    /// Whether the line passes every condition but `seq`.
    fn matches(&self, line: &[u8]) -> bool {
        if !self.any {
            return true;
        }
        if !self.needles.iter().all(|n| n.find(line).is_some()) {
            return false;
        }
        if !self.parse {
            return true;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        let f = &self.filter;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        if let Some(w) = &f.workflow
            && s(v.get("workflow_id")).as_ref() != Some(w)
        {
            return false;
        }
        if let Some(g) = &f.event_type
            && !s(v.get("event_type")).is_some_and(|t| glob(g, &t))
        {
            return false;
        }
        if let Some(t) = &f.task
            && s(v.pointer("/payload/task_id")).as_ref() != Some(t)
        {
            return false;
        }
        if let Some(a) = &f.actor
            && s(v.pointer("/actor/user")).as_ref() != Some(a)
        {
            return false;
        }
        let ts = s(v.get("timestamp")).unwrap_or_default();
        if f.since.as_ref().is_some_and(|since| ts < *since) {
            return false;
        }
        if f.until.as_ref().is_some_and(|until| ts > *until) {
            return false;
        }
        true
    }
}

/// Whether `text` matches `pattern`, where `*` is any run and `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Turns a date (`2026-06-04`) or a timestamp (`2026-06-04T15:30:45`, with
/// optional fraction, `Z` or `±HH:MM` offset; a space may stand for `T`)
/// into the records' form, `2026-06-04T15:30:45.123456+00:00` in UTC, so it
/// compares with record timestamps as text. A date means its first instant.
pub fn normalize_time(text: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "cannot read time {text:?}: use a date (2026-06-04) or a timestamp \
             (2026-06-04T15:30:45, optionally with .ffffff and Z or +HH:MM)"
        )
    };
    let num = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d.as_slice() else {
        return Err(bad());
    };
    let month =
        time::Month::try_from(u8::try_from(num(m)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(y)?).map_err(|_| bad())?,
        month,
        u8::try_from(num(day)?).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    // Split off the offset.
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, (0i8, 0i8, 1i8))
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (h, m) = rest[i + 1..]
            .split_once(':')
            .unwrap_or((&rest[i + 1..], "0"));
        let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
        let h = i8::try_from(num(h)?).map_err(|_| bad())?;
        let m = i8::try_from(num(m)?).map_err(|_| bad())?;
        (&rest[..i], (h, m, sign))
    } else {
        (rest, (0, 0, 1))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let parts: Vec<&str> = if hms.is_empty() {
        vec![]
    } else {
        hms.split(':').collect()
    };
    if parts.len() > 3
        || parts.len() == 1
        || frac.len() > 9
        || (!frac.is_empty() && parts.len() < 3)
    {
        return Err(bad());
    }
    let get = |i: usize| -> Result<u8, String> {
        parts
            .get(i)
            .map_or(Ok(0), |p| u8::try_from(num(p)?).map_err(|_| bad()))
    };
    let micro = if frac.is_empty() {
        0
    } else {
        num(&format!("{frac:0<6}")[..6])?
    };
    let t = time::Time::from_hms_micro(get(0)?, get(1)?, get(2)?, micro).map_err(|_| bad())?;
    let (oh, om, sign) = offset;
    let off = time::UtcOffset::from_hms(sign * oh, sign * om, 0).map_err(|_| bad())?;
    let utc = time::PrimitiveDateTime::new(date, t)
        .assume_offset(off)
        .to_offset(time::UtcOffset::UTC);
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.microsecond()
    ))
}

/// Parses `A..B`, `A..`, `..B` or `N` (inclusive) into a range.
pub fn parse_seq_range(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("cannot read seq range {text:?}: use A..B, A.., ..B or N");
    let num = |s: &str, default: u64| -> Result<u64, String> {
        if s.is_empty() {
            Ok(default)
        } else {
            s.parse().map_err(|_| bad())
        }
    };
    match text.split_once("..") {
        Some((a, b)) => Ok((num(a, 1)?, num(b, u64::MAX)?)),
        None if !text.is_empty() => {
            let n = num(text, 0)?;
            Ok((n, n))
        }
        None => Err(bad()),
    }
}

/// A line waiting for a record that excuses it.
struct Held {
    line: u64,
    offset: u64,
    bytes: Vec<u8>,
    matched: bool,
    /// `Ok` for a valid record that did not link; `None` for a too-long line.
    check: Option<Result<LineInfo, LineError>>,
}

/// Lines that are not (yet) in the chain.
struct Suspect {
    offset: u64,
    /// The lines' bytes while they can still be a torn run.
    torn: Option<Vec<Vec<u8>>>,
    region: Region,
    held: Vec<Held>,
    /// The first line's reason.
    first: (TamperKind, String),
}

/// While following: held lines just reported broken, which the very next
/// line may still excuse (an excusing record later than the settle time).
struct GivenUp {
    offset: u64,
    torn: Option<Vec<Vec<u8>>>,
    region: Region,
    /// (line, offset, matched) of each line reported.
    lines: Vec<(u64, u64, bool)>,
    /// The chain before the held lines.
    chain: ChainVerifier,
    /// Lines counted broken.
    broken: u64,
    /// The line number the excusing record must have.
    next_line: u64,
}

/// What a trail came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailReport {
    /// Records in the chain.
    pub records: u64,
    /// Lines that failed verification.
    pub broken: u64,
    /// Torn writes recovered.
    pub recovered: u64,
    /// Refused appends marked by the host.
    pub rejected: u64,
    /// The last record's hash (hex), when chained.
    pub head: Option<String>,
    /// Bytes read.
    pub bytes: u64,
}

impl TrailReport {
    /// Whether the log verified.
    pub fn ok(&self) -> bool {
        self.broken == 0
    }
}

/// A log read line by line, each line checked; see the [module docs](self).
pub struct Trail<R> {
    reader: R,
    filter: Compiled,
    threads: usize,
    mode: Mode,
    chain: ChainVerifier,
    line_no: u64,
    suspect: Option<Suspect>,
    given_up: Option<GivenUp>,
    out: VecDeque<Entry>,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// Inside a line too long to be a record: where it started.
    long_line: Option<u64>,
    report: TrailReport,
    follow: bool,
    /// How long held lines wait for a record that excuses them while following.
    settle: Duration,
    last_data: Instant,
    finished: bool,
    /// Where the chain's state was known, for a `chain.rejected` record over
    /// records that linked.
    linked: LinkedStretches,
    /// The log, to re-read such records (`None` unless opened on a file).
    reread: Option<File>,
}

impl Trail<File> {
    /// Opens the log at `path`.
    pub fn open(path: &Path, filter: Filter) -> io::Result<Trail<File>> {
        let file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::other("it is a directory"));
        }
        let reread = file.try_clone().ok();
        Ok(Trail {
            reread,
            ..Trail::new(file, filter)
        })
    }

    /// While following: the byte offset read up to and the file's length now;
    /// a length below the offset means the log was truncated.
    pub fn file_position(&self) -> io::Result<(u64, u64)> {
        Ok((
            self.base + self.buf.len() as u64,
            self.reader.metadata()?.len(),
        ))
    }

    /// The open file's (device, inode): a path that now names another file
    /// means the log was replaced.
    pub fn file_id(&self) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self.reader.metadata()?;
        Ok((m.dev(), m.ino()))
    }
}

impl<R: Read> Trail<R> {
    /// A trail over `reader`.
    pub fn new(reader: R, filter: Filter) -> Trail<R> {
        Trail {
            reader,
            filter: Compiled::new(filter),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mode: Mode::Fast,
            chain: ChainVerifier::new(),
            line_no: 0,
            suspect: None,
            given_up: None,
            out: VecDeque::new(),
            buf: Vec::with_capacity(CHUNK),
            base: 0,
            long_line: None,
            report: TrailReport::default(),
            follow: false,
            settle: Duration::from_millis(250),
            last_data: Instant::now(),
            finished: false,
            linked: LinkedStretches::new(MAX_REGION),
            reread: None,
        }
    }

    /// Re-encode every record too (`verify --strict`).
    pub fn strict(mut self, strict: bool) -> Self {
        self.mode = if strict { Mode::Strict } else { Mode::Fast };
        self
    }

    /// Threads that hash lines (0: one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        if threads > 0 {
            self.threads = threads;
        }
        self
    }

    /// Keep reading past the end: [`poll_entry`](Self::poll_entry) returns
    /// `None` when there is nothing new, an unterminated last line is held
    /// until a write ends it, and lines no record has excused after `settle`
    /// without new bytes are reported as broken.
    pub fn follow(mut self, settle: Duration) -> Self {
        self.follow = true;
        self.settle = settle;
        self
    }

    /// While following with lines held: when they will be reported broken
    /// if nothing excuses them (a follower should look again by then).
    pub fn settle_deadline(&self) -> Option<Instant> {
        self.suspect
            .as_ref()
            .filter(|_| self.follow)
            .map(|_| self.last_data + self.settle)
    }

    /// What the trail came to so far.
    pub fn report(&self) -> TrailReport {
        TrailReport {
            records: self.chain.records(),
            head: self.chain.head().map(|h| h.to_hex()),
            ..self.report.clone()
        }
    }

    /// The next entry if one is ready, reading what the log has now; `None`
    /// when there is nothing more for now (without following: the end).
    pub fn poll_entry(&mut self) -> io::Result<Option<Entry>> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Ok(Some(e));
            }
            if self.finished {
                return Ok(None);
            }
            let n = self.read_some()?;
            if n > 0 {
                self.last_data = Instant::now();
                self.process();
                continue;
            }
            if self.follow {
                if self.suspect.is_some() && self.last_data.elapsed() >= self.settle {
                    self.give_up();
                    continue;
                }
                return Ok(None);
            }
            self.finish();
        }
    }

    fn read_some(&mut self) -> io::Result<usize> {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }

    /// Checks and links the complete lines in the buffer.
    fn process(&mut self) {
        if self.long_line.is_some() {
            let nl = memchr::memchr(b'\n', &self.buf);
            let end = nl.unwrap_or(self.buf.len());
            let s = self.suspect.as_mut().expect("a long line is suspect");
            s.region.push_part(&self.buf[..end]);
            let used = match nl {
                Some(p) => {
                    s.region.end_line();
                    self.long_line = None;
                    p + 1
                }
                None => end,
            };
            self.consume(used);
            self.check_region();
            if self.long_line.is_some() {
                return;
            }
        }
        let complete = match memchr::memrchr(b'\n', &self.buf) {
            Some(p) => p + 1,
            None if self.buf.len() > MAX_RECORD_BYTES => {
                self.start_long_line();
                return;
            }
            None => return,
        };
        let buf = std::mem::take(&mut self.buf);
        let lines = split_lines(&buf[..complete]);
        let checked = check_all(&buf, &lines, self.mode, self.threads, &self.filter);
        for ((start, end), (result, matched)) in lines.iter().zip(checked) {
            let offset = self.base + *start as u64;
            self.take(offset, &buf[*start..*end], result, matched);
        }
        self.buf = buf;
        self.consume(complete);
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.base += n as u64;
        self.report.bytes = self.base;
    }

    fn start_long_line(&mut self) {
        self.line_no += 1;
        let (no, offset) = (self.line_no, self.base);
        let detail = format!(
            "the line is longer than the largest record ({MAX_RECORD_BYTES} bytes), so it is not a record"
        );
        self.open_suspect(offset, None, (TamperKind::BadRecord, detail));
        let s = self.suspect.as_mut().expect("open");
        s.region.push_part(&self.buf);
        s.held.push(Held {
            line: no,
            offset,
            bytes: Vec::new(),
            matched: false,
            check: None,
        });
        self.long_line = Some(offset);
        let n = self.buf.len();
        self.consume(n);
        self.check_region();
    }

    fn open_suspect(&mut self, offset: u64, line: Option<&[u8]>, first: (TamperKind, String)) {
        match &mut self.suspect {
            Some(s) => {
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
                self.linked.unlinked(offset);
                self.suspect = Some(Suspect {
                    offset,
                    torn: line.map(|l| vec![l.to_vec()]),
                    region: Region::new(offset),
                    held: Vec::new(),
                    first,
                });
            }
        }
    }

    fn hold(
        &mut self,
        offset: u64,
        line: &[u8],
        check: Result<LineInfo, LineError>,
        matched: bool,
    ) {
        if self.follow {
            let own = match &check {
                Err(e) => Some((line_kind(e), e.to_string())),
                Ok(_) => None,
            };
            let s = self.suspect.as_ref().expect("a suspect region is open");
            // The line's own failure, or the link failure it was opened with.
            let reason = own.or_else(|| (s.held.is_empty()).then(|| s.first.clone()));
            if let Some((kind, detail)) = reason.filter(|(_, d)| !d.is_empty()) {
                self.out.push_back(Entry {
                    line: self.line_no,
                    offset,
                    bytes: line.to_vec(),
                    matched,
                    verdict: Verdict::Held { kind, detail },
                });
            }
        }
        let s = self.suspect.as_mut().expect("a suspect region is open");
        s.region.push(line);
        s.held.push(Held {
            line: self.line_no,
            offset,
            bytes: line.to_vec(),
            matched,
            check: Some(check),
        });
        self.check_region();
    }

    fn check_region(&mut self) {
        if self
            .suspect
            .as_ref()
            .is_some_and(|s| s.region.len() > MAX_REGION)
        {
            self.give_up();
        }
    }

    /// Whether the valid record `line` excuses the suspect lines before it;
    /// if so they are yielded, excused.
    fn excuses(&mut self, line: &[u8]) -> bool {
        let Some(s) = &self.suspect else {
            return false;
        };
        let torn = s.torn.as_ref().and_then(|lines| {
            judge_bad_run(
                s.offset,
                &lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                Some(line),
            )
            .ok()
        });
        let record_line = self.line_no;
        let verdict = if torn.is_some() {
            self.report.recovered += 1;
            Verdict::Torn { record_line }
        } else if Rejected::from_record_line(line).is_some_and(|c| s.region.is_claimed_by(&c)) {
            self.report.rejected += 1;
            Verdict::Rejected { record_line }
        } else {
            return false;
        };
        let s = self.suspect.take().expect("open");
        for h in s.held {
            if h.matched {
                self.out.push_back(Entry {
                    line: h.line,
                    offset: h.offset,
                    bytes: h.bytes,
                    matched: true,
                    verdict: verdict.clone(),
                });
            }
        }
        true
    }

    /// Nothing excused the held lines: each is reported with its own reason,
    /// and the chain goes on from the records among them.
    fn give_up(&mut self) {
        let Some(s) = self.suspect.take() else {
            return;
        };
        let mut late = self.follow.then(|| GivenUp {
            offset: s.offset,
            torn: s.torn.clone(),
            region: s.region.clone(),
            lines: Vec::new(),
            chain: self.chain.clone(),
            broken: 0,
            next_line: self.line_no + 1,
        });
        let mut first = Some(s.first);
        for h in s.held {
            let mut seq = None;
            let own = match h.check {
                None => Some((
                    TamperKind::BadRecord,
                    format!(
                        "the line is longer than the largest record ({MAX_RECORD_BYTES} bytes), so it is not a record"
                    ),
                )),
                Some(Err(e)) => Some((line_kind(&e), e.to_string())),
                Some(Ok(info)) => {
                    seq = info.seq;
                    self.chain
                        .push(&info)
                        .err()
                        .map(|e| (link_kind(&e), e.to_string()))
                }
            };
            // The first line keeps the reason the run was opened with.
            let reason = match (first.take(), own) {
                (Some(f), _) => Some(f),
                (None, own) => own,
            };
            let verdict = match reason {
                Some((kind, detail)) => {
                    self.report.broken += 1;
                    if let Some(late) = &mut late {
                        late.broken += 1;
                    }
                    Verdict::Broken { kind, detail }
                }
                None => Verdict::Ok,
            };
            if let Some(late) = &mut late {
                late.lines.push((h.line, h.offset, h.matched));
            }
            let matched = h.matched && self.seq_ok(seq);
            if matched || verdict.is_broken() {
                self.out.push_back(Entry {
                    line: h.line,
                    offset: h.offset,
                    bytes: h.bytes,
                    matched,
                    verdict,
                });
            }
        }
        self.given_up = late;
    }

    /// While following: whether the valid record `line`, the line right
    /// after lines just reported broken, excuses them after all (it came
    /// later than the settle time). If so it is linked where they began,
    /// their count is taken back and they are yielded again, excused.
    fn excuses_late(&mut self, line: &[u8], info: &LineInfo) -> bool {
        let Some(g) = self.given_up.take() else {
            return false;
        };
        if g.next_line != self.line_no {
            return false;
        }
        let torn = g.torn.as_ref().is_some_and(|lines| {
            judge_bad_run(
                g.offset,
                &lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                Some(line),
            )
            .is_ok()
        });
        let rejected =
            !torn && Rejected::from_record_line(line).is_some_and(|c| g.region.is_claimed_by(&c));
        let mut chain = g.chain;
        if !(torn || rejected) || chain.push(info).is_err() {
            return false;
        }
        self.chain = chain;
        self.report.broken -= g.broken;
        let record_line = self.line_no;
        let verdict = if torn {
            self.report.recovered += 1;
            Verdict::Torn { record_line }
        } else {
            self.report.rejected += 1;
            Verdict::Rejected { record_line }
        };
        for (line, offset, matched) in g.lines {
            self.out.push_back(Entry {
                line,
                offset,
                bytes: Vec::new(),
                matched,
                verdict: verdict.clone(),
            });
        }
        true
    }

    /// Whether the valid record `line` (at `offset`) is a `chain.rejected`
    /// record over records that linked (and perhaps held lines after them),
    /// judged over the bytes re-read from the last chain state kept. If so,
    /// the records are yielded again as [`Verdict::Retracted`], the held
    /// lines as [`Verdict::Rejected`], and the chain goes on from the record.
    fn claims_linked_records(&mut self, offset: u64, line: &[u8], info: &LineInfo) -> bool {
        let Some(claim) = Rejected::from_record_line(line) else {
            return false;
        };
        let linked_until = self.suspect.as_ref().map_or(offset, |s| s.offset);
        let Some(file) = &self.reread else {
            return false;
        };
        let judged = self
            .linked
            .judge_claim(&claim, info, offset, linked_until, |at, buf| {
                crate::verify::read_at(file, at, buf)
            });
        let Ok(Some(good)) = judged else {
            return false;
        };
        // The claimed lines that had linked, shown before, from the bytes judged: taken back.
        let in_bytes = |offset: u64| (offset - good.read_from) as usize;
        let claimed = &good.bytes[in_bytes(claim.offset)..in_bytes(linked_until)];
        self.report.rejected += 1;
        let record_line = self.line_no;
        let (mut no, mut at) = (good.first_line, claim.offset);
        for l in claimed.split_inclusive(|&b| b == b'\n') {
            let l = l.strip_suffix(b"\n").unwrap_or(l);
            if self.filter.matches(l) {
                self.out.push_back(Entry {
                    line: no,
                    offset: at,
                    bytes: l.to_vec(),
                    matched: true,
                    verdict: Verdict::Retracted { record_line },
                });
            }
            no += 1;
            at += l.len() as u64 + 1;
        }
        if let Some(s) = self.suspect.take() {
            for h in s.held.into_iter().filter(|h| h.matched) {
                self.out.push_back(Entry {
                    line: h.line,
                    offset: h.offset,
                    bytes: h.bytes,
                    matched: true,
                    verdict: Verdict::Rejected { record_line },
                });
            }
        }
        self.chain = good.chain;
        true
    }

    /// Whether the record (its `seq`, else its position) is in the seq range.
    fn seq_ok(&self, seq: Option<u64>) -> bool {
        let n = seq.unwrap_or(self.chain.records());
        self.filter
            .filter
            .seq
            .is_none_or(|(a, b)| (a..=b).contains(&n))
    }

    fn take(
        &mut self,
        offset: u64,
        line: &[u8],
        result: Result<LineInfo, LineError>,
        matched: bool,
    ) {
        self.line_no += 1;
        let info = match result {
            Ok(info) => info,
            Err(e) => {
                self.given_up = None;
                let first = (line_kind(&e), e.to_string());
                self.open_suspect(offset, Some(line), first);
                return self.hold(offset, line, Err(e), matched);
            }
        };
        // A claim over records that linked links the record itself.
        let mut claimed = false;
        if self.suspect.is_some() && !self.excuses(line) {
            claimed = self.claims_linked_records(offset, line, &info);
            if !claimed {
                self.open_suspect(offset, None, (TamperKind::BadRecord, String::new()));
                return self.hold(offset, line, Ok(info), matched);
            }
        }
        // So does a late excuse.
        if !(claimed || self.given_up.is_some() && self.excuses_late(line, &info)) {
            let before = self.chain.clone();
            match self.chain.push(&info) {
                Ok(()) if self.suspect.is_none() => {
                    self.linked.linked(offset, self.line_no - 1, &before)
                }
                Ok(()) => {}
                Err(e) => {
                    self.chain = before;
                    if !self.claims_linked_records(offset, line, &info) {
                        let first = (link_kind(&e), e.to_string());
                        self.open_suspect(offset, None, first);
                        return self.hold(offset, line, Ok(info), matched);
                    }
                }
            }
        }
        if matched && self.seq_ok(info.seq) {
            self.out.push_back(Entry {
                line: self.line_no,
                offset,
                bytes: line.to_vec(),
                matched: true,
                verdict: Verdict::Ok,
            });
        }
    }

    /// The end of the log (not following).
    fn finish(&mut self) {
        self.finished = true;
        self.give_up();
        if self.long_line.take().is_some() || !self.buf.is_empty() {
            let offset = self.base;
            let length = self.buf.len();
            self.line_no += 1;
            self.report.broken += 1;
            self.out.push_back(Entry {
                line: self.line_no,
                offset,
                bytes: std::mem::take(&mut self.buf),
                matched: false,
                verdict: Verdict::Broken {
                    kind: TamperKind::MissingNewline,
                    detail: format!(
                        "the last line ({length} bytes) has no newline: a torn or cut write; \
                         the sink recovers it at its next write"
                    ),
                },
            });
        }
    }
}

impl<R: Read> Iterator for Trail<R> {
    type Item = io::Result<Entry>;

    /// Without [`follow`](Trail::follow), every entry to the end of the log.
    /// With it, `None` means nothing new for now.
    fn next(&mut self) -> Option<io::Result<Entry>> {
        self.poll_entry().transpose()
    }
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

type Checked = (Result<LineInfo, LineError>, bool);

/// Checks and filters every line, spread over `threads` threads, in order.
fn check_all(
    buf: &[u8],
    lines: &[(usize, usize)],
    mode: Mode,
    threads: usize,
    filter: &Compiled,
) -> Vec<Checked> {
    let check = |&(start, end): &(usize, usize)| {
        let line = &buf[start..end];
        (check_line(line, mode), filter.matches(line))
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
            .flat_map(|h| h.join().expect("a trail thread panicked"))
            .collect()
    })
}

/// A task's run, from its terminal event.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRun {
    /// The workflow.
    pub workflow: String,
    /// `task_id` (empty if absent).
    pub task_id: String,
    /// `task_subject`.
    pub subject: String,
    /// `completed` or `failed`.
    pub outcome: String,
    /// `duration_seconds`.
    pub seconds: f64,
}

/// What [`Stats`] reads of a record.
#[derive(serde::Deserialize)]
struct StatsRecord<'a> {
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    workflow_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    payload: StatsPayload,
}

/// What [`Stats`] reads of a payload (any type; only strings and numbers count).
#[derive(serde::Deserialize, Default)]
struct StatsPayload {
    task_id: Option<Value>,
    task_subject: Option<Value>,
    duration_seconds: Option<Value>,
}

/// Counts `key` once more, or once less when taking a count `back`.
fn count(map: &mut BTreeMap<String, u64>, key: &str, back: bool) {
    match map.get_mut(key) {
        Some(n) if back => {
            *n -= 1;
            if *n == 0 {
                map.remove(key);
            }
        }
        Some(n) => *n += 1,
        None if back => {}
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Counts over a trail's records.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Records counted.
    pub records: u64,
    /// Records per event type.
    pub per_type: BTreeMap<String, u64>,
    /// Records per workflow (`-` for none).
    pub per_workflow: BTreeMap<String, u64>,
    /// `task.completed` events.
    pub completed: u64,
    /// `task.failed` events.
    pub failed: u64,
    /// `task.skipped` events.
    pub skipped: u64,
    /// Tasks with a duration, slowest first (at most `top` once finished).
    pub slowest: Vec<TaskRun>,
    /// How many slowest tasks to keep.
    pub top: usize,
}

impl Stats {
    /// Empty counts keeping the `top` slowest tasks.
    pub fn new(top: usize) -> Stats {
        Stats {
            top,
            ..Stats::default()
        }
    }

    /// Counts one entry (lines that are not valid records are not counted);
    /// a [`Verdict::Retracted`] one takes back what its line counted.
    pub fn add(&mut self, entry: &Entry) {
        let back = match entry.verdict {
            Verdict::Ok => false,
            Verdict::Retracted { .. } => true,
            _ => return,
        };
        // Only the fields counted are read; `check_line` has already made
        // sure `event_type` is a string and `workflow_id` a string or null.
        let Ok(rec) = serde_json::from_slice::<StatsRecord<'_>>(&entry.bytes) else {
            return;
        };
        let step = |n: &mut u64| *n = if back { n.saturating_sub(1) } else { *n + 1 };
        step(&mut self.records);
        let ty: &str = &rec.event_type;
        count(&mut self.per_type, ty, back);
        let wf = rec.workflow_id.as_deref().unwrap_or("-");
        count(&mut self.per_workflow, wf, back);
        let outcome = match ty {
            "task.completed" => {
                step(&mut self.completed);
                "completed"
            }
            "task.failed" => {
                step(&mut self.failed);
                "failed"
            }
            "task.skipped" => {
                step(&mut self.skipped);
                return;
            }
            _ => return,
        };
        let p = &rec.payload;
        if let Some(seconds) = p.duration_seconds.as_ref().and_then(Value::as_f64) {
            let s = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or("").to_owned();
            let run = TaskRun {
                workflow: wf.to_owned(),
                task_id: s(&p.task_id),
                subject: s(&p.task_subject),
                outcome: outcome.to_owned(),
                seconds,
            };
            if back {
                // Gone already if trimmed away.
                if let Some(i) = self.slowest.iter().position(|t| *t == run) {
                    self.slowest.remove(i);
                }
                return;
            }
            self.slowest.push(run);
            if self.slowest.len() >= 4 * self.top.max(16) {
                self.trim();
            }
        }
    }

    /// Keeps only the `top` slowest tasks, slowest first.
    pub fn trim(&mut self) {
        self.slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        self.slowest.truncate(self.top);
    }

    /// The counts as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "records": self.records,
            "per_type": self.per_type,
            "per_workflow": self.per_workflow,
            "tasks": {"completed": self.completed, "failed": self.failed, "skipped": self.skipped},
            "slowest": self.slowest.iter().map(|t| serde_json::json!({
                "workflow_id": t.workflow, "task_id": t.task_id, "task_subject": t.subject,
                "outcome": t.outcome, "duration_seconds": t.seconds,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsink_format::Hash;
    use chainsink_format::chain::seal;
    use chainsink_format::record::{Actor, Event};
    use chainsink_format::recovery::RECOVERED_EVENT;
    use chainsink_format::rejection::REJECTED_EVENT;

    /// A chained log of `n` records; record i has workflow `wf-{i % 2}` and
    /// type `task.completed` or `workflow.started`.
    fn log(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = Hash::GENESIS;
        for i in 1..=n {
            let payload: serde_json::Map<String, Value> = serde_json::from_str(&format!(
                r#"{{"task_id": "t{i}", "duration_seconds": {i}.5}}"#
            ))
            .unwrap();
            let wf = format!("wf-{}", i % 2);
            let event = Event {
                timestamp: if i < 3 {
                    "2026-06-04T10:00:00.000000+00:00"
                } else {
                    "2026-06-05T10:00:00.000000+00:00"
                },
                event_type: if i % 2 == 0 {
                    "task.completed"
                } else {
                    "workflow.started"
                },
                workflow_id: Some(&wf),
                actor: Actor {
                    host_id: "h",
                    user: "u",
                },
                payload: (&payload).into(),
            };
            let start = out.len();
            seal(&event, i, Some(&prev), &mut out).unwrap();
            let info = check_line(&out[start..out.len() - 1], Mode::Fast).unwrap();
            prev = info.hash.unwrap();
        }
        out
    }

    /// Appends a record of `event_type` with `payload`, chained after the
    /// log's last valid record `prev` as record `seq`; returns its hash.
    fn append(
        out: &mut Vec<u8>,
        event_type: &str,
        payload: &serde_json::Map<String, Value>,
        seq: u64,
        prev: Hash,
    ) -> Hash {
        let event = Event {
            timestamp: "2026-06-05T10:00:00.000000+00:00",
            event_type,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: payload.into(),
        };
        seal(&event, seq, Some(&prev), out).unwrap().unwrap()
    }

    fn last_hash(bytes: &[u8]) -> Hash {
        let line = bytes[..bytes.len() - 1]
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap();
        check_line(line, Mode::Fast).unwrap().hash.unwrap()
    }

    fn entries(bytes: &[u8], filter: Filter) -> (Vec<Entry>, TrailReport) {
        let mut t = Trail::new(bytes, filter).threads(2);
        let e: Vec<Entry> = t.by_ref().map(Result::unwrap).collect();
        (e, t.report())
    }

    #[test]
    fn trail_reads_every_record_and_filters() {
        let bytes = log(200);
        let (all, report) = entries(&bytes, Filter::default());
        assert_eq!(all.len(), 200);
        assert!(report.ok() && report.records == 200);
        let (wf, _) = entries(
            &bytes,
            Filter {
                workflow: Some("wf-1".into()),
                ..Filter::default()
            },
        );
        assert_eq!(wf.len(), 100);
        assert!(wf.iter().all(|e| e.line % 2 == 1));
        let (ty, _) = entries(
            &bytes,
            Filter {
                event_type: Some("task.*".into()),
                seq: Some((10, 20)),
                ..Filter::default()
            },
        );
        assert_eq!(
            ty.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![10, 12, 14, 16, 18, 20]
        );
        let (task, _) = entries(
            &bytes,
            Filter {
                task: Some("t7".into()),
                ..Filter::default()
            },
        );
        assert_eq!(task.len(), 1);
        let (since, _) = entries(
            &bytes,
            Filter {
                until: Some(normalize_time("2026-06-04T23:59").unwrap()),
                ..Filter::default()
            },
        );
        assert_eq!(since.len(), 2);
    }

    #[test]
    fn trail_marks_a_tampered_line_and_checks_on() {
        let mut bytes = log(10);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("\"t4\"", "\"t9\"", 1);
        bytes = edited.into_bytes();
        let (all, report) = entries(&bytes, Filter::default());
        assert!(!report.ok());
        let broken: Vec<u64> = all
            .iter()
            .filter(|e| e.verdict.is_broken())
            .map(|e| e.line)
            .collect();
        // The edited record, and the one that links to its old hash.
        assert_eq!(broken, vec![4, 5]);
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn trail_holds_a_torn_tail_while_following() {
        let bytes = log(3);
        let cut = &bytes[..bytes.len() - 20];
        let mut t = Trail::new(cut, Filter::default()).follow(Duration::from_secs(60));
        let got: Vec<Entry> = std::iter::from_fn(|| t.poll_entry().unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert!(t.report().ok());
        // Without following, the torn tail is reported.
        let (all, report) = entries(cut, Filter::default());
        assert_eq!(all.len(), 3);
        assert!(matches!(
            all[2].verdict,
            Verdict::Broken {
                kind: TamperKind::MissingNewline,
                ..
            }
        ));
        assert!(!report.ok());
    }

    /// A log that grows while it is followed.
    #[derive(Clone, Default)]
    struct Growing(std::rc::Rc<std::cell::RefCell<(Vec<u8>, usize)>>);

    impl Read for Growing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut g = self.0.borrow_mut();
            let (data, pos) = &mut *g;
            let n = buf.len().min(data.len() - *pos);
            buf[..n].copy_from_slice(&data[*pos..*pos + n]);
            *pos += n;
            Ok(n)
        }
    }

    impl Growing {
        fn push(&self, bytes: &[u8]) {
            self.0.borrow_mut().0.extend_from_slice(bytes);
        }
    }

    /// Everything a followed trail has ready now.
    fn ready(t: &mut Trail<Growing>) -> Vec<(u64, Verdict)> {
        std::iter::from_fn(|| t.poll_entry().unwrap())
            .map(|e| (e.line, e.verdict))
            .collect()
    }

    fn kinds(got: &[(u64, Verdict)]) -> Vec<(u64, &'static str)> {
        got.iter()
            .map(|(l, v)| {
                let k = match v {
                    Verdict::Ok => "ok",
                    Verdict::Held { .. } => "held",
                    Verdict::Broken { .. } => "broken",
                    Verdict::Torn { .. } => "torn",
                    Verdict::Rejected { .. } => "rejected",
                    Verdict::Retracted { .. } => "retracted",
                };
                (*l, k)
            })
            .collect()
    }

    #[test]
    fn following_says_at_once_that_a_record_breaks_the_chain() {
        let mut bytes = log(4);
        let text = String::from_utf8(bytes.clone()).unwrap();
        bytes = text.replacen("\"t4\"", "\"t9\"", 1).into_bytes();
        let file = Growing::default();
        // A settle time no test waits for: the announcement cannot come
        // from giving up.
        let mut t = Trail::new(file.clone(), Filter::default()).follow(Duration::from_secs(3600));
        file.push(&bytes[..bytes.len() / 2]);
        let first = ready(&mut t);
        file.push(&bytes[bytes.len() / 2..]);
        let mut got = first;
        got.extend(ready(&mut t));
        assert_eq!(
            kinds(&got),
            vec![(1, "ok"), (2, "ok"), (3, "ok"), (4, "held")],
            "{got:?}"
        );
        match &got[3].1 {
            Verdict::Held { kind, .. } => assert_eq!(*kind, TamperKind::HashMismatch),
            v => panic!("{v:?}"),
        }
        assert!(t.settle_deadline().is_some());
        // Held lines are given up when nothing excuses them in time.
        let file = Growing::default();
        file.push(&bytes);
        let mut t = Trail::new(file, Filter::default()).follow(Duration::ZERO);
        let got = ready(&mut t);
        assert_eq!(
            kinds(&got),
            vec![(1, "ok"), (2, "ok"), (3, "ok"), (4, "held"), (4, "broken")]
        );
        assert_eq!(t.report().broken, 1);
    }

    #[test]
    fn an_excusing_record_that_comes_late_takes_the_break_back() {
        use chainsink_format::recovery::Torn;
        // Refused bytes; the host's chain.rejected record comes after the
        // settle time.
        let bytes = log(3);
        let head = last_hash(&bytes);
        let at = bytes.len() as u64;
        let file = Growing::default();
        file.push(&bytes);
        let mut t = Trail::new(file.clone(), Filter::default()).follow(Duration::ZERO);
        let garbage = b"garbage\n{\"not\": \"a record\"}\n";
        file.push(garbage);
        let got = ready(&mut t);
        assert_eq!(
            kinds(&got),
            vec![
                (1, "ok"),
                (2, "ok"),
                (3, "ok"),
                (4, "held"),
                (5, "held"),
                (4, "broken"),
                (5, "broken")
            ]
        );
        assert_eq!(t.report().broken, 2);
        let mut more = Vec::new();
        let claim = Rejected::of(at, garbage).payload("evil.wasm", "not a record");
        let head = append(&mut more, REJECTED_EVENT, &claim, 4, head);
        append(&mut more, "after", &serde_json::Map::new(), 5, head);
        file.push(&more);
        let got = ready(&mut t);
        assert_eq!(
            kinds(&got),
            vec![(4, "rejected"), (5, "rejected"), (6, "ok"), (7, "ok")]
        );
        let report = t.report();
        assert!(report.ok() && report.rejected == 1 && report.records == 5);

        // A torn write whose recovery record came late (the recovery write
        // was cut short after its newline; the next writer finished it).
        let bytes = log(3);
        let head = last_hash(&bytes);
        let at = bytes.len() as u64;
        let file = Growing::default();
        file.push(&bytes);
        let mut t = Trail::new(file.clone(), Filter::default()).follow(Duration::ZERO);
        let torn = bytes[..30].to_vec();
        file.push(&torn);
        assert_eq!(kinds(&ready(&mut t)), vec![(1, "ok"), (2, "ok"), (3, "ok")]);
        file.push(b"\n");
        assert_eq!(kinds(&ready(&mut t)), vec![(4, "held"), (4, "broken")]);
        let mut more = Vec::new();
        append(
            &mut more,
            RECOVERED_EVENT,
            &Torn::of(at, &torn).payload(),
            4,
            head,
        );
        file.push(&more);
        assert_eq!(kinds(&ready(&mut t)), vec![(4, "torn"), (5, "ok")]);
        let report = t.report();
        assert!(report.ok() && report.recovered == 1 && report.records == 4);

        // A record after the lines given up that excuses nothing leaves them
        // broken.
        let bytes = log(3);
        let head = last_hash(&bytes);
        let file = Growing::default();
        file.push(&bytes);
        file.push(b"garbage\n");
        let mut t = Trail::new(file.clone(), Filter::default()).follow(Duration::ZERO);
        ready(&mut t);
        let mut more = Vec::new();
        append(&mut more, "after", &serde_json::Map::new(), 4, head);
        file.push(&more);
        assert_eq!(kinds(&ready(&mut t)), vec![(5, "ok")]);
        assert_eq!(t.report().broken, 1);
    }

    #[test]
    fn times_globs_and_ranges_parse() {
        assert_eq!(
            normalize_time("2026-06-04").unwrap(),
            "2026-06-04T00:00:00.000000+00:00"
        );
        assert_eq!(
            normalize_time("2026-06-04T15:30:45.5+02:00").unwrap(),
            "2026-06-04T13:30:45.500000+00:00"
        );
        assert_eq!(
            normalize_time("2026-06-04 15:30Z").unwrap(),
            "2026-06-04T15:30:00.000000+00:00"
        );
        assert!(normalize_time("yesterday").is_err());
        assert!(glob("task.*", "task.completed") && !glob("task.*", "workflow.started"));
        assert!(glob("*.fail?d", "task.failed"));
        assert_eq!(parse_seq_range("3..").unwrap(), (3, u64::MAX));
        assert_eq!(parse_seq_range("..4").unwrap(), (1, 4));
        assert_eq!(parse_seq_range("7").unwrap(), (7, 7));
        assert!(parse_seq_range("x..").is_err());
    }

    #[test]
    fn stats_count_types_workflows_and_slowest() {
        let bytes = log(10);
        let mut stats = Stats::new(2);
        for e in Trail::new(&bytes[..], Filter::default()) {
            stats.add(&e.unwrap());
        }
        stats.trim();
        assert_eq!(stats.records, 10);
        assert_eq!(stats.completed, 5);
        assert_eq!(stats.per_workflow["wf-0"], 5);
        assert_eq!(stats.slowest[0].seconds, 10.5);
        assert_eq!(stats.slowest.len(), 2);
    }

    #[test]
    fn trail_accepts_what_verify_accepts_torn_and_rejected() {
        use chainsink_format::recovery::Torn;
        // Refused bytes, then the host's chain.rejected record.
        let mut bytes = log(3);
        let head = last_hash(&bytes);
        let at = bytes.len() as u64;
        let garbage = b"garbage\n{\"not\": \"a record\"}\n";
        bytes.extend_from_slice(garbage);
        let claim = Rejected::of(at, garbage).payload("evil.wasm", "not a record");
        let head = append(&mut bytes, REJECTED_EVENT, &claim, 4, head);
        append(&mut bytes, "after", &serde_json::Map::new(), 5, head);
        let (all, report) = entries(&bytes, Filter::default());
        assert!(crate::verify::verify_reader(&bytes[..], &Default::default()).is_ok());
        assert!(report.ok(), "{all:?}");
        assert_eq!(report.rejected, 1);
        let verdicts: Vec<&Verdict> = all.iter().map(|e| &e.verdict).collect();
        assert_eq!(verdicts[3], &Verdict::Rejected { record_line: 6 });
        assert_eq!(verdicts[4], &Verdict::Rejected { record_line: 6 });
        assert_eq!(all.len(), 7);

        // A torn write, closed by a chain.recovered record.
        let mut bytes = log(3);
        let head = last_hash(&bytes);
        let at = bytes.len() as u64;
        let torn = &bytes[..30].to_vec();
        bytes.extend_from_slice(torn);
        bytes.push(b'\n');
        let head = append(
            &mut bytes,
            RECOVERED_EVENT,
            &Torn::of(at, torn).payload(),
            4,
            head,
        );
        append(&mut bytes, "after", &serde_json::Map::new(), 5, head);
        assert!(crate::verify::verify_reader(&bytes[..], &Default::default()).is_ok());
        let (all, report) = entries(&bytes, Filter::default());
        assert!(report.ok() && report.recovered == 1, "{all:?}");
        assert_eq!(all[3].verdict, Verdict::Torn { record_line: 5 });
        assert_eq!(report.records, 5);
    }

    #[test]
    fn a_claim_over_records_that_linked_retracts_them() {
        // Records 1-3, then 4-5 that a sink appended (they link), then, if `garbage`, a line
        // that is not a record; the host's chain.rejected record claims 4-5 (and the line),
        // linked to record 3; then one record after.
        for garbage in [false, true] {
            let mut bytes = log(5);
            let starts: Vec<usize> = std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', &bytes).map(|p| p + 1))
                .collect();
            if garbage {
                bytes.extend_from_slice(b"garbage\n");
            }
            let third = check_line(&bytes[starts[2]..starts[3] - 1], Mode::Fast).unwrap();
            let at = starts[3] as u64;
            let claim = Rejected::of(at, &bytes[starts[3]..]).payload("liar.wasm", "lied");
            let head = append(&mut bytes, REJECTED_EVENT, &claim, 4, third.hash.unwrap());
            append(&mut bytes, "after", &serde_json::Map::new(), 5, head);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log.jsonl");
            std::fs::write(&path, &bytes).unwrap();

            let mut t = Trail::open(&path, Filter::default()).unwrap().threads(2);
            let all: Vec<Entry> = t.by_ref().map(Result::unwrap).collect();
            let report = t.report();
            let verified = crate::verify::verify_file(&path, &Default::default()).unwrap();
            let got: Vec<(u64, Verdict)> =
                all.iter().map(|e| (e.line, e.verdict.clone())).collect();
            assert!(report.ok(), "{:?}", kinds(&got));
            assert_eq!((report.records, report.rejected), (verified.records, 1));
            let mark = 6 + u64::from(garbage);
            let mut want = vec![(1, "ok"), (2, "ok"), (3, "ok"), (4, "ok"), (5, "ok")];
            want.extend([(4, "retracted"), (5, "retracted")]);
            if garbage {
                want.push((6, "rejected"));
            }
            want.extend([(mark, "ok"), (mark + 1, "ok")]);
            let got: Vec<(u64, Verdict)> =
                all.iter().map(|e| (e.line, e.verdict.clone())).collect();
            assert_eq!(kinds(&got), want, "garbage {garbage}");
            assert!(all.iter().all(|e| match e.verdict {
                Verdict::Retracted { record_line } | Verdict::Rejected { record_line } =>
                    record_line == mark,
                _ => true,
            }));
            // Stats count what verify counts: the retracted records are taken back out.
            let mut stats = Stats::new(10);
            for e in &all {
                stats.add(e);
            }
            assert_eq!(stats.records, verified.records, "garbage {garbage}");
            assert_eq!(stats.per_type.values().sum::<u64>(), verified.records);
            assert!(
                stats
                    .slowest
                    .iter()
                    .all(|t| t.task_id != "t4" && t.task_id != "t5")
            );
            assert_eq!(
                stats.completed, 1,
                "t1 and t3 are workflow.started: only t2 left"
            );
        }
    }

    #[test]
    fn trail_and_verify_agree_on_damaged_logs() {
        let good = log(12);
        let lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
        let join = |ls: Vec<&[u8]>| ls.concat();
        let mut cases: Vec<Vec<u8>> = vec![good.clone()];
        // A line removed, duplicated, swapped; the log cut; a byte changed.
        cases.push(join([&lines[..5], &lines[6..]].concat()));
        cases.push(join([&lines[..5], &lines[4..]].concat()));
        let mut swapped = lines.clone();
        swapped.swap(3, 7);
        cases.push(join(swapped));
        cases.push(good[..good.len() - 1].to_vec());
        cases.push(good[..good.len() / 2].to_vec());
        let mut flipped = good.clone();
        flipped[good.len() / 3] ^= 1;
        cases.push(flipped);
        cases.push(Vec::new());
        cases.push(b"\n".to_vec());
        for (i, bytes) in cases.iter().enumerate() {
            let verify = crate::verify::verify_reader(&bytes[..], &Default::default());
            let (all, report) = entries(bytes, Filter::default());
            assert_eq!(report.ok(), verify.is_ok(), "case {i}: {all:?}");
            if let Err(crate::verify::VerifyError::Tampered(t)) = verify {
                let first = all.iter().find(|e| e.verdict.is_broken()).unwrap();
                assert_eq!(first.line, t.line, "case {i}");
            }
        }
    }
}
