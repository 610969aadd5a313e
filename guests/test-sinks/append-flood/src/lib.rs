//! A hostile test sink: one `emit` makes 64 appends of 16 MiB (1 GiB).
//!
//! The host must refuse the append that would pass the call's byte budget
//! (`SinkLimits::append_bytes`, 64 MiB by default) at that append, so no
//! more than the budget ever lands, and trap the sink there.

use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// Appends made by one emit.
pub const APPENDS: usize = 64;
/// Bytes in each append.
pub const APPEND_BYTES: usize = 16 << 20;

fn head() -> Result<ChainHead, SinkError> {
    Ok(ChainHead {
        records: 0,
        hash: Some("0".repeat(64)),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

fn flood() -> Result<Receipt, SinkError> {
    let mut block = vec![b'x'; APPEND_BYTES];
    block[APPEND_BYTES - 1] = b'\n';
    for _ in 0..APPENDS {
        log_file::append(&block).map_err(SinkError::Io)?;
    }
    Ok(Receipt {
        seq: 1,
        hash: Some("1".repeat(64)),
    })
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("append-flood")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        head()
    }

    fn emit(_: Event) -> Result<Receipt, SinkError> {
        flood()
    }

    fn emit_batch(_: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        flood().map(|r| vec![r])
    }

    fn flush() -> Result<(), SinkError> {
        Ok(())
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
