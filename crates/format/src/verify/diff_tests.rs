//! Differential tests of the scan: the shipped scan (with the CPU's block classifier and with the
//! portable one) against the scanner as it was before issue 15 part 3 ([`super::old_scan`]),
//! verdict, error and hashed bytes alike, and against Python's `json` module for canonical form.
//! Inputs: valid canonical lines mutated byte by byte, structured edits (key swaps, number and
//! escape spellings, whitespace, deep nesting, strings across 64-byte block edges, non-ASCII, lone
//! surrogates) and proptest-generated JSON-ish text.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{
    Classifier, LineError, LineInfo, Scanner, old_scan, scan_line_general, scan_line_with,
};
use crate::{Hash, json};

/// Everything a scan of a line decides: the verdict and error, and for accepted lines what the
/// hash check and Strict mode rely on.
type Outcome = Result<(LineInfo, bool, usize, Option<(Hash, usize, usize)>), LineError>;

fn new_outcome(line: &[u8], c: Classifier) -> Outcome {
    scan_line_with(line, c).map(|s| (s.info, s.lone_surrogate, s.depth, s.hashed))
}

fn general_outcome(line: &[u8], c: Classifier) -> Outcome {
    scan_line_general(line, c).map(|s| (s.info, s.lone_surrogate, s.depth, s.hashed))
}

/// Whether the plain-line path ([`super::plain`]) takes the line with classifier `c`.
fn plain_takes(line: &[u8], c: Classifier) -> bool {
    Scanner::with_classifier(line, c).scan_plain()
}

fn old_outcome(line: &[u8]) -> Outcome {
    old_scan::scan_line(line).map(|s| (s.info, s.lone_surrogate, s.depth, s.hashed))
}

/// The canonical-form verdict on a JSON text (any value, not only a record): the scan reads it
/// and finds nothing non-canonical.
fn canonical_text(b: &[u8], c: Classifier) -> bool {
    let mut s = Scanner::with_classifier(b, c);
    s.scan().is_ok() && s.dev.is_none()
}

/// Requires the same outcome from the old scanner, the shipped scan with the detected classifier
/// and the shipped scan with the portable one, and the general scan alone (without the plain-line
/// path); also for the torn-write prefix rule. Returns whether the plain-line path took the line.
fn assert_same(line: &[u8]) -> bool {
    let old = old_outcome(line);
    let plain = plain_takes(line, Classifier::detect());
    for c in [Classifier::detect(), Classifier::portable()] {
        let new = new_outcome(line, c);
        assert_eq!(
            new,
            old,
            "scan differs ({:?}, plain path: {plain}) on {:?}",
            c,
            String::from_utf8_lossy(line)
        );
        assert_eq!(
            general_outcome(line, c),
            old,
            "general scan differs ({:?}) on {:?}",
            c,
            String::from_utf8_lossy(line)
        );
        assert_eq!(plain_takes(line, c), plain, "plain path differs ({c:?})");
        assert!(
            !plain || canonical_text(line, c),
            "the plain path took a line the general scan finds not canonical"
        );
        let mut s = Scanner::with_classifier(line, c);
        let prefix = !line.is_empty() && line[0] == b'{' && s.scan() == Err(super::Fault::Eof);
        let prefix = line.is_empty() || (prefix && s.dev.is_none());
        assert_eq!(
            prefix,
            old_scan::is_canonical_prefix(line),
            "prefix rule differs ({c:?}) on {:?}",
            String::from_utf8_lossy(line)
        );
    }
    assert_eq!(
        super::is_canonical_prefix(line),
        old_scan::is_canonical_prefix(line)
    );
    plain
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Payloads whose records are the seeds: long strings across block edges, escapes, non-ASCII,
/// surrogates, numbers of every form, nesting, keys that sort only by their later bytes.
fn seed_payloads() -> Vec<String> {
    let mut p: Vec<String> = [
        r#"{"a": 1, "b": [1, -2, 0.5, -0.0, 1e-05, 1.5e+300, true, false, null], "c": {}}"#,
        r#"{"s": "\" \\ \n \r \t \b \f \u0000 \u001f \u00e9 \ud83d\ude00 \u2028 \u007f"}"#,
        r#"{"lone": "\ud800 x \udfff \ud83d", "\ud800": 1, "\ue000": 3, "\ud83d\ude00": 2}"#,
        r#"{"": 0, "a": {"": [], "a": [[[[{"z": null}]]]]}, "aa": "\u00e9", "ab": "\u65e5\u672c"}"#,
        r#"{"big": 123456789012345678901234567890, "f": 0.1, "g": 2.5e-320, "h": 1e+16, "i": 123456789012345.6}"#,
        r#"{"hash": "x", "prev_hash": 1, "seq": "s", "workflow_id": {"hash": "0"}}"#,
        r#"{"k": [1.0, 10.0, 100000.0, 1e+22, 0.0001, 5e-324, -1.7976931348623157e+308]}"#,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for len in [55usize, 62, 63, 64, 65, 66, 127, 128, 129, 200] {
        let s = "x".repeat(len);
        p.push(format!(
            r#"{{"s": "{s}", "t": "{s}\n{s}", "u": "{s}\u00e9"}}"#
        ));
        p.push(format!(r#"{{"{s}a": 1, "{s}b": 2}}"#));
    }
    p
}

/// Canonical record lines (sealed, so the hash is right) and a few canonical non-records.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, text) in seed_payloads().iter().enumerate() {
        // Written out around the payload's text, then hashed over its own bytes.
        const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        let chained = format!(
            r#"{{"actor": {{"host_id": "h", "user": "u"}}, "event_type": "e", "hash": "{ZERO}", "payload": {text}, "prev_hash": "{ZERO}", "seq": {seq}, "timestamp": "t", "workflow_id": null}}"#,
            seq = i + 1
        );
        let h = Hash::of(
            chained
                .replacen(&format!("\"hash\": \"{ZERO}\", "), "", 1)
                .as_bytes(),
        );
        out.push(chained.replacen(ZERO, &h.to_hex(), 1).into_bytes());
        out.push(
            format!(
                r#"{{"actor": {{"host_id": "h", "user": "u"}}, "event_type": "e", "payload": {text}, "timestamp": "t", "workflow_id": "w"}}"#
            )
            .into_bytes(),
        );
        // Sealed by the crate where the payload fits its tree (not with lone surrogates).
        let Ok(payload) = json::parse_object(text) else {
            continue;
        };
        let user = "u".repeat(i * 7 % 70);
        let ev = crate::record::Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: "\"hash\": \"",
            workflow_id: if i % 3 == 0 { None } else { Some("wf") },
            actor: crate::record::Actor {
                host_id: "h",
                user: &user,
            },
            payload: (&payload).into(),
        };
        for chain in [true, false] {
            let prev = Hash::of(b"p");
            let mut line = Vec::new();
            crate::chain::seal(&ev, 1 + i as u64, chain.then_some(&prev), &mut line).unwrap();
            line.pop();
            out.push(line);
        }
    }
    for t in [
        "[]",
        "{}",
        "\"\"",
        "0",
        "-0.0",
        "[[], {}, \"\\u00e9\"]",
        "{\"a\": [1, 2]}",
    ] {
        out.push(t.as_bytes().to_vec());
    }
    out
}

/// Spellings to splice in: separators, escapes, number forms, literals, bytes that are special
/// inside strings.
const SPLICES: &[&str] = &[
    "\"",
    "\\",
    " ",
    "  ",
    ",",
    ", ",
    ":",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "0",
    "1",
    "-",
    ".",
    "e",
    "E",
    "+",
    "u",
    "n",
    "t",
    "f",
    "N",
    "I",
    "\t",
    "\n",
    "\r",
    "a",
    "A",
    "/",
    "\u{7f}",
    "\u{1f}",
    "\0",
    "é",
    "😀",
    "\\u00E9",
    "\\u00e9",
    "\\u0041",
    "\\/",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\uD83D\\uDE00",
    "\\ud83d",
    "\\u12",
    "\\x",
    "\\n",
    "\\u000a",
    "\\u007f",
    "\\\"",
    "1.50",
    "1e5",
    "1E+05",
    "-0",
    "01",
    "1.",
    ".5",
    "1e-7",
    "1e-07",
    "100000.0e0",
    "0.1",
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    "nul",
    "tru",
    "\"a\": 1, ",
    "\"hash\": ",
    "\"seq\": 1, ",
    "[1, ]",
    "{\"a\": }",
];

/// One random edit of `line`.
fn mutate(rng: &mut Rng, line: &[u8]) -> Vec<u8> {
    let mut l = line.to_vec();
    let n = l.len();
    let at = rng.below(n + 1);
    match rng.below(11) {
        0 if n > 0 => l[at.min(n - 1)] ^= 1 << rng.below(8),
        1 if n > 0 => l[at.min(n - 1)] = rng.next() as u8,
        2 => {
            let s = rng.pick(SPLICES).as_bytes();
            l.splice(at..at, s.iter().copied());
        }
        3 if n > 0 => {
            // Replace a token-sized run with a splice.
            let s = rng.pick(SPLICES).as_bytes();
            let end = (at + 1 + rng.below(4)).min(n);
            l.splice(at.min(n - 1)..end, s.iter().copied());
        }
        4 if n > 0 => {
            l.remove(at.min(n - 1));
        }
        5 => {
            // Delete or duplicate a range.
            let end = (at + rng.below(40)).min(n);
            if rng.below(2) == 0 {
                l.drain(at..end);
            } else {
                let copy = l[at..end].to_vec();
                let to = rng.below(n + 1);
                l.splice(to..to, copy);
            }
        }
        6 => {
            // Swap the members around two `, ` separators (key order, duplicates).
            let seps: Vec<usize> = l
                .windows(3)
                .enumerate()
                .filter(|(_, w)| w == b", \"")
                .map(|(i, _)| i)
                .collect();
            if seps.len() >= 2 {
                let a = *rng.pick(&seps);
                let b = *rng.pick(&seps);
                let (a, b) = (a.min(b), a.max(b));
                if a < b {
                    let mid = l[a + 2..b].to_vec();
                    let next = l[b + 2..]
                        .iter()
                        .position(|&c| c == b',' || c == b'}')
                        .map_or(l.len(), |p| b + 2 + p);
                    let second = l[b + 2..next].to_vec();
                    let mut m = l[..a + 2].to_vec();
                    m.extend_from_slice(&second);
                    m.extend_from_slice(b", ");
                    m.extend_from_slice(&mid[..mid.len().saturating_sub(0)]);
                    m.extend_from_slice(&l[next..]);
                    l = m;
                }
            }
        }
        7 => l.truncate(at),
        8 => {
            // Deep nesting around a value, at the limit and past it.
            let d = *rng.pick(&[1usize, 15, 16, 17, 993, 994, 995, 996, 1200]);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{\"a\": ", "}")
            };
            let mut m = l[..at].to_vec();
            m.extend(open.repeat(d).bytes());
            m.extend_from_slice(b"1");
            m.extend(close.repeat(d).bytes());
            m.extend_from_slice(&l[at..]);
            l = m;
        }
        9 => {
            // Whitespace of every JSON kind anywhere.
            let s = rng.pick(&[" ", "\t", "\n", "\r", "  "]).as_bytes();
            l.splice(at..at, s.iter().copied());
        }
        _ => {
            // Pad a string across a 64-byte edge and put a special byte near it.
            if let Some(q) = l[at..].iter().position(|&c| c == b'"') {
                let q = at + q + 1;
                let pad = rng.below(130);
                let mut m = l[..q].to_vec();
                m.extend(core::iter::repeat_n(b'y', pad));
                if rng.below(2) == 0 {
                    m.extend_from_slice(rng.pick(SPLICES).as_bytes());
                }
                m.extend_from_slice(&l[q..]);
                l = m;
            }
        }
    }
    l
}

/// The mutated corpus: every seed, then rounds of one and two edits.
fn corpus(per_seed: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::new();
    for seed in seeds() {
        // Every seed is a valid line, so mutations start from canonical form.
        assert!(
            old_outcome(&seed).is_ok() || !seed.starts_with(b"{\"actor"),
            "{:?}",
            String::from_utf8_lossy(&seed)
        );
        out.push(seed.clone());
        for k in 0..per_seed {
            let once = mutate(&mut rng, &seed);
            out.push(if k % 3 == 0 {
                mutate(&mut rng, &once)
            } else {
                once
            });
        }
        // Every single-byte deletion and every `"`/`\\`/space insertion of the seed.
        for i in 0..seed.len() {
            let mut d = seed.clone();
            d.remove(i);
            out.push(d);
        }
    }
    out
}

#[test]
fn shipped_scan_agrees_with_the_old_scanner_on_mutated_lines() {
    let corpus = corpus(1500);
    assert!(corpus.len() > 50_000, "{}", corpus.len());
    let valid = corpus.iter().filter(|l| old_outcome(l).is_ok()).count();
    // Enough of each kind that both verdicts are exercised.
    assert!(valid > 100 && valid < corpus.len() / 2, "{valid}");
    let plain = corpus.iter().filter(|line| assert_same(line)).count();
    // The plain-line path is exercised, and not only on the seeds: it takes more lines than
    // there are seeds (valid lines are mostly edits that kept the line canonical).
    assert!(plain > seeds().len() && plain < valid, "{plain} of {valid}");
}

#[test]
fn classifiers_agree_on_every_byte_at_every_position() {
    let backgrounds: [[u8; 64]; 4] = [
        [b'a'; 64],
        core::array::from_fn(|k| [b'"', 0x1f, 0x20, 0x7e, 0x7f, 0x80, b'\\', 0xff][k % 8]),
        core::array::from_fn(|k| (k as u8).wrapping_mul(37)),
        [0; 64],
    ];
    let (fast, portable) = (Classifier::detect(), Classifier::portable());
    for bg in backgrounds {
        for pos in 0..64 {
            for v in 0..=255u8 {
                let mut c = bg;
                c[pos] = v;
                assert_eq!(fast.masks(&c), portable.masks(&c), "{pos} {v:#x}");
            }
        }
    }
}

/// Python's canonical-form verdict on each text: `json.loads` reads it (no NaN/Infinity, at most
/// 995 levels, at most 4300-digit integers) and `json.dumps(..., sort_keys=True)` gives the same
/// text back.
fn python_canonical(texts: &[Vec<u8>]) -> Vec<bool> {
    const SCRIPT: &str = r#"
import json, sys
sys.setrecursionlimit(20000)
def no_constants(c):
    raise ValueError(c)
def depth(v):
    d, stack = 0, [(v, 1)]
    while stack:
        x, k = stack.pop()
        if isinstance(x, (dict, list)):
            d = max(d, k)
            stack.extend((y, k + 1) for y in (x.values() if isinstance(x, dict) else x))
    return d
for h in sys.stdin.read().split():
    b = bytes.fromhex(h[1:])
    try:
        s = b.decode("utf-8")
        o = json.loads(s, parse_constant=no_constants)
        ok = depth(o) <= 995 and json.dumps(o, sort_keys=True) == s
    except (ValueError, RecursionError):
        ok = False
    sys.stdout.write("1\n" if ok else "0\n")
"#;
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut input = String::new();
    for t in texts {
        input.push('x');
        for b in t {
            input.push_str(&format!("{b:02x}"));
        }
        input.push('\n');
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is the oracle for canonical form; install it");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let v: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(v.len(), texts.len());
    v
}

#[test]
fn canonical_form_verdict_agrees_with_python() {
    let corpus = corpus(300);
    let py = python_canonical(&corpus);
    let mut canonical = 0;
    let mut plain = 0;
    for (text, want) in corpus.iter().zip(py) {
        canonical += usize::from(want);
        for c in [Classifier::detect(), Classifier::portable()] {
            assert_eq!(
                canonical_text(text, c),
                want,
                "python says canonical = {want} ({c:?}): {:?}",
                String::from_utf8_lossy(text)
            );
            let taken = plain_takes(text, c);
            assert!(
                want || !taken,
                "the plain path took a text Python does not write ({c:?}): {:?}",
                String::from_utf8_lossy(text)
            );
            plain += usize::from(taken);
        }
    }
    assert!(canonical > 100, "{canonical}");
    assert!(plain > 100, "{plain}");
}

/// JSON-ish text: tokens a scanner must tell apart, in any order.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ", ",
        ":",
        ": ",
        "\"a\"",
        "\"b\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "\"é\"",
        "1",
        "-0",
        "0.5",
        "1e5",
        "1.50",
        "true",
        "null",
        " ",
        "\"",
        "\\",
        "\"hash\"",
        "\"x\\\"y\"",
        "\u{7f}",
        "\t",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|ts| ts.concat().into_bytes())
}

/// A random JSON value, written canonically by the crate's encoder.
fn value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\u{e9}\u{1f600}\"\\\\\n\u{7f}]{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-c\u{e9}]{0,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn token_soup_scans_the_same(text in token_soup()) {
        assert_same(&text);
    }

    #[test]
    fn generated_values_scan_the_same_whole_and_mutated(v in value(), seed in 1u64..u64::MAX) {
        let text = json::to_canonical(&v).unwrap().into_bytes();
        for c in [Classifier::detect(), Classifier::portable()] {
            prop_assert!(canonical_text(&text, c), "{:?}", String::from_utf8_lossy(&text));
        }
        assert_same(&text);
        let mut rng = Rng(seed);
        for _ in 0..8 {
            assert_same(&mutate(&mut rng, &text));
        }
    }
}
