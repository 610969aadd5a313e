//! The packed form of `packed-batch.emit-packed` (`wit/audit.wit`): events in, receipts out, one
//! byte list each way. The one implementation of that rule: the host packs events and unpacks
//! receipts with it, a sink (the Rust SDK) unpacks events and packs receipts.
//!
//! Why: lowering a WIT `list<event>` calls the sink's allocator for every string, six an event,
//! each call a trip from the host into wasm; the receipts come back as one string each. That was
//! most of the cost of an `emit-batch` call (issue 15). One list of bytes each way is one
//! allocation and one copy.
//!
//! The layout (little-endian throughout):
//!
//! - a *string* is its byte length as a `u32`, then that many bytes of UTF-8;
//! - an *optional string* is a byte `0` (none), or a byte `1` and a string;
//! - an *event* is its fields in the order of WIT `types.event`: `timestamp`, `event-type`,
//!   `workflow-id` (optional), `actor.host-id`, `actor.user`, `payload`;
//! - *events* are one or more events back to back;
//! - a *receipt* is its `seq` as a `u64`, then its `hash` (optional);
//! - *receipts* are receipts back to back, one per event.
//!
//! The timestamp is the first field, so a host can pack an event before it knows the time and
//! write the time over a placeholder of the same length later ([`TIMESTAMP_AT`]).

use alloc::vec::Vec;

use crate::record::{Actor, Event, Payload};

/// Where an event's timestamp bytes start, from the start of the packed event (after the `u32`
/// length of the timestamp).
pub const TIMESTAMP_AT: usize = 4;

/// One event's fields, borrowed: what [`pack_event`] writes and [`Events`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `timestamp`.
    pub timestamp: &'a str,
    /// `event-type`.
    pub event_type: &'a str,
    /// `workflow-id`.
    pub workflow_id: Option<&'a str>,
    /// `actor.host-id`.
    pub host_id: &'a str,
    /// `actor.user`.
    pub user: &'a str,
    /// `payload`: the text of one JSON object.
    pub payload: &'a str,
}

impl<'a> Fields<'a> {
    /// The event these fields make, its payload as text (for [`crate::chain::seal`]).
    pub fn event(&self) -> Event<'a> {
        Event {
            timestamp: self.timestamp,
            event_type: self.event_type,
            workflow_id: self.workflow_id,
            actor: Actor {
                host_id: self.host_id,
                user: self.user,
            },
            payload: Payload::Text(self.payload),
        }
    }
}

/// Why packed bytes do not unpack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packed {what} at byte {at}: {problem}")]
pub struct PackedError {
    /// `events` or `receipts`.
    pub what: &'static str,
    /// Where the item that does not unpack starts.
    pub at: usize,
    /// What is wrong.
    pub problem: &'static str,
}

/// Appends `event` to `out`, packed; `false` (and `out` as it was) when a string is longer than
/// a `u32` length can say.
pub fn pack_event(out: &mut Vec<u8>, event: &Fields<'_>) -> bool {
    pack_event_with(out, event, |out| {
        out.extend_from_slice(event.payload.as_bytes())
    })
}

/// [`pack_event`], the payload being what `payload` appends to the `Vec` it is given (it must
/// append UTF-8), not `event.payload`: for a host that encodes payloads straight into the
/// packed bytes.
pub fn pack_event_with(
    out: &mut Vec<u8>,
    event: &Fields<'_>,
    payload: impl FnOnce(&mut Vec<u8>),
) -> bool {
    let start = out.len();
    let fits = [
        Some(event.timestamp),
        Some(event.event_type),
        event.workflow_id,
        Some(event.host_id),
        Some(event.user),
    ]
    .into_iter()
    .flatten()
    .all(|s| u32::try_from(s.len()).is_ok());
    if fits {
        string(out, event.timestamp);
        string(out, event.event_type);
        optional(out, event.workflow_id);
        string(out, event.host_id);
        string(out, event.user);
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        payload(out);
        if let Ok(len) = u32::try_from(out.len() - len_at - 4) {
            out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            return true;
        }
    }
    out.truncate(start);
    false
}

/// Appends one receipt to `out`, packed.
pub fn pack_receipt(out: &mut Vec<u8>, seq: u64, hash: Option<&str>) {
    out.extend_from_slice(&seq.to_le_bytes());
    optional(out, hash);
}

/// [`pack_receipt`] with the hash as a `telemachy-json` record spells it (64 lowercase hex
/// digits), written straight from `hash`, with no string built.
pub fn pack_receipt_hash(out: &mut Vec<u8>, seq: u64, hash: Option<&crate::Hash>) {
    out.extend_from_slice(&seq.to_le_bytes());
    match hash {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            out.extend_from_slice(&64u32.to_le_bytes());
            h.write_hex(out);
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn optional(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            string(out, s);
        }
    }
}

/// Reads packed items off the front of a byte slice.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    what: &'static str,
    /// Where the item being read starts, for errors.
    item: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, problem: &'static str) -> PackedError {
        PackedError {
            what: self.what,
            at: self.item,
            problem,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PackedError> {
        let bytes = self
            .b
            .get(self.at..self.at.saturating_add(n))
            .ok_or_else(|| self.fail("cut short"))?;
        self.at += n;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<&'a str, PackedError> {
        let len = self.take(4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let bytes = self.take(len)?;
        if is_ascii(bytes) {
            // SAFETY: ASCII is UTF-8.
            return Ok(unsafe { core::str::from_utf8_unchecked(bytes) });
        }
        core::str::from_utf8(bytes).map_err(|_| self.fail("a string is not UTF-8"))
    }

    fn optional(&mut self) -> Result<Option<&'a str>, PackedError> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err(self.fail("an optional string's first byte is neither 0 nor 1")),
        }
    }
}

/// Whether every byte of `b` is ASCII, sixteen bytes at a time with wasm's 128-bit SIMD
/// (where the build enables it: the sinks chainsink builds), then as [`is_ascii_swar`]. Checked
/// in wasm by the host's test `the_default_sink_refuses_packed_strings_that_are_not_utf8`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn is_ascii(b: &[u8]) -> bool {
    use core::arch::wasm32::*;
    let mut blocks = b.chunks_exact(16);
    let mut any = u8x16_splat(0);
    for c in &mut blocks {
        // SAFETY: `c` is 16 readable bytes, and a wasm load may be unaligned.
        let v = unsafe { v128_load(c.as_ptr().cast::<v128>()) };
        any = v128_or(any, v);
    }
    // The high bit of each byte, gathered: none set means ASCII.
    i8x16_bitmask(any) == 0 && is_ascii_swar(blocks.remainder())
}

/// [`is_ascii_swar`], where there is no wasm SIMD.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn is_ascii(b: &[u8]) -> bool {
    is_ascii_swar(b)
}

/// Whether every byte of `b` is ASCII, eight bytes at a time: most packed strings are, and in
/// wasm this is several times cheaper than `core::str::from_utf8` (whose words are four bytes
/// there): that check was a tenth of the default sink's own time (issue 15).
fn is_ascii_swar(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let high = (&mut words).fold(0, |acc, w| {
        acc | u64::from_le_bytes(w.try_into().unwrap_or_default())
    });
    let rest = words.remainder().iter().fold(0, |acc, &c| acc | c);
    (high & HIGH) == 0 && rest < 0x80
}

/// The events packed in a byte slice, in order ([`unpack_events`]).
pub struct Events<'a>(Reader<'a>);

impl<'a> Iterator for Events<'a> {
    type Item = Result<Fields<'a>, PackedError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = &mut self.0;
        if r.at >= r.b.len() {
            return None;
        }
        r.item = r.at;
        let fields = (|| {
            Ok(Fields {
                timestamp: r.string()?,
                event_type: r.string()?,
                workflow_id: r.optional()?,
                host_id: r.string()?,
                user: r.string()?,
                payload: r.string()?,
            })
        })();
        if fields.is_err() {
            // One bad event spoils the rest: stop there.
            r.at = r.b.len();
        }
        Some(fields)
    }
}

/// The events packed in `b` (none when `b` is empty), each borrowed from `b`.
pub fn unpack_events(b: &[u8]) -> Events<'_> {
    Events(Reader {
        b,
        at: 0,
        what: "events",
        item: 0,
    })
}

/// The receipts packed in `b`, as `(seq, hash)` borrowed from `b`, or why they do not unpack.
pub fn unpack_receipts(b: &[u8]) -> Result<Vec<(u64, Option<&str>)>, PackedError> {
    let mut r = Reader {
        b,
        at: 0,
        what: "receipts",
        item: 0,
    };
    let mut out = Vec::new();
    while r.at < b.len() {
        r.item = r.at;
        let seq = r.take(8)?;
        let seq = u64::from_le_bytes(seq.try_into().unwrap_or_default());
        out.push((seq, r.optional()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn fields(i: usize) -> Fields<'static> {
        let payloads = [r#"{"a": 1}"#, "{}", r#"{"é": "\u00e9"}"#];
        Fields {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: ["task.completed", "", "x"][i % 3],
            workflow_id: [Some("wf-1"), None, Some("")][i % 3],
            host_id: "host",
            user: ["ana", "", "ü"][i % 3],
            payload: payloads[i % 3],
        }
    }

    #[test]
    fn events_unpack_as_they_were_packed() {
        assert_eq!(unpack_events(&[]).count(), 0);
        let mut b = Vec::new();
        let mut starts = Vec::new();
        for i in 0..7 {
            starts.push(b.len());
            assert!(pack_event(&mut b, &fields(i)));
        }
        let back: Vec<Fields<'_>> = unpack_events(&b).map(Result::unwrap).collect();
        assert_eq!(back, (0..7).map(fields).collect::<Vec<_>>());
        // The timestamp sits at TIMESTAMP_AT from each event's start, and any run of whole
        // events is packed events too.
        for &s in &starts {
            assert_eq!(
                &b[s + TIMESTAMP_AT..s + TIMESTAMP_AT + 32],
                fields(0).timestamp.as_bytes()
            );
        }
        let middle: Vec<_> = unpack_events(&b[starts[2]..starts[5]])
            .map(Result::unwrap)
            .collect();
        assert_eq!(middle, (2..5).map(fields).collect::<Vec<_>>());
        assert_eq!(fields(2).event().payload, Payload::Text(fields(2).payload));
        // A payload written in place packs as one copied.
        let mut with = Vec::new();
        let head = Fields {
            payload: "ignored",
            ..fields(0)
        };
        assert!(pack_event_with(&mut with, &head, |out| {
            out.extend_from_slice(fields(0).payload.as_bytes())
        }));
        assert_eq!(with, b[..starts[1]]);
    }

    #[test]
    fn the_ascii_shortcut_is_exact() {
        // Every length around a word, a non-ASCII byte at every place.
        for len in 0..20 {
            let mut b = vec![b'a'; len];
            assert!(is_ascii(&b));
            for at in 0..len {
                for v in [0x7f, 0x80, 0xc3, 0xff] {
                    b[at] = v;
                    assert_eq!(is_ascii(&b), v < 0x80, "{len} {at} {v:#x}");
                    b[at] = b'a';
                }
            }
        }
        // Non-ASCII UTF-8 still unpacks, through the full check.
        let mut b = Vec::new();
        assert!(pack_event(&mut b, &fields(2)));
        assert_eq!(unpack_events(&b).next(), Some(Ok(fields(2))));
    }

    #[test]
    fn receipts_unpack_as_they_were_packed() {
        let hash = "ab".repeat(32);
        let mut b = Vec::new();
        pack_receipt(&mut b, 1, Some(&hash));
        pack_receipt(&mut b, u64::MAX, None);
        pack_receipt(&mut b, 3, Some(""));
        assert_eq!(
            unpack_receipts(&b).unwrap(),
            vec![(1, Some(hash.as_str())), (u64::MAX, None), (3, Some(""))]
        );
        assert_eq!(unpack_receipts(&[]).unwrap(), vec![]);
        // Straight from a hash, as from its hex.
        let h = crate::Hash::of(b"x");
        for hash in [Some(h), None] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            pack_receipt_hash(&mut a, 7, hash.as_ref());
            pack_receipt(&mut b, 7, hash.map(|h| h.to_hex()).as_deref());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn bytes_that_do_not_unpack_are_refused_with_where() {
        let mut good = Vec::new();
        pack_event(&mut good, &fields(0));
        let one = good.len();
        pack_event(&mut good, &fields(0));
        // Every cut of the second event: the first unpacks, the second is cut short.
        for cut in one + 1..good.len() {
            let got: Vec<_> = unpack_events(&good[..cut]).collect();
            assert_eq!(got.len(), 2, "{cut}");
            assert_eq!(got[0], Ok(fields(0)));
            let e = got[1].clone().unwrap_err();
            assert_eq!((e.at, e.problem), (one, "cut short"), "{cut}");
            assert!(
                e.to_string()
                    .starts_with(&format!("packed events at byte {one}: "))
            );
        }
        // A bad optional byte, and bytes that are not UTF-8.
        let mut bad = good.clone();
        let ws = one + 4 + 32 + 4 + fields(0).event_type.len();
        assert_eq!(bad[ws], 1);
        bad[ws] = 2;
        let e = unpack_events(&bad).nth(1).unwrap().unwrap_err();
        assert_eq!(e.at, one);
        assert!(e.problem.contains("neither 0 nor 1"), "{e}");
        let mut bad = good.clone();
        bad[one + 4] = 0xff;
        let e = unpack_events(&bad).nth(1).unwrap().unwrap_err();
        assert_eq!((e.at, e.problem), (one, "a string is not UTF-8"));
        // A length that runs past the end, even one near u32::MAX.
        let mut bad = good[..one].to_vec();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = unpack_events(&bad).nth(1).unwrap().unwrap_err();
        assert_eq!(e.problem, "cut short");
        // Nothing after the first bad event.
        let mut bad = good.clone();
        bad[4] = 0xff;
        assert_eq!(unpack_events(&bad).count(), 1);

        let mut r = Vec::new();
        pack_receipt(&mut r, 1, Some("h"));
        let first = r.len();
        pack_receipt(&mut r, 2, Some("h"));
        for cut in first + 1..r.len() {
            let e = unpack_receipts(&r[..cut]).unwrap_err();
            assert_eq!((e.what, e.at, e.problem), ("receipts", first, "cut short"));
        }
        let mut bad = r.clone();
        bad[8] = 7;
        assert!(
            unpack_receipts(&bad)
                .unwrap_err()
                .problem
                .contains("neither")
        );
    }
}
