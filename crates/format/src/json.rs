//! Canonical JSON: Python's `json.dumps(x, sort_keys=True)` with default arguments, byte for byte.
//!
//! - separators `", "` and `": "`; object keys sorted by code point at every depth;
//! - ASCII only: non-ASCII chars as `\uxxxx` (lowercase hex), astral chars as a surrogate pair;
//!   `"` `\\` `\n` `\r` `\t` `\b` `\f` as short escapes, other chars below 0x20 and DEL (0x7f)
//!   as `\u00xx` (Python escapes everything outside `' '..='~'`; checked against python3);
//! - a number token without `.`, `e` or `E` is an integer and is written exactly as it was read
//!   (any size; `-0` becomes `0`, as Python's `json.loads` makes it the int 0);
//! - any other number is a float: parsed to the nearest `f64` and written as Python's `repr`
//!   (shortest round-trip digits; exponent form `1e-05`, `1.5e+300` when the decimal exponent is
//!   below -4 or at least 16; otherwise fixed with at least one decimal, `3.0`; `-0.0` kept).
//!
//! This module is the WRITE side (the values a sink encodes). Where it deliberately differs from
//! Python (Python would write these and we refuse them, with an error that says so): `NaN`,
//! `Infinity` and `-Infinity` (not JSON; Python writes them bare), float literals that overflow to
//! infinity (e.g. `1e400`), lone UTF-16 surrogate escapes (`"\ud800"`: a `serde_json` string
//! cannot hold one), nesting deeper than [`MAX_WRITE_DEPTH`], and integers of more than
//! [`MAX_INT_DIGITS`] digits (Python 3.11 cannot read them back: `int()` refuses longer digit
//! strings). Duplicate object keys in parsed input: the last one wins, as in Python.
//!
//! The READ side ([`crate::verify::check_line`]) has its own scanner over raw bytes and accepts
//! everything Python's `json.dumps(sort_keys=True)` writes, lone surrogates and nesting up to
//! [`MAX_READ_DEPTH`] included; see `docs/audit-log.md`, "Limits and what counts as a valid record".
//!
//! Numbers keep their source text because the workspace builds `serde_json` with
//! `arbitrary_precision`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use serde_json::{Map, Number, Value};

mod transcode;

/// Deepest nesting of arrays and objects we WRITE (a record's own object counts as one level).
///
/// serde_json's parser (used for payload text) reads 127 levels, so [`write_value`] encodes no
/// more; Python 3.11 reads 995 levels back (see [`MAX_READ_DEPTH`]), so everything we write is
/// readable by Python with a wide margin for callers deep in their own call stack.
pub const MAX_WRITE_DEPTH: usize = 127;

/// Old name of [`MAX_WRITE_DEPTH`].
pub const MAX_DEPTH: usize = MAX_WRITE_DEPTH;

/// Deepest nesting a verified line may have (the record's own object counts as one level).
///
/// Measured with Python 3.11.7 at its default recursion limit of 1000, from module level:
/// `json.dumps(..., sort_keys=True)` writes at most 995 levels of nested lists or dicts and
/// `json.loads` reads at most 995 (one more raises `RecursionError`). Python's limit shrinks by
/// one for each frame its caller already has on the stack, so 995 is the most any default Python
/// writes, and what the reference verifier reads when it calls `json.loads` from module level.
pub const MAX_READ_DEPTH: usize = 995;

/// Most decimal digits in an integer (sign not counted): Python 3.11's default
/// `sys.get_int_max_str_digits()`. `json.loads` fails on a longer integer and `json.dumps`
/// cannot write one, so we never write one and a line holding one is not a valid record.
pub const MAX_INT_DIGITS: usize = 4300;

/// Why a JSON text or value cannot be stored in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error in the text.
        line: usize,
        /// 1-based column of the error in the text.
        column: usize,
        /// serde_json's description of the problem.
        message: String,
    },
    /// The bytes are not UTF-8.
    #[error("invalid UTF-8 at byte {offset}; JSON text must be UTF-8")]
    InvalidUtf8 {
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// `NaN`, `Infinity` or `-Infinity` appeared where a value was expected.
    #[error(
        "`{literal}` at line {line}, column {column} is not JSON: NaN and Infinity are rejected \
         (Python would write them bare and make the line unreadable to JSON parsers); \
         send null or a string instead"
    )]
    NonFinite {
        /// The literal found.
        literal: &'static str,
        /// 1-based line in the text.
        line: usize,
        /// 1-based column in the text.
        column: usize,
    },
    /// A `\uXXXX` escape names half of a surrogate pair without the other half.
    #[error(
        "unpaired UTF-16 surrogate escape at line {line}, column {column}: strings must be valid \
         Unicode; write a character above U+FFFF as a surrogate pair (\\ud83d\\ude00) or as UTF-8"
    )]
    LoneSurrogate {
        /// 1-based line in the text.
        line: usize,
        /// 1-based column in the text.
        column: usize,
    },
    /// A float literal is too large for an `f64` (it would become infinity).
    #[error(
        "number `{number}` is too large for a 64-bit float (Python would write `Infinity`, which \
         is not JSON); send it as a string, or as an integer (no `.` or exponent)"
    )]
    NumberOutOfRange {
        /// The number as written (shortened when long).
        number: String,
    },
    /// A number value whose text is not a JSON number (only possible for hand-built values).
    #[error("number `{number}` is not a JSON number; build numbers with serde_json::Number")]
    BadNumber {
        /// The number text (shortened when long).
        number: String,
    },
    /// An integer with more than [`MAX_INT_DIGITS`] digits: Python cannot read it back.
    #[error(
        "integer with {digits} digits is longer than the limit of {limit} digits (Python 3.11's \
         int max str digits: json.loads refuses it); send it as a string"
    )]
    IntegerTooLong {
        /// Its number of digits (sign not counted).
        digits: usize,
        /// [`MAX_INT_DIGITS`].
        limit: usize,
    },
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {limit} levels; flatten the value")]
    TooDeep {
        /// The limit that was exceeded ([`MAX_DEPTH`], or less where the value is nested in a record).
        limit: usize,
    },
    /// The JSON value is not an object where one is required (payloads).
    #[error(
        "expected a JSON object, found {found}; wrap the value in an object, e.g. {{\"value\": ...}}"
    )]
    NotAnObject {
        /// What was found: "an array", "a string", ...
        found: &'static str,
    },
}

/// Parses JSON text and checks that it can be encoded canonically (finite floats, valid Unicode,
/// nesting within [`MAX_DEPTH`]).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let v: Value = serde_json::from_str(text).map_err(|e| from_serde(text.as_bytes(), &e))?;
    check_encodable(&v, MAX_DEPTH)?;
    Ok(v)
}

/// Like [`parse`], for UTF-8 bytes.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, JsonError> {
    let text = core::str::from_utf8(bytes).map_err(|e| JsonError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse(text)
}

/// Parses text that must be a JSON object (payloads); otherwise [`JsonError::NotAnObject`].
pub fn parse_object(text: &str) -> Result<Map<String, Value>, JsonError> {
    match parse(text)? {
        Value::Object(m) => Ok(m),
        other => Err(JsonError::NotAnObject {
            found: kind(&other),
        }),
    }
}

/// Appends `canon(v)` to `out`. On error `out` is left as it was.
pub fn write_value(out: &mut Vec<u8>, v: &Value) -> Result<(), JsonError> {
    let start = out.len();
    let r = write_inner(out, v, MAX_DEPTH);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Appends `canon(m)` (an object) to `out`. On error `out` is left as it was.
pub fn write_object(out: &mut Vec<u8>, m: &Map<String, Value>) -> Result<(), JsonError> {
    write_object_except(out, m, None)
}

/// Appends `canon(m)` with at most `max_depth` levels of nesting (`m` itself counts as one).
/// On error ([`JsonError::TooDeep`] names `max_depth`) `out` is left as it was.
pub fn write_object_within(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    max_depth: usize,
) -> Result<(), JsonError> {
    let start = out.len();
    let r = write_map(out, m, max_depth.min(MAX_DEPTH), None);
    if r.is_err() {
        out.truncate(start);
    }
    r.map_err(|e| match e {
        JsonError::TooDeep { .. } => JsonError::TooDeep { limit: max_depth },
        e => e,
    })
}

/// Appends `canon(parse_object(text))` with at most `max_depth` levels of nesting (the object
/// itself counts as one), as [`write_object_within`] would for the parsed tree.
///
/// Text that is already canonical is copied as it is: the verifier's scanner
/// ([`crate::verify::is_canonical_object`]) proves it is exactly what the encoder would write.
/// Other valid text (other spacing or key order, escapes, `1.50`) is encoded straight from its
/// bytes, with no tree: the strings, numbers and key order go through the same functions the
/// tree's encoder uses. Text that neither can take (not JSON, NaN, a lone surrogate, too deep, an
/// integer too long) is parsed into a tree, so it gets exactly the tree's error.
/// On error `out` is left as it was.
pub fn write_object_text_within(
    out: &mut Vec<u8>,
    text: &str,
    max_depth: usize,
) -> Result<(), JsonError> {
    let depth = max_depth.min(MAX_DEPTH);
    if crate::verify::is_canonical_object(text.as_bytes(), depth) {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    if transcode::object(out, text, depth) {
        return Ok(());
    }
    // Whatever the transcoder leaves (errors above all) takes the tree, which says what is wrong.
    write_object_within(out, &parse_object(text)?, max_depth)
}

/// Appends `canon(m)` leaving out the member named `except` (if any). On error `out` is left as
/// it was.
pub fn write_object_except(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    except: Option<&str>,
) -> Result<(), JsonError> {
    let start = out.len();
    let r = write_map(out, m, MAX_DEPTH, except);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// `canon(v)` as a `String`.
pub fn to_canonical(v: &Value) -> Result<String, JsonError> {
    let mut out = Vec::new();
    write_value(&mut out, v)?;
    Ok(String::from_utf8(out).expect("canonical JSON is ASCII"))
}

/// What kind of value `v` is, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns a serde_json error into a [`JsonError`], naming NaN/Infinity and lone surrogates.
fn from_serde(text: &[u8], e: &serde_json::Error) -> JsonError {
    let (line, column) = (e.line(), e.column());
    let msg = alloc::format!("{e}");
    if msg.contains("surrogate") || msg.contains("end of hex escape") {
        return JsonError::LoneSurrogate { line, column };
    }
    // serde_json stops at (or just after) the start of a bare NaN / Infinity literal.
    if let Some(p) = byte_offset(text, line, column) {
        for q in [p.saturating_sub(1), p, p + 1] {
            let rest = text.get(q..).unwrap_or_default();
            for lit in ["-Infinity", "Infinity", "NaN"] {
                if rest.starts_with(lit.as_bytes()) {
                    return JsonError::NonFinite {
                        literal: lit,
                        line,
                        column,
                    };
                }
            }
        }
    }
    // serde_json's Display appends " at line L column C"; we print those ourselves.
    let message = match msg.rfind(" at line ") {
        Some(i) => String::from(&msg[..i]),
        None => msg,
    };
    JsonError::Syntax {
        line,
        column,
        message,
    }
}

/// Byte offset of 1-based (line, column) in `text`, or `None` when out of range.
fn byte_offset(text: &[u8], line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.iter().position(|&c| c == b'\n')? + 1;
    }
    Some(start + column.saturating_sub(1))
}

/// Checks every number is encodable and nesting is within `depth`.
fn check_encodable(v: &Value, depth: usize) -> Result<(), JsonError> {
    match v {
        Value::Number(n) => classify_number(n.as_str()).map(|_| ()),
        Value::Array(a) => {
            let depth = deeper(depth)?;
            a.iter().try_for_each(|x| check_encodable(x, depth))
        }
        Value::Object(m) => {
            let depth = deeper(depth)?;
            m.values().try_for_each(|x| check_encodable(x, depth))
        }
        _ => Ok(()),
    }
}

#[inline]
fn deeper(depth: usize) -> Result<usize, JsonError> {
    depth
        .checked_sub(1)
        .ok_or(JsonError::TooDeep { limit: MAX_DEPTH })
}

fn write_inner(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result<(), JsonError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            let depth = deeper(depth)?;
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_inner(out, x, depth)?;
            }
            out.push(b']');
        }
        Value::Object(m) => write_map(out, m, depth, None)?,
    }
    Ok(())
}

/// Writes an object with sorted keys, leaving out the key `except`.
fn write_map(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    depth: usize,
    except: Option<&str>,
) -> Result<(), JsonError> {
    let depth = deeper(depth)?;
    out.push(b'{');
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, k: &str, v: &Value| -> Result<(), JsonError> {
        if except == Some(k) {
            return Ok(());
        }
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        write_str(out, k);
        out.extend_from_slice(b": ");
        write_inner(out, v, depth)
    };
    // serde_json's Map is a BTreeMap (sorted by UTF-8 bytes = code point order) unless some crate
    // in the build enables `preserve_order`; then it keeps insertion order and we sort here.
    if is_sorted(m) {
        for (k, v) in m {
            member(out, k, v)?;
        }
    } else {
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, v) in entries {
            member(out, k, v)?;
        }
    }
    out.push(b'}');
    Ok(())
}

#[inline]
fn is_sorted(m: &Map<String, Value>) -> bool {
    let mut prev: Option<&String> = None;
    for k in m.keys() {
        if prev.is_some_and(|p| p >= k) {
            return false;
        }
        prev = Some(k);
    }
    true
}

/// The kind of a number token.
enum NumKind {
    /// Integer written as is (`-0` normalised to `0`).
    Int,
    /// Float, already parsed.
    Float(f64),
}

/// Checks `t` is a JSON number token and parses floats.
fn classify_number(t: &str) -> Result<NumKind, JsonError> {
    let b = t.as_bytes();
    let bad = || JsonError::BadNumber { number: snippet(t) };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return Err(bad()),
    }
    let int_end = i;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return Err(bad());
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return Err(bad());
        }
    }
    if i != b.len() {
        return Err(bad());
    }
    if int_end == b.len() {
        let digits = int_end - usize::from(b[0] == b'-');
        if digits > MAX_INT_DIGITS {
            return Err(JsonError::IntegerTooLong {
                digits,
                limit: MAX_INT_DIGITS,
            });
        }
        return Ok(NumKind::Int);
    }
    let f: f64 = t.parse().map_err(|_| bad())?;
    if !f.is_finite() {
        return Err(JsonError::NumberOutOfRange { number: snippet(t) });
    }
    Ok(NumKind::Float(f))
}

/// At most 64 chars of `s`, for error messages.
pub(crate) fn snippet(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => alloc::format!("{}...", &s[..i]),
        None => String::from(s),
    }
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), JsonError> {
    write_number_text(out, n.as_str())
}

/// Appends the canonical form of the number token `t`: an integer as it is (`-0` as `0`), a
/// float as Python's `repr`.
fn write_number_text(out: &mut Vec<u8>, t: &str) -> Result<(), JsonError> {
    match classify_number(t)? {
        NumKind::Int if t == "-0" => out.push(b'0'),
        NumKind::Int => out.extend_from_slice(t.as_bytes()),
        NumKind::Float(f) => write_float(out, f),
    }
    Ok(())
}

/// A small stack buffer for `core::fmt` output.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends Python's `repr(f)` for a finite `f` (callers check finiteness).
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
    // `{:e}` gives the shortest round-trip digits, e.g. `-1.2345e-7`, `0e0`, `5e-324`.
    let mut sb = StackBuf {
        buf: [0; 40],
        len: 0,
    };
    // A finite f64 in `{:e}` form is at most 24 bytes.
    let _ = write!(sb, "{f:e}");
    let s = &sb.buf[..sb.len];
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let e_pos = s.iter().position(|&c| c == b'e').unwrap_or(s.len());
    let mut digits = [0u8; 24];
    let mut n = 0;
    for &c in &s[..e_pos] {
        if c != b'.' {
            digits[n] = c;
            n += 1;
        }
    }
    let mut exp: i32 = 0;
    let mut exp_neg = false;
    for &c in s.get(e_pos + 1..).unwrap_or_default() {
        if c == b'-' {
            exp_neg = true;
        } else {
            exp = exp * 10 + i32::from(c - b'0');
        }
    }
    if exp_neg {
        exp = -exp;
    }
    if digits[n - 1] & 1 == 1 {
        break_tie_to_even(f.abs(), &mut digits, &mut n, &mut exp);
    }
    let digits = &digits[..n];
    if neg {
        out.push(b'-');
    }
    if !(-4..16).contains(&exp) {
        // Exponent form: d[.ddd]e±XX
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        let mut tmp = [0u8; 4];
        let mut k = tmp.len();
        let mut a = a;
        while a > 0 {
            k -= 1;
            tmp[k] = b'0' + (a % 10) as u8;
            a /= 10;
        }
        out.extend_from_slice(&tmp[k..]);
    } else {
        // Fixed form; `point` = digits before the decimal point.
        let point = exp + 1;
        if point <= 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..-point {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        } else {
            let point = point as usize;
            if point >= n {
                out.extend_from_slice(digits);
                for _ in n..point {
                    out.push(b'0');
                }
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits[point..]);
            }
        }
    }
}

/// Rust and Python both print the shortest digits that round-trip, closest to the exact value;
/// when two such digit strings are equally close (the exact value ends in 5 one digit further),
/// Python picks the one with an even last digit and Rust may not. `digits` (with an odd last
/// digit) times 10^(exp - n + 1) is Rust's choice; switch to the even neighbour on a tie.
fn break_tie_to_even(v: f64, digits: &mut [u8; 24], n: &mut usize, exp: &mut i32) {
    let d = digits[..*n]
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    let q = *exp - (*n as i32 - 1);
    for up in [false, true] {
        // The midpoint between d and its neighbour: (10d ± 5) * 10^(q-1).
        let c = if up { 10 * d + 5 } else { 10 * d - 5 };
        if !exactly_equals(v, c, q - 1) {
            continue;
        }
        let other = if up { d + 1 } else { d - 1 };
        let mut sb = StackBuf {
            buf: [0; 40],
            len: 0,
        };
        let _ = write!(sb, "{other}e{q}");
        let round_trips = core::str::from_utf8(&sb.buf[..sb.len])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            == Some(v);
        if !round_trips {
            return;
        }
        // Rewrite the digits: `other` may have one digit more (…9 + 1) and trailing zeros.
        let mut t = other;
        let mut len = 0;
        let mut tmp = [0u8; 24];
        while t > 0 {
            tmp[len] = b'0' + (t % 10) as u8;
            t /= 10;
            len += 1;
        }
        *exp = q + len as i32 - 1;
        let zeros = tmp[..len].iter().take_while(|&&c| c == b'0').count();
        *n = len - zeros;
        for i in 0..*n {
            digits[i] = tmp[len - 1 - i];
        }
        return;
    }
}

/// Whether the finite, positive `v` equals `c * 10^t` exactly, for odd `c`.
fn exactly_equals(v: f64, c: u64, t: i32) -> bool {
    let bits = v.to_bits();
    let frac = bits & ((1 << 52) - 1);
    let biased = (bits >> 52) as i32;
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, biased - 1075)
    };
    if m == 0 {
        return false;
    }
    // v = m * 2^e with m odd.
    let (m, e) = (m >> m.trailing_zeros(), e + m.trailing_zeros() as i32);
    // c * 10^t = c * 5^t * 2^t, and c * 5^|t| is odd: the powers of two must match.
    if t >= 0 {
        e == t && times_pow5(u128::from(c), t as u32) == Some(u128::from(m))
    } else {
        e == t && times_pow5(u128::from(m), t.unsigned_abs()) == Some(u128::from(c))
    }
}

/// `x * 5^k`, or `None` once it passes 2^64 (no value compared with it is that large).
fn times_pow5(mut x: u128, k: u32) -> Option<u128> {
    for _ in 0..k {
        x *= 5;
        if x > u128::from(u64::MAX) {
            return None;
        }
    }
    Some(x)
}

/// How each ASCII byte is written inside a string: 0 = as is, `u` = `\u00xx`, else `\` + that byte.
static ESCAPE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x7f] = b'u';
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `\uxxxx` (lowercase hex).
#[inline]
fn write_u_escape(out: &mut Vec<u8>, cu: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(cu >> 12 & 0xf) as usize],
        HEX[(cu >> 8 & 0xf) as usize],
        HEX[(cu >> 4 & 0xf) as usize],
        HEX[(cu & 0xf) as usize],
    ]);
}

/// Index of the first byte at or after `i` that does not stand for itself in a canonical string
/// (anything outside `' '..='~'`, `"` and `\\`), or `b.len()`. Eight bytes at a time.
#[inline]
pub(crate) fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// High bit set in each byte of `w` equal to zero (exact for the lowest such byte).
    #[inline]
    fn zero_bytes(w: u64) -> u64 {
        w.wrapping_sub(ONES) & !w & HIGH
    }
    #[inline]
    fn special(w: u64) -> u64 {
        (w.wrapping_sub(ONES * 0x20) & !w & HIGH) // < 0x20
            | (w & HIGH) // >= 0x80
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | zero_bytes(w ^ (ONES * 0x7f))
    }
    while let Some(chunk) = b.get(i..i + 8) {
        let m = special(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        if m != 0 {
            // The lowest flagged byte is always a real hit (borrows only run upwards).
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    // The last few bytes as one word too, padded with a byte that is not special (most of a
    // record's strings are shorter than eight bytes, or end with a few).
    let rest = &b[i.min(b.len())..];
    if rest.is_empty() {
        return i;
    }
    let mut word = [b'a'; 8];
    word[..rest.len()].copy_from_slice(rest);
    let m = special(u64::from_le_bytes(word));
    if m != 0 {
        return i + (m.trailing_zeros() / 8) as usize;
    }
    b.len()
}

/// Appends the canonical JSON string literal for `s`, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len();
    if n <= 16 && skip_plain(b, 0) == n {
        // Most of a record's strings: short, with nothing to escape. Written with fixed-size
        // copies (two overlapping words), not a copy of `n` bytes, which in wasm is a call out
        // of the sink to the runtime's `memory.copy` (issue 15).
        let at = out.len();
        out.extend_from_slice(&[b'"'; 18]);
        let d = &mut out[at + 1..at + 1 + n];
        match n {
            8..=16 => {
                d[..8].copy_from_slice(&b[..8]);
                d[n - 8..].copy_from_slice(&b[n - 8..]);
            }
            4..=7 => {
                d[..4].copy_from_slice(&b[..4]);
                d[n - 4..].copy_from_slice(&b[n - 4..]);
            }
            1..=3 => {
                d[0] = b[0];
                d[n / 2] = b[n / 2];
                d[n - 1] = b[n - 1];
            }
            _ => {}
        }
        out.truncate(at + n + 2);
        out[at + n + 1] = b'"';
        return;
    }
    out.reserve(n + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    loop {
        i = skip_plain(b, i);
        let Some(&c) = b.get(i) else { break };
        if c < 0x80 {
            let e = ESCAPE[c as usize];
            out.extend_from_slice(&b[start..i]);
            if e == b'u' {
                write_u_escape(out, u32::from(c));
            } else {
                out.extend_from_slice(&[b'\\', e]);
            }
            i += 1;
        } else {
            out.extend_from_slice(&b[start..i]);
            // `s` is valid UTF-8, so a lead byte is followed by its continuation bytes.
            let (cp, len) = if c < 0xe0 {
                ((u32::from(c & 0x1f) << 6) | u32::from(b[i + 1] & 0x3f), 2)
            } else if c < 0xf0 {
                (
                    (u32::from(c & 0x0f) << 12)
                        | (u32::from(b[i + 1] & 0x3f) << 6)
                        | u32::from(b[i + 2] & 0x3f),
                    3,
                )
            } else {
                (
                    (u32::from(c & 0x07) << 18)
                        | (u32::from(b[i + 1] & 0x3f) << 12)
                        | (u32::from(b[i + 2] & 0x3f) << 6)
                        | u32::from(b[i + 3] & 0x3f),
                    4,
                )
            };
            if cp >= 0x10000 {
                let v = cp - 0x10000;
                write_u_escape(out, 0xd800 + (v >> 10));
                write_u_escape(out, 0xdc00 + (v & 0x3ff));
            } else {
                write_u_escape(out, cp);
            }
            i += len;
        }
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        to_canonical(&parse(text).unwrap()).unwrap()
    }

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_follow_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (3.0, "3.0"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e-7, "1e-07"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-2.5e-10, "-2.5e-10"),
            (123.456, "123.456"),
            (9999999999999998.0, "9999999999999998.0"),
            // Ties between two shortest candidates go to the even digit, as in Python.
            (-(1080698447950207.0 + 0.25), "-1080698447950207.2"),
            (1080698447950207.0 + 0.75, "1080698447950207.8"),
        ];
        for &(f, want) in cases {
            assert_eq!(float(f), want, "repr of {f:e}");
        }
    }

    #[test]
    fn numbers_keep_int_text_and_normalise() {
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("-0.0"), "-0.0");
        assert_eq!(canon("1E2"), "100.0");
        assert_eq!(canon("1e-400"), "0.0");
        assert_eq!(
            canon("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn strings_escape_like_python() {
        let mut out = Vec::new();
        write_str(
            &mut out,
            "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é\u{2028}😀/",
        );
        let want = r#""a\"\\\n\r\t\b\f\u0001\u001f\u007f\u00e9\u2028\ud83d\ude00/""#;
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn strings_of_every_short_length_are_written_whole() {
        let base = "abcdefghijklmnopqrstuvwxyz ~!#$%&'()*+,-./0123456789";
        for n in 0..=24 {
            for from in [0, 3, 17] {
                let s = &base[from..from + n];
                let mut out = b"prefix".to_vec();
                write_str(&mut out, s);
                assert_eq!(out, format!("prefix\"{s}\"").as_bytes(), "{s:?}");
                // With one byte to escape at each place, the general path: the same escape.
                for k in 0..n {
                    let mut t = s.to_string();
                    t.replace_range(k..k + 1, "\n");
                    let mut out = Vec::new();
                    write_str(&mut out, &t);
                    let want = format!("\"{}\\n{}\"", &t[..k], &t[k + 1..]);
                    assert_eq!(out, want.as_bytes(), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn skip_plain_finds_the_first_special_byte() {
        let base = b"abcdefghijklmnopqrstuvwxyz ~!#$%&'()*+,-./0123456789".to_vec();
        for len in 0..=base.len() {
            for from in 0..=len {
                assert_eq!(skip_plain(&base[..len], from), len, "{len} from {from}");
            }
        }
        for special in [0u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff] {
            for at in 0..base.len() {
                let mut b = base.clone();
                b[at] = special;
                // A second special byte later must not hide the first.
                if at + 3 < b.len() {
                    b[at + 3] = 0;
                }
                for from in 0..=at {
                    assert_eq!(skip_plain(&b, from), at, "{special:#x} at {at} from {from}");
                }
            }
        }
    }

    #[test]
    fn objects_sort_and_nest() {
        assert_eq!(
            canon(r#"{"b":1,"a":[true,null,{"é":"x","z":{}}],"A":[]}"#),
            r#"{"A": [], "a": [true, null, {"z": {}, "\u00e9": "x"}], "b": 1}"#
        );
        // Last duplicate wins, as in Python.
        assert_eq!(canon(r#"{"k":1,"k":2}"#), r#"{"k": 2}"#);
    }

    #[test]
    fn rejects_with_named_reasons() {
        assert!(matches!(
            parse("NaN"),
            Err(JsonError::NonFinite { literal: "NaN", .. })
        ));
        assert!(matches!(
            parse("[1, Infinity]"),
            Err(JsonError::NonFinite {
                literal: "Infinity",
                ..
            })
        ));
        assert!(matches!(
            parse("[-Infinity]"),
            Err(JsonError::NonFinite {
                literal: "-Infinity",
                ..
            })
        ));
        assert!(matches!(
            parse(r#""\ud800""#),
            Err(JsonError::LoneSurrogate { .. })
        ));
        assert!(matches!(
            parse(r#""\udc00x""#),
            Err(JsonError::LoneSurrogate { .. })
        ));
        assert!(matches!(
            parse("1e400"),
            Err(JsonError::NumberOutOfRange { .. })
        ));
        assert!(matches!(parse("{"), Err(JsonError::Syntax { .. })));
        assert!(matches!(
            parse_object("[1]"),
            Err(JsonError::NotAnObject { found: "an array" })
        ));
        assert!(matches!(
            parse_bytes(b"\"\xff\""),
            Err(JsonError::InvalidUtf8 { offset: 1 })
        ));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn write_value_rejects_too_deep_and_leaves_out_unchanged() {
        let mut v = Value::Null;
        for _ in 0..MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        let mut out = b"keep".to_vec();
        write_value(&mut out, &v).unwrap();
        let v = Value::Array(vec![v]);
        let mut out = b"keep".to_vec();
        assert_eq!(
            write_value(&mut out, &v),
            Err(JsonError::TooDeep { limit: MAX_DEPTH })
        );
        assert_eq!(out, b"keep");
    }

    #[test]
    fn errors_say_what_and_how() {
        let e = parse("{\"a\": 1,}").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("column"), "{e}");
        // Advice fits the caller (a verifier must not tell a reader to
        // "send" anything): the error only says what and where.
        assert!(!e.contains("send"), "{e}");
        let e = parse("[NaN]").unwrap_err().to_string();
        assert!(e.contains("NaN") && e.contains("null or a string"), "{e}");
    }
}
