//! A hostile test sink that exports `packed-batch` (world `packed-sink`), so
//! the host calls `emit-packed` for its batches. It writes real, chained
//! records (sealed with `chainsink-format`, so the log itself verifies), and
//! then lies in the packed receipts, in a way chosen by the first event's
//! type:
//!
//! | event type        | packed answer                                        |
//! |-------------------|------------------------------------------------------|
//! | `lie.garbage`     | bytes that do not unpack as receipts                 |
//! | `lie.count`       | one receipt fewer than events                        |
//! | `lie.hash-value`  | well-formed receipts, the last hash not its record's |
//! | anything else     | the truth                                            |
//!
//! Every lie must be caught by the host, which then discards the instance,
//! as for the same lies in `emit-batch` (`wrong-hash`). It writes new logs
//! only, with the chain on.

use std::cell::RefCell;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::packed::{self, Fields};

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "packed-sink",
        path: "../../../wit",
    });
}

use bindings::chainsink::audit::log_file;
use bindings::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, RecordFormat, SinkError, SinkInfo, VerifyFailure,
    VerifyReport,
};

struct Component;

/// The last hash and the record count.
struct Chain {
    prev: Hash,
    records: u64,
}

thread_local! {
    static CHAIN: RefCell<Chain> = const { RefCell::new(Chain { prev: Hash::GENESIS, records: 0 }) };
}

/// Seals `events`, appends them in one write and returns the true receipts.
fn write(events: &[Fields<'_>]) -> Result<Vec<(u64, Hash)>, SinkError> {
    CHAIN.with_borrow_mut(|chain| {
        let mut buf = Vec::new();
        let mut receipts = Vec::new();
        let (mut prev, mut seq) = (chain.prev, chain.records);
        for e in events {
            seq += 1;
            prev = seal(&e.event(), seq, Some(&prev), &mut buf)
                .map_err(|err| SinkError::InvalidEvent(err.to_string()))?
                .expect("the chain is on");
            receipts.push((seq, prev));
        }
        log_file::append(&buf).map_err(SinkError::Io)?;
        chain.prev = prev;
        chain.records = seq;
        Ok(receipts)
    })
}

fn fields(e: &Event) -> Fields<'_> {
    Fields {
        timestamp: &e.timestamp,
        event_type: &e.event_type,
        workflow_id: e.workflow_id.as_deref(),
        host_id: &e.actor.host_id,
        user: &e.actor.user,
        payload: &e.payload,
    }
}

fn receipt((seq, hash): (u64, Hash)) -> Receipt {
    Receipt {
        seq,
        hash: Some(hash.to_hex()),
    }
}

impl bindings::exports::chainsink::audit::sink::Guest for Component {
    fn describe() -> SinkInfo {
        SinkInfo {
            name: "packed-liar".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            format: RecordFormat::TelemachyJson,
        }
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        let bytes = log_file::size().map_err(SinkError::Io)?;
        if !options.hash_chain || bytes != 0 {
            return Err(SinkError::InvalidEvent(
                "this test sink writes new, chained logs only".into(),
            ));
        }
        Ok(ChainHead {
            records: 0,
            hash: Some(Hash::GENESIS.to_hex()),
            bytes,
        })
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        Ok(receipt(write(&[fields(&event)])?.remove(0)))
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        let events: Vec<_> = events.iter().map(fields).collect();
        Ok(write(&events)?.into_iter().map(receipt).collect())
    }

    fn flush() -> Result<(), SinkError> {
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        let (records, prev) = CHAIN.with_borrow(|c| (c.records, c.prev));
        Ok(ChainHead {
            records,
            hash: Some(prev.to_hex()),
            bytes: log_file::size().map_err(SinkError::Io)?,
        })
    }

    fn close() -> Result<ChainHead, SinkError> {
        Self::head()
    }
}

impl bindings::exports::chainsink::audit::packed_batch::Guest for Component {
    fn emit_packed(events: Vec<u8>) -> Result<Vec<u8>, SinkError> {
        let events = packed::unpack_events(&events)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SinkError::InvalidEvent(e.to_string()))?;
        let mut receipts = write(&events)?;
        match events.first().map(|e| e.event_type) {
            Some("lie.garbage") => return Ok(vec![1, 2, 3]),
            Some("lie.count") => {
                receipts.pop();
            }
            Some("lie.hash-value") => {
                if let Some(last) = receipts.last_mut() {
                    last.1 = Hash([0xab; 32]);
                }
            }
            _ => {}
        }
        let mut out = Vec::new();
        for (seq, hash) in receipts {
            packed::pack_receipt(&mut out, seq, Some(&hash.to_hex()));
        }
        Ok(out)
    }
}

impl bindings::exports::chainsink::audit::verifier::Guest for Component {
    fn verify() -> Result<VerifyReport, VerifyFailure> {
        Err(VerifyFailure {
            line: 0,
            offset: 0,
            reason: "packed-liar does not check logs: use `chainsink verify`".into(),
        })
    }
}

bindings::export!(Component with_types_in bindings);
