//! A hostile test sink that exports `packed-batch` (world `packed-sink`), so
//! the host calls `emit-packed` for its batches. It writes real, chained
//! records (the shared honest [`Chain`]), so the log itself verifies, and
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
use chainsink_format::packed;
use chainsink_test_sink_common::Chain;
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    Actor, ChainHead, Event, Options, Receipt, SinkError, SinkInfo, VerifyFailure, VerifyReport,
};

/// Bindings for world `packed-sink`, with the types and imports of the
/// shared ones (`chainsink-test-sink-common`, world `verifying-sink`): only
/// the exports are this crate's own.
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "packed-sink",
        path: "../../../wit",
        with: {
            "chainsink:audit/types@0.2.0": chainsink_test_sink_common::chainsink::audit::types,
            "chainsink:audit/log-file@0.2.0": chainsink_test_sink_common::chainsink::audit::log_file,
            "chainsink:audit/digest@0.2.0": chainsink_test_sink_common::chainsink::audit::digest,
            "chainsink:audit/diagnostics@0.2.0": chainsink_test_sink_common::chainsink::audit::diagnostics,
        },
    });
}

struct Component;

thread_local! {
    static CHAIN: RefCell<Chain> = RefCell::new(Chain::default());
}

/// Seals `events` with the shared [`Chain`], appends them in one write and
/// returns the true receipts.
fn write(events: &[Event]) -> Result<Vec<(Receipt, Hash)>, SinkError> {
    CHAIN.with_borrow_mut(|chain| {
        let (mut next, mut buf, mut receipts) = (*chain, Vec::new(), Vec::new());
        for e in events {
            let (receipt, hash) = next.seal(e, &mut buf)?;
            next.commit(hash);
            receipts.push((receipt, hash));
        }
        log_file::append(&buf).map_err(SinkError::Io)?;
        *chain = next;
        Ok(receipts)
    })
}

impl bindings::exports::chainsink::audit::sink::Guest for Component {
    fn describe() -> SinkInfo {
        chainsink_test_sink_common::describe("packed-liar")
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
        Ok(write(&[event])?.remove(0).0)
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        Ok(write(&events)?.into_iter().map(|(r, _)| r).collect())
    }

    fn flush() -> Result<(), SinkError> {
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        let chain = CHAIN.with_borrow(|c| *c);
        Ok(ChainHead {
            records: chain.records,
            hash: Some(chain.prev.to_hex()),
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
            .map(|f| {
                let f = f.map_err(|e| SinkError::InvalidEvent(e.to_string()))?;
                Ok(Event {
                    timestamp: f.timestamp.into(),
                    event_type: f.event_type.into(),
                    workflow_id: f.workflow_id.map(Into::into),
                    actor: Actor {
                        host_id: f.host_id.into(),
                        user: f.user.into(),
                    },
                    payload: f.payload.into(),
                })
            })
            .collect::<Result<Vec<_>, SinkError>>()?;
        let mut receipts = write(&events)?;
        match events.first().map(|e| e.event_type.as_str()) {
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
        for (receipt, hash) in receipts {
            packed::pack_receipt_hash(&mut out, receipt.seq, Some(&hash));
        }
        Ok(out)
    }
}

impl bindings::exports::chainsink::audit::verifier::Guest for Component {
    fn verify() -> Result<VerifyReport, VerifyFailure> {
        chainsink_test_sink_common::verify_telemachy()
    }
}

bindings::export!(Component with_types_in bindings);
