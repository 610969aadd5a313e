//! What the test sinks share: the WIT 0.2 `verifying-sink` bindings,
//! generated once, the `export_sink!` macro each guest ends with, [`Chain`],
//! an honest chain writer for sinks that misbehave in some other way, and
//! what a `telemachy-json` sink answers to `describe` ([`describe`]) and
//! `verifier.verify` ([`verify_telemachy`]).
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
        world: "verifying-sink",
        path: "../../../wit",
        pub_export_macro: true,
        export_macro_name: "export_sink",
        default_bindings_module: "chainsink_test_sink_common",
    });
}

pub use bindings::*;

use chainsink::audit::log_file;
use chainsink::audit::types::{
    Event, Receipt, RecordFormat, SinkError, SinkInfo, VerifyFailure, VerifyReport,
};
use chainsink_format::verify::{ChainVerifier, Mode, check_line};

/// Whether a sink syncs after each emit under `durability`.
pub fn durability_syncs(durability: chainsink::audit::types::Durability) -> bool {
    matches!(durability, chainsink::audit::types::Durability::Always)
}

/// What a test sink that writes telemachy's records says it is.
pub fn describe(name: &str) -> SinkInfo {
    SinkInfo {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        format: RecordFormat::TelemachyJson,
    }
}

/// Reads the whole log through `log-file`, one line at a time, in chunks
/// of `chunk` bytes, calling `line(number, offset, bytes)` for each whole
/// line (without its newline). A last line with no newline is a failure.
pub fn fold_lines(
    chunk: u32,
    mut line: impl FnMut(u64, u64, &[u8]) -> Result<(), String>,
) -> Result<(u64, u64), VerifyFailure> {
    let io = |offset: u64, e: String| VerifyFailure {
        line: 0,
        offset,
        reason: format!("cannot read the log: {e}"),
    };
    let size = log_file::size().map_err(|e| io(0, e))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = 0u64; // log offset of buf[0]
    let mut offset = 0u64; // next byte to read
    let mut number = 0u64;
    while offset < size {
        let more = log_file::read(offset, chunk).map_err(|e| io(offset, e))?;
        if more.is_empty() {
            break;
        }
        offset += more.len() as u64;
        buf.extend_from_slice(&more);
        let mut start = 0;
        while let Some(p) = buf[start..].iter().position(|&b| b == b'\n') {
            number += 1;
            let at = buf_at + start as u64;
            line(number, at, &buf[start..start + p]).map_err(|reason| VerifyFailure {
                line: number,
                offset: at,
                reason,
            })?;
            start += p + 1;
        }
        buf.drain(..start);
        buf_at += start as u64;
    }
    if !buf.is_empty() {
        return Err(VerifyFailure {
            line: number + 1,
            offset: buf_at,
            reason: format!(
                "the last line has no newline ({} bytes): the log is cut short",
                buf.len()
            ),
        });
    }
    Ok((number, offset))
}

/// `verifier.verify` for a `telemachy-json` log, by `chainsink-format`'s
/// rules, in the sink's sandbox.
pub fn verify_telemachy() -> Result<VerifyReport, VerifyFailure> {
    let mut chain = ChainVerifier::new();
    let (records, bytes) = fold_lines(1 << 20, |_, _, line| {
        let info = check_line(line, Mode::Fast).map_err(|e| e.to_string())?;
        chain.push(&info).map_err(|e| e.to_string())
    })?;
    Ok(VerifyReport {
        records,
        head: chain.head().map(|h| h.to_hex()),
        bytes,
    })
}

/// Implements `verifier` for `$component` with [`verify_telemachy`].
#[macro_export]
macro_rules! telemachy_verifier {
    ($component:ty) => {
        impl $crate::exports::chainsink::audit::verifier::Guest for $component {
            fn verify() -> Result<
                $crate::chainsink::audit::types::VerifyReport,
                $crate::chainsink::audit::types::VerifyFailure,
            > {
                $crate::verify_telemachy()
            }
        }
    };
}

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
            payload: (&payload).into(),
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
        let (_, tail) = log_file::read_tail(2 << 20).map_err(SinkError::Io)?;
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
        let info = check_line(last, Mode::Fast)
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
