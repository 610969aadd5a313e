//! Torn-write recovery: the one pattern a verifier accepts in place of a record.
//!
//! A crash in the middle of an append can leave the log ending in a partial
//! line. The sink never deletes a byte: at its next write it ends that line
//! with `\n` and appends a `chain.recovered` record, chained from the last
//! valid record, that names the torn bytes by offset, length and SHA-256.
//! A verifier accepts a bad line only when the very next line is such a record
//! describing exactly that line's bytes; anything else is still tampering.

use alloc::string::String;
use serde_json::{Map, Value};

use crate::Hash;
use crate::json;

/// The event type of a recovery record.
pub const RECOVERED_EVENT: &str = "chain.recovered";

/// The torn bytes a recovery record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// Byte offset of the torn line in the log.
    pub offset: u64,
    /// Length of the torn line, without the `\n` that ends it.
    pub length: u64,
    /// SHA-256 of those bytes.
    pub sha256: Hash,
}

impl Torn {
    /// Describes the torn line `bytes` (without its `\n`) found at `offset`.
    pub fn of(offset: u64, bytes: &[u8]) -> Torn {
        Torn {
            offset,
            length: bytes.len() as u64,
            sha256: Hash::of(bytes),
        }
    }

    /// Whether this describes exactly the line `bytes` at `offset`.
    pub fn covers(&self, offset: u64, bytes: &[u8]) -> bool {
        *self == Torn::of(offset, bytes)
    }

    /// The payload of the `chain.recovered` record for these bytes.
    pub fn payload(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("torn_offset".into(), Value::from(self.offset));
        m.insert("torn_length".into(), Value::from(self.length));
        m.insert("torn_sha256".into(), Value::from(self.sha256.to_hex()));
        m.insert(
            "reason".into(),
            Value::from("the previous write was torn (the writer stopped mid-append); its bytes are kept and ended with a newline"),
        );
        m
    }

    /// The claim of a `chain.recovered` record, from its line (without `\n`);
    /// `None` if the line is not such a record. Check the line itself with
    /// [`check_line`](crate::verify::check_line) first.
    pub fn from_record_line(line: &[u8]) -> Option<Torn> {
        let record = json::parse_bytes(line).ok()?;
        if record.get("event_type")?.as_str()? != RECOVERED_EVENT {
            return None;
        }
        let payload = record.get("payload")?;
        Some(Torn {
            offset: payload.get("torn_offset")?.as_u64()?,
            length: payload.get("torn_length")?.as_u64()?,
            sha256: Hash::from_hex(payload.get("torn_sha256")?.as_str()?.as_bytes())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::record::{Actor, Event};

    #[test]
    fn a_sealed_recovery_record_reads_back() {
        let torn = Torn::of(1234, b"{\"actor\": {\"host");
        let payload = torn.payload();
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: RECOVERED_EVENT,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: &payload,
        };
        let mut line = alloc::vec::Vec::new();
        seal(&event, 7, Some(&Hash::GENESIS), &mut line).unwrap();
        line.pop();
        let back = Torn::from_record_line(&line).unwrap();
        assert_eq!(back, torn);
        assert!(back.covers(1234, b"{\"actor\": {\"host"));
        assert!(!back.covers(1235, b"{\"actor\": {\"host"));
        assert!(!back.covers(1234, b"{\"actor\": {\"hosT"));
    }

    #[test]
    fn other_records_are_not_recoveries() {
        assert_eq!(
            Torn::from_record_line(br#"{"event_type": "task.started", "payload": {}}"#),
            None
        );
        assert_eq!(Torn::from_record_line(b"garbage"), None);
    }
}
