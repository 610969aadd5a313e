//! A sink built against the frozen WIT 0.1.0 (`wit/since_v0.1.0/`), as
//! sinks were before 0.2: no `describe`, no `digest`, no `verifier`. It
//! writes honest `telemachy-json` records with `chainsink-format` and
//! resumes from the log's last record, so a 0.2 host must load it, check
//! it as `telemachy-json`, and verify its log natively.

use std::cell::RefCell;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent};
use chainsink_format::verify::{Mode, check_line};

/// The 0.1.0 bindings.
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../../wit/since_v0.1.0",
    });
}

use bindings::chainsink::audit::log_file;
use bindings::chainsink::audit::types::{
    ChainHead, Durability, Event, Options, Receipt, SinkError,
};
use bindings::exports::chainsink::audit::sink::Guest;

struct Component;

/// Where the chain stands.
struct State {
    options: Options,
    records: u64,
    /// The last record's hash; None with the chain off.
    prev: Option<Hash>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// The chain as the log's last record leaves it.
fn resume(chained: bool) -> Result<(u64, Option<Hash>), SinkError> {
    let (_, tail) = log_file::read_tail(2 << 20).map_err(SinkError::Io)?;
    if tail.is_empty() {
        return Ok((0, chained.then_some(Hash::GENESIS)));
    }
    let body = tail.strip_suffix(b"\n").ok_or_else(|| {
        SinkError::CorruptLog(
            "the log does not end with a newline (this sink does not recover torn writes)".into(),
        )
    })?;
    let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
    let info = check_line(last, Mode::Fast)
        .map_err(|e| SinkError::CorruptLog(format!("the last line is not a record: {e}")))?;
    let seq = info
        .seq
        .ok_or_else(|| SinkError::CorruptLog("the last record has no seq".into()))?;
    Ok((seq, info.hash))
}

fn write(events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
    STATE.with_borrow_mut(|state| {
        let state = state.as_mut().ok_or(SinkError::NotOpen)?;
        let mut out = Vec::new();
        let mut receipts = Vec::with_capacity(events.len());
        let (mut prev, mut seq) = (state.prev, state.records);
        for (i, e) in events.iter().enumerate() {
            let bad = |m: String| match events.len() {
                1 => SinkError::InvalidEvent(m),
                _ => SinkError::InvalidEvent(format!("event {i}: {m}")),
            };
            let payload = parse_object(&e.payload).map_err(|err| bad(format!("payload: {err}")))?;
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
            let hash =
                seal(&record, seq, prev.as_ref(), &mut out).map_err(|e| bad(e.to_string()))?;
            prev = hash;
            receipts.push(Receipt {
                seq,
                hash: hash.map(|h| h.to_hex()),
            });
        }
        log_file::append(&out).map_err(SinkError::Io)?;
        if state.options.durability == Durability::Always {
            log_file::sync().map_err(SinkError::Io)?;
        }
        state.records = seq;
        state.prev = prev;
        Ok(receipts)
    })
}

fn head() -> Result<ChainHead, SinkError> {
    STATE.with_borrow(|state| {
        let state = state.as_ref().ok_or(SinkError::NotOpen)?;
        Ok(ChainHead {
            records: state.records,
            hash: state.prev.map(|h| h.to_hex()),
            bytes: log_file::size().map_err(SinkError::Io)?,
        })
    })
}

impl Guest for Component {
    fn open(options: Options) -> Result<ChainHead, SinkError> {
        let (records, prev) = resume(options.hash_chain)?;
        STATE.set(Some(State {
            options,
            records,
            prev: if options.hash_chain {
                prev.or(Some(Hash::GENESIS))
            } else {
                None
            },
        }));
        head()
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        Ok(write(std::slice::from_ref(&event))?.remove(0))
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        write(&events)
    }

    fn flush() -> Result<(), SinkError> {
        STATE.with_borrow(|s| s.as_ref().map(|_| ()).ok_or(SinkError::NotOpen))?;
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        head()
    }

    fn close() -> Result<ChainHead, SinkError> {
        let head = head()?;
        log_file::sync().map_err(SinkError::Io)?;
        STATE.set(None);
        Ok(head)
    }
}

bindings::export!(Component with_types_in bindings);
