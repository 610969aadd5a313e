//! The default chainsink sink, built as a wasm component.
//!
//! It holds the chain logic behind the WIT `sink` interface: canonical JSON
//! records, the SHA-256 hash chain and resume from the log's tail. All format
//! rules come from `chainsink-format`; this crate only drives them over the
//! one `log-file` capability the host grants.
//!
//! Memory stays O(one record): one reusable line buffer, the previous hash,
//! and a record count.

use std::cell::RefCell;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent, validate};
use chainsink_format::verify::{Mode, check_line};

wit_bindgen::generate!({
    world: "audit-sink",
    path: "../wit",
});

use chainsink::audit::diagnostics::{self, Level};
use chainsink::audit::log_file;
use chainsink::audit::types::{ChainHead as Head, Durability, Event, Options, Receipt, SinkError};
use exports::chainsink::audit::sink::Guest;

/// First window read from the tail on resume; doubled until a whole line fits.
const TAIL_WINDOW: u32 = 64 * 1024;
/// Largest record resume will look for before calling the tail corrupt.
const MAX_RECORD: u64 = 16 * 1024 * 1024;
/// Chunk size for the one-off record count of logs whose records lack `seq`.
const COUNT_CHUNK: u32 = 1024 * 1024;

/// The open sink's state.
struct Sink {
    options: Options,
    /// Hash of the last record (genesis for an empty log); None with the chain off.
    prev: Option<Hash>,
    /// Records in the log.
    records: u64,
    /// Bytes in the log, as far as this sink knows.
    bytes: u64,
    /// Reused buffer for encoded lines.
    buf: Vec<u8>,
    /// Set after a failed write: the tail must be re-read before the next one.
    needs_resume: bool,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

struct Component;

impl Guest for Component {
    fn open(options: Options) -> Result<Head, SinkError> {
        install_panic_hook();
        let sink = Sink::resume(options)?;
        let head = sink.head();
        diagnostics::log(
            Level::Info,
            &format!(
                "opened log: {} records, {} bytes, head {}",
                head.records,
                head.bytes,
                head.hash.as_deref().unwrap_or("(chain off)")
            ),
        );
        SINK.with(|s| *s.borrow_mut() = Some(sink));
        Ok(head)
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        with_sink(|sink| {
            let mut receipts = sink.append(std::slice::from_ref(&event))?;
            Ok(receipts.remove(0))
        })
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        with_sink(|sink| sink.append(&events))
    }

    fn flush() -> Result<(), SinkError> {
        with_sink(|_| log_file::sync().map_err(SinkError::Io))
    }

    fn head() -> Result<Head, SinkError> {
        with_sink(|sink| Ok(sink.head()))
    }

    fn close() -> Result<Head, SinkError> {
        let sink = SINK
            .with(|s| s.borrow_mut().take())
            .ok_or(SinkError::NotOpen)?;
        log_file::sync().map_err(SinkError::Io)?;
        Ok(sink.head())
    }
}

export!(Component);

fn with_sink<R>(f: impl FnOnce(&mut Sink) -> Result<R, SinkError>) -> Result<R, SinkError> {
    SINK.with(|s| match s.borrow_mut().as_mut() {
        Some(sink) => f(sink),
        None => Err(SinkError::NotOpen),
    })
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
    }));
}

impl Sink {
    /// Reads the end of the log and picks the chain up where it stopped.
    fn resume(options: Options) -> Result<Sink, SinkError> {
        let bytes = log_file::size().map_err(SinkError::Io)?;
        let mut sink = Sink {
            prev: options.hash_chain.then_some(Hash::GENESIS),
            options,
            records: 0,
            bytes,
            buf: Vec::with_capacity(1024),
            needs_resume: false,
        };
        if bytes == 0 {
            return Ok(sink);
        }
        let (line_start, line) = last_line(bytes)?;
        let info = check_line(&line, Mode::Fast).map_err(|e| {
            SinkError::CorruptLog(format!(
                "the last record (at byte {line_start}) is not valid: {e}; \
                 nothing was written; run `chainsink verify` on the log"
            ))
        })?;
        if sink.options.hash_chain {
            let hash = info.hash.ok_or_else(|| {
                SinkError::CorruptLog(
                    "the last record has no `hash` (it was written with the chain off); \
                     a chain cannot continue from it: use a new log or AUDIT_HASH_CHAIN=false"
                        .to_string(),
                )
            })?;
            sink.prev = Some(hash);
        } else if info.hash.is_some() {
            return Err(SinkError::CorruptLog(
                "the log is hash-chained; refusing to append unchained records to it \
                 (set AUDIT_HASH_CHAIN=true or use a new log)"
                    .to_string(),
            ));
        }
        sink.records = match info.seq {
            Some(seq) => seq,
            None => {
                let n = count_records(bytes)?;
                diagnostics::log(
                    Level::Info,
                    &format!(
                        "the last record has no `seq` (written by another tool); counted {n} records once"
                    ),
                );
                n
            }
        };
        Ok(sink)
    }

    fn head(&self) -> Head {
        Head {
            records: self.records,
            hash: self.prev.map(|h| h.to_hex()),
            bytes: self.bytes,
        }
    }

    /// Encodes `events` as consecutive records and appends them in one write.
    fn append(&mut self, events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
        if self.needs_resume {
            let again = Sink::resume(self.options)?;
            *self = again;
        }
        self.buf.clear();
        let mut prev = self.prev;
        let mut receipts = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let where_ = |msg: String| {
                if events.len() > 1 {
                    SinkError::InvalidEvent(format!("event {i} of the batch: {msg}"))
                } else {
                    SinkError::InvalidEvent(msg)
                }
            };
            let payload =
                parse_object(&event.payload).map_err(|e| where_(format!("payload: {e}")))?;
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
            validate(&record).map_err(|e| where_(e.to_string()))?;
            let seq = self.records + 1 + i as u64;
            let hash = seal(&record, seq, prev.as_ref(), &mut self.buf)
                .map_err(|e| where_(e.to_string()))?;
            prev = hash;
            receipts.push(Receipt {
                seq,
                hash: hash.map(|h| h.to_hex()),
            });
        }
        let offset = log_file::append(&self.buf).map_err(|e| {
            self.needs_resume = true;
            SinkError::Io(e)
        })?;
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
            log_file::sync().map_err(SinkError::Io)?;
        }
        Ok(receipts)
    }
}

/// Finds the log's last line (without its `\n`) by reading backwards from the end.
fn last_line(size: u64) -> Result<(u64, Vec<u8>), SinkError> {
    let mut window = TAIL_WINDOW;
    loop {
        let (start, tail) = log_file::read_tail(window).map_err(SinkError::Io)?;
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
fn count_records(size: u64) -> Result<u64, SinkError> {
    let mut offset = 0;
    let mut lines = 0;
    while offset < size {
        let chunk = log_file::read(offset, COUNT_CHUNK).map_err(SinkError::Io)?;
        if chunk.is_empty() {
            break;
        }
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        offset += chunk.len() as u64;
    }
    Ok(lines)
}
