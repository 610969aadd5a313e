//! The chain writer: events in, canonical chained records appended to a log.
//!
//! It is generic over [`LogIo`], the log-file capability. In the component
//! that is the WIT `log-file` import; natively (benchmarks, tests) it can be
//! any file. The same code runs in both, so the two can be compared.

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent, validate};
use chainsink_format::verify::{Mode, check_line};

use crate::chainsink::audit::diagnostics::Level;
use crate::chainsink::audit::types::{ChainHead, Durability, Event, Options, Receipt, SinkError};

/// First window read from the tail on resume; doubled until a whole line fits.
const TAIL_WINDOW: u32 = 64 * 1024;
/// Largest record resume will look for before calling the tail corrupt.
const MAX_RECORD: u64 = 16 * 1024 * 1024;
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
}

/// An open chain: where the log stands, and a reusable line buffer.
///
/// Memory stays O(one record) (O(one batch) for `emit-batch`).
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

    /// The log capability.
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
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
        if bytes == 0 {
            return Ok(());
        }
        let (line_start, line) = self.last_line(bytes)?;
        let info = check_line(&line, Mode::Fast).map_err(|e| {
            SinkError::CorruptLog(format!(
                "the last record (at byte {line_start}) is not valid: {e}; \
                 nothing was written; run `chainsink verify` on the log"
            ))
        })?;
        if self.options.hash_chain {
            let hash = info.hash.ok_or_else(|| {
                SinkError::CorruptLog(
                    "the last record has no `hash` (it was written with the chain off); \
                     a chain cannot continue from it: use a new log or AUDIT_HASH_CHAIN=false"
                        .to_string(),
                )
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
                let n = self.count_records(bytes)?;
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

    /// Encodes `events` as consecutive records and appends them in one write.
    pub fn append(&mut self, events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
        if self.needs_resume {
            self.resume()?;
        }
        self.buf.clear();
        let mut prev = self.prev;
        let mut receipts = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let invalid = |msg: String| {
                if events.len() > 1 {
                    SinkError::InvalidEvent(format!("event {i} of the batch: {msg}"))
                } else {
                    SinkError::InvalidEvent(msg)
                }
            };
            let payload =
                parse_object(&event.payload).map_err(|e| invalid(format!("payload: {e}")))?;
            let record = FormatEvent {
                timestamp: &event.timestamp,
                event_type: &event.event_type,
                workflow_id: event.workflow_id.as_deref(),
                actor: Actor {
                    host_id: &event.actor.host_id,
                    user: &event.actor.user,
                },
                payload: &payload,
            };
            validate(&record).map_err(|e| invalid(e.to_string()))?;
            let seq = self.records + 1 + i as u64;
            let hash = seal(&record, seq, prev.as_ref(), &mut self.buf)
                .map_err(|e| invalid(e.to_string()))?;
            prev = hash;
            receipts.push(Receipt {
                seq,
                hash: hash.map(|h| h.to_hex()),
            });
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
        self.records += events.len() as u64;
        self.prev = prev;
        if self.options.durability == Durability::Always {
            self.log.sync().map_err(SinkError::Io)?;
        }
        Ok(receipts)
    }

    /// Finds the log's last line (without its `\n`) by reading backwards.
    fn last_line(&mut self, size: u64) -> Result<(u64, Vec<u8>), SinkError> {
        let mut window = TAIL_WINDOW;
        loop {
            let (start, tail) = self.log.read_tail(window).map_err(SinkError::Io)?;
            if tail.last() != Some(&b'\n') {
                return Err(SinkError::CorruptLog(format!(
                    "the log does not end with a newline: its last record is torn \
                     (the last line starts after byte {}); nothing was written; \
                     run `chainsink verify` on the log",
                    start
                        + tail
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |p| p as u64 + 1)
                )));
            }
            let body = &tail[..tail.len() - 1];
            match body.iter().rposition(|&b| b == b'\n') {
                Some(p) => return Ok((start + p as u64 + 1, body[p + 1..].to_vec())),
                None if start == 0 => return Ok((0, body.to_vec())),
                None if u64::from(window) >= MAX_RECORD || u64::from(window) >= size => {
                    return Err(SinkError::CorruptLog(format!(
                        "the last record is longer than {MAX_RECORD} bytes; \
                         run `chainsink verify` on the log"
                    )));
                }
                None => window = window.saturating_mul(2),
            }
        }
    }

    /// Counts the lines of the whole log: only for logs whose records lack `seq`.
    fn count_records(&mut self, size: u64) -> Result<u64, SinkError> {
        let mut offset = 0;
        let mut lines = 0;
        while offset < size {
            let chunk = self.log.read(offset, COUNT_CHUNK).map_err(SinkError::Io)?;
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
    use crate::chainsink::audit::types::Actor as WitActor;

    /// A log in memory that counts how much of it was read.
    #[derive(Default)]
    struct MemLog {
        bytes: Vec<u8>,
        read: u64,
        fail_appends: bool,
    }

    impl LogIo for MemLog {
        fn append(&mut self, data: &[u8]) -> Result<u64, String> {
            if self.fail_appends {
                return Err("disk full".into());
            }
            let at = self.bytes.len() as u64;
            self.bytes.extend_from_slice(data);
            Ok(at)
        }
        fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
            let start = (offset as usize).min(self.bytes.len());
            let end = (start + len as usize).min(self.bytes.len());
            self.read += (end - start) as u64;
            Ok(self.bytes[start..end].to_vec())
        }
        fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
            let start = self.bytes.len().saturating_sub(len as usize) as u64;
            let bytes = self.read(start, len)?;
            Ok((start, bytes))
        }
        fn size(&mut self) -> Result<u64, String> {
            Ok(self.bytes.len() as u64)
        }
        fn sync(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn diagnose(&mut self, _: Level, _: &str) {}
    }

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
            actor: WitActor {
                host_id: "h".into(),
                user: "u".into(),
            },
            payload: format!(r#"{{"i": {i}, "pad": "{}"}}"#, "x".repeat(200)),
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
    fn a_torn_tail_is_refused_and_nothing_is_written() {
        let mut w = ChainWriter::open(MemLog::default(), options()).unwrap();
        w.append(&[event(1), event(2)]).unwrap();
        let mut log = w.log;
        log.bytes.truncate(log.bytes.len() - 10);
        let before = log.bytes.clone();
        let err = ChainWriter::open(log, options()).err().unwrap();
        assert!(
            matches!(err, SinkError::CorruptLog(ref m) if m.contains("torn")),
            "{err:?}"
        );
        assert!(!before.is_empty());
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
