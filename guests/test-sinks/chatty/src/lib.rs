//! A hostile test sink: honest records, dishonest diagnostics.
//!
//! Each `emit` first sends a diagnostic with a newline and terminal escapes
//! in it, shaped to forge a line of the host's own output, then
//! [`FLOOD`] more diagnostics, and then writes an honest record (a new log
//! only). The host must print diagnostics as escaped data on lines of their
//! own, tagged with the sink's name, and say how many it dropped.

use std::cell::Cell;

use chainsink_test_sink_common::Chain;
use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// The forged host line a diagnostic tries to start.
pub const FORGED: &str = "chainsink: dry run of \"forged\" COMPLETED";
/// Diagnostics sent after the forged one, by each emit.
pub const FLOOD: usize = 300;

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
    diagnostics::log(Level::Warn, &format!("ok\n{FORGED}\r\x1b[2K"));
    for i in 0..FLOOD {
        diagnostics::log(Level::Warn, &format!("chatter {i}"));
    }
    let mut chain = CHAIN.get();
    let mut buf = Vec::new();
    let (receipt, hash) = chain.seal(event, &mut buf)?;
    log_file::append(&buf).map_err(SinkError::Io)?;
    chain.commit(hash);
    CHAIN.set(chain);
    Ok(receipt)
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("chatty")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        if log_file::size().map_err(SinkError::Io)? != 0 {
            return Err(SinkError::CorruptLog(
                "this test sink only writes new logs".into(),
            ));
        }
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
