//! Rejected appends: bytes a sink appended that the host refused, marked in
//! the log itself.
//!
//! The host re-checks what a third-party sink appends (its append guard).
//! When it refuses a call's bytes (garbage, a forked chain, receipts that
//! lie), those bytes are already in the log, which is append-only. So the
//! host appends, right then, a `chain.rejected` record, linked from the last
//! valid record before the bytes, that names them: their offset, length and
//! SHA-256, the sink, and the breach. If the bytes did not end with `\n`,
//! the host first appends one; it is part of the region the claim covers.
//!
//! A verifier accepts bytes that are not part of the chain only in exactly
//! this pattern: a run of whole lines starting at the claim's offset, of
//! exactly its length and SHA-256, immediately followed by the
//! `chain.rejected` record that claims them, which links to the record
//! before the run. It reports each such region as a breach. Anything else is
//! tampering, as before. This is not torn-write recovery
//! ([`crate::recovery`]): a newline-terminated bad line without the host's
//! record after it stays tampering.

use alloc::string::String;
use serde_json::{Map, Value};
use sha2::Digest;

use crate::Hash;

/// The event type of the host's record after rejected bytes.
pub const REJECTED_EVENT: &str = "chain.rejected";

/// The bytes a `chain.rejected` record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Log offset of the first rejected byte.
    pub offset: u64,
    /// How many bytes, including the `\n` that ends the last line.
    pub length: u64,
    /// SHA-256 of those bytes.
    pub sha256: Hash,
}

impl Rejected {
    /// Describes `bytes`, found at `offset` (they must end with `\n`).
    pub fn of(offset: u64, bytes: &[u8]) -> Rejected {
        Rejected {
            offset,
            length: bytes.len() as u64,
            sha256: Hash::of(bytes),
        }
    }

    /// The payload of the `chain.rejected` record: the claim, the sink that
    /// appended the bytes, and what was wrong with them.
    pub fn payload(&self, sink: &str, breach: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("rejected_offset".into(), Value::from(self.offset));
        m.insert("rejected_length".into(), Value::from(self.length));
        m.insert("rejected_sha256".into(), Value::from(self.sha256.to_hex()));
        m.insert("sink".into(), Value::from(sink));
        m.insert("breach".into(), Value::from(breach));
        m
    }

    /// The claim of a `chain.rejected` record, from its line (without `\n`);
    /// `None` if the line is not a valid record or not such a record.
    pub fn from_record_line(line: &[u8]) -> Option<Rejected> {
        let payload = crate::recovery::claim_payload(line, REJECTED_EVENT)?;
        Some(Rejected {
            offset: payload.get("rejected_offset")?.as_u64()?,
            length: payload.get("rejected_length")?.as_u64()?,
            sha256: Hash::from_hex(payload.get("rejected_sha256")?.as_str()?.as_bytes())?,
        })
    }
}

/// A run of lines a verifier holds aside while it looks for the
/// `chain.rejected` record that claims them.
#[derive(Debug, Clone)]
pub struct Region {
    offset: u64,
    length: u64,
    hasher: sha2::Sha256,
}

impl Region {
    /// A region starting at log offset `offset`.
    pub fn new(offset: u64) -> Region {
        Region {
            offset,
            length: 0,
            hasher: sha2::Sha256::new(),
        }
    }

    /// Adds one line of the region (without its `\n`, which is counted).
    pub fn push(&mut self, line: &[u8]) {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.length += line.len() as u64 + 1;
    }

    /// Adds part of a line (one too long to hold at once); end the line
    /// with [`Region::end_line`].
    pub fn push_part(&mut self, part: &[u8]) {
        self.hasher.update(part);
        self.length += part.len() as u64;
    }

    /// Ends a line added with [`Region::push_part`]: counts its `\n`.
    pub fn end_line(&mut self) {
        self.hasher.update(b"\n");
        self.length += 1;
    }

    /// Bytes in the region so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the region holds no bytes yet.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Whether `claim` covers exactly this region.
    pub fn is_claimed_by(&self, claim: &Rejected) -> bool {
        claim.offset == self.offset
            && claim.length == self.length
            && claim.sha256 == Hash(self.hasher.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::record::{Actor, Event};

    #[test]
    fn a_region_is_claimed_only_by_its_own_record() {
        let bytes = b"garbage\n{\"not\": \"chained\"}\n";
        let claim = Rejected::of(100, bytes);
        let payload = claim.payload("evil.wasm", "it appended bytes that are not a record");
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: REJECTED_EVENT,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        let mut line = Vec::new();
        seal(&event, 4, Some(&Hash::GENESIS), &mut line).unwrap();
        let read = Rejected::from_record_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(read, claim);

        let mut region = Region::new(100);
        region.push(b"garbage");
        assert!(!region.is_claimed_by(&read));
        region.push(b"{\"not\": \"chained\"}");
        assert!(region.is_claimed_by(&read));
        let mut elsewhere = Region::new(101);
        elsewhere.push(b"garbage");
        elsewhere.push(b"{\"not\": \"chained\"}");
        assert!(!elsewhere.is_claimed_by(&read));
    }
}
