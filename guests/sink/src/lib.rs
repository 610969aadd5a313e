//! The default chainsink sink, built as a wasm component.
//!
//! The chain logic (canonical JSON records, the SHA-256 hash chain, resume
//! from the log's tail, torn-write recovery, receipts, durability) is
//! `chainsink-sdk`'s [`ChainWriter`], the one copy every Rust sink shares,
//! with every format rule from `chainsink-format`. This file binds it to
//! the frozen WIT 0.1.0 world (`wit/since_v0.1.0/`), which is what the
//! hosts that embed the default sink (chainsink's, and the Node and Python
//! ones in `examples/`) serve: the SDK's 0.2 types are converted at the edge.

use std::cell::RefCell;

use chainsink_sdk::writer::{ChainWriter, LogIo};
use chainsink_sdk::{self as sdk};

/// The `audit-sink` world's bindings, generated from the frozen 0.1.0 WIT.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../wit/since_v0.1.0",
        additional_derives: [PartialEq],
    });
}

use bindings::chainsink::audit::diagnostics::{self, Level};
use bindings::chainsink::audit::log_file;
use bindings::chainsink::audit::types::{
    ChainHead, Durability, Event, Options, Receipt, SinkError,
};
use bindings::exports::chainsink::audit::sink::Guest;

/// The 0.1 `log-file` and `diagnostics` imports, as the writer's [`LogIo`].
struct WitLog;

impl LogIo for WitLog {
    fn append(&mut self, data: &[u8]) -> Result<u64, String> {
        log_file::append(data)
    }
    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        log_file::read(offset, len)
    }
    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        log_file::read_tail(len)
    }
    fn size(&mut self) -> Result<u64, String> {
        log_file::size()
    }
    fn sync(&mut self) -> Result<(), String> {
        log_file::sync()
    }
    fn diagnose(&mut self, level: sdk::Level, message: &str) {
        let level = match level {
            sdk::Level::Debug => Level::Debug,
            sdk::Level::Info => Level::Info,
            sdk::Level::Warn => Level::Warn,
            sdk::Level::Error => Level::Error,
        };
        diagnostics::log(level, message)
    }
}

thread_local! {
    /// The open writer: one per instance (the host gives each instance a store of its own).
    static SINK: RefCell<Option<ChainWriter<WitLog>>> = const { RefCell::new(None) };
}

/// The 0.1 error for the writer's.
fn error(e: sdk::SinkError) -> SinkError {
    match e {
        sdk::SinkError::InvalidEvent(m) => SinkError::InvalidEvent(m),
        sdk::SinkError::CorruptLog(m) => SinkError::CorruptLog(m),
        sdk::SinkError::Io(m) => SinkError::Io(m),
        sdk::SinkError::NotOpen => SinkError::NotOpen,
    }
}

fn head(h: sdk::ChainHead) -> ChainHead {
    ChainHead {
        records: h.records,
        hash: h.hash,
        bytes: h.bytes,
    }
}

/// The writer's events; a bad payload is `invalid-event`, naming its index
/// in a batch.
fn events(events: Vec<Event>) -> Result<Vec<sdk::Event>, SinkError> {
    let batch = events.len() > 1;
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let payload = chainsink_format_payload(&e.payload).map_err(|m| {
                SinkError::InvalidEvent(if batch {
                    format!("event {i} of the batch: {m}")
                } else {
                    m
                })
            })?;
            Ok(sdk::Event {
                timestamp: e.timestamp,
                event_type: e.event_type,
                workflow_id: e.workflow_id,
                actor: sdk::Actor {
                    host_id: e.actor.host_id,
                    user: e.actor.user,
                },
                payload,
            })
        })
        .collect()
}

/// The payload parsed as the SDK parses it (`Event::from_wit`'s rule).
fn chainsink_format_payload(text: &str) -> Result<sdk::Map<String, sdk::Value>, String> {
    sdk::parse_payload(text)
}

fn append(events: Vec<sdk::Event>) -> Result<Vec<Receipt>, SinkError> {
    SINK.with(|s| match s.borrow_mut().as_mut() {
        Some(w) => w
            .append(&events)
            .map(|rs| {
                rs.into_iter()
                    .map(|r| Receipt {
                        seq: r.seq,
                        hash: r.hash,
                    })
                    .collect()
            })
            .map_err(error),
        None => Err(SinkError::NotOpen),
    })
}

struct Component;

impl Guest for Component {
    fn open(options: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        let options = sdk::Options {
            hash_chain: options.hash_chain,
            durability: match options.durability {
                Durability::Always => sdk::Durability::Always,
                Durability::Batch => sdk::Durability::Batch,
                Durability::None => sdk::Durability::None,
            },
        };
        let writer = ChainWriter::open(WitLog, options).map_err(error)?;
        let head = head(writer.head());
        diagnostics::log(
            Level::Info,
            &format!(
                "opened log: {} records, {} bytes, head {}",
                head.records,
                head.bytes,
                head.hash.as_deref().unwrap_or("(chain off)")
            ),
        );
        SINK.with(|s| *s.borrow_mut() = Some(writer));
        Ok(head)
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        Ok(append(events(vec![event])?)?.remove(0))
    }

    fn emit_batch(batch: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        append(events(batch)?)
    }

    fn flush() -> Result<(), SinkError> {
        SINK.with(|s| match s.borrow_mut().as_mut() {
            Some(w) => w.flush().map_err(error),
            None => Err(SinkError::NotOpen),
        })
    }

    fn head() -> Result<ChainHead, SinkError> {
        SINK.with(|s| match s.borrow().as_ref() {
            Some(w) => Ok(head(w.head())),
            None => Err(SinkError::NotOpen),
        })
    }

    fn close() -> Result<ChainHead, SinkError> {
        let mut writer = SINK
            .with(|s| s.borrow_mut().take())
            .ok_or(SinkError::NotOpen)?;
        writer.flush().map_err(error)?;
        Ok(head(writer.head()))
    }
}

bindings::export!(Component with_types_in bindings);
