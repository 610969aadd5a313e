//! The plain-line path of the scan: a faster proof of canonical form for the lines audit logs are
//! made of, with the general scan ([`Scanner::scan`]) as the authority for everything else.
//!
//! A line is *plain* when it is at most [`MAX_PLAIN`] bytes, nests at most [`MAX_PLAIN_DEPTH`]
//! levels, and holds no `\`, no control byte, no DEL and no byte >= 0x80 anywhere. In such a line
//! every string is the bytes between two consecutive `"`. So one pass of the block classifier
//! over the whole line (no branch on the data) both rules out everything else and leaves a bitmap
//! of the line's quotes on the stack; the walk that follows finds each string's end in that
//! bitmap and only visits the bytes between strings: structure, numbers and literals.
//!
//! The walk accepts only what it can prove canonical without the general scan's machinery:
//! exactly `": "` after a key and `, ` between items, keys strictly ascending (byte order is code
//! point order for ASCII without escapes; compared eight bytes at a time), integers without a
//! leading zero or `-0` and of at most [`json::MAX_INT_DIGITS`] digits, floats that
//! [`short_decimal_is_canonical`] vouches for, and the three literals. Anything else (an escape,
//! an exponent, a long float, a space out of place, a key out of order, a line that is not JSON
//! at all) makes [`Scanner::scan_plain`] say `false` and the line is scanned again by the general
//! scan, which gives the verdict and names the fault. So the plain path never decides that a line
//! is wrong, and it decides a line is right only where the general scan would decide the same,
//! with the same fields, spans and depth (the differential tests in `diff_tests.rs` check this on
//! every input they make, and Python's `json` on every text the plain path takes).
//!
//! Why: the general scan dispatches on every byte run with checks for every deviation it must be
//! able to name; that was about three times the cost of SHA-256 over the same bytes (issue 15).
//! A simdjson-style token index (every quote, structural byte and scalar start as a bitmap, then a
//! walk over the tokens) was tried in its place and ran no faster on these lines, with about 10%
//! more instructions: a record's strings are short, so finding their ends is cheap either way.

use core::cmp::Ordering;

use super::{
    Classifier, FIELDS, Masks, Scanner, compare_bytes, field_candidate, short_decimal_is_canonical,
};
use crate::json;

/// Longest line the plain path takes (its quote bitmap is a fixed array on the stack).
pub(super) const MAX_PLAIN: usize = 4096;
/// Deepest nesting the plain path takes (the record's object is level 1).
pub(super) const MAX_PLAIN_DEPTH: usize = 16;

/// Fills `quotes` (one word per 64-byte block of `b`) with the quote bitmap of `b` and returns
/// whether `b` holds no other special byte (see [`Masks`]).
#[inline(always)]
fn classify_with(b: &[u8], quotes: &mut [u64], masks: impl Fn(&[u8; 64]) -> Masks) -> bool {
    let mut other = 0;
    let mut blocks = b.chunks_exact(64);
    for (q, c) in quotes.iter_mut().zip(&mut blocks) {
        let m = masks(c.try_into().unwrap_or(&[0; 64]));
        other |= m.special & !m.quote;
        *q = m.quote;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        // Padded with spaces: neither special nor a quote.
        let mut c = [b' '; 64];
        c[..tail.len()].copy_from_slice(tail);
        let m = masks(&c);
        other |= m.special & !m.quote;
        if let Some(q) = quotes.last_mut() {
            *q = m.quote;
        }
    }
    other == 0
}

/// [`classify_with`] the AVX2 classifier, compiled for AVX2 so that it is inlined.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn classify_avx2(b: &[u8], quotes: &mut [u64]) -> bool {
    // SAFETY: this function runs only where the CPU has AVX2.
    classify_with(b, quotes, |c| unsafe { super::special_mask_avx2(c) })
}

/// [`classify_with`] the given classifier.
fn classify(class: Classifier, b: &[u8], quotes: &mut [u64]) -> bool {
    match class {
        // SAFETY: `Classifier::Avx2` is only chosen on CPUs with AVX2.
        #[cfg(target_arch = "x86_64")]
        Classifier::Avx2 => unsafe { classify_avx2(b, quotes) },
        _ => classify_with(b, quotes, |c| class.masks(c)),
    }
}

/// Position of the first `"` at or after `from`, from the line's quote bitmap; `None` when there
/// is none before the end of the line (bits past the end are zero).
#[inline(always)]
fn next_quote(quotes: &[u64], from: usize) -> Option<usize> {
    let mut w = from >> 6;
    let mut m = *quotes.get(w)? & (u64::MAX << (from & 63));
    while m == 0 {
        w += 1;
        m = *quotes.get(w)?;
    }
    Some(w * 64 + m.trailing_zeros() as usize)
}

/// The first eight bytes of `b[start..end]` as a big-endian word, zero-padded. Words of keys
/// order like the keys' first eight bytes, and a zero byte sorts before any byte a plain key
/// holds, so a shorter key sorts first, as it should. (A key that holds a zero byte, decoded
/// from `\u0000`, can tie with a shorter one: words that differ still order as the keys do, and
/// equal words need the keys compared, as the transcoder does.)
#[inline(always)]
pub(crate) fn key_word(b: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    match b.get(start..start + 8) {
        Some(w) => {
            let w = u64::from_be_bytes(w.try_into().unwrap_or_default());
            if len >= 8 {
                w
            } else {
                w & !(u64::MAX >> (8 * len))
            }
        }
        None => {
            // Near the end of the line (only in lines that are cut short).
            let mut w = [0u8; 8];
            let k = &b[start..end.min(start + 8)];
            w[..k.len()].copy_from_slice(k);
            u64::from_be_bytes(w)
        }
    }
}

/// The open objects' last keys: spans and [`key_word`]s, by depth (arrays leave theirs unused).
struct LastKeys {
    /// Key span (start, end); `end == 0` for none yet (a key never ends at 0).
    span: [(u32, u32); MAX_PLAIN_DEPTH],
    word: [u64; MAX_PLAIN_DEPTH],
}

impl LastKeys {
    /// Whether the key `b[start..end]` (whose word is `word`) sorts strictly after the last key
    /// at depth `d`, which it then replaces.
    #[inline(always)]
    fn follow(&mut self, b: &[u8], d: usize, start: usize, end: usize, word: u64) -> bool {
        let (ps, pe) = self.span[d];
        let pw = self.word[d];
        self.span[d] = (start as u32, end as u32);
        self.word[d] = word;
        if pe == 0 {
            return true;
        }
        if pw != word {
            return pw < word;
        }
        let (ps, pe) = (ps as usize, pe as usize);
        if pe - ps <= 8 && end - start <= 8 {
            // The same key twice.
            return false;
        }
        compare_bytes(&b[ps..pe], &b[start..end]) == Ordering::Less
    }
}

/// [`key_word`] of bytes `from..` of each name in [`FIELDS`] (all shorter than 16 bytes).
const fn field_words(from: usize) -> [u64; 8] {
    let mut w = [0u64; 8];
    let mut f = 0;
    while f < 8 {
        let name = FIELDS[f].as_bytes();
        let mut k = from;
        while k < from + 8 && k < name.len() {
            w[f] |= (name[k] as u64) << (56 - 8 * (k - from));
            k += 1;
        }
        f += 1;
    }
    w
}

/// The top-level field (an index into [`FIELDS`]) the key `b[start..end]` is, if any: told apart
/// by length and first byte, then confirmed a word at a time (`word` is the key's [`key_word`]).
#[inline(always)]
fn top_field(b: &[u8], start: usize, end: usize, word: u64) -> Option<usize> {
    const FIRST: [u64; 8] = field_words(0);
    const SECOND: [u64; 8] = field_words(8);
    let f = field_candidate(end - start, (word >> 56) as u8)?;
    let rest = end - start > 8;
    (FIRST[f] == word && (!rest || SECOND[f] == key_word(b, start + 8, end))).then_some(f)
}

/// The end of a canonical number starting at `start` (a `-` or a digit), or `None` when it is not
/// one the plain path can vouch for.
#[inline(always)]
fn plain_number(b: &[u8], start: usize) -> Option<usize> {
    let neg = b[start] == b'-';
    let mut i = start + usize::from(neg);
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return None,
    }
    let int_end = i;
    match b.get(i) {
        Some(b'.') => {
            i += 1;
            let frac = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac || matches!(b.get(i), Some(b'e' | b'E')) {
                return None;
            }
            short_decimal_is_canonical(&b[start..i]).then_some(i)
        }
        Some(b'e' | b'E') => None,
        _ => {
            let digits = int_end - start - usize::from(neg);
            let minus_zero = neg && b[start + 1] == b'0';
            (digits <= json::MAX_INT_DIGITS && !minus_zero).then_some(i)
        }
    }
}

impl Scanner<'_> {
    /// Proves the line canonical by the plain path, leaving the scanner as [`Scanner::scan`]
    /// would for that line (top-level spans, the hash member's cut, depth), ready for
    /// [`Scanner::finish`]. `false`: not a plain line, or not one the walk can vouch for; the
    /// scanner is then in no defined state and the line must go to the general scan.
    pub(super) fn scan_plain(&mut self) -> bool {
        let b = self.b;
        let n = b.len();
        if n > MAX_PLAIN || b.first() != Some(&b'{') {
            return false;
        }
        let mut bitmap = [0u64; MAX_PLAIN / 64];
        let quotes = &mut bitmap[..n.div_ceil(64)];
        if !classify(self.class, b, quotes) {
            return false;
        }
        let quotes = &*quotes;
        if b.get(1) == Some(&b'}') {
            // `{}`: canonical, and `finish` says which field is missing.
            return n == 2;
        }
        // The open containers: whether each is an object, and its last key so far.
        let mut object = [false; MAX_PLAIN_DEPTH];
        object[0] = true;
        let mut keys = LastKeys {
            span: [(0, 0); MAX_PLAIN_DEPTH],
            word: [0; MAX_PLAIN_DEPTH],
        };
        let mut depth = 1;
        let mut max_depth = 1;
        // (field, value start, key start) of the top-level member being read.
        let mut member = None;
        let mut i = 1;
        // Each turn reads a key at `i`, then values until the next key.
        'key: loop {
            if b.get(i) != Some(&b'"') {
                return false;
            }
            let start = i + 1;
            let Some(end) = next_quote(quotes, start) else {
                return false;
            };
            let word = key_word(b, start, end);
            if !keys.follow(b, depth - 1, start, end, word) {
                return false;
            }
            if b.get(end + 1..end + 3) != Some(b": ") {
                return false;
            }
            i = end + 3;
            if depth == 1 {
                member = top_field(b, start, end, word).map(|f| (f, i, start - 1));
            }
            // Each turn reads a value at `i`, then closes containers up to a `, `.
            'value: loop {
                match b.get(i) {
                    Some(b'"') => match next_quote(quotes, i + 1) {
                        Some(end) => i = end + 1,
                        None => return false,
                    },
                    Some(&c @ (b'{' | b'[')) => {
                        if depth == MAX_PLAIN_DEPTH {
                            return false;
                        }
                        object[depth] = c == b'{';
                        keys.span[depth].1 = 0;
                        depth += 1;
                        max_depth = max_depth.max(depth);
                        i += 1;
                        // `}` and `]` are two past `{` and `[`.
                        if b.get(i) == Some(&(c + 2)) {
                            // `{}` or `[]`.
                            i += 1;
                            depth -= 1;
                        } else if c == b'{' {
                            continue 'key;
                        } else {
                            continue 'value;
                        }
                    }
                    Some(b't') if b.get(i..i + 4) == Some(b"true") => i += 4,
                    Some(b'f') if b.get(i..i + 5) == Some(b"false") => i += 5,
                    Some(b'n') if b.get(i..i + 4) == Some(b"null") => i += 4,
                    Some(b'-' | b'0'..=b'9') => match plain_number(b, i) {
                        Some(end) => i = end,
                        None => return false,
                    },
                    _ => return false,
                }
                // After a value: `, ` and the next item, or the container's end.
                loop {
                    if depth == 1
                        && let Some(m) = member.take()
                    {
                        self.end_member(m, i);
                    }
                    let is_object = object[depth - 1];
                    match b.get(i) {
                        Some(b',') if b.get(i + 1) == Some(&b' ') => {
                            i += 2;
                            if is_object {
                                continue 'key;
                            }
                            continue 'value;
                        }
                        Some(&c) if c == if is_object { b'}' } else { b']' } => {
                            i += 1;
                            depth -= 1;
                            if depth == 0 {
                                self.depth = max_depth;
                                return i == n;
                            }
                        }
                        _ => return false,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;

    use super::super::{Classifier, Scanner, scan_line_general};
    use super::*;

    /// Whether the plain path takes `line` (with the CPU's classifier and the portable one
    /// alike); when it does, it must agree with the general scan.
    fn plain(line: &str) -> bool {
        let taken = [Classifier::detect(), Classifier::portable()].map(|class| {
            let mut s = Scanner::with_classifier(line.as_bytes(), class);
            if !s.scan_plain() {
                return false;
            }
            let (fast, general) = (s.finish(), scan_line_general(line.as_bytes(), class));
            let strip = |r: Result<super::super::Scanned, _>| {
                r.map(|s| (s.info, s.lone_surrogate, s.depth, s.hashed))
            };
            assert_eq!(strip(fast), strip(general), "{line}");
            true
        });
        assert_eq!(taken[0], taken[1], "{line}");
        taken[0]
    }

    const RECORD: &str = r#"{"actor": {"host_id": "h", "user": "u"}, "event_type": "task.completed", "hash": "d85ef8e92bcb83712f3eb07c3bfde260d8790f85e9439e7b00c34830b7e88e98", "payload": {"a": [1, -2, 0.5, -0.0, true, false, null, [], {}, ""], "b": {"c": {"d": 12345678901234567890}}}, "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000", "seq": 1, "timestamp": "2026-12-03T10:08:25.958742+00:00", "workflow_id": null}"#;

    #[test]
    fn takes_the_lines_audit_logs_are_made_of() {
        assert!(plain(RECORD));
        assert!(plain("{}"));
        assert!(plain(r#"{"": 0, "a": ""}"#));
        // Every length around the 64-byte blocks, so the padded tail and strings across block
        // edges are both walked.
        for k in 0..200 {
            let line = format!(r#"{{"a": "{}", "b": {}}}"#, "x".repeat(k), k);
            assert!(plain(&line), "{line}");
        }
        let long = format!(r#"{{"a": "{}"}}"#, "x".repeat(MAX_PLAIN - 9));
        assert_eq!(long.len(), MAX_PLAIN);
        assert!(plain(&long));
        let n = MAX_PLAIN_DEPTH - 1;
        let deep = format!("{{\"a\": {}0{}}}", "[".repeat(n), "]".repeat(n));
        assert!(plain(&deep), "{deep}");
    }

    #[test]
    fn keys_that_look_like_fields_are_not_fields() {
        // Same length and first word as a field's name, or the name with one byte changed past
        // the first word: `finish` must see the same fields as after the general scan (which
        // `plain` compares).
        for key in [
            "event_typa",
            "event_tyqe",
            "timestamq",
            "workflow_ie",
            "prev_hasi",
            "prev_hash0",
            "actos",
            "hasi",
            "seq0",
            "payloae",
            "payloa",
            "se",
        ] {
            let mut members = alloc::vec![
                (String::from(key), "\"x\""),
                (String::from("actor"), r#"{"host_id": "h", "user": "u"}"#),
                (String::from("event_type"), "\"t\""),
                (String::from("payload"), "{}"),
                (String::from("timestamp"), "\"ts\""),
                (String::from("workflow_id"), "null"),
            ];
            members.sort();
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            let line = format!("{{{}}}", body.join(", "));
            assert!(plain(&line), "{line}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_general_scan() {
        let cases = [
            // Canonical, but not plain: escapes, non-ASCII, control bytes, too long, too deep,
            // numbers the shortcut does not vouch for.
            String::from(r#"{"a": "\n"}"#),
            String::from(r#"{"a": "\u00e9"}"#),
            String::from("{\"a\": \"\u{e9}\"}"),
            String::from("{\"a\": \"\x7f\"}"),
            format!(r#"{{"a": "{}"}}"#, "x".repeat(MAX_PLAIN - 8)),
            format!(
                "{{\"a\": {}0{}}}",
                "[".repeat(MAX_PLAIN_DEPTH),
                "]".repeat(MAX_PLAIN_DEPTH)
            ),
            String::from(r#"{"a": 1e-05}"#),
            String::from(r#"{"a": 1.2345678901234567}"#),
            format!(r#"{{"a": {}}}"#, "9".repeat(json::MAX_INT_DIGITS + 1)),
            // Not canonical, or not JSON.
            String::from(r#"{"b": 1, "a": 2}"#),
            String::from(r#"{"a": 1, "a": 2}"#),
            String::from(r#"{"a":1}"#),
            String::from(r#"{"a": 1,"b": 2}"#),
            String::from(r#"{"a": 1,  "b": 2}"#),
            String::from(r#"{"a" : 1}"#),
            String::from(r#"{"a": -0}"#),
            String::from(r#"{"a": 01}"#),
            String::from(r#"{"a": 1.50}"#),
            String::from(r#"{"a": 1.}"#),
            String::from(r#"{"a": -}"#),
            String::from(r#"{"a": tru}"#),
            String::from(r#"{"a": [1}"#),
            String::from(r#"{"a": {1]}"#),
            String::from(r#"{"a": 1} "#),
            String::from(r#"{"a": 1}}"#),
            String::from(r#" {"a": 1}"#),
            String::from(r#"{"a": "#),
            String::from(r#"{"a": 1"#),
            String::from(r#"{"a"#),
            String::from(r#"["a"]"#),
            String::new(),
        ];
        for line in &cases {
            assert!(!plain(line), "{line}");
        }
    }
}
