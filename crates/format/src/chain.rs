//! The chain rule: sealing an event into one canonical line, hashed and linked to the previous one.
//!
//! A record is `{"actor", "event_type", "payload", "seq", "timestamp", "workflow_id"}` plus, with
//! the chain on, `"prev_hash"` (the previous record's hash, [`Hash::GENESIS`] for the first) and
//! `"hash"` = SHA-256 of `canon(record without "hash")`. Keys sort, so a chained line reads
//!
//! ```text
//! {"actor": {"host_id": .., "user": ..}, "event_type": .., "hash": "<64 hex>", "payload": {..},
//!  "prev_hash": "<64 hex>", "seq": N, "timestamp": "..", "workflow_id": ..}
//! ```
//!
//! and removing exactly the bytes `"hash": "<64 hex>", ` gives the hashed bytes.

use alloc::vec::Vec;

use crate::Hash;
use crate::json;
use crate::record::{self, Event, Payload, RecordError};

/// Length of the spliced member `"hash": "<64 hex>", `.
pub const HASH_MEMBER_LEN: usize = 9 + 64 + 3;

/// Appends `canon(record) + "\n"` to `out`.
///
/// `seq` is the record's 1-based position in the log. `prev` is `Some(previous hash)` (or
/// `Some(&Hash::GENESIS)` for the first record) when the chain is on; then the record gets
/// `prev_hash` and `hash` and the new hash is returned. With `None` the chain is off and the
/// record has neither. The event is checked with [`record::validate`] first; a record longer than
/// [`crate::MAX_RECORD_BYTES`] is refused ([`RecordError::TooLarge`]), and so is an integer of more
/// than [`json::MAX_INT_DIGITS`] digits. On any error `out` is left as it was.
pub fn seal(
    event: &Event,
    seq: u64,
    prev: Option<&Hash>,
    out: &mut Vec<u8>,
) -> Result<Option<Hash>, RecordError> {
    seal_with(event, seq, prev, out, Hash::of)
}

/// [`seal`], with `sha256` computing the record's hash from the bytes it covers (it must be
/// SHA-256). For a wasm sink that hashes with the host's `digest.sha256` import, which measures
/// faster than SHA-256 compiled to wasm (`crates/sdk/bench-sink/run.sh`).
pub fn seal_with(
    event: &Event,
    seq: u64,
    prev: Option<&Hash>,
    out: &mut Vec<u8>,
    sha256: impl FnOnce(&[u8]) -> Hash,
) -> Result<Option<Hash>, RecordError> {
    record::validate(event)?;
    if seq == 0 {
        return Err(RecordError::ZeroSeq);
    }
    let start = out.len();
    out.reserve(256 + HASH_MEMBER_LEN);
    out.extend_from_slice(b"{\"actor\": {\"host_id\": ");
    json::write_str(out, event.actor.host_id);
    out.extend_from_slice(b", \"user\": ");
    json::write_str(out, event.actor.user);
    out.extend_from_slice(b"}, \"event_type\": ");
    json::write_str(out, event.event_type);
    out.extend_from_slice(b", ");
    // "hash" goes here, between "event_type" and "payload".
    let splice_at = out.len();
    out.extend_from_slice(b"\"payload\": ");
    let written = match event.payload {
        Payload::Object(m) => json::write_object_within(out, m, record::MAX_PAYLOAD_DEPTH),
        Payload::Text(t) => json::write_object_text_within(out, t, record::MAX_PAYLOAD_DEPTH),
    };
    if let Err(e) = written {
        out.truncate(start);
        return Err(e.into());
    }
    if let Some(prev) = prev {
        out.extend_from_slice(b", \"prev_hash\": \"");
        prev.write_hex(out);
        out.push(b'"');
    }
    out.extend_from_slice(b", \"seq\": ");
    write_u64(out, seq);
    // `validate` proved the timestamp's shape: digits and `-T:.+`, nothing to escape.
    out.extend_from_slice(b", \"timestamp\": \"");
    // Always 32 bytes once validated: copied as a fixed size (see `write_u64`).
    match <&[u8; 32]>::try_from(event.timestamp.as_bytes()) {
        Ok(ts) => out.extend_from_slice(ts),
        Err(_) => out.extend_from_slice(event.timestamp.as_bytes()),
    }
    out.push(b'"');
    out.extend_from_slice(b", \"workflow_id\": ");
    match event.workflow_id {
        Some(w) => json::write_str(out, w),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    let size = out.len() - start + if prev.is_some() { HASH_MEMBER_LEN } else { 0 };
    if size > crate::MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(RecordError::TooLarge {
            size,
            limit: crate::MAX_RECORD_BYTES,
        });
    }

    let hash = prev.map(|_| {
        let hash = sha256(&out[start..]);
        let mut member = [0u8; HASH_MEMBER_LEN];
        member[..9].copy_from_slice(b"\"hash\": \"");
        member[9..73].copy_from_slice(&hash.hex_bytes());
        member[73..].copy_from_slice(b"\", ");
        let end = out.len();
        out.resize(end + HASH_MEMBER_LEN, 0);
        out.copy_within(splice_at..end, splice_at + HASH_MEMBER_LEN);
        out[splice_at..splice_at + HASH_MEMBER_LEN].copy_from_slice(&member);
        hash
    });
    out.push(b'\n');
    Ok(hash)
}

/// Appends the decimal digits of `n`.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    // Written in place from the last digit: a copy of a digit count known only at run time
    // would be, in wasm, a call out to the runtime's `memory.copy` (issue 15).
    let len = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let at = out.len();
    out.extend_from_slice(&[b'0'; 20]);
    out.truncate(at + len);
    for d in out[at..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_object;
    use crate::record::Actor;

    fn event<'a>(payload: &'a serde_json::Map<String, serde_json::Value>) -> Event<'a> {
        Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: "step.finished",
            workflow_id: Some("wf-1"),
            actor: Actor {
                host_id: "host",
                user: "ana",
            },
            payload: payload.into(),
        }
    }

    #[test]
    fn seal_chain_on_layout_and_hash() {
        let p = parse_object(r#"{"b": 2, "a": "é"}"#).unwrap();
        let mut out = b"previous line\n".to_vec();
        let h = seal(&event(&p), 7, Some(&Hash::GENESIS), &mut out)
            .unwrap()
            .unwrap();
        let line = core::str::from_utf8(&out[14..]).unwrap();
        let unhashed = concat!(
            r#"{"actor": {"host_id": "host", "user": "ana"}, "event_type": "step.finished", "#,
            r#""payload": {"a": "\u00e9", "b": 2}, "prev_hash": ""#,
            "0000000000000000000000000000000000000000000000000000000000000000",
            r#"", "seq": 7, "timestamp": "2026-06-04T15:30:45.123456+00:00", "workflow_id": "wf-1"}"#
        );
        assert_eq!(h, Hash::of(unhashed.as_bytes()));
        let want = unhashed.replace(r#""payload""#, &format!(r#""hash": "{h}", "payload""#)) + "\n";
        assert_eq!(line, want);
        assert_eq!(&out[..14], b"previous line\n");
    }

    #[test]
    fn seal_chain_off_has_seq_but_no_hashes() {
        let p = parse_object("{}").unwrap();
        let mut e = event(&p);
        e.workflow_id = None;
        let mut out = Vec::new();
        assert_eq!(seal(&e, 1, None, &mut out), Ok(None));
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            concat!(
                r#"{"actor": {"host_id": "host", "user": "ana"}, "event_type": "step.finished", "#,
                r#""payload": {}, "seq": 1, "timestamp": "2026-06-04T15:30:45.123456+00:00", "#,
                "\"workflow_id\": null}\n"
            )
        );
    }

    #[test]
    fn seal_errors_leave_out_unchanged() {
        let p = parse_object("{}").unwrap();
        let mut out = b"x".to_vec();
        let mut e = event(&p);
        assert_eq!(seal(&e, 0, None, &mut out), Err(RecordError::ZeroSeq));
        e.event_type = "";
        assert_eq!(
            seal(&e, 1, None, &mut out),
            Err(RecordError::EmptyEventType)
        );
        let mut bad = serde_json::Map::new();
        bad.insert(
            "n".into(),
            serde_json::Value::Number(serde_json::Number::from_string_unchecked("1e999".into())),
        );
        let e = event(&bad);
        assert!(matches!(
            seal(&e, 1, Some(&Hash::GENESIS), &mut out),
            Err(RecordError::Payload(
                json::JsonError::NumberOutOfRange { .. }
            ))
        ));
        assert_eq!(out, b"x");
    }

    #[test]
    fn seal_with_hashes_what_seal_hashes() {
        let p = parse_object(r#"{"a": [1, 2.5]}"#).unwrap();
        let mut plain = Vec::new();
        let h = seal(&event(&p), 3, Some(&Hash::GENESIS), &mut plain).unwrap();
        let mut given = Vec::new();
        let mut seen = Vec::new();
        let h2 = seal_with(&event(&p), 3, Some(&Hash::GENESIS), &mut given, |d| {
            seen.extend_from_slice(d);
            Hash::of(d)
        })
        .unwrap();
        assert_eq!((h, &plain), (h2, &given));
        assert_eq!(Some(Hash::of(&seen)), h);
        // The line carries whatever the given function returns.
        let mut forged = Vec::new();
        seal_with(&event(&p), 3, Some(&Hash::GENESIS), &mut forged, |_| {
            Hash([7; 32])
        })
        .unwrap();
        assert!(forged.windows(64).any(|w| w == Hash([7; 32]).hex_bytes()));
    }

    #[test]
    fn u64_digits() {
        let mut n = 1u64;
        let mut all = vec![0, u64::MAX, u64::MAX - 1];
        while let Some(m) = n.checked_mul(10) {
            all.extend([n - 1, n, n + 1, m - 1]);
            n = m;
        }
        for n in all {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
