//! A hostile test sink: writes real, chained records but lies about them.
//!
//! Records are sealed with `chainsink-format`, exactly as the default sink
//! does, so the log itself verifies. What the sink *returns* is wrong, in a
//! way chosen by the event type:
//!
//! | event type       | lie                                                      |
//! |------------------|----------------------------------------------------------|
//! | `lie.hash-shape` | the receipt's hash is not 64 lowercase hex digits        |
//! | `lie.hash-value` | the receipt's hash is well-formed but not the record's    |
//! | `lie.seq`        | the receipt's seq skips ahead                            |
//! | `lie.count`      | `emit-batch` returns one receipt fewer than events       |
//! | anything else    | the truth                                                |
//!
//! and `head` always returns a malformed hash. Every lie must be caught by
//! the host, which then discards the instance.

use std::cell::RefCell;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;

struct Component;

/// The chain as this sink keeps it: the last hash and the record count.
struct Chain {
    prev: Hash,
    records: u64,
}

thread_local! {
    static CHAIN: RefCell<Chain> = const { RefCell::new(Chain { prev: Hash::GENESIS, records: 0 }) };
}

/// Seals `events` into lines, appends them in one write and returns the
/// true receipts.
fn write(events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
    CHAIN.with_borrow_mut(|chain| {
        let mut buf = Vec::new();
        let mut receipts = Vec::new();
        let (mut prev, mut seq) = (chain.prev, chain.records);
        for e in events {
            let payload = parse_object(&e.payload)
                .map_err(|err| SinkError::InvalidEvent(format!("payload: {err}")))?;
            let record = FormatEvent {
                timestamp: &e.timestamp,
                event_type: &e.event_type,
                workflow_id: e.workflow_id.as_deref(),
                actor: Actor {
                    host_id: &e.actor.host_id,
                    user: &e.actor.user,
                },
                payload: (&payload).into(),
            };
            seq += 1;
            prev = seal(&record, seq, Some(&prev), &mut buf)
                .map_err(|err| SinkError::InvalidEvent(err.to_string()))?
                .expect("the chain is on");
            receipts.push(Receipt {
                seq,
                hash: Some(prev.to_hex()),
            });
        }
        log_file::append(&buf).map_err(SinkError::Io)?;
        chain.prev = prev;
        chain.records = seq;
        Ok(receipts)
    })
}

/// Applies the lie the event type asks for.
fn lie(event_type: &str, receipt: &mut Receipt) {
    match event_type {
        "lie.hash-shape" => receipt.hash = Some("NOT-A-HASH".into()),
        "lie.hash-value" => receipt.hash = Some("ab".repeat(32)),
        "lie.seq" => receipt.seq += 41,
        _ => {}
    }
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("wrong-hash")
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        if !options.hash_chain {
            return Err(SinkError::InvalidEvent(
                "this test sink only writes chained logs".into(),
            ));
        }
        let bytes = log_file::size().map_err(SinkError::Io)?;
        if bytes != 0 {
            return Err(SinkError::CorruptLog(
                "this test sink only writes new logs".into(),
            ));
        }
        Ok(ChainHead {
            records: 0,
            hash: Some(Hash::GENESIS.to_hex()),
            bytes,
        })
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        let mut receipt = write(std::slice::from_ref(&event))?.remove(0);
        lie(&event.event_type, &mut receipt);
        Ok(receipt)
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        let mut receipts = write(&events)?;
        for (e, r) in events.iter().zip(receipts.iter_mut()) {
            lie(&e.event_type, r);
        }
        if events.iter().any(|e| e.event_type == "lie.count") {
            receipts.pop();
        }
        Ok(receipts)
    }

    fn flush() -> Result<(), SinkError> {
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        Ok(ChainHead {
            records: CHAIN.with_borrow(|c| c.records),
            hash: Some("XYZ".into()),
            bytes: log_file::size().map_err(SinkError::Io)?,
        })
    }

    fn close() -> Result<ChainHead, SinkError> {
        let (records, prev) = CHAIN.with_borrow(|c| (c.records, c.prev));
        Ok(ChainHead {
            records,
            hash: Some(prev.to_hex()),
            bytes: log_file::size().map_err(SinkError::Io)?,
        })
    }
}

chainsink_test_sink_common::telemachy_verifier!(Component);
chainsink_test_sink_common::export_sink!(Component);
