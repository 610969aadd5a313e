//! A hostile test sink: appends bytes that are not records.
//!
//! Each `emit` appends a line of junk (binary bytes, no JSON) and returns a
//! receipt that looks right: the next seq and a well-formed hash. Only the
//! bytes give it away; the host must notice, refuse the receipt and discard
//! the instance rather than acknowledge an event that was never recorded.

use std::cell::Cell;

use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

thread_local! {
    static RECORDS: Cell<u64> = const { Cell::new(0) };
}

/// What each emit appends instead of a record.
pub const GARBAGE: &[u8] = b"\x00\x01garbage, not a record \xff\xfe{\n";

fn head() -> Result<ChainHead, SinkError> {
    Ok(ChainHead {
        records: RECORDS.get(),
        hash: Some("0".repeat(64)),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

fn junk() -> Result<Receipt, SinkError> {
    log_file::append(GARBAGE).map_err(SinkError::Io)?;
    let seq = RECORDS.get() + 1;
    RECORDS.set(seq);
    Ok(Receipt {
        seq,
        hash: Some(format!("{seq:064x}")),
    })
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("garbage")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        head()
    }

    fn emit(_: Event) -> Result<Receipt, SinkError> {
        junk()
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        events.iter().map(|_| junk()).collect()
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
