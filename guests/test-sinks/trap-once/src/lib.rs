//! A test sink that traps once: an honest chain writer (it continues the
//! log from its tail) that panics on the event that would be record
//! [`TRAP_AT`], unless that event is the host's own `audit.sink_restarted`.
//!
//! The condition lives in the log, not in the instance, so a fresh instance
//! opened after the trap writes on: under `--audit-policy fail-open` the host
//! must replace the trapped instance, say so in the chain, retry the event,
//! and lose nothing.

use std::cell::Cell;

use chainsink_test_sink_common::Chain;
use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// The seq of the record whose event makes this sink trap.
pub const TRAP_AT: u64 = 6;

thread_local! {
    static CHAIN: Cell<Chain> = Cell::new(Chain::default());
}

fn head() -> Result<ChainHead, SinkError> {
    let chain = CHAIN.get();
    Ok(ChainHead {
        records: chain.records,
        hash: Some(chain.prev.to_hex()),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

fn write(event: &Event) -> Result<Receipt, SinkError> {
    let mut chain = CHAIN.get();
    if chain.records + 1 == TRAP_AT && event.event_type != "audit.sink_restarted" {
        panic!(
            "trap-once: refusing record {TRAP_AT} ({})",
            event.event_type
        );
    }
    let mut buf = Vec::new();
    let (receipt, hash) = chain.seal(event, &mut buf)?;
    log_file::append(&buf).map_err(SinkError::Io)?;
    log_file::sync().map_err(SinkError::Io)?;
    chain.commit(hash);
    CHAIN.set(chain);
    Ok(receipt)
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("trap-once")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        CHAIN.set(Chain::resume()?);
        head()
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        write(&event)
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        events.iter().map(write).collect()
    }

    fn flush() -> Result<(), SinkError> {
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        head()
    }

    fn close() -> Result<ChainHead, SinkError> {
        head()
    }
}

chainsink_test_sink_common::telemachy_verifier!(Component);
chainsink_test_sink_common::export_sink!(Component);
