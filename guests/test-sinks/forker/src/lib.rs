//! A hostile test sink: it ignores the log it is given and starts a new
//! chain on it.
//!
//! `open` says the log is empty (0 records, the genesis hash) whatever is in
//! it, and each `emit` appends an honest-looking record that continues that
//! fresh chain: seq 1 with a zero `prev_hash`, then 2, ... Appended after
//! existing records, that forks the chain. The host knows the log's real
//! tail from before the sink ran, so it must refuse the first such append,
//! acknowledge nothing, and mark the rejected bytes in the log.

use std::cell::Cell;

use chainsink_test_sink_common::Chain;
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

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

fn write(events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
    let mut chain = CHAIN.get();
    let mut buf = Vec::new();
    let mut receipts = Vec::new();
    for event in events {
        let (receipt, hash) = chain.seal(event, &mut buf)?;
        chain.commit(hash);
        receipts.push(receipt);
    }
    log_file::append(&buf).map_err(SinkError::Io)?;
    CHAIN.set(chain);
    Ok(receipts)
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("forker")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        head()
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        write(std::slice::from_ref(&event)).map(|mut r| r.remove(0))
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        write(&events)
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
