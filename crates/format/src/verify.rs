//! Verification: one line at a time ([`check_line`]), then the links between lines
//! ([`ChainVerifier`]).
//!
//! [`Mode::Fast`] checks a line in one pass over its bytes: JSON syntax with canonical spacing and
//! escapes, ASCII only, the top-level fields, and `hash` against SHA-256 of the line with the
//! bytes `"hash": "<64 hex>", ` removed. Anything unexpected sends the line down the full path,
//! which parses, re-encodes and names the precise reason. [`Mode::Strict`] always takes the full
//! path, so it also proves the line is byte-for-byte canonical (key order, number forms) — which
//! Fast does not check beyond spacing and escapes.
//!
//! Lines written by the Python reference sink have no `seq` and are accepted. Unknown extra
//! top-level fields are accepted (they are covered by the hash).

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};
use sha2::Digest;

use crate::Hash;
use crate::json::{self, JsonError};

/// How thoroughly [`check_line`] checks a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One pass over the bytes (falls back to the full path on any failure, to name the reason).
    #[default]
    Fast,
    /// Full parse and re-encode: the line must be canonical byte for byte, then the hash must match.
    Strict,
}

/// What a valid line says about the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineInfo {
    /// The record's `hash` (`None` when the chain is off).
    pub hash: Option<Hash>,
    /// The record's `prev_hash` (`None` when the chain is off).
    pub prev_hash: Option<Hash>,
    /// The record's `seq` (`None` in records written by the Python reference sink).
    pub seq: Option<u64>,
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not JSON (or holds something the log never stores, e.g. NaN).
    #[error("not a valid JSON record: {0}")]
    BadJson(JsonError),
    /// The line is JSON but not an object.
    #[error("record is {found}, not a JSON object; every line must be one object")]
    NotAnObject {
        /// What was found: "an array", "a string", ...
        found: &'static str,
    },
    /// A required top-level field is absent.
    #[error(
        "record has no `{0}` field; every record needs actor, event_type, payload, timestamp \
         and workflow_id, and chained records need both hash and prev_hash"
    )]
    MissingField(&'static str),
    /// A top-level field has the wrong type or form.
    #[error("field `{field}` {reason}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong, e.g. "must be a string".
        reason: &'static str,
    },
    /// The content is intact (or there is no hash) but the bytes are not the canonical encoding.
    #[error(
        "line is not in canonical form at byte {offset}: found {found:?} where canonical JSON \
         has {expected:?}; the line was reformatted or written by a non-canonical encoder"
    )]
    NotCanonical {
        /// Byte offset of the first difference.
        offset: usize,
        /// A few bytes of the line from there.
        found: String,
        /// The same span of the canonical encoding.
        expected: String,
    },
    /// The stored hash does not match the record's content.
    #[error(
        "hash mismatch: the record says {stored} but its content hashes to {computed}; \
         the record was changed after it was written"
    )]
    HashMismatch {
        /// The `hash` field of the line.
        stored: Hash,
        /// SHA-256 of `canon(record without "hash")`.
        computed: Hash,
    },
}

/// Checks one line (its bytes WITHOUT the trailing `\n`) and returns what it says about the chain.
///
/// See the [module docs](self) for what each [`Mode`] checks. A line Fast rejects goes through
/// the Strict path, so both modes report the same error for it.
pub fn check_line(line: &[u8], mode: Mode) -> Result<LineInfo, LineError> {
    if mode == Mode::Fast
        && let Some(info) = fast(line)
    {
        return Ok(info);
    }
    full(line)
}

// ---------------------------------------------------------------------------------------------
// Full path

/// Parse, check fields, hash `canon(record without "hash")`, compare with the line.
fn full(line: &[u8]) -> Result<LineInfo, LineError> {
    let m = match json::parse_bytes(line).map_err(LineError::BadJson)? {
        Value::Object(m) => m,
        other => {
            return Err(LineError::NotAnObject {
                found: json::kind(&other),
            });
        }
    };
    let info = fields(&m)?;
    let mut canon = Vec::with_capacity(line.len());
    json::write_object_except(&mut canon, &m, Some("hash")).map_err(LineError::BadJson)?;
    if let Some(stored) = info.hash {
        let computed = Hash::of(&canon);
        if computed != stored {
            return Err(LineError::HashMismatch { stored, computed });
        }
        canon.clear();
        json::write_object(&mut canon, &m).map_err(LineError::BadJson)?;
    }
    if canon != line {
        let offset = canon
            .iter()
            .zip(line)
            .position(|(a, b)| a != b)
            .unwrap_or(canon.len().min(line.len()));
        let around = |b: &[u8]| {
            let end = b.len().min(offset + 24);
            String::from_utf8_lossy(&b[offset.min(end)..end]).into_owned()
        };
        return Err(LineError::NotCanonical {
            offset,
            found: around(line),
            expected: around(&canon),
        });
    }
    Ok(info)
}

/// Checks the top-level fields of a parsed record.
fn fields(m: &Map<String, Value>) -> Result<LineInfo, LineError> {
    let get = |k: &'static str| m.get(k).ok_or(LineError::MissingField(k));
    let bad = |field, reason| Err(LineError::BadField { field, reason });
    if !get("actor")?.is_object() {
        return bad(
            "actor",
            "must be an object {\"host_id\": ..., \"user\": ...}",
        );
    }
    if !get("event_type")?.is_string() {
        return bad("event_type", "must be a string");
    }
    if !get("payload")?.is_object() {
        return bad("payload", "must be an object");
    }
    if !get("timestamp")?.is_string() {
        return bad("timestamp", "must be a string");
    }
    if !matches!(get("workflow_id")?, Value::String(_) | Value::Null) {
        return bad("workflow_id", "must be a string or null");
    }
    let hash_field = |k: &'static str| match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => match Hash::from_hex(s.as_bytes()) {
            Some(h) => Ok(Some(h)),
            None => Err(LineError::BadField {
                field: k,
                reason: "must be 64 lowercase hex digits",
            }),
        },
        Some(_) => Err(LineError::BadField {
            field: k,
            reason: "must be a string of 64 lowercase hex digits",
        }),
    };
    let hash = hash_field("hash")?;
    let prev_hash = hash_field("prev_hash")?;
    match (hash, prev_hash) {
        (Some(_), None) => return Err(LineError::MissingField("prev_hash")),
        (None, Some(_)) => return Err(LineError::MissingField("hash")),
        _ => {}
    }
    const SEQ: &str = "must be an integer from 1 to 18446744073709551615";
    let seq = match m.get("seq") {
        None => None,
        Some(Value::Number(n)) => match parse_seq(n.as_str().as_bytes()) {
            Some(s) => Some(s),
            None => return bad("seq", SEQ),
        },
        Some(_) => return bad("seq", SEQ),
    };
    Ok(LineInfo {
        hash,
        prev_hash,
        seq,
    })
}

/// Parses a `seq` value: plain decimal digits, 1..=u64::MAX.
fn parse_seq(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    (n >= 1).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// Fast path: a single pass that accepts only canonically spaced, ASCII, well-formed JSON.

/// Nesting serde_json accepts below the top-level object (127 levels in all).
const FAST_MEMBER_DEPTH: usize = json::MAX_DEPTH - 1;

/// High bit of each byte set (SWAR helpers below work on eight bytes in a `u64`).
const HIGH: u64 = 0x8080_8080_8080_8080;
/// 0x01 in each byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit `k` set when byte `k` of `c` cannot appear unescaped in a canonical string: `"`, `\\`, a
/// control byte (< 0x20), DEL (0x7f) or a non-ASCII byte (>= 0x80). Exact for every byte.
#[cfg(target_arch = "x86_64")]
#[inline]
fn special_mask(c: &[u8; 64]) -> u64 {
    use core::arch::x86_64::*;
    let mut m = 0u64;
    for (q, chunk) in c.chunks_exact(16).enumerate() {
        let lo = i64::from_le_bytes(chunk[..8].try_into().unwrap_or_default());
        let hi = i64::from_le_bytes(chunk[8..].try_into().unwrap_or_default());
        // SAFETY: SSE2 is part of the x86_64 baseline; these intrinsics only compute on values.
        let bits = unsafe {
            let v = _mm_set_epi64x(hi, lo);
            // Signed: bytes >= 0x80 are negative, so this catches them along with controls.
            let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            let s = _mm_or_si128(_mm_or_si128(low, quote), _mm_or_si128(bslash, del));
            _mm_movemask_epi8(s)
        };
        m |= u64::from(bits as u16) << (16 * q);
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn special_mask(c: &[u8; 64]) -> u64 {
    special_mask_swar(c)
}

/// [`special_mask`] eight bytes at a time in plain integer arithmetic (any target).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn special_mask_swar(c: &[u8; 64]) -> u64 {
    /// High bit set exactly in the bytes of `t` that are zero, for `t` with no high bits set.
    #[inline]
    fn zero7(t: u64) -> u64 {
        !(t + 0x7f * ONES) & HIGH
    }
    let mut m = 0u64;
    for (k, chunk) in c.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let low7 = w & !HIGH;
        // No carries cross bytes: every byte of `low7` is < 0x80.
        let flags = (w & HIGH)
            | (!(low7 + 0x60 * ONES) & HIGH) // < 0x20
            | zero7(low7 ^ (ONES * u64::from(b'"')))
            | zero7(low7 ^ (ONES * u64::from(b'\\')))
            | zero7(low7 ^ (ONES * 0x7f));
        // Gather the eight high bits into the low byte (byte k -> bit k).
        let bits = ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        m |= bits << (8 * k);
    }
    m
}

/// Parses a `"<64 lowercase hex>"` hash body (without quotes) like [`Hash::from_hex`], branch-free.
#[inline]
fn hex64(s: &[u8; 64]) -> Option<Hash> {
    /// Value of each lowercase hex digit; 0x10 flags anything else.
    const VAL: [u8; 256] = {
        let mut t = [0x10u8; 256];
        let mut c = 0;
        while c < 10 {
            t[b'0' as usize + c] = c as u8;
            c += 1;
        }
        let mut c = 0;
        while c < 6 {
            t[b'a' as usize + c] = 10 + c as u8;
            c += 1;
        }
        t
    };
    let mut h = [0u8; 32];
    let mut bad = 0u8;
    for (out, pair) in h.iter_mut().zip(s.chunks_exact(2)) {
        let (a, b) = (VAL[usize::from(pair[0])], VAL[usize::from(pair[1])]);
        bad |= a | b;
        *out = (a << 4) | (b & 0x0f);
    }
    (bad & 0x10 == 0).then_some(Hash(h))
}

/// Bytes per SHA-256 block.
const BLOCK: usize = 64;

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Start of the 64-byte window `mask` describes (`usize::MAX`: none yet).
    mask_at: usize,
    /// [`special_mask`] of the window at `mask_at` (bytes past the end count as special).
    mask: u64,
    /// SHA-256 of the line without the hash member, fed as the scan moves on so the hashing
    /// overlaps with the scanning (`None` until the hash member is found).
    sha: Option<sha2::Sha256>,
    /// Next byte of the line to feed to `sha`.
    fed: usize,
    /// Bytes in `sha`'s partial block (0 once aligned).
    pending: usize,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            i: 0,
            mask_at: usize::MAX,
            mask: 0,
            sha: None,
            fed: 0,
            pending: 0,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..)?.starts_with(s) {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    /// Position of the first special byte (see [`special_mask`]) at or after `i`; `b.len()` or
    /// more when there is none.
    #[inline]
    fn next_special(&mut self, mut i: usize) -> usize {
        loop {
            let at = i & !63;
            if at != self.mask_at {
                self.load_mask(at);
            }
            let m = self.mask >> (i & 63);
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
            i = at + 64;
        }
    }

    #[inline(never)]
    fn load_mask(&mut self, at: usize) {
        self.mask_at = at;
        self.mask = match self.b.get(at..at + 64) {
            Some(c) => special_mask(c.try_into().unwrap_or(&[0; 64])),
            None => {
                // The tail: pad with NUL, which is special, so scans stop at the end.
                let mut c = [0u8; 64];
                let tail = self.b.get(at..).unwrap_or_default();
                c[..tail.len()].copy_from_slice(tail);
                special_mask(&c)
            }
        };
    }

    /// Starts hashing: the line up to `start`, then everything from `resume` on.
    fn start_hash(&mut self, start: usize, resume: usize) {
        let mut d = sha2::Sha256::new();
        d.update(&self.b[..start]);
        self.sha = Some(d);
        self.fed = resume;
        self.pending = start % BLOCK;
    }

    /// Feeds the hash one block if the scan has passed one: a block at a time keeps the hashing
    /// (a long chain of dependent instructions) just behind the scan, so the CPU runs the two side
    /// by side.
    #[inline]
    fn pump(&mut self) {
        if self.sha.is_some() && self.i - self.fed + self.pending >= BLOCK {
            self.pump_block();
        }
    }

    fn pump_block(&mut self) {
        let n = BLOCK - self.pending;
        if let Some(d) = &mut self.sha {
            d.update(&self.b[self.fed..self.fed + n]);
        }
        self.fed += n;
        self.pending = 0;
    }

    /// Any value; `depth` = containers still allowed.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(drop),
            b't' => self.eat(b"true"),
            b'f' => self.eat(b"false"),
            b'n' => self.eat(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            self.string()?;
            self.eat(b": ")?;
            self.value(depth)?;
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => self.eat(b", ")?,
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => self.eat(b", ")?,
                _ => return None,
            }
        }
    }

    /// A string in canonical form (ASCII, canonical escapes), starting at its `"`. Returns
    /// whether it holds an escape.
    #[inline]
    fn string(&mut self) -> Option<bool> {
        let mut i = self.i + 1;
        let mut escaped = false;
        loop {
            i = self.next_special(i);
            match *self.b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    self.pump();
                    return Some(escaped);
                }
                b'\\' => {
                    self.i = i;
                    self.escape()?;
                    i = self.i;
                    escaped = true;
                }
                _ => return None, // control char, DEL or non-ASCII byte
            }
        }
    }

    /// One escape as Python writes it, starting at its `\`.
    fn escape(&mut self) -> Option<()> {
        match *self.b.get(self.i + 1)? {
            b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => {
                self.i += 2;
                Some(())
            }
            b'u' => {
                let v = self.hex4(self.i + 2)?;
                self.i += 6;
                match v {
                    // Short escapes exist for these.
                    0x08 | 0x09 | 0x0a | 0x0c | 0x0d => None,
                    0x00..=0x1f | 0x7f => Some(()),
                    // Printable ASCII is written literally.
                    0x20..=0x7e => None,
                    0xd800..=0xdbff => {
                        if self.b.get(self.i..self.i + 2)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(self.i + 2)?;
                        self.i += 6;
                        (0xdc00..=0xdfff).contains(&lo).then_some(())
                    }
                    0xdc00..=0xdfff => None,
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    /// Four lowercase hex digits at `at`.
    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for &c in self.b.get(at..at + 4)? {
            v = (v << 4) | u32::from(crate::hex_val(c)?);
        }
        Some(v)
    }

    /// A number as Python writes it: `-?(0|[1-9]\d*)(\.\d+)?(e[+-]\d\d+)?`, not `-0`.
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let digits = |s: &mut Self| {
            let d = s.i;
            while s.peek().is_some_and(|c| c.is_ascii_digit()) {
                s.i += 1;
            }
            s.i - d
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        let mut int = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
            int = false;
        }
        if self.peek() == Some(b'e') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'+' | b'-')) {
                return None;
            }
            self.i += 1;
            if digits(self) < 2 {
                return None;
            }
            int = false;
        }
        if int && &self.b[start..self.i] == b"-0" {
            return None;
        }
        Some(())
    }

    /// A `"<64 lowercase hex>"` value.
    #[inline]
    fn hash_value(&mut self) -> Option<Hash> {
        let v: &[u8; 66] = self.b.get(self.i..self.i + 66)?.try_into().ok()?;
        if v[0] != b'"' || v[65] != b'"' {
            return None;
        }
        let h = hex64(v[1..65].try_into().ok()?)?;
        self.i += 66;
        Some(h)
    }
}

/// The fast path; `None` means "take the full path".
fn fast(line: &[u8]) -> Option<LineInfo> {
    let mut s = Scanner::new(line);
    s.eat(b"{")?;
    let mut prev_key: Option<&[u8]> = None;
    // Bits: actor, event_type, payload, timestamp, workflow_id.
    let mut seen = 0u8;
    let mut hash = None;
    let mut prev_hash = None;
    let mut seq = None;
    loop {
        let key_start = s.i;
        if s.peek()? != b'"' {
            return None;
        }
        let escaped = s.string()?;
        let key = &line[key_start + 1..s.i - 1];
        // Escaped keys do not compare by code point as bytes: leave them to the full path.
        // Strictly ascending keys also rule out duplicates.
        if escaped || prev_key.is_some_and(|p| p >= key) {
            return None;
        }
        prev_key = Some(key);
        s.eat(b": ")?;
        let first = s.peek()?;
        match key {
            b"actor" if first == b'{' => seen |= 1,
            b"event_type" if first == b'"' => seen |= 2,
            b"payload" if first == b'{' => seen |= 4,
            b"timestamp" if first == b'"' => seen |= 8,
            b"workflow_id" if first == b'"' || first == b'n' => seen |= 16,
            b"actor" | b"event_type" | b"payload" | b"timestamp" | b"workflow_id" => return None,
            b"hash" => {
                hash = Some(s.hash_value()?);
                // Keys sort, so "hash" is never last: it is followed by `, ` and that goes too.
                if line.get(s.i..s.i + 2)? != b", " {
                    return None;
                }
                // Hash from here on, while scanning the rest.
                s.start_hash(key_start, s.i + 2);
            }
            b"prev_hash" => prev_hash = Some(s.hash_value()?),
            b"seq" => {
                let d = s.i;
                while s.peek().is_some_and(|c| c.is_ascii_digit()) {
                    s.i += 1;
                }
                seq = Some(parse_seq(&line[d..s.i])?);
                // A leading zero, fraction or exponent is not a canonical seq.
                if line[d] == b'0' || matches!(s.peek(), Some(b'.' | b'e' | b'E')) {
                    return None;
                }
            }
            _ => {}
        }
        if !matches!(key, b"hash" | b"prev_hash" | b"seq") {
            s.value(FAST_MEMBER_DEPTH)?;
        }
        match s.peek()? {
            b'}' => break,
            b',' => s.eat(b", ")?,
            _ => return None,
        }
    }
    if s.i + 1 != line.len() || seen != 31 {
        return None;
    }
    match (hash, prev_hash, s.sha) {
        (None, None, _) => Some(LineInfo {
            hash: None,
            prev_hash: None,
            seq,
        }),
        (Some(stored), Some(prev), Some(mut d)) => {
            d.update(&line[s.fed..]);
            (Hash(d.finalize().into()) == stored).then_some(LineInfo {
                hash: Some(stored),
                prev_hash: Some(prev),
                seq,
            })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Links

/// Why a record does not link to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// `prev_hash` is not the previous record's hash (or the genesis / resume hash).
    #[error(
        "broken chain: prev_hash is {found} but the previous record's hash is {expected} \
         (64 zeros before the first record); records were removed, inserted, reordered or \
         edited before this one"
    )]
    BrokenLink {
        /// What `prev_hash` should be.
        expected: Hash,
        /// What it is.
        found: Hash,
    },
    /// `seq` is not the record's position in the log.
    #[error(
        "seq is {found} but this is record {expected} of the log; records were removed, \
         inserted or reordered, or a sink restarted without resuming"
    )]
    SeqMismatch {
        /// The position expected.
        expected: u64,
        /// The `seq` in the record.
        found: u64,
    },
    /// A chained record after unchained ones, or the other way round.
    #[error(
        "{}; a log is either chained throughout or not at all: start a new log when \
         turning the chain on or off",
        if *.record_chained { "record has hash and prev_hash but earlier records do not" }
        else { "record has no hash but earlier records are chained" }
    )]
    MixedChain {
        /// Whether this record is chained.
        record_chained: bool,
    },
    /// A [`LineInfo`] with `hash` but no `prev_hash` ([`check_line`] never returns one).
    #[error("record has a hash but no prev_hash; check lines with check_line first")]
    MissingPrevHash,
}

/// Checks the links between records, in log order.
///
/// The first record's `prev_hash` must be [`Hash::GENESIS`] (or the hash given to
/// [`ChainVerifier::resume_from`]), each later one the previous record's `hash`; `seq`, where
/// present, must be the record's 1-based position; chained and unchained records must not mix.
///
/// [`push`](ChainVerifier::push) always takes the record in, even when it reports an error: the
/// record's hash becomes the head and its `seq` resets the expected numbering. So a caller can keep
/// going and each break (a cut, an insertion, a swap) is reported where it happens, not on every
/// line after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainVerifier {
    records: u64,
    next_seq: u64,
    head: Option<Hash>,
    chained: Option<bool>,
}

impl ChainVerifier {
    /// A verifier for a log from its first record.
    pub fn new() -> Self {
        ChainVerifier {
            records: 0,
            next_seq: 1,
            head: None,
            chained: None,
        }
    }

    /// A verifier that continues after `records` records whose last hash was `head`
    /// (`None` for a log with the chain off).
    pub fn resume_from(head: Option<Hash>, records: u64) -> Self {
        ChainVerifier {
            records,
            next_seq: records.saturating_add(1),
            head,
            chained: if head.is_some() {
                Some(true)
            } else if records > 0 {
                Some(false)
            } else {
                None
            },
        }
    }

    /// Takes the next record in; errors say how it fails to follow the previous one.
    pub fn push(&mut self, info: &LineInfo) -> Result<(), LinkError> {
        self.records += 1;
        let expected_seq = self.next_seq;
        self.next_seq = info.seq.unwrap_or(expected_seq).saturating_add(1);
        let chained = info.hash.is_some();
        let was_chained = *self.chained.get_or_insert(chained);
        let expected_prev = self.head.unwrap_or(Hash::GENESIS);
        if chained {
            self.head = info.hash;
        }
        if chained != was_chained {
            return Err(LinkError::MixedChain {
                record_chained: chained,
            });
        }
        if chained {
            let found = info.prev_hash.ok_or(LinkError::MissingPrevHash)?;
            if found != expected_prev {
                return Err(LinkError::BrokenLink {
                    expected: expected_prev,
                    found,
                });
            }
        }
        match info.seq {
            Some(found) if found != expected_seq => Err(LinkError::SeqMismatch {
                expected: expected_seq,
                found,
            }),
            _ => Ok(()),
        }
    }

    /// Records taken in so far (including those given to [`resume_from`](Self::resume_from)).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The last record's hash: what the next `prev_hash` must be (`None` with the chain off or
    /// before the first record).
    pub fn head(&self) -> Option<Hash> {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_parsing() {
        assert_eq!(parse_seq(b"1"), Some(1));
        assert_eq!(parse_seq(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_seq(b"18446744073709551616"), None);
        assert_eq!(parse_seq(b"0"), None);
        assert_eq!(parse_seq(b""), None);
        assert_eq!(parse_seq(b"-1"), None);
    }

    fn scan(s: &str) -> Option<()> {
        let mut sc = Scanner::new(s.as_bytes());
        sc.value(FAST_MEMBER_DEPTH)?;
        (sc.i == s.len()).then_some(())
    }

    #[test]
    fn scanner_accepts_canonical_forms_only() {
        for ok in [
            r#"{"a": [1, -2, 0.5, -0.0, 1e-05, 1.5e+300, true, false, null], "b": {}}"#,
            r#""\" \\ \n \r \t \b \f \u0000 \u001f \u00e9 \ud83d\ude00 \u2028""#,
            r#""\u007f""#,
            "[]",
        ] {
            assert_eq!(scan(ok), Some(()), "{ok}");
        }
        for bad in [
            r#"{"a":1}"#,
            r#"{"a" : 1}"#,
            r#"[1 ,2]"#,
            r#"[1,2]"#,
            r#"[ 1]"#,
            r#""\/""#,
            r#""\u0041""#,
            "\"\x7f\"",
            r#""\u000a""#,
            r#""\u00E9""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            "\"é\"",
            "\"\t\"",
            "-0",
            "1E+05",
            "1e5",
            "1e+5",
            "01",
            "1.",
            "NaN",
            "[1, ]",
            "{\"a\": }",
            "\"abc",
        ] {
            assert_eq!(scan(bad), None, "{bad}");
        }
    }

    /// Seals a record whose payload and actor imitate the top-level chain fields.
    fn tricky_line(chain: bool) -> (Vec<u8>, Option<Hash>, Hash) {
        let payload = json::parse_object(
            r#"{"hash": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000",
                "seq": 99, "z": {"hash": "x", ", \"prev_hash\": \"": 1}}"#,
        )
        .unwrap();
        let ev = crate::record::Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: "\"hash\": \"",
            workflow_id: None,
            actor: crate::record::Actor {
                host_id: "\"hash\": \"",
                user: ", \"seq\": 3",
            },
            payload: &payload,
        };
        let prev = Hash::of(b"p");
        let mut out = Vec::new();
        let h = crate::chain::seal(&ev, 42, chain.then_some(&prev), &mut out).unwrap();
        out.pop();
        (out, h, prev)
    }

    #[test]
    fn fast_path_reads_top_level_fields_only() {
        let (line, h, prev) = tricky_line(true);
        assert_eq!(
            fast(&line),
            Some(LineInfo {
                hash: h,
                prev_hash: Some(prev),
                seq: Some(42)
            })
        );
        let (line, _, _) = tricky_line(false);
        assert_eq!(
            fast(&line),
            Some(LineInfo {
                hash: None,
                prev_hash: None,
                seq: Some(42)
            })
        );
    }

    #[test]
    fn fast_path_declines_what_it_cannot_prove() {
        let (line, _, _) = tricky_line(true);
        let text = String::from_utf8(line).unwrap();
        for bad in [
            text.replacen("\"seq\": 42", "\"seq\": 43", 1),
            text.replacen(", \"seq\": 42", "", 1)
                .replacen("{", "{\"seq\": 42, ", 1),
            text.replacen("\"event_type\"", "\"event_typ\\u0065\"", 1),
            text.replacen("{\"actor\"", "{\"actor\": {}, \"actor\"", 1),
            text.clone() + " ",
        ] {
            assert_ne!(bad, text);
            assert_eq!(fast(bad.as_bytes()), None, "{bad}");
        }
    }

    /// Byte-at-a-time reference for [`special_mask`].
    fn special_ref(c: &[u8; 64]) -> u64 {
        c.iter().enumerate().fold(0, |m, (k, &b)| {
            let s = !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\';
            m | (u64::from(s) << k)
        })
    }

    #[test]
    fn special_mask_is_exact() {
        // Every byte value at every position, on plain and on busy backgrounds (busy ones catch
        // borrows or carries leaking between bytes).
        let backgrounds: [[u8; 64]; 4] = [
            [b'a'; 64],
            core::array::from_fn(|k| [b'"', 0x1f, 0x20, 0x7e, 0x7f, 0x80, b'\\', 0xff][k % 8]),
            core::array::from_fn(|k| (k as u8).wrapping_mul(37)),
            [0; 64],
        ];
        for bg in backgrounds {
            assert_eq!(special_mask(&bg), special_ref(&bg));
            assert_eq!(special_mask_swar(&bg), special_ref(&bg));
            for pos in 0..64 {
                for v in 0..=255u8 {
                    let mut c = bg;
                    c[pos] = v;
                    let want = special_ref(&c);
                    assert_eq!(special_mask(&c), want, "{pos} {v:#x}");
                    assert_eq!(special_mask_swar(&c), want, "{pos} {v:#x}");
                }
            }
        }
    }

    #[test]
    fn hex64_matches_from_hex() {
        let good: Vec<u8> = b"0123456789abcdef".repeat(4);
        for pos in 0..64 {
            for v in 0..=255u8 {
                let mut c: [u8; 64] = good.clone().try_into().unwrap();
                c[pos] = v;
                assert_eq!(hex64(&c), Hash::from_hex(&c), "{pos} {v:#x}");
            }
        }
    }

    #[test]
    fn string_scan_at_every_position_and_length() {
        // Long strings crossing several 64-byte windows, at every offset from the line start, with
        // one special byte or escape at every position: the scan must agree with a plain check.
        for pad in 0..66 {
            for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 130, 200] {
                let body = "x".repeat(len);
                let base = format!("\"{body}\"");
                let lead = " ".repeat(pad);
                let check = |s: &str, want: bool| {
                    let text = format!("{lead}{s}");
                    let mut sc = Scanner::new(text.as_bytes());
                    sc.i = pad;
                    let got = sc.string().is_some() && sc.i == text.len();
                    assert_eq!(got, want, "{text:?}");
                };
                check(&base, true);
                for at in 0..len {
                    let with = |ins: &str| format!("\"{}{ins}{}\"", &body[..at], &body[at + 1..]);
                    for ok in [
                        "\\n",
                        "\\\\",
                        "\\\"",
                        "\\u0000",
                        "\\u00e9",
                        "\\ud83d\\ude00",
                        "~",
                    ] {
                        check(&with(ok), true);
                    }
                    for bad in [
                        "\"", "\\", "\u{7f}", "\u{1f}", "\t", "\u{e9}", "\\u0041", "\\/",
                    ] {
                        check(&with(bad), false);
                    }
                }
                // Unterminated, ending exactly at or around a window boundary.
                let open = format!("\"{body}");
                check(&open, false);
            }
        }
    }

    #[test]
    fn scanner_escapes_ends_up_at_the_next_byte() {
        // After an escape the scan resumes right behind it, even across window boundaries.
        for pad in 0..70 {
            let s = format!("\"{}\\\"{}\"", "a".repeat(pad), "b".repeat(70 - pad));
            let mut sc = Scanner::new(s.as_bytes());
            assert_eq!(sc.string(), Some(true), "{s}");
            assert_eq!(sc.i, s.len());
        }
    }

    #[test]
    fn fast_path_hashes_lines_of_every_length() {
        // The hash is fed block by block while scanning: check every alignment of the hash member
        // and every line length over a few blocks against the full path.
        for n in 0..200 {
            let payload = json::parse_object(&format!(
                r#"{{"a": "{}", "b": [1, 2.5, "{}"]}}"#,
                "p".repeat(n),
                "q".repeat(n % 70)
            ))
            .unwrap();
            let user = "u".repeat(n % 67);
            let ev = crate::record::Event {
                timestamp: "2026-06-04T15:30:45.123456+00:00",
                event_type: "e",
                workflow_id: Some("w"),
                actor: crate::record::Actor {
                    host_id: "h",
                    user: &user,
                },
                payload: &payload,
            };
            let prev = Hash::of(b"p");
            let mut out = Vec::new();
            let h = crate::chain::seal(&ev, 1 + n as u64, Some(&prev), &mut out).unwrap();
            out.pop();
            let want = Some(LineInfo {
                hash: h,
                prev_hash: Some(prev),
                seq: Some(1 + n as u64),
            });
            assert_eq!(fast(&out), want, "{n}");
            assert_eq!(full(&out).ok(), want, "{n}");
            // A flipped byte anywhere after the hash member breaks the hash.
            let at = out.len() - 3;
            out[at] ^= 1;
            assert_eq!(fast(&out), None, "{n}");
        }
    }

    #[test]
    fn scanner_depth_matches_serde() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        // Inside a record the top-level object is one level: 126 more are allowed.
        assert_eq!(scan(&nested(126)), Some(()));
        assert_eq!(scan(&nested(127)), None);
        let line = |n: usize| format!("{{\"a\": {}}}", nested(n));
        assert!(serde_json::from_str::<Value>(&line(126)).is_ok());
        assert!(serde_json::from_str::<Value>(&line(127)).is_err());
    }
}
