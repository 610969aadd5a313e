//! A hostile test sink: `emit` panics with a message.
//!
//! Like the default sink it installs a panic hook that sends the panic
//! message through the `diagnostics` import (built for
//! wasm32-unknown-unknown it has no stderr), then the panic aborts with
//! `unreachable`. The host must report the trap with that message.

use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// The message this sink panics with (tests look for it).
pub const PANIC_MESSAGE: &str = "the panicking test sink refuses event";

fn head(hash_chain: bool) -> Result<ChainHead, SinkError> {
    Ok(ChainHead {
        records: 0,
        hash: hash_chain.then(|| "0".repeat(64)),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("panicker")
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        head(options.hash_chain)
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        panic!("{PANIC_MESSAGE} {:?}", event.event_type)
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        panic!("{PANIC_MESSAGE} batch of {}", events.len())
    }

    fn flush() -> Result<(), SinkError> {
        Ok(())
    }

    fn head() -> Result<ChainHead, SinkError> {
        head(true)
    }

    fn close() -> Result<ChainHead, SinkError> {
        head(true)
    }
}

chainsink_test_sink_common::telemachy_verifier!(Component);
chainsink_test_sink_common::export_sink!(Component);
