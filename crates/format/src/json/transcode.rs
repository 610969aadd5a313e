//! Canonical JSON straight from JSON text, without a `serde_json` tree (issue 15: parsing a
//! payload into a tree and encoding it was most of an `emit`'s encoding time).
//!
//! One pass over the text writes each value's canonical form as it is read: strings through
//! [`write_str`], numbers through [`write_number_text`] (the tree encoder's own functions), arrays
//! in order. An object's members are written in text order, each noted with its decoded key;
//! when the object closes and its keys are not already strictly ascending, its members are
//! rewritten sorted by code point (UTF-8 byte order, as the tree's `BTreeMap` sorts), keeping the
//! last of equal keys, as `serde_json` and Python do.
//!
//! Anything out of the ordinary makes it give up (`false`) and leave `out` as it was: text that
//! is not JSON, `NaN`, a lone surrogate, nesting past the limit, an integer past
//! [`super::MAX_INT_DIGITS`], a float that overflows. The caller then takes the tree path, which
//! gives the error. The payload tests (`tests/all/payload_text.rs`) check it gives the tree's
//! bytes for every text the tree accepts, and Python's.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{skip_plain, write_number_text, write_str};
use crate::verify::key_word;

/// Appends the canonical form of `text`, which must be one JSON object nested at most
/// `max_depth` levels (the object itself is one). `false` (and `out` unchanged) when the text is
/// not that, or is anything this pass leaves to the tree (see the module docs).
pub(super) fn object(out: &mut Vec<u8>, text: &str, max_depth: usize) -> bool {
    let start = out.len();
    let mut t = Transcoder {
        b: text.as_bytes(),
        text,
        i: 0,
        out,
        // One allocation for the members of most payloads.
        members: Vec::with_capacity(16),
        keys: Vec::new(),
        scratch: String::new(),
    };
    t.ws();
    let ok = t.b.get(t.i) == Some(&b'{') && t.value(max_depth).is_some() && {
        t.ws();
        t.i == t.b.len()
    };
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Where an object member's decoded key is.
#[derive(Clone, Copy)]
struct Key {
    /// In the input text (a key without escapes) rather than in [`Transcoder::keys`].
    in_text: bool,
    start: usize,
    end: usize,
}

/// Where a string read by [`Transcoder::string`] is, and whether it needs escaping.
#[derive(Clone, Copy)]
enum Str {
    /// `text[start..end]`, printable ASCII without `"` or `\`: written as it is, in quotes.
    Plain(usize, usize),
    /// `text[start..end]`, no escapes in the input, but bytes the encoder escapes (DEL,
    /// non-ASCII).
    Raw(usize, usize),
    /// Decoded into [`Transcoder::scratch`].
    Decoded,
}

/// A member written to `out`: its key, and its bytes there (`"key": value`, no separator).
#[derive(Clone, Copy)]
struct Member {
    key: Key,
    /// The key's first eight bytes as a big-endian word, zero-padded: words that differ order
    /// as the keys do (a shorter key's padding sorts first, as a prefix does), so most
    /// comparisons need not look at the keys.
    word: u64,
    start: usize,
    end: usize,
}

struct Transcoder<'a, 'o> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    out: &'o mut Vec<u8>,
    /// The members of every open object, innermost last.
    members: Vec<Member>,
    /// Decoded keys that had escapes.
    keys: Vec<u8>,
    /// A string with escapes, decoded.
    scratch: String,
}

impl Transcoder<'_, '_> {
    #[inline]
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// One value at `self.i` (no whitespace before it), with `depth` levels left for containers.
    fn value(&mut self, depth: usize) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => {
                let s = self.string()?;
                self.write_string(s);
            }
            b'{' => self.object(depth.checked_sub(1)?)?,
            b'[' => {
                let depth = depth.checked_sub(1)?;
                self.i += 1;
                self.out.push(b'[');
                self.ws();
                let mut more = !self.closes(b']');
                while more {
                    self.ws();
                    self.value(depth)?;
                    more = self.next_item(b']')?;
                }
                self.out.push(b']');
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while matches!(
                    self.b.get(self.i),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                // The tree encoder's rule and checks for the token (grammar, digits, overflow).
                write_number_text(self.out, &self.text[start..self.i]).ok()?;
            }
            _ => return None,
        }
        Some(())
    }

    /// Whether the container ends right here, at `close` (consumed).
    fn closes(&mut self, close: u8) -> bool {
        let here = self.b.get(self.i) == Some(&close);
        self.i += usize::from(here);
        here
    }

    /// After an item: `Some(true)` at a `,` (written as `, `), `Some(false)`
    /// at `close`, `None` at anything else. Consumes what it read.
    fn next_item(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        if c == b',' {
            self.out.extend_from_slice(b", ");
            Some(true)
        } else {
            (c == close).then_some(false)
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(lit).then(|| {
            self.i += lit.len();
            self.out.extend_from_slice(lit);
        })
    }

    /// An object at its `{`; `depth` levels are left for the containers inside it.
    fn object(&mut self, depth: usize) -> Option<()> {
        self.i += 1;
        self.out.push(b'{');
        let body = self.out.len();
        let first = self.members.len();
        let keys = self.keys.len();
        self.ws();
        if !self.closes(b'}') {
            loop {
                self.ws();
                if self.b.get(self.i) != Some(&b'"') {
                    return None;
                }
                let start = self.out.len();
                let s = self.string()?;
                self.write_string(s);
                let key = match s {
                    Str::Plain(start, end) | Str::Raw(start, end) => Key {
                        in_text: true,
                        start,
                        end,
                    },
                    Str::Decoded => {
                        let k = self.keys.len();
                        self.keys.extend_from_slice(self.scratch.as_bytes());
                        Key {
                            in_text: false,
                            start: k,
                            end: self.keys.len(),
                        }
                    }
                };
                self.eat(b':')?;
                self.out.extend_from_slice(b": ");
                self.ws();
                self.value(depth)?;
                let word = {
                    let k = self.key_bytes(key);
                    key_word(k, 0, k.len())
                };
                self.members.push(Member {
                    key,
                    word,
                    start,
                    end: self.out.len(),
                });
                if !self.next_item(b'}')? {
                    break;
                }
            }
            self.sort_members(body, first);
        }
        self.members.truncate(first);
        self.keys.truncate(keys);
        self.out.push(b'}');
        Some(())
    }

    /// The decoded bytes of a key.
    fn key_bytes(&self, k: Key) -> &[u8] {
        if k.in_text {
            &self.b[k.start..k.end]
        } else {
            &self.keys[k.start..k.end]
        }
    }

    /// Rewrites the members from `first` on (the object's body starts at `out[body]`) sorted by
    /// key, the last of equal keys kept, unless they are in order already. The sorted body is
    /// written after the unsorted one and moved down over it, so nothing is allocated.
    fn sort_members(&mut self, body: usize, first: usize) {
        let Transcoder {
            b,
            members,
            keys,
            out,
            ..
        } = self;
        let key = |k: Key| {
            if k.in_text {
                &b[k.start..k.end]
            } else {
                &keys[k.start..k.end]
            }
        };
        let order =
            |x: &Member, y: &Member| x.word.cmp(&y.word).then_with(|| key(x.key).cmp(key(y.key)));
        let members = &mut members[first..];
        if members
            .windows(2)
            .all(|w| order(&w[0], &w[1]) == Ordering::Less)
        {
            return;
        }
        // Stable: equal keys stay in text order, so the last of a run is the one kept.
        members.sort_by(order);
        let unsorted_end = out.len();
        let mut written = false;
        for (n, member) in members.iter().enumerate() {
            if let Some(next) = members.get(n + 1)
                && order(next, member) == Ordering::Equal
            {
                continue;
            }
            if written {
                out.extend_from_slice(b", ");
            }
            written = true;
            out.extend_from_within(member.start..member.end);
        }
        let sorted_len = out.len() - unsorted_end;
        out.copy_within(unsorted_end.., body);
        out.truncate(body + sorted_len);
    }

    /// A string at its `"`: returns where its text is, either in the input (the bytes between
    /// the quotes, no escapes) or decoded into `self.scratch`.
    fn string(&mut self) -> Option<Str> {
        let start = self.i + 1;
        // Eight bytes at a time to the first byte that is not plain (most strings: the quote).
        let mut i = skip_plain(self.b, start);
        if self.b.get(i) == Some(&b'"') {
            self.i = i + 1;
            return Some(Str::Plain(start, i));
        }
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(Str::Raw(start, i));
                }
                b'\\' => break,
                0..0x20 => return None,
                _ => i += 1,
            }
        }
        // Escapes: decode the whole string into `scratch`.
        self.scratch.clear();
        self.scratch.push_str(&self.text[start..i]);
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(Str::Decoded);
                }
                b'\\' => {
                    let c = match *self.b.get(i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4(i + 2)?;
                            i += 6;
                            let cp = match hi {
                                0xd800..0xdc00 => {
                                    if self.b.get(i..i + 2)? != b"\\u" {
                                        return None;
                                    }
                                    let lo = self.hex4(i + 2)?;
                                    if !(0xdc00..0xe000).contains(&lo) {
                                        return None;
                                    }
                                    i += 6;
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                }
                                0xdc00..0xe000 => return None,
                                _ => hi,
                            };
                            self.scratch.push(char::from_u32(cp)?);
                            continue;
                        }
                        _ => return None,
                    };
                    self.scratch.push(c);
                    i += 2;
                }
                0..0x20 => return None,
                _ => {
                    // Copy up to the next quote or backslash (UTF-8 sequences stay whole: both
                    // are ASCII).
                    let run = self.b[i..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                        .map_or(self.b.len(), |p| i + p);
                    self.scratch.push_str(&self.text[i..run]);
                    i = run;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        h.iter()
            .try_fold(0u32, |v, &c| Some((v << 4) | char::from(c).to_digit(16)?))
    }

    fn write_string(&mut self, s: Str) {
        match s {
            Str::Plain(start, end) => {
                // Nothing to escape: the quotes and the bytes, as `write_str` would write them.
                self.out.push(b'"');
                self.out.extend_from_slice(&self.b[start..end]);
                self.out.push(b'"');
            }
            Str::Raw(start, end) => write_str(self.out, &self.text[start..end]),
            Str::Decoded => write_str(self.out, &self.scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{MAX_DEPTH, parse_object, write_object_within};
    use proptest::prelude::*;

    /// The transcoder's bytes, or `None` where it leaves the text to the tree.
    fn transcoded(text: &str, depth: usize) -> Option<String> {
        let mut out = b"kept".to_vec();
        if object(&mut out, text, depth) {
            Some(String::from_utf8(out[4..].to_vec()).unwrap())
        } else {
            assert_eq!(out, b"kept", "{text:?}");
            None
        }
    }

    fn via_tree(text: &str, depth: usize) -> Option<String> {
        let mut out = Vec::new();
        write_object_within(&mut out, &parse_object(text).ok()?, depth).ok()?;
        Some(String::from_utf8(out).unwrap())
    }

    /// Every text the tree encodes, the transcoder encodes alike (it never gives up on them), and
    /// every text the tree refuses, it leaves to the tree.
    fn same(text: &str) {
        assert_eq!(
            transcoded(text, MAX_DEPTH),
            via_tree(text, MAX_DEPTH),
            "{text:?}"
        );
    }

    #[test]
    fn corpus() {
        for t in [
            "{}",
            " { } ",
            "{\"b\":1,\"a\":2}",
            r#"{"a": 1, "a": 2, "b": [], "a": 3}"#,
            r#"{"z": {"y": 1, "x": {"w": [1, {"v": 2, "u": 3}]}}, "a": null}"#,
            r#"{"k": "\u00E9\n\t\"\\\/\b\f\r", "j": "\ud83d\ude00 é 😀"}"#,
            r#"{"\u0062": 1, "a": 2, "\u0061": 3}"#,
            r#"{"é": 1, "z": 2, "\u00e9": 3, "\uffff": 4, "😀": 5}"#,
            // Keys whose first eight bytes tie (zero bytes decoded from `\u0000` against the
            // padding of a shorter key), so only the whole keys order them.
            r#"{"a\u0000": 1, "a": 2, "a\u0000b": 3, "abcdefgh2": 4, "abcdefgh": 5, "abcdefgh1": 6}"#,
            r#"{"n": [-0, 0, -0.0, 1.50, 1E2, 1e-7, 123456789012345678901234567890, 0.1]}"#,
            r#"{"t": true, "f": false, "n": null}"#,
            "{\"a\":\t[ 1 ,\r\n2 ]\n}",
            // Left to the tree, which refuses them.
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\udc00"}"#,
            r#"{"a": "\ud800\u0041"}"#,
            r#"{"a": NaN}"#,
            r#"{"a": 1e400}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": .5}"#,
            r#"{"a": +1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": [1,]}"#,
            r#"{"a" 1}"#,
            r#"{a: 1}"#,
            r#"{"a": tru}"#,
            r#"{"a": "\x"}"#,
            "{\"a\": \"\u{1}\"}",
            r#"{"a": 1} {}"#,
            r#"[]"#,
            r#"{"a": 1"#,
            "",
        ] {
            same(t);
        }
        assert!(transcoded(r#"{"b": 1, "a": 2}"#, MAX_DEPTH).is_some());
        assert!(transcoded(r#"{"a": "\ud800"}"#, MAX_DEPTH).is_none());
    }

    #[test]
    fn nesting_limits() {
        for limit in [1, 2, 3, 10] {
            for levels in 1..=limit + 1 {
                let text = alloc::format!(
                    "{{\"a\": {}0{}}}",
                    "[".repeat(levels - 1),
                    "]".repeat(levels - 1)
                );
                assert_eq!(
                    transcoded(&text, limit).is_some(),
                    levels <= limit,
                    "{text}"
                );
                assert_eq!(transcoded(&text, limit), via_tree(&text, limit), "{text}");
            }
        }
    }

    /// JSON text with keys in any order, duplicates, odd spacing and escapes.
    fn arb_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(alloc::vec![
            "a",
            "b",
            "B",
            "é",
            "\\u00e9",
            "\\u0061",
            "z",
            "\\ud83d\\ude00",
            "\\uffff",
            "",
            "a\\n",
        ]);
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| alloc::format!("{f:e}")),
            "[a-z\u{e9}\u{1f600} ]{0,6}".prop_map(|s| alloc::format!("\"{s}\"")),
            Just(r#""\u00E9\t\/""#.to_string()),
        ];
        let ws = prop::sample::select(alloc::vec!["", " ", "\n  "]);
        let value = leaf.prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), ws.clone())
                    .prop_map(|(v, w)| alloc::format!("[{w}{}]", v.join(","))),
                (
                    prop::collection::vec((key.clone(), inner), 0..5),
                    ws.clone()
                )
                    .prop_map(|(kv, w)| {
                        let m: Vec<String> = kv
                            .iter()
                            .map(|(k, v)| alloc::format!("\"{k}\"{w}:{w}{v}"))
                            .collect();
                        alloc::format!("{{{w}{}}}", m.join(", "))
                    }),
            ]
        });
        prop::collection::vec(value, 0..4).prop_map(|vs| {
            let m: Vec<String> = vs
                .iter()
                .enumerate()
                .map(|(i, v)| alloc::format!("\"k{}\": {v}", 3 - i))
                .collect();
            alloc::format!("{{{}}}", m.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn matches_the_tree(text in arb_text()) {
            let tree = via_tree(&text, MAX_DEPTH);
            prop_assert!(tree.is_some(), "generated text is valid: {}", text);
            prop_assert_eq!(transcoded(&text, MAX_DEPTH), tree, "{}", text);
        }
    }
}
