//! A hostile test sink: appends bytes that are not records.
//!
//! Each `emit` appends a line of junk (binary bytes, no JSON) and returns a
//! receipt that looks right: the next seq and a well-formed hash. Only the
//! bytes give it away; the host must notice, refuse the receipt and discard
//! the instance rather than acknowledge an event that was never recorded.
//!
//! Its `verifier.verify` tries to write too: it appends junk to the log it
//! was granted read-only, and reports what the host answered, so a test can
//! see that nothing was written.

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

impl chainsink_test_sink_common::exports::chainsink::audit::verifier::Guest for Component {
    fn verify() -> Result<
        chainsink_test_sink_common::chainsink::audit::types::VerifyReport,
        chainsink_test_sink_common::chainsink::audit::types::VerifyFailure,
    > {
        let answer = match log_file::append(GARBAGE) {
            Ok(offset) => format!("append during verify landed at offset {offset}"),
            Err(e) => format!("append during verify refused: {e}"),
        };
        let sync = match log_file::sync() {
            Ok(()) => "sync worked".to_string(),
            Err(e) => format!("sync refused: {e}"),
        };
        Err(
            chainsink_test_sink_common::chainsink::audit::types::VerifyFailure {
                line: 1,
                offset: 0,
                reason: format!("{answer}; {sync}"),
            },
        )
    }
}
chainsink_test_sink_common::export_sink!(Component);
