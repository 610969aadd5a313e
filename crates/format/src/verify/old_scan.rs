//! The scanner as it was before issue 15 part 3 (block classification), frozen: the oracle the
//! differential tests in `super::tests` compare the shipped scan with, verdict and error alike.
//! Test-only; the shipped code has one implementation of each rule.
#![allow(dead_code, clippy::all)]

use alloc::string::String;
use alloc::vec::Vec;

use super::{
    ACTOR, HEX_REASON, HEX_STRING_REASON, LineError, LineInfo, SEQ_REASON, not_canonical, pair,
    parse_seq,
};
use crate::json::{self, JsonError};
use crate::{Hash, sha};

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
#[inline]
fn field_index(k: &[u8]) -> Option<usize> {
    let f = match (k.len(), k.first()) {
        (5, Some(b'a')) => 0,
        (10, Some(b'e')) => 1,
        (7, Some(b'p')) => 2,
        (9, Some(b't')) => 3,
        (11, Some(b'w')) => 4,
        (4, Some(b'h')) => 5,
        (9, Some(b'p')) => 6,
        (3, Some(b's')) => 7,
        _ => return None,
    };
    (FIELDS[f].as_bytes() == k).then_some(f)
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
pub(super) struct Scanned {
    pub(super) info: LineInfo,
    /// A `\uXXXX` escape of an unpaired surrogate was seen.
    pub(super) lone_surrogate: bool,
    /// Deepest nesting reached (the record's object is 1).
    pub(super) depth: usize,
    /// The stored hash and the bytes it covers: the line up to `cut`, then from `resume` on.
    pub(super) hashed: Option<(Hash, usize, usize)>,
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
    /// Value spans (start, end) of the top-level fields in [`FIELDS`] (the last one wins, as in
    /// Python), and where the `hash` key starts.
    top: [Option<(usize, usize)>; 8],
    hash_key: usize,
    /// Kind of the top-level value, for [`LineError::NotAnObject`].
    top_kind: &'static str,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            i: 0,
            mask_at: usize::MAX,
            mask: 0,
            hash_cut: None,
            dev: None,
            lone_surrogate: false,
            depth: 0,
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
            self.dev = Some((at, expected.into()));
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
            // After a value: close containers until the next value starts.
            loop {
                if stack.len() == 1
                    && let Some((field, start, key)) = member.take()
                {
                    self.top[field] = Some((start, self.i));
                    if field == F_HASH {
                        self.hash_key = key;
                        // Canonical lines go on with `, ` after it: the hashed bytes are the
                        // line without the key, the value and that separator.
                        self.hash_cut = (self.i - start == 66
                            && self.b.get(self.i..self.i + 2) == Some(b", "))
                        .then_some((key, self.i + 2));
                    }
                }
                let Some(frame) = stack.last() else {
                    self.ws_none();
                    return match self.peek() {
                        None => Ok(()),
                        Some(_) => Err(Fault::Syntax(self.i, "extra data after the JSON value")),
                    };
                };
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
        self.ws_none();
        match self.peek() {
            None => return Err(Fault::Eof),
            Some(b':') => self.i += 1,
            Some(_) => return Err(Fault::Syntax(self.i, "expected `:` after the key")),
        }
        self.ws_one();
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
#[inline]
fn compare_keys(b: &[u8], x: (usize, usize, bool), y: (usize, usize, bool)) -> core::cmp::Ordering {
    let (kx, ky) = (&b[x.0..x.1], &b[y.0..y.1]);
    if !x.2 && !y.2 {
        // ASCII and raw UTF-8 both sort by code point as bytes.
        compare_bytes(kx, ky)
    } else {
        decode(kx).cmp(decode(ky))
    }
}

/// `x.cmp(y)`, inline, without a call to `memcmp`: keys are short and usually differ early.
#[inline]
fn compare_bytes(x: &[u8], y: &[u8]) -> core::cmp::Ordering {
    for (a, b) in x.iter().zip(y) {
        if a != b {
            return a.cmp(b);
        }
    }
    x.len().cmp(&y.len())
}

/// Scans a line and gives the verdict with the precise reason.
pub(super) fn scan_line(line: &[u8]) -> Result<Scanned, LineError> {
    let mut s = Scanner::new(line);
    if let Err(f) = s.scan() {
        return Err(LineError::BadJson(f.into_error(line)));
    }
    s.finish()
}

/// Whether `bytes` are what a write cut short leaves: a proper prefix of a canonical JSON
/// object (the scan runs out of bytes inside it, with nothing non-canonical before).
pub(super) fn is_canonical_prefix(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if bytes[0] != b'{' {
        return false;
    }
    let mut s = Scanner::new(bytes);
    s.scan() == Err(Fault::Eof) && s.dev.is_none()
}
