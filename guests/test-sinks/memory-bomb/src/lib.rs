//! A hostile test sink: `emit` allocates memory until it runs out.
//!
//! It keeps every megabyte it allocates, so its linear memory grows until the
//! host's limit refuses the next `memory.grow`. The host must trap this
//! instance only, report "out of memory" with the limit, and carry on.

use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

fn head(hash_chain: bool) -> Result<ChainHead, SinkError> {
    Ok(ChainHead {
        records: 0,
        hash: hash_chain.then(|| "0".repeat(64)),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

/// Allocates (and touches) one MiB after another, keeping them all.
fn hoard() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        block[0] = 1;
        *block.last_mut().unwrap() = 1;
        kept.push(std::hint::black_box(block));
        if kept.len().is_multiple_of(16) {
            diagnostics::log(
                Level::Debug,
                &format!("memory bomb holds {} MiB", kept.len()),
            );
        }
    }
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("memory-bomb")
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        head(options.hash_chain)
    }

    fn emit(_: Event) -> Result<Receipt, SinkError> {
        hoard()
    }

    fn emit_batch(_: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        hoard()
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
