//! Verification: one line at a time ([`check_line`]), then the links between lines
//! ([`ChainVerifier`]).
//!
//! # What counts as a valid record
//!
//! A line (its bytes without the `\n`) is a valid record only if, with `obj = json.loads(line)`:
//! the line is EXACTLY `json.dumps(obj, sort_keys=True)` (Python's defaults: `", "` and `": "`,
//! `ensure_ascii`), and `obj["hash"]` (when present) is `sha256(json.dumps({k: v for k, v in
//! obj.items() if k != "hash"}, sort_keys=True))`. The reference verifier checks the second part
//! only; we add the first, so a line hashed over its own non-canonical bytes (duplicate keys,
//! unsorted keys, `1.50`, `\u00E9`, extra spaces) is refused. On top of that a record needs
//! `actor` (object), `event_type` (string), `payload` (object), `timestamp` (string),
//! `workflow_id` (string or null), `hash` and `prev_hash` together (64 lowercase hex) or neither,
//! and `seq`, when present, an integer from 1. Records written by the Python reference sink have no
//! `seq` and are accepted; unknown extra top-level fields are accepted (the hash covers them).
//!
//! Deviations from "whatever Python reads": lines longer than [`crate::MAX_RECORD_BYTES`]
//! ([`LineError::TooLong`]), bare `NaN` / `Infinity` / `-Infinity` (Python writes them; they are
//! not JSON), nesting deeper than [`json::MAX_READ_DEPTH`], integers of more than
//! [`json::MAX_INT_DIGITS`] digits (Python's own `json.loads` fails on those too). Lone surrogate
//! escapes (`"\ud800"`) are accepted, in keys and values, exactly as Python writes them; keys sort
//! by code point with a high+low surrogate escape pair read as one astral code point, as
//! `json.loads` reads it.
//!
//! # Modes
//!
//! Both modes give the same verdict and the same error for every line.
//!
//! [`Mode::Fast`] scans the raw bytes once, iteratively (an explicit stack, so deep nesting cannot
//! overflow the call stack), in time linear in the line's length. The scan PROVES canonical form:
//! canonical spacing, canonical escapes, ASCII only, keys strictly ascending by code point at every
//! depth (which also rules out duplicates), integers without `-0`, floats that re-encode to the
//! same bytes as Python's `repr`. The scan notes where the bytes `"hash": "<64 hex>", ` are; the
//! line without them is what the hash covers (for a canonical line those are exactly the hashed
//! bytes), hashed straight from the line's memory, without a copy. [`check_lines`] hashes two
//! lines at a time ([`crate::sha`]: with SHA-NI one SHA-256 stream leaves the CPU idle between
//! rounds, and a second stream fills the gaps). When the line is JSON but not canonical the scan
//! goes on to the end so it can say so precisely ([`LineError::NotCanonical`] at the first
//! differing byte) rather than [`LineError::BadJson`].
//!
//! [`Mode::Strict`] runs the same scan and then, for every line the scan accepts, a second and
//! independent implementation: parse into a `serde_json` tree, re-encode canonically, compare
//! bytes, re-hash. Lines the tree cannot hold (lone surrogates, nesting deeper than
//! [`json::MAX_WRITE_DEPTH`]) rest on the scan alone. Use it for audits that want two
//! implementations to agree; it is several times slower.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::Hash;
use crate::json::{self, JsonError};
use crate::sha;

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod old_scan;
mod plain;

pub(crate) use plain::key_word;

/// How thoroughly [`check_line`] checks a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One linear pass over the bytes that proves canonical form and checks the hash.
    #[default]
    Fast,
    /// The same pass, then an independent parse, re-encode and re-hash of the lines it accepts.
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
    /// The line is longer than [`crate::MAX_RECORD_BYTES`] (it is not read).
    #[error(
        "line is {len} bytes long, more than the limit of {limit} bytes a record; chainsink never \
         writes such a line"
    )]
    TooLong {
        /// Length of the line, without its `\n`.
        len: usize,
        /// [`crate::MAX_RECORD_BYTES`].
        limit: usize,
    },
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
    /// The line is JSON but its bytes are not the canonical encoding of what it holds. A record is
    /// refused in any other form whatever its hash says (a forger can hash non-canonical bytes).
    #[error(
        "line is not in canonical form at byte {offset}: found {found:?} where canonical JSON \
         has {expected}; a record is only valid as json.dumps(record, sort_keys=True) byte for \
         byte (this line was reformatted, hand-written or forged)"
    )]
    NotCanonical {
        /// Byte offset of the first difference.
        offset: usize,
        /// A few bytes of the line from there.
        found: String,
        /// What canonical JSON has there: its bytes where the scan can name them (e.g. `1.5`,
        /// `\u00e9`, `", "`), otherwise a description (e.g. the key order).
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
/// Both modes give the same verdict and the same error; see the [module docs](self). Linear in
/// the line's length (Fast; Strict adds a tree parse, `O(n log n)` in the number of keys).
pub fn check_line(line: &[u8], mode: Mode) -> Result<LineInfo, LineError> {
    let scanned = scan_checked(line)?;
    let info = scanned.verdict(scanned.parts(line).map(sha::digest))?;
    strict_check(line, mode, &scanned, info)
}

/// Checks many lines (each WITHOUT its `\n`) and appends one result per line to `out`, in
/// order: for every line exactly what [`check_line`] returns.
///
/// Faster than calling [`check_line`] on each: the lines' hashes are computed two at a time,
/// interleaved, where the CPU has SHA extensions (see [`crate::sha`]).
pub fn check_lines<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    mode: Mode,
    out: &mut Vec<Result<LineInfo, LineError>>,
) {
    // A line scanned and waiting for a partner to be hashed with: (its slot in `out`, the line,
    // its scan).
    let mut waiting: Option<(usize, &[u8], Scanned)> = None;
    for line in lines {
        let scanned = match scan_checked(line) {
            Ok(s) => s,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let Some(parts) = scanned.parts(line) else {
            out.push(
                scanned
                    .verdict(None)
                    .and_then(|info| strict_check(line, mode, &scanned, info)),
            );
            continue;
        };
        match waiting.take() {
            None => {
                waiting = Some((out.len(), line, scanned));
                // A placeholder, filled in once the line is hashed.
                out.push(Ok(LineInfo::default()));
            }
            Some((slot, first, first_scanned)) => {
                let first_parts = first_scanned.parts(first).unwrap_or_default();
                let (h1, h2) = sha::digest_pair(first_parts, parts);
                out[slot] = first_scanned
                    .verdict(Some(h1))
                    .and_then(|info| strict_check(first, mode, &first_scanned, info));
                out.push(
                    scanned
                        .verdict(Some(h2))
                        .and_then(|info| strict_check(line, mode, &scanned, info)),
                );
            }
        }
    }
    if let Some((slot, line, scanned)) = waiting {
        out[slot] = scanned
            .verdict(scanned.parts(line).map(sha::digest))
            .and_then(|info| strict_check(line, mode, &scanned, info));
    }
}

/// The length limit, then the scan (everything but the hash comparison).
fn scan_checked(line: &[u8]) -> Result<Scanned, LineError> {
    if line.len() > crate::MAX_RECORD_BYTES {
        return Err(LineError::TooLong {
            len: line.len(),
            limit: crate::MAX_RECORD_BYTES,
        });
    }
    scan_line(line)
}

/// Strict's second, independent check of a line the scan accepted.
fn strict_check(
    line: &[u8],
    mode: Mode,
    scanned: &Scanned,
    info: LineInfo,
) -> Result<LineInfo, LineError> {
    // The tree path cannot hold lone surrogates or nest deeper than serde_json reads: for those
    // lines the scanner's proof stands alone.
    if mode == Mode::Strict && !scanned.lone_surrogate && scanned.depth <= json::MAX_WRITE_DEPTH {
        return full(line);
    }
    Ok(info)
}

// ---------------------------------------------------------------------------------------------
// Full path (Strict's independent second check)

/// Parse into a tree, check fields, hash `canon(record without "hash")`, compare with the line.
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
    json::write_object(&mut canon, &m).map_err(LineError::BadJson)?;
    if canon != line {
        let offset = canon
            .iter()
            .zip(line)
            .position(|(a, b)| a != b)
            .unwrap_or(canon.len().min(line.len()));
        let end = canon.len().min(offset + 24);
        return Err(not_canonical(
            line,
            offset,
            String::from_utf8_lossy(&canon[offset.min(end)..end]).into_owned(),
        ));
    }
    if let Some(stored) = info.hash {
        canon.clear();
        json::write_object_except(&mut canon, &m, Some("hash")).map_err(LineError::BadJson)?;
        let computed = Hash::of(&canon);
        if computed != stored {
            return Err(LineError::HashMismatch { stored, computed });
        }
    }
    Ok(info)
}

/// [`LineError::NotCanonical`] at `offset` of `line`.
fn not_canonical(line: &[u8], offset: usize, expected: String) -> LineError {
    let end = line.len().min(offset + 24);
    LineError::NotCanonical {
        offset,
        found: String::from_utf8_lossy(&line[offset.min(end)..end]).into_owned(),
        expected,
    }
}

/// Checks the top-level fields of a parsed record.
fn fields(m: &Map<String, Value>) -> Result<LineInfo, LineError> {
    let get = |k: &'static str| m.get(k).ok_or(LineError::MissingField(k));
    let bad = |field, reason| Err(LineError::BadField { field, reason });
    if !get("actor")?.is_object() {
        return bad("actor", ACTOR);
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
                reason: HEX_REASON,
            }),
        },
        Some(_) => Err(LineError::BadField {
            field: k,
            reason: HEX_STRING_REASON,
        }),
    };
    let hash = hash_field("hash")?;
    let prev_hash = hash_field("prev_hash")?;
    pair(hash, prev_hash)?;
    let seq = match m.get("seq") {
        None => None,
        Some(Value::Number(n)) => match parse_seq(n.as_str().as_bytes()) {
            Some(s) => Some(s),
            None => return bad("seq", SEQ_REASON),
        },
        Some(_) => return bad("seq", SEQ_REASON),
    };
    Ok(LineInfo {
        hash,
        prev_hash,
        seq,
    })
}

const ACTOR: &str = "must be an object {\"host_id\": ..., \"user\": ...}";
const HEX_REASON: &str = "must be 64 lowercase hex digits";
const HEX_STRING_REASON: &str = "must be a string of 64 lowercase hex digits";
const SEQ_REASON: &str = "must be an integer from 1 to 18446744073709551615";

/// `hash` and `prev_hash` come together or not at all.
fn pair(hash: Option<Hash>, prev_hash: Option<Hash>) -> Result<(), LineError> {
    match (hash, prev_hash) {
        (Some(_), None) => Err(LineError::MissingField("prev_hash")),
        (None, Some(_)) => Err(LineError::MissingField("hash")),
        _ => Ok(()),
    }
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
// The scanner: one iterative pass over the raw bytes (an explicit stack, no recursion) that reads
// any JSON `json.loads` reads (but NaN/Infinity), notes the first byte where the line differs
// from canon(record), and hashes the line without its hash member as it goes.

/// High bit of each byte set (SWAR helpers below work on eight bytes in a `u64`).
const HIGH: u64 = 0x8080_8080_8080_8080;
/// 0x01 in each byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// What a block classifier says about 64 bytes, one bit per byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masks {
    /// Bytes that cannot appear unescaped in a canonical string: `"`, `\\`, a control byte
    /// (< 0x20), DEL (0x7f) or a non-ASCII byte (>= 0x80).
    special: u64,
    /// The `"` bytes (a subset of `special`).
    quote: u64,
}

/// [`Masks`] of `c` with SSE2. Exact for every byte.
#[cfg(target_arch = "x86_64")]
#[inline]
fn special_mask(c: &[u8; 64]) -> Masks {
    use core::arch::x86_64::*;
    let mut m = 0u64;
    let mut quotes = 0u64;
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
            (_mm_movemask_epi8(s), _mm_movemask_epi8(quote))
        };
        m |= u64::from(bits.0 as u16) << (16 * q);
        quotes |= u64::from(bits.1 as u16) << (16 * q);
    }
    Masks {
        special: m,
        quote: quotes,
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[cfg_attr(not(test), allow(dead_code))]
#[inline]
fn special_mask(c: &[u8; 64]) -> Masks {
    special_mask_swar(c)
}

/// [`special_mask`] with wasm's 128-bit SIMD, where the build enables it (the sinks chainsink
/// builds, `crates/guest-build`): four 16-byte lanes, as SSE2 does. The SWAR classifier was a
/// tenth of the default sink's own time (issue 15). Checked in wasm by the host's test
/// `the_default_sinks_payload_check_agrees_with_the_native_encoder`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
fn special_mask_simd128(c: &[u8; 64]) -> Masks {
    use core::arch::wasm32::*;
    let (mut m, mut quotes) = (0u64, 0u64);
    for (q, chunk) in c.chunks_exact(16).enumerate() {
        // One load, not sixteen bytes put in lanes one by one (Cranelift keeps those apart).
        // SAFETY: `chunk` is 16 readable bytes, and a wasm load may be unaligned.
        let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
        // Signed: bytes >= 0x80 are negative, so this catches them along with controls.
        let low = i8x16_lt(v, i8x16_splat(0x20));
        let quote = i8x16_eq(v, i8x16_splat(b'"' as i8));
        let bslash = i8x16_eq(v, i8x16_splat(b'\\' as i8));
        let del = i8x16_eq(v, i8x16_splat(0x7f));
        let s = v128_or(v128_or(low, quote), v128_or(bslash, del));
        m |= u64::from(i8x16_bitmask(s)) << (16 * q);
        quotes |= u64::from(i8x16_bitmask(quote)) << (16 * q);
    }
    Masks {
        special: m,
        quote: quotes,
    }
}

/// [`special_mask`] eight bytes at a time in plain integer arithmetic (any target).
#[inline]
fn special_mask_swar(c: &[u8; 64]) -> Masks {
    /// High bit set exactly in the bytes of `t` that are zero, for `t` with no high bits set.
    #[inline]
    fn zero7(t: u64) -> u64 {
        !(t + 0x7f * ONES) & HIGH
    }
    /// Gathers the eight high bits of `flags` into the low byte (byte k -> bit k).
    #[inline]
    fn gather(flags: u64) -> u64 {
        ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }
    let (mut m, mut quotes) = (0u64, 0u64);
    for (k, chunk) in c.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let low7 = w & !HIGH;
        // No carries cross bytes: every byte of `low7` is < 0x80. A byte >= 0x80 whose low
        // seven bits are `"` must not count as a quote: hence `& !w`.
        let quote = zero7(low7 ^ (ONES * u64::from(b'"'))) & !w;
        let flags = (w & HIGH)
            | (!(low7 + 0x60 * ONES) & HIGH) // < 0x20
            | quote
            | zero7(low7 ^ (ONES * u64::from(b'\\')))
            | zero7(low7 ^ (ONES * 0x7f));
        m |= gather(flags) << (8 * k);
        quotes |= gather(quote) << (8 * k);
    }
    Masks {
        special: m,
        quote: quotes,
    }
}

/// [`special_mask`] with AVX2: two 32-byte halves.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn special_mask_avx2(c: &[u8; 64]) -> Masks {
    use core::arch::x86_64::*;
    let (mut m, mut quotes) = (0u64, 0u64);
    for (q, half) in c.chunks_exact(32).enumerate() {
        // SAFETY: `half` is 32 readable bytes; loadu has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(half.as_ptr().cast()) };
        // Signed: bytes >= 0x80 are negative, so this catches them along with controls.
        let low = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
        let bslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        let del = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7f));
        let s = _mm256_or_si256(_mm256_or_si256(low, quote), _mm256_or_si256(bslash, del));
        m |= u64::from(_mm256_movemask_epi8(s) as u32) << (32 * q);
        quotes |= u64::from(_mm256_movemask_epi8(quote) as u32) << (32 * q);
    }
    Masks {
        special: m,
        quote: quotes,
    }
}

/// [`special_mask`] with AVX-512BW: the 64 bytes in one register, compared into bit masks.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn special_mask_avx512(c: &[u8; 64]) -> Masks {
    use core::arch::x86_64::*;
    // SAFETY: `c` is 64 readable bytes; loadu has no alignment requirement.
    let v = unsafe { _mm512_loadu_si512(c.as_ptr().cast()) };
    let quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8));
    // Signed: bytes >= 0x80 are negative, so this catches them along with controls.
    let special = _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8(0x20))
        | quote
        | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8))
        | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(0x7f));
    Masks { special, quote }
}

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpu_avx512bw, "avx512f", "avx512bw");
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpu_avx2, "avx2");

/// Which code classifies a 64-byte block for the scan ([`special_mask`]'s question), chosen
/// once per batch of lines from what the CPU has (`cpufeatures`), so that the widest registers
/// are used without compiling for them; every choice gives the same bits (tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Classifier {
    /// Eight bytes at a time in integer arithmetic: any target (and the tests' reference path).
    #[cfg_attr(
        all(
            any(
                target_arch = "x86_64",
                all(target_arch = "wasm32", target_feature = "simd128")
            ),
            not(test)
        ),
        allow(dead_code)
    )]
    Portable,
    /// SSE2, the x86_64 baseline.
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// AVX2, checked at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512BW, checked at run time.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// wasm SIMD, where the build enables it.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

impl Classifier {
    /// The widest classifier this CPU runs.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if cpu_avx512bw::get() {
                return Classifier::Avx512;
            }
            if cpu_avx2::get() {
                return Classifier::Avx2;
            }
            Classifier::Sse2
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Classifier::Simd128;
        #[cfg(not(any(
            target_arch = "x86_64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        Classifier::Portable
    }

    /// The portable classifier (for tests that run both paths).
    #[cfg(test)]
    fn portable() -> Self {
        Classifier::Portable
    }

    /// The [`Masks`] of `c`.
    #[inline]
    fn masks(self, c: &[u8; 64]) -> Masks {
        match self {
            Classifier::Portable => special_mask_swar(c),
            #[cfg(target_arch = "x86_64")]
            Classifier::Sse2 => special_mask(c),
            // SAFETY: `detect` returns these only when the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Classifier::Avx2 => unsafe { special_mask_avx2(c) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Classifier::Avx512 => unsafe { special_mask_avx512(c) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Classifier::Simd128 => special_mask_simd128(c),
        }
    }
}

/// Parses a `"<64 lowercase hex>"` hash body (without quotes) like [`Hash::from_hex`]: with SSE2
/// (the x86_64 baseline) sixteen digits at a time, elsewhere by table.
#[inline]
fn hex64(s: &[u8; 64]) -> Option<Hash> {
    #[cfg(target_arch = "x86_64")]
    {
        hex64_sse2(s)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        hex64_portable(s)
    }
}

/// [`hex64`] with SSE2: checks and converts 16 digits a step, then packs digit pairs into bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn hex64_sse2(s: &[u8; 64]) -> Option<Hash> {
    use core::arch::x86_64::*;
    let mut h = [0u8; 32];
    let mut bad = 0i32;
    for (out, digits) in h.chunks_exact_mut(16).zip(s.chunks_exact(32)) {
        // SAFETY: SSE2 is part of the x86_64 baseline; `digits` is 32 readable bytes (two
        // unaligned 16-byte loads) and `out` 16 writable ones (one unaligned store).
        unsafe {
            let mut vals = [_mm_setzero_si128(); 2];
            for (k, v) in vals.iter_mut().enumerate() {
                let c = _mm_loadu_si128(digits.as_ptr().add(16 * k).cast());
                // '0'..='9' -> 0..=9 and 'a'..='f' -> 10..=15 (signed compares: every byte
                // >= 0x80 is negative, so it is neither).
                let dec = _mm_sub_epi8(c, _mm_set1_epi8(b'0' as i8));
                let is_dec = _mm_and_si128(
                    _mm_cmpgt_epi8(c, _mm_set1_epi8(b'0' as i8 - 1)),
                    _mm_cmplt_epi8(c, _mm_set1_epi8(b'9' as i8 + 1)),
                );
                let is_hex = _mm_and_si128(
                    _mm_cmpgt_epi8(c, _mm_set1_epi8(b'a' as i8 - 1)),
                    _mm_cmplt_epi8(c, _mm_set1_epi8(b'f' as i8 + 1)),
                );
                let hexv = _mm_sub_epi8(c, _mm_set1_epi8(b'a' as i8 - 10));
                bad |= !_mm_movemask_epi8(_mm_or_si128(is_dec, is_hex)) & 0xffff;
                *v = _mm_or_si128(_mm_and_si128(is_dec, dec), _mm_and_si128(is_hex, hexv));
            }
            // Each 16-bit lane holds (first digit, second digit) in (low, high) byte: make it
            // first << 4 | second, then pack the lanes' low bytes.
            let pack = |v: __m128i| {
                _mm_or_si128(
                    _mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00ff)), 4),
                    _mm_srli_epi16(v, 8),
                )
            };
            let bytes = _mm_packus_epi16(pack(vals[0]), pack(vals[1]));
            _mm_storeu_si128(out.as_mut_ptr().cast(), bytes);
        }
    }
    (bad == 0).then_some(Hash(h))
}

/// [`hex64`] by table, for any target.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn hex64_portable(s: &[u8; 64]) -> Option<Hash> {
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

/// Value of one hex digit, either case (what `json.loads` accepts in `\uXXXX`).
#[inline]
fn hex_any(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(c - b'A' + 10)),
        _ => None,
    }
}

/// Why the scan stopped: the line is not JSON that `json.loads` reads (or holds NaN/Infinity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The bytes end inside a value: a prefix of JSON text.
    Eof,
    /// Not JSON at this byte.
    Syntax(usize, &'static str),
    /// Not UTF-8 at this byte.
    Utf8(usize),
    /// A bare `NaN`, `Infinity` or `-Infinity` at this byte.
    NonFinite(usize, &'static str),
    /// An integer with this many digits (more than [`json::MAX_INT_DIGITS`]).
    IntTooLong(usize),
    /// Nested deeper than [`json::MAX_READ_DEPTH`].
    TooDeep,
}

impl Fault {
    fn into_error(self, line: &[u8]) -> JsonError {
        let syntax = |at: usize, message: &str| JsonError::Syntax {
            line: 1,
            column: at + 1,
            message: String::from(message),
        };
        match self {
            Fault::Eof => syntax(line.len(), "the line ends inside a value"),
            Fault::Syntax(at, m) => syntax(at, m),
            Fault::Utf8(offset) => JsonError::InvalidUtf8 { offset },
            Fault::NonFinite(at, literal) => JsonError::NonFinite {
                literal,
                line: 1,
                column: at + 1,
            },
            Fault::IntTooLong(digits) => JsonError::IntegerTooLong {
                digits,
                limit: json::MAX_INT_DIGITS,
            },
            Fault::TooDeep => JsonError::TooDeep {
                limit: json::MAX_READ_DEPTH,
            },
        }
    }
}

/// The top-level fields the scanner locates (by index into [`FIELDS`]).
const FIELDS: [&str; 8] = [
    "actor",
    "event_type",
    "payload",
    "timestamp",
    "workflow_id",
    "hash",
    "prev_hash",
    "seq",
];
const F_HASH: usize = 5;

/// The index in [`FIELDS`] of an unescaped top-level key: told apart by length and first byte,
/// then confirmed with one comparison.
#[inline(always)]
fn field_index(k: &[u8]) -> Option<usize> {
    let f = field_candidate(k.len(), *k.first()?)?;
    // Byte by byte rather than `==`, which calls `memcmp` for these few bytes.
    FIELDS[f].bytes().zip(k).all(|(a, &b)| a == b).then_some(f)
}

/// The one field of [`FIELDS`] a key of `len` bytes starting with `first` can be, if any (the
/// caller confirms the rest of the name).
#[inline(always)]
fn field_candidate(len: usize, first: u8) -> Option<usize> {
    Some(match (len, first) {
        (5, b'a') => 0,
        (10, b'e') => 1,
        (7, b'p') => 2,
        (9, b't') => 3,
        (11, b'w') => 4,
        (4, b'h') => 5,
        (9, b'p') => 6,
        (3, b's') => 7,
        _ => return None,
    })
}

/// A container being scanned.
#[derive(Clone, Copy)]
enum Frame {
    Array,
    /// An object, with the span of its last key (start, end, holds a `\`).
    Object(Option<(usize, usize, bool)>),
}

/// Frames in a [`Stack`] before it spills to the heap: records rarely nest deeper, and a line
/// then costs no allocation.
const INLINE_FRAMES: usize = 16;

/// The scanner's stack of open containers.
struct Stack {
    inline: [Frame; INLINE_FRAMES],
    len: usize,
    /// Frames beyond [`INLINE_FRAMES`].
    spill: Vec<Frame>,
}

impl Stack {
    fn new() -> Self {
        Stack {
            inline: [Frame::Array; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn push(&mut self, f: Frame) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = f,
            None => self.spill.push(f),
        }
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) {
        if self.len > INLINE_FRAMES {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    #[inline]
    fn last_mut(&mut self) -> Option<&mut Frame> {
        match self.len {
            0 => None,
            n if n <= INLINE_FRAMES => self.inline.get_mut(n - 1),
            _ => self.spill.last_mut(),
        }
    }

    #[inline]
    fn last(&mut self) -> Option<Frame> {
        self.last_mut().copied()
    }
}

/// What a successful scan found.
struct Scanned {
    info: LineInfo,
    /// A `\uXXXX` escape of an unpaired surrogate was seen.
    lone_surrogate: bool,
    /// Deepest nesting reached (the record's object is 1).
    depth: usize,
    /// The stored hash and the bytes it covers: the line up to `cut`, then from `resume` on.
    hashed: Option<(Hash, usize, usize)>,
}

impl Scanned {
    /// The bytes the stored hash covers, as two slices of `line`.
    fn parts<'a>(&self, line: &'a [u8]) -> Option<sha::Parts<'a>> {
        self.hashed
            .map(|(_, cut, resume)| [&line[..cut], &line[resume..]])
    }

    /// The verdict, given the SHA-256 of [`Scanned::parts`] (when there is a hash).
    fn verdict(&self, computed: Option<Hash>) -> Result<LineInfo, LineError> {
        match (self.hashed, computed) {
            (Some((stored, ..)), Some(computed)) if stored != computed => {
                Err(LineError::HashMismatch { stored, computed })
            }
            _ => Ok(self.info),
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Start of the 64-byte window `mask` describes (`usize::MAX`: none yet).
    mask_at: usize,
    /// [`special_mask`] of the window at `mask_at` (bytes past the end count as special).
    mask: u64,
    /// Where the hashed bytes break around the hash member when it is followed by `, ` (the
    /// line up to the first, then from the second on).
    hash_cut: Option<(usize, usize)>,
    /// The first byte where the line differs from its canonical form, and what canonical JSON has
    /// there.
    dev: Option<(usize, String)>,
    lone_surrogate: bool,
    depth: usize,
    /// Stop at the first deviation, with no message: only "canonical or not" is asked.
    quick: bool,
    /// Value spans (start, end) of the top-level fields in [`FIELDS`] (the last one wins, as in
    /// Python), and where the `hash` key starts.
    top: [Option<(usize, usize)>; 8],
    hash_key: usize,
    /// Kind of the top-level value, for [`LineError::NotAnObject`].
    top_kind: &'static str,
    /// What classifies the 64-byte windows.
    class: Classifier,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self::with_classifier(b, Classifier::detect())
    }

    fn with_classifier(b: &'a [u8], class: Classifier) -> Self {
        Scanner {
            class,
            b,
            i: 0,
            mask_at: usize::MAX,
            mask: 0,
            hash_cut: None,
            dev: None,
            lone_surrogate: false,
            depth: 0,
            quick: false,
            top: [None; 8],
            hash_key: 0,
            top_kind: "an object",
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Notes that the bytes at `at` are not canonical (only the first such place is kept).
    #[cold]
    fn deviate(&mut self, at: usize, expected: impl Into<String>) {
        if self.dev.is_none() {
            self.dev = Some((
                at,
                if self.quick {
                    String::new()
                } else {
                    expected.into()
                },
            ));
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
            Some(c) => self.class.masks(c.try_into().unwrap_or(&[0; 64])).special,
            None => {
                // The tail: pad with NUL, which is special, so scans stop at the end.
                let mut c = [0u8; 64];
                let tail = self.b.get(at..).unwrap_or_default();
                c[..tail.len()].copy_from_slice(tail);
                self.class.masks(&c).special
            }
        };
    }

    /// JSON whitespace where canonical JSON has none.
    #[inline]
    fn ws_none(&mut self) {
        if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.skip_ws("no whitespace");
        }
    }

    /// JSON whitespace where canonical JSON has exactly one space.
    #[inline]
    fn ws_one(&mut self) {
        match self.peek() {
            Some(b' ') if !matches!(self.b.get(self.i + 1), Some(b' ' | b'\t' | b'\n' | b'\r')) => {
                self.i += 1;
            }
            None => {}
            _ => self.skip_ws("one space"),
        }
    }

    #[cold]
    fn skip_ws(&mut self, expected: &str) {
        let at = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
        self.deviate(at, expected);
    }

    /// A literal (`true`, `false`, `null`).
    fn literal(&mut self, lit: &'static [u8]) -> Result<(), Fault> {
        let rest = &self.b[self.i..];
        if rest.starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else if lit.starts_with(rest) {
            Err(Fault::Eof)
        } else {
            Err(Fault::Syntax(self.i, "expected a JSON value"))
        }
    }

    /// `NaN`, `Infinity` or `-Infinity` (which `json.loads` reads): refused, named.
    #[cold]
    fn non_finite(&mut self, lit: &'static str) -> Fault {
        let rest = &self.b[self.i..];
        if rest.starts_with(lit.as_bytes()) {
            Fault::NonFinite(self.i, lit)
        } else if lit.as_bytes().starts_with(rest) {
            Fault::Eof
        } else {
            Fault::Syntax(self.i, "expected a JSON value")
        }
    }

    /// Scans the whole line. Errors are faults (not JSON); canonical deviations are noted in
    /// `self.dev` and the scan goes on, so a line that is JSON but not canonical is told apart
    /// from one that is not JSON at all.
    fn scan(&mut self) -> Result<(), Fault> {
        let mut stack = Stack::new();
        // (field, value start, key start) of the top-level member being read.
        let mut member: Option<(usize, usize, usize)> = None;
        self.ws_none();
        self.top_kind = match self.peek() {
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        'value: loop {
            if self.quick && self.dev.is_some() {
                // Only "canonical or not" was asked, and it is not.
                return Err(Fault::Eof);
            }
            // Strings are most values: one test for them before the dispatch on the first byte
            // (an indirect jump that mispredicts often).
            if self.b.get(self.i) == Some(&b'"') {
                self.string()?;
            } else {
                match self.peek() {
                    None => return Err(Fault::Eof),
                    Some(c @ (b'{' | b'[')) => {
                        if stack.len() >= json::MAX_READ_DEPTH {
                            return Err(Fault::TooDeep);
                        }
                        self.i += 1;
                        self.depth = self.depth.max(stack.len() + 1);
                        let close = if c == b'{' { b'}' } else { b']' };
                        self.ws_none();
                        if self.peek() == Some(close) {
                            self.i += 1;
                        } else if c == b'{' {
                            stack.push(Frame::Object(None));
                            self.key(&mut stack, &mut member)?;
                            continue 'value;
                        } else {
                            stack.push(Frame::Array);
                            continue 'value;
                        }
                    }
                    Some(b'"') => {
                        self.string()?;
                    }
                    Some(b't') => self.literal(b"true")?,
                    Some(b'f') => self.literal(b"false")?,
                    Some(b'n') => self.literal(b"null")?,
                    Some(b'N') => return Err(self.non_finite("NaN")),
                    Some(b'I') => return Err(self.non_finite("Infinity")),
                    Some(b'-') if self.b.get(self.i + 1) == Some(&b'I') => {
                        return Err(self.non_finite("-Infinity"));
                    }
                    Some(b'-' | b'0'..=b'9') => self.number(stack.is_empty())?,
                    Some(_) => return Err(Fault::Syntax(self.i, "expected a JSON value")),
                }
            }
            // After a value: close containers until the next value starts.
            loop {
                if stack.len() == 1
                    && let Some(m) = member.take()
                {
                    self.end_member(m, self.i);
                }
                let Some(frame) = stack.last() else {
                    self.ws_none();
                    return match self.peek() {
                        None => Ok(()),
                        Some(_) => Err(Fault::Syntax(self.i, "extra data after the JSON value")),
                    };
                };
                // Canonical lines go on with exactly `, ` and the next key or value; anything
                // else takes the general path below, which says what is wrong.
                if self.b.get(self.i..self.i + 2) == Some(b", ")
                    && !matches!(self.b.get(self.i + 2), Some(b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.i += 2;
                    if let Frame::Object(_) = frame {
                        self.key(&mut stack, &mut member)?;
                    }
                    continue 'value;
                }
                self.ws_none();
                match (self.peek(), frame) {
                    (None, _) => return Err(Fault::Eof),
                    (Some(b','), Frame::Object(_)) => {
                        self.i += 1;
                        self.ws_one();
                        self.key(&mut stack, &mut member)?;
                        continue 'value;
                    }
                    (Some(b','), Frame::Array) => {
                        self.i += 1;
                        self.ws_one();
                        continue 'value;
                    }
                    (Some(b'}'), Frame::Object(_)) | (Some(b']'), Frame::Array) => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => {
                        return Err(Fault::Syntax(
                            self.i,
                            "expected `,` or the end of the container",
                        ));
                    }
                }
            }
        }
    }

    /// Notes where a top-level member's value ends: `member` is (its index in [`FIELDS`], where
    /// its value starts, where its key starts), `end` is the byte after the value.
    #[inline]
    fn end_member(&mut self, (field, start, key): (usize, usize, usize), end: usize) {
        self.top[field] = Some((start, end));
        if field == F_HASH {
            self.hash_key = key;
            // Canonical lines go on with `, ` after it: the hashed bytes are the line without
            // the key, the value and that separator.
            self.hash_cut = (end - start == 66 && self.b.get(end..end + 2) == Some(b", "))
                .then_some((key, end + 2));
        }
    }

    /// An object key, `:` and the space after it; checks key order against the previous key.
    fn key(
        &mut self,
        stack: &mut Stack,
        member: &mut Option<(usize, usize, usize)>,
    ) -> Result<(), Fault> {
        let start = self.i;
        match self.peek() {
            None => return Err(Fault::Eof),
            Some(b'"') => {}
            Some(_) => return Err(Fault::Syntax(self.i, "expected a string key")),
        }
        let escaped = self.string()?;
        let key = (start + 1, self.i - 1, escaped);
        let depth = stack.len();
        if let Some(Frame::Object(prev)) = stack.last_mut() {
            if let Some(p) = *prev
                && compare_keys(self.b, p, key) != core::cmp::Ordering::Less
            {
                self.deviate_key(start, p, key);
            }
            *prev = Some(key);
        }
        // Canonical lines have exactly `": "` and then the value: one comparison of two bytes and a
        // look at the third. Anything else takes the general path, which says what is wrong.
        if self.b.get(self.i..self.i + 2) == Some(b": ")
            && !matches!(self.b.get(self.i + 2), Some(b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 2;
        } else {
            self.ws_none();
            match self.peek() {
                None => return Err(Fault::Eof),
                Some(b':') => self.i += 1,
                Some(_) => return Err(Fault::Syntax(self.i, "expected `:` after the key")),
            }
            self.ws_one();
        }
        if depth == 1 {
            let k = &self.b[key.0..key.1];
            let field = if escaped {
                FIELDS
                    .iter()
                    .position(|f| decode(k).eq(f.bytes().map(u32::from)))
            } else {
                field_index(k)
            };
            *member = field.map(|f| (f, self.i, start));
        }
        Ok(())
    }

    #[cold]
    fn deviate_key(&mut self, at: usize, prev: (usize, usize, bool), key: (usize, usize, bool)) {
        if self.dev.is_some() {
            return;
        }
        if self.quick {
            self.dev = Some((at, String::new()));
            return;
        }
        let name =
            |k: (usize, usize, bool)| String::from_utf8_lossy(&self.b[k.0..k.1]).into_owned();
        let what = if compare_keys(self.b, prev, key) == core::cmp::Ordering::Equal {
            alloc::format!("no second key \"{}\" (duplicate keys)", name(key))
        } else {
            alloc::format!(
                "keys sorted by code point: \"{}\" comes before \"{}\"",
                name(key),
                name(prev)
            )
        };
        self.deviate(at, what);
    }

    /// A string starting at its `"`; returns whether it holds a `\`.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Fault> {
        let mut i = self.i + 1;
        let mut escaped = false;
        loop {
            i = self.next_special(i);
            let Some(&c) = self.b.get(i) else {
                return Err(Fault::Eof);
            };
            match c {
                b'"' => {
                    self.i = i + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    self.i = i;
                    self.escape()?;
                    i = self.i;
                    escaped = true;
                }
                0x7f => {
                    self.deviate(i, "\\u007f");
                    i += 1;
                }
                0x80.. => {
                    let n = utf8_len(self.b, i).ok_or(Fault::Utf8(i))?;
                    self.deviate(i, "a \\uXXXX escape (canonical JSON is ASCII)");
                    i += n;
                }
                _ => {
                    return Err(Fault::Syntax(
                        i,
                        "control character in a string (must be escaped)",
                    ));
                }
            }
        }
    }

    /// One escape starting at its `\`.
    fn escape(&mut self) -> Result<(), Fault> {
        let at = self.i;
        match self.b.get(at + 1) {
            None => Err(Fault::Eof),
            Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => {
                self.i += 2;
                Ok(())
            }
            Some(b'/') => {
                self.deviate(at, "/");
                self.i += 2;
                Ok(())
            }
            Some(b'u') => {
                let v = self.hex4(at + 2)?;
                self.i += 6;
                match v {
                    0x08 | 0x09 | 0x0a | 0x0c | 0x0d => self.deviate(at, short_escape(v)),
                    0x22 => self.deviate(at, "\\\""),
                    0x5c => self.deviate(at, "\\\\"),
                    0x20..=0x7e => self.deviate(at, String::from(char::from(v as u8))),
                    0xd800..=0xdbff => {
                        // A pair when a low surrogate escape follows at once (as json.loads
                        // joins them); a lone surrogate otherwise.
                        let low = if self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                            self.hex4(self.i + 2)?
                        } else {
                            0
                        };
                        if (0xdc00..=0xdfff).contains(&low) {
                            self.i += 6;
                        } else {
                            self.lone_surrogate = true;
                        }
                    }
                    0xdc00..=0xdfff => self.lone_surrogate = true,
                    _ => {}
                }
                Ok(())
            }
            Some(_) => Err(Fault::Syntax(at, "invalid escape")),
        }
    }

    /// Four hex digits at `at` (either case; upper case is noted as not canonical).
    fn hex4(&mut self, at: usize) -> Result<u32, Fault> {
        let mut v = 0;
        for k in 0..4 {
            let Some(&c) = self.b.get(at + k) else {
                return Err(Fault::Eof);
            };
            let d = hex_any(c).ok_or(Fault::Syntax(at - 2, "invalid \\uXXXX escape"))?;
            if c.is_ascii_uppercase() {
                self.deviate(at - 2, "lowercase hex digits in \\u escapes");
            }
            v = (v << 4) | d;
        }
        Ok(v)
    }

    /// A number: JSON syntax, at most [`json::MAX_INT_DIGITS`] digits in an integer, and
    /// canonical when it is what Python writes for the value `json.loads` reads.
    fn number(&mut self, top_level: bool) -> Result<(), Fault> {
        let start = self.i;
        let b = self.b;
        let digits = |i: &mut usize| {
            let d = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - d
        };
        let mut i = start + usize::from(b[start] == b'-');
        let int_digits = match b.get(i) {
            None => return Err(Fault::Eof),
            Some(b'0') => {
                i += 1;
                1
            }
            Some(b'1'..=b'9') => digits(&mut i),
            Some(_) => return Err(Fault::Syntax(i, "expected a digit")),
        };
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            float = true;
            match b.get(i) {
                None => return Err(Fault::Eof),
                Some(c) if c.is_ascii_digit() => digits(&mut i),
                Some(_) => return Err(Fault::Syntax(i, "expected a digit after `.`")),
            };
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            float = true;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            match b.get(i) {
                None => return Err(Fault::Eof),
                Some(c) if c.is_ascii_digit() => digits(&mut i),
                Some(_) => return Err(Fault::Syntax(i, "expected a digit in the exponent")),
            };
        }
        self.i = i;
        // At the end of the bytes inside a container the number may go on: a prefix.
        if i == b.len() && !top_level {
            return Err(Fault::Eof);
        }
        let token = &b[start..i];
        if !float {
            if int_digits > json::MAX_INT_DIGITS {
                return Err(Fault::IntTooLong(int_digits));
            }
            if token == b"-0" {
                self.deviate(start, "0");
            }
            return Ok(());
        }
        if short_decimal_is_canonical(token) {
            return Ok(());
        }
        // A float is canonical when it is Python's repr of its value (at most 24 bytes): parse it
        // as json.loads does (correctly rounded) and write it back.
        if token.len() > 32 {
            self.deviate(
                start,
                "a float in Python's repr form (at most 24 characters)",
            );
            return Ok(());
        }
        let value = core::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|f| f.is_finite());
        match value {
            Some(f) => {
                let mut buf = Vec::with_capacity(32);
                json::write_float(&mut buf, f);
                if buf != token {
                    self.deviate(start, String::from_utf8_lossy(&buf).into_owned());
                }
            }
            // Python reads it as inf and writes `Infinity`.
            None => self.deviate(start, "Infinity (the value overflows a float)"),
        }
        Ok(())
    }

    /// The verdict on a scanned line: fields, then canonical form, then the hash.
    fn finish(mut self) -> Result<Scanned, LineError> {
        if self.top_kind != "an object" {
            return Err(LineError::NotAnObject {
                found: self.top_kind,
            });
        }
        let b = self.b;
        let span = |f: usize| self.top[f].map(|(s, e)| &b[s..e]);
        let get = |f: usize| span(f).ok_or(LineError::MissingField(FIELDS[f]));
        let bad = |field, reason| Err(LineError::BadField { field, reason });
        if get(0)?[0] != b'{' {
            return bad("actor", ACTOR);
        }
        if get(1)?[0] != b'"' {
            return bad("event_type", "must be a string");
        }
        if get(2)?[0] != b'{' {
            return bad("payload", "must be an object");
        }
        if get(3)?[0] != b'"' {
            return bad("timestamp", "must be a string");
        }
        let wf = get(4)?;
        if wf[0] != b'"' && wf != b"null" {
            return bad("workflow_id", "must be a string or null");
        }
        let hash_field = |f: usize| match span(f) {
            None => Ok(None),
            Some(v) if v[0] == b'"' => {
                let body = (v.len() == 66).then(|| v[1..65].try_into().ok()).flatten();
                match body.and_then(hex64) {
                    Some(h) => Ok(Some(h)),
                    None => Err(LineError::BadField {
                        field: FIELDS[f],
                        reason: HEX_REASON,
                    }),
                }
            }
            Some(_) => Err(LineError::BadField {
                field: FIELDS[f],
                reason: HEX_STRING_REASON,
            }),
        };
        let hash = hash_field(F_HASH)?;
        let prev_hash = hash_field(6)?;
        pair(hash, prev_hash)?;
        let seq = match span(7) {
            None => None,
            Some(v) => match parse_seq(v) {
                Some(s) => Some(s),
                None => return bad("seq", SEQ_REASON),
            },
        };
        if let Some((at, expected)) = self.dev.take() {
            return Err(not_canonical(b, at, expected));
        }
        // What the hash covers: the line without its hash member (and the `, ` that joins it).
        let hashed = hash.map(|stored| {
            let (cut, resume) = self.hash_cut.unwrap_or_else(|| {
                // The hash member is last: drop it with the `, ` before it.
                let (_, e) = self.top[F_HASH].unwrap_or_default();
                let k = self.hash_key;
                (if b[..k].ends_with(b", ") { k - 2 } else { k }, e)
            });
            (stored, cut, resume)
        });
        Ok(Scanned {
            info: LineInfo {
                hash,
                prev_hash,
                seq,
            },
            lone_surrogate: self.lone_surrogate,
            depth: self.depth,
            hashed,
        })
    }
}

/// A shortcut for the common float: `-?D.F` (no exponent) with at most 15 significant digits,
/// no trailing zero in `F` (but `x.0`), and a value in Python's fixed-notation range
/// (`1e-4 <= |x| < 1e16`, or zero). Such a decimal is the shortest repr of its nearest double:
/// every decimal of at most 15 significant digits survives decimal -> double -> decimal
/// (DBL_DIG = 15), so no other decimal of at most 15 digits, shorter ones included, maps to the
/// same double. `false` means "decide the long way", not "not canonical".
fn short_decimal_is_canonical(token: &[u8]) -> bool {
    let t = token.strip_prefix(b"-").unwrap_or(token);
    let Some(dot) = t.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (int, frac) = (&t[..dot], &t[dot + 1..]);
    if frac.is_empty()
        || !frac.iter().all(u8::is_ascii_digit)
        || !int.iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    if frac.len() > 1 && frac.ends_with(b"0") {
        return false;
    }
    if int == b"0" {
        let zeros = frac.iter().take_while(|&&c| c == b'0').count();
        if zeros == frac.len() {
            return frac == b"0"; // 0.0
        }
        // 0.0001 is 1e-04 (fixed); 0.00001 is 1e-05 (exponent form).
        zeros <= 3 && frac.len() - zeros <= 15
    } else {
        !int.is_empty()
            && int[0] != b'0'
            && int.len() + frac.len() - usize::from(frac == b"0") <= 15
    }
}

/// The short escape Python writes for `v`.
fn short_escape(v: u32) -> &'static str {
    match v {
        0x08 => "\\b",
        0x09 => "\\t",
        0x0a => "\\n",
        0x0c => "\\f",
        _ => "\\r",
    }
}

/// Length of the UTF-8 sequence at `i`, or `None` when it is not valid UTF-8.
fn utf8_len(b: &[u8], i: usize) -> Option<usize> {
    let n = match b[i] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    core::str::from_utf8(b.get(i..i + n)?).ok().map(|_| n)
}

/// The code points of a JSON string body (between its quotes, already scanned as valid), as
/// `json.loads` decodes them: a high surrogate escape directly followed by a low surrogate
/// escape is one astral code point; any other surrogate escape stands alone.
fn decode(body: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut i = 0;
    let hex = move |at: usize| {
        body.get(at..at + 4)
            .map(|h| h.iter().fold(0, |v, &c| (v << 4) | hex_any(c).unwrap_or(0)))
    };
    core::iter::from_fn(move || {
        let c = *body.get(i)?;
        if c == b'\\' {
            let e = *body.get(i + 1)?;
            i += 2;
            return Some(match e {
                b'u' => {
                    let v = hex(i)?;
                    i += 4;
                    if (0xd800..0xdc00).contains(&v) && body.get(i..i + 2) == Some(b"\\u") {
                        let lo = hex(i + 2)?;
                        if (0xdc00..0xe000).contains(&lo) {
                            i += 6;
                            return Some(0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00));
                        }
                    }
                    v
                }
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => 0x0a,
                b'r' => 0x0d,
                b't' => 0x09,
                other => u32::from(other),
            });
        }
        if c < 0x80 {
            i += 1;
            return Some(u32::from(c));
        }
        let n = utf8_len(body, i)?;
        let ch = core::str::from_utf8(&body[i..i + n]).ok()?.chars().next()?;
        i += n;
        Some(u32::from(ch))
    })
}

/// Compares two keys (spans of `b`: start, end, holds a `\`) by code point, as Python sorts them.
#[inline(always)]
fn compare_keys(b: &[u8], x: (usize, usize, bool), y: (usize, usize, bool)) -> core::cmp::Ordering {
    let (kx, ky) = (&b[x.0..x.1], &b[y.0..y.1]);
    if !x.2 && !y.2 {
        // ASCII and raw UTF-8 both sort by code point as bytes.
        compare_bytes(kx, ky)
    } else {
        decode(kx).cmp(decode(ky))
    }
}

/// `x.cmp(y)`, inline, without a call to `memcmp`: keys are short and usually differ early, so
/// eight bytes at a time (big-endian words order like their bytes), then byte by byte.
#[inline(always)]
fn compare_bytes(x: &[u8], y: &[u8]) -> core::cmp::Ordering {
    let (mut xs, mut ys) = (x.chunks_exact(8), y.chunks_exact(8));
    let mut done = 0;
    for (a, b) in (&mut xs).zip(&mut ys) {
        let (a, b) = (
            u64::from_be_bytes(a.try_into().unwrap_or_default()),
            u64::from_be_bytes(b.try_into().unwrap_or_default()),
        );
        if a != b {
            return a.cmp(&b);
        }
        done += 8;
    }
    for (a, b) in x[done..].iter().zip(&y[done..]) {
        if a != b {
            return a.cmp(b);
        }
    }
    x.len().cmp(&y.len())
}

/// Scans a line and gives the verdict with the precise reason.
fn scan_line(line: &[u8]) -> Result<Scanned, LineError> {
    scan_line_with(line, Classifier::detect())
}

/// [`scan_line`] with the given block classifier: the plain-line path ([`plain`]) when it can
/// prove the line canonical, the general scan otherwise (which also names every fault).
fn scan_line_with(line: &[u8], class: Classifier) -> Result<Scanned, LineError> {
    let mut s = Scanner::with_classifier(line, class);
    if s.scan_plain() {
        return s.finish();
    }
    scan_line_general(line, class)
}

/// The general scan of a line, without the plain-line path.
fn scan_line_general(line: &[u8], class: Classifier) -> Result<Scanned, LineError> {
    let mut s = Scanner::with_classifier(line, class);
    if let Err(f) = s.scan() {
        return Err(LineError::BadJson(f.into_error(line)));
    }
    s.finish()
}

/// Whether `text` is one JSON object in exactly the form the canonical encoder writes
/// ([`json::write_object_within`] of its parsed tree), nested at most `max_depth` levels (the
/// object itself is one).
///
/// The same scan as [`check_line`], which proves canonical form byte by byte; on top of it the
/// encoder's own refusals count as "no": a lone surrogate escape (which [`check_line`] accepts,
/// as Python writes it, but a tree cannot hold) and nesting deeper than `max_depth`. So a `true`
/// means copying `text` gives the bytes encoding it would, and a `false` only means "encode it".
pub fn is_canonical_object(text: &[u8], max_depth: usize) -> bool {
    if text.first() != Some(&b'{') {
        return false;
    }
    // The plain path first, as for log lines: it vouches only for text the general scan would
    // call canonical, and a plain text has no escapes, so no lone surrogate.
    let mut s = Scanner::new(text);
    if s.scan_plain() {
        return s.depth <= max_depth;
    }
    let mut s = Scanner::new(text);
    s.quick = true;
    s.scan().is_ok() && s.dev.is_none() && !s.lone_surrogate && s.depth <= max_depth
}

/// Whether `bytes` are what a write cut short leaves: a proper prefix of a canonical JSON
/// object (the scan runs out of bytes inside it, with nothing non-canonical before).
pub(crate) fn is_canonical_prefix(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if bytes[0] != b'{' {
        return false;
    }
    let mut s = Scanner::new(bytes);
    s.scan() == Err(Fault::Eof) && s.dev.is_none()
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
    fn field_index_follows_fields() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(field_index(f.as_bytes()), Some(i));
        }
        for other in [
            &b"hash2"[..],
            b"",
            b"hasx",
            b"actors",
            b"prev_hasH",
            b"tinestamp",
            b"s",
        ] {
            assert_eq!(field_index(other), None);
        }
    }

    #[test]
    fn seq_parsing() {
        assert_eq!(parse_seq(b"1"), Some(1));
        assert_eq!(parse_seq(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_seq(b"18446744073709551616"), None);
        assert_eq!(parse_seq(b"0"), None);
        assert_eq!(parse_seq(b""), None);
        assert_eq!(parse_seq(b"-1"), None);
    }

    /// Some(()) when `s` is JSON in canonical form.
    fn scan(s: &str) -> Option<()> {
        let mut sc = Scanner::new(s.as_bytes());
        sc.scan().ok()?;
        sc.dev.is_none().then_some(())
    }

    fn fast(line: &[u8]) -> Option<LineInfo> {
        check_line(line, Mode::Fast).ok()
    }

    #[test]
    fn scanner_accepts_canonical_forms_only() {
        for ok in [
            r#"{"a": [1, -2, 0.5, -0.0, 1e-05, 1.5e+300, true, false, null], "b": {}}"#,
            r#""\" \\ \n \r \t \b \f \u0000 \u001f \u00e9 \ud83d\ude00 \u2028""#,
            r#""\u007f""#,
            "[]",
            // Lone surrogates, as Python writes them.
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ude00\ud83d x \udbff""#,
            r#"{"\ud800": 1, "\ud83d\ude00": 2}"#,
            r#"{"\ue000": 1, "\ud83d\ude00": 2}"#,
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
            "\"é\"",
            r#"{"\ud83d\ude00": 1, "\ue000": 2}"#,
            r#"{"b": 1, "a": 2}"#,
            r#"{"a": 1, "a": 1}"#,
            "1.50",
            "1e5",
            "1E5",
            "100000.0e0",
            "[1.0, 0.10]",
            "[\"\\u00E9\"]",
            " []",
            "[] ",
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
            payload: (&payload).into(),
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
    fn special_ref(c: &[u8; 64]) -> Masks {
        let bits = |f: &dyn Fn(u8) -> bool| {
            c.iter()
                .enumerate()
                .fold(0, |m, (k, &b)| m | (u64::from(f(b)) << k))
        };
        Masks {
            special: bits(&|b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\'),
            quote: bits(&|b| b == b'"'),
        }
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
                assert_eq!(hex64_portable(&c), Hash::from_hex(&c), "{pos} {v:#x}");
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
                    let got = sc.string().is_ok() && sc.i == text.len() && sc.dev.is_none();
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
            assert_eq!(sc.string(), Ok(true), "{s}");
            assert_eq!(sc.i, s.len());
        }
    }

    #[test]
    fn fast_path_hashes_lines_of_every_length() {
        // Every alignment of the hash member and every line length over a few blocks, against
        // the full path.
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
                payload: (&payload).into(),
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
    fn depth_up_to_what_python_reads_without_recursion() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert_eq!(scan(&nested(json::MAX_READ_DEPTH)), Some(()));
        let text = nested(json::MAX_READ_DEPTH + 1);
        assert_eq!(Scanner::new(text.as_bytes()).scan(), Err(Fault::TooDeep));
        // Far deeper input is refused without touching the call stack.
        let text = nested(200_000);
        assert_eq!(Scanner::new(text.as_bytes()).scan(), Err(Fault::TooDeep));
    }

    #[test]
    fn short_decimal_shortcut_agrees_with_repr() {
        let mut n = 0;
        let mut check = |t: &str| {
            if short_decimal_is_canonical(t.as_bytes()) {
                n += 1;
                let mut out = Vec::new();
                json::write_float(&mut out, t.parse().unwrap());
                assert_eq!(out, t.as_bytes(), "{t}");
            }
        };
        for t in [
            "0.0", "-0.0", "3.0", "0.1", "0.0001", "0.00001", "10.0", "0.75", "1.50",
        ] {
            check(t);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 10u64.pow(1 + (x >> 60) as u32 % 15)).to_string();
            let point = (x >> 40) as usize % (digits.len() + 4);
            let t = if point >= digits.len() {
                format!("0.{}{digits}", "0".repeat(point - digits.len()))
            } else {
                format!(
                    "{}.{}",
                    &digits[..digits.len() - point],
                    &digits[digits.len() - point..]
                )
            };
            check(&t);
            check(&format!("{t}0"));
            check(&format!("-{t}"));
        }
        assert!(n > 100_000, "{n}");
        for t in [
            "0.00",
            "01.5",
            "1.",
            ".5",
            "1e5",
            "0.00001",
            "1234567890123456.0",
            "1.10",
        ] {
            assert!(!short_decimal_is_canonical(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn canonical_prefixes() {
        let (line, _, _) = tricky_line(true);
        for n in 0..line.len() {
            assert!(is_canonical_prefix(&line[..n]), "{n}");
        }
        assert!(
            !is_canonical_prefix(&line),
            "a complete line is not a proper prefix"
        );
        for bad in [
            &b"[1"[..],
            b"{\"a\":1",
            b"{\"a\": 1.50",
            b"{\"b\": 1, \"a\"",
            b"{ ",
        ] {
            let text = String::from_utf8_lossy(bad);
            // "{\"a\": 1.50" could still become 1.501: only complete tokens are judged.
            let want = bad == b"{\"a\": 1.50";
            assert_eq!(is_canonical_prefix(bad), want, "{text}");
        }
    }
}
