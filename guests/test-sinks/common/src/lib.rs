//! What the hostile test sinks share: the `audit-sink` bindings, generated
//! once, the `export_sink!` macro each guest ends with, and [`Chain`], an
//! honest chain writer for sinks that misbehave in some other way.
//!
//! Each guest is its own crate (so each builds to its own component), built
//! by `crates/test-programs`; every guest there must have a test.

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent};

/// The generated bindings.
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../../wit",
        pub_export_macro: true,
        export_macro_name: "export_sink",
        default_bindings_module: "chainsink_test_sink_common",
    });
}

pub use bindings::*;

use chainsink::audit::types::{Event, Receipt, SinkError};

/// An honest hash chain over the log, as the default sink writes it (for a
/// new log: it does not resume).
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    /// The last record's hash.
    pub prev: Hash,
    /// Records written.
    pub records: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            prev: Hash::GENESIS,
            records: 0,
        }
    }
}

impl Chain {
    /// Seals `event` as the next record, appending its line to `out`;
    /// returns its receipt (the chain moves on only when the caller commits
    /// it with [`Chain::commit`]).
    pub fn seal(&self, event: &Event, out: &mut Vec<u8>) -> Result<(Receipt, Hash), SinkError> {
        let payload = parse_object(&event.payload)
            .map_err(|e| SinkError::InvalidEvent(format!("payload: {e}")))?;
        let record = FormatEvent {
            timestamp: &event.timestamp,
            event_type: &event.event_type,
            workflow_id: event.workflow_id.as_deref(),
            actor: Actor {
                host_id: &event.actor.host_id,
                user: &event.actor.user,
            },
            payload: &payload,
        };
        let seq = self.records + 1;
        let hash = seal(&record, seq, Some(&self.prev), out)
            .map_err(|e| SinkError::InvalidEvent(e.to_string()))?
            .expect("the chain is on");
        Ok((
            Receipt {
                seq,
                hash: Some(hash.to_hex()),
            },
            hash,
        ))
    }

    /// The chain as the log's last record leaves it (read from its tail),
    /// for sinks that continue a log. Only whole, valid last records are
    /// understood: test sinks do not recover torn writes.
    pub fn resume() -> Result<Chain, SinkError> {
        let (_, tail) = chainsink::audit::log_file::read_tail(2 << 20).map_err(SinkError::Io)?;
        let Some(body) = tail.strip_suffix(b"\n") else {
            return if tail.is_empty() {
                Ok(Chain::default())
            } else {
                Err(SinkError::CorruptLog(
                    "the log does not end with a newline".into(),
                ))
            };
        };
        let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
        let info = chainsink_format::verify::check_line(last, chainsink_format::verify::Mode::Fast)
            .map_err(|e| SinkError::CorruptLog(format!("the last line is not a record: {e}")))?;
        Ok(Chain {
            prev: info
                .hash
                .ok_or_else(|| SinkError::CorruptLog("the log is not chained".into()))?,
            records: info
                .seq
                .ok_or_else(|| SinkError::CorruptLog("the last record has no seq".into()))?,
        })
    }

    /// Moves the chain past a record sealed by [`Chain::seal`].
    pub fn commit(&mut self, hash: Hash) {
        self.prev = hash;
        self.records += 1;
    }
}
