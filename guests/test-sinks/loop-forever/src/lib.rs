//! A hostile test sink: `emit` and `emit-batch` never return.
//!
//! It opens like a well-behaved sink, then spins forever on the first event.
//! The host must cut the call off at its deadline (epoch interruption), name
//! the sink, the call and the reason, and discard the instance.

use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// The head of a log this sink has never written to.
fn head(hash_chain: bool) -> Result<ChainHead, SinkError> {
    Ok(ChainHead {
        records: 0,
        hash: hash_chain.then(|| "0".repeat(64)),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

/// Never returns: a loop with no way out but an interrupt.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("loop-forever")
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        head(options.hash_chain)
    }

    fn emit(_: Event) -> Result<Receipt, SinkError> {
        spin()
    }

    fn emit_batch(_: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        spin()
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
