//! The default chainsink sink, built as a wasm component.
//!
//! It holds the chain logic behind the WIT `sink` interface: canonical JSON
//! records, the SHA-256 hash chain and resume from the log's tail. All format
//! rules come from `chainsink-format`; [`writer`] drives them over the log,
//! and this file binds that to the component's imports and exports.

use std::cell::RefCell;

/// The `audit-sink` world's bindings, generated from the frozen 0.1.0 WIT
/// (`wit/since_v0.1.0/`): the default sink stays on 0.1 until it moves to
/// the 0.2 SDK.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../wit/since_v0.1.0",
        additional_derives: [PartialEq],
    });
}

pub mod writer;

use bindings::chainsink::audit::diagnostics::{self, Level};
use bindings::chainsink::audit::log_file;
use bindings::chainsink::audit::types::{ChainHead, Event, Options, Receipt, SinkError};
use bindings::exports::chainsink::audit::sink::Guest;
use writer::{ChainWriter, LogIo};

/// The `log-file` and `diagnostics` imports, as a [`LogIo`].
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
    fn diagnose(&mut self, level: Level, message: &str) {
        diagnostics::log(level, message)
    }
}

thread_local! {
    /// The open writer: one per instance (the host gives each instance a store of its own).
    static SINK: RefCell<Option<ChainWriter<WitLog>>> = const { RefCell::new(None) };
}

struct Component;

impl Guest for Component {
    fn open(options: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        let writer = ChainWriter::open(WitLog, options)?;
        let head = writer.head();
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
        with_writer(|w| {
            let mut receipts = w.append(std::slice::from_ref(&event))?;
            Ok(receipts.remove(0))
        })
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        with_writer(|w| w.append(&events))
    }

    fn flush() -> Result<(), SinkError> {
        with_writer(|w| w.flush())
    }

    fn head() -> Result<ChainHead, SinkError> {
        with_writer(|w| Ok(w.head()))
    }

    fn close() -> Result<ChainHead, SinkError> {
        let mut writer = SINK
            .with(|s| s.borrow_mut().take())
            .ok_or(SinkError::NotOpen)?;
        writer.flush()?;
        Ok(writer.head())
    }
}

bindings::export!(Component with_types_in bindings);

fn with_writer<R>(
    f: impl FnOnce(&mut ChainWriter<WitLog>) -> Result<R, SinkError>,
) -> Result<R, SinkError> {
    SINK.with(|s| match s.borrow_mut().as_mut() {
        Some(w) => f(w),
        None => Err(SinkError::NotOpen),
    })
}
