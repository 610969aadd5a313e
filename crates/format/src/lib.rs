//! The chainsink audit-log format: one implementation, shared by the wasm sink and the native verifier.
//!
//! A log is UTF-8 text, one record a line. Each line is `canon(record) + "\n"`, where `canon` is
//! Python's `json.dumps(x, sort_keys=True)` byte for byte (see [`json`]). With the chain on, a record
//! carries `prev_hash` (the previous record's `hash`, or [`Hash::GENESIS`] for the first) and `hash` =
//! lowercase hex SHA-256 of `canon(record without "hash")` (see [`chain`]). Our records also carry
//! `seq`, the 1-based position of the record in the log; records written by the Python reference sink
//! lack it and still verify (see [`verify`]).
//!
//! The crate does no I/O and is `no_std` + `alloc`, so it compiles for `wasm32-unknown-unknown`.
//! The `std` feature only forwards `std` to `serde_json` and `thiserror` for native callers.

#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod chain;
pub mod json;
pub mod packed;
pub mod record;
pub mod recovery;
pub mod rejection;
pub mod sha;
pub mod verify;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest record line, in bytes, without its `\n`: 1 MiB.
///
/// [`chain::seal`] refuses to write a longer record ([`record::RecordError::TooLarge`]) and
/// [`verify::check_line`] refuses a longer line ([`verify::LineError::TooLong`]) before reading
/// it. Why 1 MiB: an audit event is a few hundred bytes; 1 MiB leaves room for large payloads
/// while bounding what one line costs every reader (the guest sink reads the log's last records in
/// a window of at most 16 MiB to resume, the host verifier buffers a whole line, a wasm sink holds
/// one record in its linear memory). Python has no such limit: a longer line Python wrote is
/// refused by our verifier (a documented deviation; we never write one).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// A SHA-256 digest: a record's `hash` or `prev_hash`.
///
/// Written in the log as 64 lowercase hex digits; [`fmt::Display`] prints that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev_hash` of the first record of a log: 32 zero bytes, written as 64 × `"0"`.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        use sha2::Digest;
        Hash(sha2::Sha256::digest(data).into())
    }

    /// The 64 lowercase hex digits of this hash.
    pub fn to_hex(&self) -> String {
        // One copy of 64 ASCII bytes: building the string a char at a time cost a tenth of the
        // default sink's time in wasm (issue 15).
        // SAFETY: hex digits are ASCII, so UTF-8. (Unchecked: the check was most of this
        // function's time in wasm, where a sink runs it for every receipt.)
        unsafe { String::from_utf8_unchecked(self.hex_bytes().to_vec()) }
    }

    /// Parses exactly 64 lowercase hex digits (the only form the log uses); `None` otherwise.
    pub fn from_hex(s: &[u8]) -> Option<Hash> {
        if s.len() != 64 {
            return None;
        }
        let mut h = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            h[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Hash(h))
    }

    /// Appends the 64 lowercase hex digits of this hash to `out`.
    pub fn write_hex(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hex_bytes());
    }

    /// The 64 lowercase hex digits of this hash, as ASCII bytes.
    pub fn hex_bytes(&self) -> [u8; 64] {
        // Four bytes to eight digits at a time, in one word: a sink writes three of these a
        // record (its hash, the previous one, the receipt), and a table lookup per digit was
        // twice the instructions in wasm (issue 15).
        const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
        const ONES: u64 = 0x0101_0101_0101_0101;
        let mut buf = [0u8; 64];
        for (out, four) in buf.chunks_exact_mut(8).zip(self.0.chunks_exact(4)) {
            // Each byte into a 16-bit lane: [b0, 0, b1, 0, b2, 0, b3, 0] (little-endian).
            let mut w = u64::from(u32::from_le_bytes([four[0], four[1], four[2], four[3]]));
            w = (w | (w << 16)) & 0x0000_ffff_0000_ffff;
            w = (w | (w << 8)) & 0x00ff_00ff_00ff_00ff;
            // Each lane's high nibble in its first byte, its low nibble in its second.
            let n = ((w >> 4) | (w << 8)) & LOW_NIBBLES;
            // '0' + n, and 'a' - '0' - 10 more where n > 9 (n + 6 carries into bit 4).
            let letters = ((n + 6 * ONES) >> 4) & ONES;
            out.copy_from_slice(&(n + 0x30 * ONES + letters * 0x27).to_le_bytes());
        }
        buf
    }
}

/// Value of one lowercase hex digit.
#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_display() {
        let h = Hash::of(b"abc");
        let hex = h.to_hex();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{h}"), hex);
        assert_eq!(Hash::from_hex(hex.as_bytes()), Some(h));
        assert_eq!(Hash::GENESIS.to_hex(), "0".repeat(64));
        // Every byte value at every place, against a digit at a time.
        for place in 0..32 {
            for v in 0..=255u8 {
                let mut h = Hash([0x5a; 32]);
                h.0[place] = v;
                let want: String = h.0.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(h.hex_bytes(), want.as_bytes(), "{v:#x} at {place}");
            }
        }
    }

    #[test]
    fn from_hex_rejects_bad_input() {
        let good = "ab".repeat(32);
        assert!(Hash::from_hex(good.as_bytes()).is_some());
        assert!(Hash::from_hex(good.to_uppercase().as_bytes()).is_none());
        assert!(Hash::from_hex(&good.as_bytes()[..63]).is_none());
        assert!(Hash::from_hex(format!("{good}0").as_bytes()).is_none());
        assert!(Hash::from_hex("g".repeat(64).as_bytes()).is_none());
    }
}
