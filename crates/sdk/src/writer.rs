//! The chain writer: events in, canonical chained records appended to a log.
//!
//! It is generic over [`LogIo`], the log-file capability. In the component
//! that is the WIT `log-file` import ([`crate::WitLog`]); natively
//! (benchmarks, tests) it can be any file. The same code runs in both, so
//! the two can be compared. Every format rule it applies (canonical
//! encoding, the chain rule, the torn-write rule) is `chainsink-format`'s.

use chainsink_format::Hash;
use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::chain::seal_with;
use chainsink_format::record::{Actor, Event as FormatEvent};
use chainsink_format::recovery::{
    RECOVERED_EVENT, Tail as TailJudgement, Torn, is_cut_write, judge_tail,
};
use chainsink_format::verify::{Mode, check_line};

use crate::Event;
use crate::bindings::chainsink::audit::diagnostics::Level;
use crate::bindings::chainsink::audit::types::{
    ChainHead, Durability, Options, Receipt, SinkError,
};

/// First window read from the tail on resume; doubled until the last two
/// lines fit. 8 KiB holds two records of a typical log (0.3 to 1 KB each);
/// each byte more is copied into the sink's memory by every process that
/// opens the log (a one-shot `emit` read 64 KiB for one 500-byte line).
const TAIL_WINDOW: u32 = 8 * 1024;
/// Most lines one torn run may hold: a torn write and the recoveries of it
/// that were cut short in turn.
const MAX_TORN_RUN: usize = 8;
/// Chunk size for the one-off record count of logs whose records lack `seq`.
const COUNT_CHUNK: u32 = 1024 * 1024;

/// The log capability, as the WIT `log-file` interface defines it, plus the
/// diagnostics import.
pub trait LogIo {
    /// Appends `data` at the end; returns the offset where it starts.
    fn append(&mut self, data: &[u8]) -> Result<u64, String>;
    /// Reads up to `len` bytes at `offset`.
    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String>;
    /// Reads the last `len` bytes; returns their offset and the bytes.
    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String>;
    /// The log's size in bytes.
    fn size(&mut self) -> Result<u64, String>;
    /// Makes appended bytes durable.
    fn sync(&mut self) -> Result<(), String>;
    /// Writes one diagnostic line to the host.
    fn diagnose(&mut self, level: Level, message: &str);
    /// SHA-256 of `data`, for a record's hash. By default computed here;
    /// in a component, by the host (`digest.sha256`), which measures faster
    /// than SHA-256 compiled to wasm.
    fn sha256(&mut self, data: &[u8]) -> Hash {
        Hash::of(data)
    }
}

/// The end of a log.
struct Tail {
    /// The last line: offset and bytes (without `\n`).
    last: (u64, Vec<u8>),
    /// The line before it, if any.
    before: Option<(u64, Vec<u8>)>,
    /// Whether the log ends with `\n`.
    ends_with_newline: bool,
}

/// An open chain: where the log stands, and a reusable line buffer.
///
/// Memory stays O(one record) (O(one batch) for `emit-batch`).
#[derive(Debug)]
pub struct ChainWriter<L: LogIo> {
    log: L,
    options: Options,
    /// Hash of the last record (genesis for an empty log); None with the chain off.
    prev: Option<Hash>,
    /// Records in the log.
    records: u64,
    /// Bytes in the log, as far as this writer knows.
    bytes: u64,
    /// Reused buffer for encoded lines.
    buf: Vec<u8>,
    /// Set after a failed write: the tail must be re-read before the next one.
    needs_resume: bool,
    /// A torn last line found on open, to be closed off by the next write.
    pending: Option<Pending>,
}

/// What the log's end needs before the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A torn write: a `\n`, then its `chain.recovered` record.
    Torn(Torn),
    /// A complete last record that lost its `\n`: just the `\n`.
    Newline,
}

impl<L: LogIo> ChainWriter<L> {
    /// Opens `log`: reads its end and picks the chain up where it stopped.
    pub fn open(log: L, options: Options) -> Result<ChainWriter<L>, SinkError> {
        let mut writer = ChainWriter {
            log,
            options,
            prev: None,
            records: 0,
            bytes: 0,
            buf: Vec::with_capacity(1024),
            needs_resume: false,
            pending: None,
        };
        writer.resume()?;
        Ok(writer)
    }

    /// Where the chain stands.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            records: self.records,
            hash: self.prev.map(|h| h.to_hex()),
            bytes: self.bytes,
        }
    }

    /// The log, given back.
    pub fn into_log(self) -> L {
        self.log
    }

    /// Makes every record so far durable.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.log.sync().map_err(SinkError::Io)
    }

    fn resume(&mut self) -> Result<(), SinkError> {
        let bytes = self.log.size().map_err(SinkError::Io)?;
        self.bytes = bytes;
        self.records = 0;
        self.prev = self.options.hash_chain.then_some(Hash::GENESIS);
        self.needs_resume = false;
        self.pending = None;
        if bytes == 0 {
            return Ok(());
        }
        let tail = self.tail(bytes)?;
        let (last, before) = (tail.last, tail.before);
        // The format crate's torn-write rule: only an unterminated last line
        // can be torn; a complete line that is not a record is tampering.
        let (info, at) = match judge_tail(last.0, &last.1, tail.ends_with_newline) {
            TailJudgement::Record(info) => (info, last.0),
            TailJudgement::MissingNewline(info) => {
                self.pending = Some(Pending::Newline);
                (info, last.0)
            }
            TailJudgement::Tampered { error, why } => {
                return Err(SinkError::CorruptLog(format!(
                    "the last line of the log (at byte {}) is not a valid record ({error}), and \
                     it is not a torn write: {why}. Nothing was written. Run `chainsink verify` \
                     on the log to see what changed; keep it as evidence and start a new log",
                    last.0
                )));
            }
            TailJudgement::Torn(torn) => {
                // Keep its bytes, resume from the record before it, and
                // close it off with a `chain.recovered` record at the next
                // write. Lines a cut write left just before it (a recovery
                // that was itself cut short) belong to the same run.
                let mut run = vec![last.1];
                let mut run_start = last.0;
                let mut earlier = before;
                let resume_from = loop {
                    let Some((at, line)) = earlier else {
                        break None;
                    };
                    match check_line(&line, Mode::Fast) {
                        Ok(info) => break Some((info, at)),
                        Err(_) if is_cut_write(&line) && run.len() < MAX_TORN_RUN => {
                            run.insert(0, line);
                            run_start = at;
                            earlier = self.line_before(at)?;
                        }
                        Err(e) => {
                            return Err(SinkError::CorruptLog(format!(
                                "the last line (at byte {}) is torn and the line before it \
                                 (at byte {at}) is not a valid record either: {e}; this is not a \
                                 torn write; nothing was written; run `chainsink verify` on \
                                 the log",
                                last.0
                            )));
                        }
                    }
                };
                let torn = if run.len() == 1 {
                    torn
                } else {
                    Torn::of(run_start, &run.join(&b'\n'))
                };
                self.pending = Some(Pending::Torn(torn));
                self.log.diagnose(
                    Level::Warn,
                    &format!(
                        "the log ends with a torn write: {} bytes at byte {} are not a record; \
                         they are kept, and the next write ends them with a newline and a \
                         `{RECOVERED_EVENT}` record",
                        torn.length, torn.offset
                    ),
                );
                match resume_from {
                    None => return Ok(()),
                    Some(found) => found,
                }
            }
        };
        if self.options.hash_chain {
            let hash = info.hash.ok_or_else(|| {
                SinkError::CorruptLog(format!(
                    "the last record (at byte {at}) has no `hash` (it was written with the \
                     chain off); a chain cannot continue from it: use a new log or \
                     AUDIT_HASH_CHAIN=false"
                ))
            })?;
            self.prev = Some(hash);
        } else if info.hash.is_some() {
            return Err(SinkError::CorruptLog(
                "the log is hash-chained; refusing to append unchained records to it \
                 (set AUDIT_HASH_CHAIN=true or use a new log)"
                    .to_string(),
            ));
        }
        self.records = match info.seq {
            Some(seq) => seq,
            None => {
                let n = self.count_records(at)? + 1;
                self.log.diagnose(
                    Level::Info,
                    &format!(
                        "the last record has no `seq` (written by another tool); counted {n} records once"
                    ),
                );
                n
            }
        };
        Ok(())
    }

    /// Encodes `events` as consecutive records and appends them in one write:
    /// all or nothing (an invalid event writes nothing, and the error names
    /// its index in a batch). Returns one receipt per event, in order.
    pub fn append(&mut self, events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
        let mut receipts = Vec::with_capacity(events.len());
        self.append_records(
            events,
            |event| {
                // A payload whose text was no object, changed by the sink
                // since: refused all the same (one not changed is refused by
                // sealing its text).
                if event.payload.text().is_none()
                    && let Some(e) = event.payload.error()
                {
                    return Err(e.to_string());
                }
                Ok(FormatEvent {
                    timestamp: &event.timestamp,
                    event_type: &event.event_type,
                    workflow_id: event.workflow_id.as_deref(),
                    actor: Actor {
                        host_id: &event.actor.host_id,
                        user: &event.actor.user,
                    },
                    payload: event.payload.as_record(),
                })
            },
            |seq, hash| {
                receipts.push(Receipt {
                    seq,
                    hash: hash.map(|h| h.to_hex()),
                })
            },
        )?;
        Ok(receipts)
    }

    /// [`ChainWriter::append`] of events that are already in the format crate's form, such as
    /// those unpacked from `emit-packed` (`chainsink_format::packed::Fields::event`), with no
    /// [`Event`] built for each; the receipts are appended to `receipts` packed
    /// (`chainsink_format::packed`), with no string built for each. On an error, `receipts` is
    /// as it was.
    pub fn append_formatted(
        &mut self,
        events: &[FormatEvent<'_>],
        receipts: &mut Vec<u8>,
    ) -> Result<(), SinkError> {
        let start = receipts.len();
        let written = self.append_records(
            events,
            |e| Ok(*e),
            |seq, hash| chainsink_format::packed::pack_receipt_hash(receipts, seq, hash.as_ref()),
        );
        if written.is_err() {
            receipts.truncate(start);
        }
        written
    }

    /// The one body of [`ChainWriter::append`] and [`ChainWriter::append_formatted`]: `record`
    /// gives each event's record, or why it is refused; `receipt` is told each record's `seq`
    /// and hash, in order (all of them void if this returns an error).
    fn append_records<T>(
        &mut self,
        events: &[T],
        record: impl for<'e> Fn(&'e T) -> Result<FormatEvent<'e>, String>,
        mut receipt: impl FnMut(u64, Option<Hash>),
    ) -> Result<(), SinkError> {
        if self.needs_resume {
            self.resume()?;
        }
        self.buf.clear();
        let mut prev = self.prev;
        let mut seq = self.records;
        if self.pending.is_some() && !events.is_empty() {
            self.buf.push(b'\n');
        }
        // (A first event that is refused is refused by the loop below, before anything is
        // written.)
        if let (Some(Pending::Torn(torn)), Some(Ok(first))) =
            (self.pending, events.first().map(&record))
        {
            let payload = torn.payload();
            let record = FormatEvent {
                timestamp: first.timestamp,
                event_type: RECOVERED_EVENT,
                workflow_id: None,
                actor: first.actor,
                payload: (&payload).into(),
            };
            seq += 1;
            prev = seal_with(&record, seq, prev.as_ref(), &mut self.buf, |d| {
                self.log.sha256(d)
            })
            .map_err(|e| SinkError::InvalidEvent(format!("event 0: {e}")))?;
        }
        for (i, event) in events.iter().enumerate() {
            let invalid = |msg: String| {
                if events.len() > 1 {
                    SinkError::InvalidEvent(format!("event {i} of the batch: {msg}"))
                } else {
                    SinkError::InvalidEvent(msg)
                }
            };
            let record = record(event).map_err(invalid)?;
            // `seal_with` validates the event first (one place for that rule).
            seq += 1;
            let hash = seal_with(&record, seq, prev.as_ref(), &mut self.buf, |d| {
                self.log.sha256(d)
            })
            .map_err(|e| invalid(e.to_string()))?;
            prev = hash;
            receipt(seq, hash);
        }
        let offset = match self.log.append(&self.buf) {
            Ok(offset) => offset,
            Err(e) => {
                self.needs_resume = true;
                return Err(SinkError::Io(e));
            }
        };
        if offset != self.bytes {
            // Someone else appended since we last looked: the chain in the
            // file no longer runs through our `prev`.
            self.needs_resume = true;
            return Err(SinkError::Io(format!(
                "the log grew from {} to {offset} bytes behind this sink's back \
                 (another writer?); the chain may fork there: run `chainsink verify`",
                self.bytes
            )));
        }
        self.bytes = offset + self.buf.len() as u64;
        self.records = seq;
        self.prev = prev;
        if let Some(Pending::Torn(torn)) = self.pending.take() {
            self.log.diagnose(
                Level::Warn,
                &format!(
                    "recovered the torn write at byte {} ({} bytes) with a `{RECOVERED_EVENT}` record",
                    torn.offset, torn.length
                ),
            );
        }
        if self.options.durability == Durability::Always {
            self.log.sync().map_err(SinkError::Io)?;
        }
        Ok(())
    }

    /// The complete line that ends just before `offset` (at a line start),
    /// with its offset; `None` at the start of the log.
    fn line_before(&mut self, offset: u64) -> Result<Option<(u64, Vec<u8>)>, SinkError> {
        if offset == 0 {
            return Ok(None);
        }
        let end = offset - 1; // the `\n` that ends the line
        let window = (2 * (MAX_RECORD_BYTES as u64 + 1)).min(end);
        let start = end - window;
        let buf = self
            .log
            .read(start, u32::try_from(window).unwrap_or(u32::MAX))
            .map_err(SinkError::Io)?;
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(p) => Ok(Some((start + p as u64 + 1, buf[p + 1..].to_vec()))),
            None if start == 0 => Ok(Some((0, buf))),
            None => Err(SinkError::CorruptLog(format!(
                "the line ending at byte {end} is longer than the largest record \
                 ({MAX_RECORD_BYTES} bytes); run `chainsink verify` on the log"
            ))),
        }
    }

    /// Reads the end of the log: its last line (complete or torn) and the
    /// complete line before it, each with its offset and without `\n`.
    fn tail(&mut self, size: u64) -> Result<Tail, SinkError> {
        let mut window = TAIL_WINDOW;
        loop {
            let (start, buf) = self.log.read_tail(window).map_err(SinkError::Io)?;
            let ends_with_newline = buf.last() == Some(&b'\n');
            let body = if ends_with_newline {
                &buf[..buf.len() - 1]
            } else {
                &buf[..]
            };
            // Line starts, from the end: after the last two newlines of `body`.
            let cuts = body.iter().rposition(|&b| b == b'\n').map(|p| {
                let q = body[..p].iter().rposition(|&b| b == b'\n');
                (p, q)
            });
            let whole = start == 0;
            match cuts {
                Some((p, Some(q))) => {
                    return Ok(Tail {
                        last: (start + p as u64 + 1, body[p + 1..].to_vec()),
                        before: Some((start + q as u64 + 1, body[q + 1..p].to_vec())),
                        ends_with_newline,
                    });
                }
                Some((p, None)) if whole => {
                    return Ok(Tail {
                        last: (p as u64 + 1, body[p + 1..].to_vec()),
                        before: Some((0, body[..p].to_vec())),
                        ends_with_newline,
                    });
                }
                None if whole => {
                    return Ok(Tail {
                        last: (0, body.to_vec()),
                        before: None,
                        ends_with_newline,
                    });
                }
                // The writer never writes a record over MAX_RECORD_BYTES, so
                // two of them (plus newlines) always fit this window.
                _ if u64::from(window) >= size
                    || u64::from(window) >= 2 * (MAX_RECORD_BYTES as u64 + 1) =>
                {
                    return Err(SinkError::CorruptLog(format!(
                        "the last records are longer than {MAX_RECORD_BYTES} bytes, the largest \
                         a record can be; \
                         run `chainsink verify` on the log"
                    )));
                }
                _ => window = window.saturating_mul(2),
            }
        }
    }

    /// Counts the lines that end before `size`: only for logs whose records
    /// lack `seq`.
    fn count_records(&mut self, size: u64) -> Result<u64, SinkError> {
        let mut offset = 0;
        let mut lines = 0;
        while offset < size {
            let want = COUNT_CHUNK.min(u32::try_from(size - offset).unwrap_or(COUNT_CHUNK));
            let chunk = self.log.read(offset, want).map_err(SinkError::Io)?;
            if chunk.is_empty() {
                break;
            }
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            offset += chunk.len() as u64;
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem_log::MemLog;
    use chainsink_format::json::parse_object;

    fn options() -> Options {
        Options {
            hash_chain: true,
            durability: Durability::None,
        }
    }

    fn event(i: u32) -> Event {
        Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00".into(),
            event_type: "test.event".into(),
            workflow_id: Some("wf".into()),
            actor: crate::Actor {
                host_id: "h".into(),
                user: "u".into(),
            },
            payload: parse_object(&format!(r#"{{"i": {i}, "pad": "{}"}}"#, "x".repeat(200)))
                .unwrap()
                .into(),
        }
    }

    fn with_payload(text: &str) -> Event {
        let mut e = event(0);
        e.payload = crate::Payload::from_text(text.into());
        e
    }

    /// A payload's text and its tree seal to the same record; a payload that
    /// is not an object is refused whether or not the sink changed it, and
    /// nothing of the batch is written.
    #[test]
    fn payloads_seal_alike_from_text_or_tree_and_bad_ones_are_refused() {
        let text = r#"{"b": [1.50, "\u00E9"], "a": {"y": 1, "x": -0}}"#;
        let mut from_text = ChainWriter::open(MemLog::default(), options()).unwrap();
        let r1 = from_text.append(&[with_payload(text)]).unwrap();
        let mut from_tree = ChainWriter::open(MemLog::default(), options()).unwrap();
        let mut tree = event(0);
        tree.payload = parse_object(text).unwrap().into();
        let r2 = from_tree.append(&[tree]).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(from_text.log.bytes, from_tree.log.bytes);
        let line = String::from_utf8(from_text.log.bytes.clone()).unwrap();
        assert!(
            line.contains(r#""payload": {"a": {"x": 0, "y": 1}, "b": [1.5, "\u00e9"]}"#),
            "{line}"
        );

        for bad in ["[1]", r#"{"a": NaN}"#, r#"{"a": "\ud800"}"#, "{"] {
            for changed in [false, true] {
                let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
                let mut e = with_payload(bad);
                if changed {
                    e.payload.insert("added".into(), serde_json::Value::Null);
                }
                let err = w.append(&[event(1), e]).unwrap_err();
                let SinkError::InvalidEvent(msg) = err else {
                    panic!("{bad}: {err:?}");
                };
                assert!(
                    msg.starts_with("event 1 of the batch: payload cannot be stored: "),
                    "{bad} (changed: {changed}): {msg}"
                );
                assert!(w.log.bytes.is_empty(), "nothing of the batch is written");
            }
        }
    }

    #[test]
    fn resume_reads_only_the_tail() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        let events: Vec<Event> = (0..5000).map(event).collect();
        for chunk in events.chunks(100) {
            w.append(chunk).unwrap();
        }
        let head = w.head();
        let mut log = w.log;
        log.read = 0;
        let size = log.bytes.len() as u64;
        let again = ChainWriter::open(log, options()).unwrap();
        assert_eq!(again.head(), head);
        assert_eq!(head.records, 5000);
        assert!(
            again.log.read <= u64::from(TAIL_WINDOW),
            "read {} of {size} bytes",
            again.log.read
        );
    }

    #[test]
    fn a_failed_append_leaves_the_chain_where_it_was() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        let first = w.append(&[event(1)]).unwrap();
        w.log.fail_appends = true;
        assert!(matches!(w.append(&[event(2)]), Err(SinkError::Io(_))));
        w.log.fail_appends = false;
        let next = w.append(&[event(3)]).unwrap();
        assert_eq!(next[0].seq, 2);
        assert_eq!(w.head().records, 2);
        assert_ne!(first[0].hash, next[0].hash);
    }

    #[test]
    fn a_torn_tail_is_kept_and_closed_off_by_a_recovery_record() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        let before = w.append(&[event(1), event(2)]).unwrap();
        let mut log = w.log;
        let cut = log.bytes.len() - 10;
        log.bytes.truncate(cut);
        let torn_at = log.bytes[..cut].iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let torn = log.bytes[torn_at..].to_vec();
        let mut w = ChainWriter::open(log, options()).unwrap();
        // Resumed from record 1, the last whole one.
        assert_eq!(w.head().records, 1);
        assert_eq!(w.head().hash, before[0].hash);
        let after = w.append(&[event(3)]).unwrap();
        assert_eq!(after[0].seq, 3, "the recovery record takes seq 2");
        let text = w.log.bytes.clone();
        assert_eq!(
            &text[torn_at..torn_at + torn.len()],
            &torn[..],
            "not a byte deleted"
        );
        assert_eq!(text[torn_at + torn.len()], b'\n');
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 4);
        let claim = Torn::from_record_line(lines[2]).expect("a chain.recovered record");
        assert!(claim.covers(torn_at as u64, &torn));
        let info = check_line(lines[2], Mode::Strict).unwrap();
        assert_eq!(info.prev_hash.map(|h| h.to_hex()), before[0].hash);
        assert_eq!(info.seq, Some(2));
        // Opening again finds a clean tail: no second recovery.
        let w = ChainWriter::open(w.log, options()).unwrap();
        assert!(w.pending.is_none());
        assert_eq!(w.head().records, 3);
    }

    /// `append_formatted` (the packed path's) writes what `append` writes, torn-write recovery
    /// included, and refuses the same events the same way.
    #[test]
    fn formatted_events_append_as_sdk_events_do() {
        let texts = [r#"{"b": 1, "a": "\u00e9"}"#, "{}", r#"{"pad": 1.50}"#];
        let sdk: Vec<Event> = texts.iter().map(|t| with_payload(t)).collect();
        let records: Vec<FormatEvent<'_>> = sdk
            .iter()
            .zip(texts)
            .map(|(e, p)| FormatEvent {
                timestamp: &e.timestamp,
                event_type: &e.event_type,
                workflow_id: e.workflow_id.as_deref(),
                actor: Actor {
                    host_id: &e.actor.host_id,
                    user: &e.actor.user,
                },
                payload: chainsink_format::record::Payload::Text(p),
            })
            .collect();
        // A log that ends in a torn write, for both.
        let mut torn = ChainWriter::open(MemLog::default(), options()).unwrap();
        torn.append(&[event(1)]).unwrap();
        let mut log = torn.log;
        log.bytes.extend_from_slice(b"{\"actor\": {\"ho");
        let mut a = ChainWriter::open(log.clone(), options()).unwrap();
        let mut b = ChainWriter::open(log, options()).unwrap();
        let mut packed = Vec::new();
        b.append_formatted(&records, &mut packed).unwrap();
        let from_formatted: Vec<Receipt> = chainsink_format::packed::unpack_receipts(&packed)
            .unwrap()
            .into_iter()
            .map(|(seq, hash)| Receipt {
                seq,
                hash: hash.map(str::to_string),
            })
            .collect();
        assert_eq!(a.append(&sdk).unwrap(), from_formatted);
        assert_eq!(a.log.bytes, b.log.bytes);
        assert!(
            String::from_utf8_lossy(&a.log.bytes).contains(RECOVERED_EVENT),
            "the torn write was recovered"
        );

        let bad = FormatEvent {
            payload: chainsink_format::record::Payload::Text("[1]"),
            ..records[0]
        };
        let before = b.log.bytes.clone();
        let mut packed = b"kept".to_vec();
        let err = b
            .append_formatted(&[records[0], bad], &mut packed)
            .unwrap_err();
        assert_eq!(packed, b"kept", "no receipt of a refused batch");
        let SinkError::InvalidEvent(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.starts_with("event 1 of the batch: payload"), "{msg}");
        assert_eq!(b.log.bytes, before, "nothing of the batch is written");
        let SinkError::InvalidEvent(sdk_msg) = a
            .append(&[sdk[0].clone(), with_payload("[1]")])
            .unwrap_err()
        else {
            panic!()
        };
        assert_eq!(msg, sdk_msg);
    }

    #[test]
    fn two_bad_lines_at_the_end_are_not_a_torn_write() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        w.append(&[event(1)]).unwrap();
        let mut log = w.log;
        log.bytes.extend_from_slice(b"garbage\nmore garbage");
        let err = ChainWriter::open(log, options()).err().unwrap();
        assert!(
            matches!(err, SinkError::CorruptLog(ref m) if m.contains("not a torn write")),
            "{err:?}"
        );
    }

    #[test]
    fn a_writer_that_is_not_alone_notices() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        w.append(&[event(1)]).unwrap();
        w.log.bytes.extend_from_slice(b"someone else\n");
        let err = w.append(&[event(2)]).unwrap_err();
        assert!(
            matches!(err, SinkError::Io(ref m) if m.contains("another writer")),
            "{err:?}"
        );
    }
}
