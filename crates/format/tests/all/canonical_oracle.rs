//! check_line against the Python algorithm, line by line: canonical records, and the
//! non-canonical variants a forger would seal over their own bytes (duplicate keys, key order,
//! number and escape spellings, whitespace), lone surrogates, deep nesting, huge integers.
//! Each batch runs ONE python3 process.

use chainsink_format::json::{self, MAX_INT_DIGITS, MAX_READ_DEPTH};
use chainsink_format::verify::{LineError, Mode, check_line};
use chainsink_format::{Hash, MAX_RECORD_BYTES, chain};

use crate::common::{TS, event, python};
use crate::oracle::python_line_verdicts;

const PREV: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A chained record line around `payload` (text, put in as is) with a placeholder hash.
fn record_text(payload: &str) -> String {
    format!(
        r#"{{"actor": {{"host_id": "h", "user": "u"}}, "event_type": "e", "hash": "{ZERO}", "payload": {payload}, "prev_hash": "{PREV}", "seq": 1, "timestamp": "{TS}", "workflow_id": null}}"#
    )
}

/// Seals a line the way a forger would: `hash` = SHA-256 of the line's OWN bytes without the
/// `"hash": "<64 hex>", ` member (right only when the bytes are canonical).
fn forge(line: &str) -> String {
    let member = format!("\"hash\": \"{ZERO}\", ");
    let h = Hash::of(line.replacen(&member, "", 1).as_bytes());
    line.replacen(ZERO, &h.to_hex(), 1)
}

/// Python's reseal: the hash the reference algorithm expects for the line's content (so only our
/// canonical-bytes rule can refuse it). Lines Python cannot read come back unchanged.
fn python_reseal(lines: &[String]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, hashlib, sys
sys.setrecursionlimit(20000)
for h in sys.stdin.read().split():
    b = bytes.fromhex(h)
    try:
        o = json.loads(b.decode("utf-8"))
        body = {k: v for k, v in o.items() if k != "hash"}
        new = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        b = b.replace(o["hash"].encode(), new.encode(), 1)
    except Exception:
        pass
    sys.stdout.write(b.hex() + "\n")
"#;
    let input: String = lines
        .iter()
        .map(|l| crate::oracle::hex(l.as_bytes()) + "\n")
        .collect();
    python(SCRIPT, &input)
        .lines()
        .map(|h| {
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

/// Payload texts: canonical ones and non-canonical spellings of the same content.
fn payloads() -> Vec<String> {
    let mut p: Vec<String> = [
        // Canonical.
        r#"{"amount": 1000000}"#,
        r#"{"a": 2, "b": 1}"#,
        r#"{"x": 1.5}"#,
        r#"{"x": 100000.0}"#,
        r#"{"x": 0}"#,
        r#"{"x": -0.0}"#,
        r#"{"x": 1e-05, "y": 1e+16, "z": 0.0001}"#,
        r#"{"s": "\u00e9 / \n \u007f \" \\ \ud83d\ude00"}"#,
        // Duplicate keys (Python keeps the last).
        r#"{"amount": 1, "amount": 1000000}"#,
        r#"{"amount": 1000000, "amount": 1000000}"#,
        r#"{"a": {"k": 1, "k": 1}}"#,
        // Key order.
        r#"{"b": 1, "a": 2}"#,
        r#"{"a": {"d": 1, "c": 2}}"#,
        r#"{"B": 1, "a": 2}"#,
        // Numbers.
        r#"{"x": 1.50}"#,
        r#"{"x": 15e-1}"#,
        r#"{"x": 1.5E0}"#,
        r#"{"x": 1E5}"#,
        r#"{"x": 1e5}"#,
        r#"{"x": 1e+05}"#,
        r#"{"x": 100000.00}"#,
        r#"{"x": -0}"#,
        r#"{"x": 01}"#,
        r#"{"x": +1}"#,
        r#"{"x": -0.00}"#,
        r#"{"x": 1.0e-5}"#,
        r#"{"x": 0.00001}"#,
        r#"{"x": 10000000000000000.0}"#,
        r#"{"x": 1e400}"#,
        r#"{"x": 1e-400}"#,
        r#"{"x": NaN}"#,
        r#"{"x": Infinity}"#,
        r#"{"x": -Infinity}"#,
        r#"{"x": 1.}"#,
        // Escapes.
        r#"{"s": "\u00E9"}"#,
        "{\"s\": \"\u{e9}\"}",
        r#"{"s": "\/"}"#,
        r#"{"s": "/"}"#,
        r#"{"s": "\u000a"}"#,
        r#"{"s": "\u0041"}"#,
        r#"{"s": "\u0022"}"#,
        "{\"s\": \"\u{7f}\"}",
        r#"{"s": "\uD83D\uDE00"}"#,
        "{\"s\": \"\u{1f600}\"}",
        r#"{"s": "\x"}"#,
        "{\"s\": \"\t\"}",
        // Whitespace.
        r#"{"a":2}"#,
        r#"{"a" : 2}"#,
        r#"{"a":  2}"#,
        r#"{ "a": 2}"#,
        r#"{"a": 2 }"#,
        r#"{"a": [1,2]}"#,
        r#"{"a": [1,  2]}"#,
        "{\"a\": [1,\t2]}",
        "{\"a\":\r2}",
        // Lone surrogates, in values and keys, and their order as json.loads reads them.
        r#"{"s": "\ud800"}"#,
        r#"{"s": "\udc00x\ud83d"}"#,
        r#"{"s": "\ude00\ud83d"}"#,
        r#"{"\ud800": 1}"#,
        r#"{"\ud800": 1, "\ue000": 2}"#,
        r#"{"\ue000": 1, "\ud800": 2}"#,
        r#"{"\ue000": 1, "\ud83d\ude00": 2}"#,
        r#"{"\ud83d\ude00": 1, "\ue000": 2}"#,
        r#"{"\ud83d": 1, "\ud83d\ude00": 2}"#,
        r#"{"\ud83d\ude00": 1, "\ud83d": 2}"#,
        r#"{"\udbff\udfff": 1, "\uffff": 2}"#,
        r#"{"\uffff": 1, "\udbff\udfff": 2}"#,
        r#"{"\ud800": 1, "\ud800": 2}"#,
        r#"{"\"": 1, "\\": 2, "\n": 3}"#,
        r#"{"\n": 3, "\"": 1, "\\": 2}"#,
        r#"{"\u00e9": 1, "z": 2}"#,
        r#"{"z": 1, "\u00e9": 2}"#,
        r#"{"a\u0000": 1, "a": 2}"#,
        r#"{"a": 1, "a\u0000": 2}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Deep nesting around both limits: the record is one level, the payload another.
    for total in [
        json::MAX_WRITE_DEPTH,
        json::MAX_WRITE_DEPTH + 1,
        MAX_READ_DEPTH - 1,
        MAX_READ_DEPTH,
        MAX_READ_DEPTH + 1,
        MAX_READ_DEPTH + 50,
    ] {
        let inner = total - 2;
        p.push(format!(
            "{{\"a\": {}{}}}",
            "[".repeat(inner),
            "]".repeat(inner)
        ));
        p.push(format!(
            "{{\"a\": {}1{}}}",
            "{\"k\": ".repeat(inner),
            "}".repeat(inner)
        ));
    }
    // Huge integers around Python's 4300-digit limit.
    for digits in [MAX_INT_DIGITS - 1, MAX_INT_DIGITS, MAX_INT_DIGITS + 1] {
        let n = format!("1{}", "0".repeat(digits - 1));
        p.push(format!("{{\"n\": {n}}}"));
        p.push(format!("{{\"n\": -{n}}}"));
    }
    p
}

/// Our verdict in both modes (they must agree, error included).
fn ours(line: &[u8]) -> bool {
    let fast = check_line(line, Mode::Fast);
    let strict = check_line(line, Mode::Strict);
    assert_eq!(
        fast,
        strict,
        "modes disagree on {}",
        String::from_utf8_lossy(line)
    );
    fast.is_ok()
}

/// Returns how many lines are valid.
fn assert_same_verdicts(lines: &[String]) -> usize {
    let bytes: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    let py = python_line_verdicts(&bytes);
    let valid = py.iter().filter(|&&v| v).count();
    eprintln!("{} lines, {valid} valid by Python's rule", lines.len());
    let mut wrong = Vec::new();
    for (line, want) in lines.iter().zip(py) {
        let got = ours(line.as_bytes());
        if got != want {
            let short: String = line.chars().take(300).collect();
            wrong.push(format!("ours {got}, python {want}: {short}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} verdicts differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    valid
}

#[test]
fn forged_and_resealed_variants_match_python() {
    let texts: Vec<String> = payloads().iter().map(|p| record_text(p)).collect();
    let forged: Vec<String> = texts.iter().map(|t| forge(t)).collect();
    let resealed = python_reseal(&texts);
    let mut all = forged.clone();
    all.extend(resealed);
    let valid = assert_same_verdicts(&all);
    assert!(
        valid > 40 && valid < all.len() / 2,
        "{valid} of {} valid",
        all.len()
    );
    // The issue's examples: a forger's duplicate key and unsorted keys must fail every verify.
    for (t, f) in texts.iter().zip(&forged) {
        if t.contains(r#""amount": 1, "amount""#) || t.contains(r#"{"b": 1, "a": 2}"#) {
            for mode in [Mode::Fast, Mode::Strict] {
                let e = check_line(f.as_bytes(), mode).unwrap_err();
                assert!(matches!(e, LineError::NotCanonical { .. }), "{e:?}");
            }
        }
    }
}

/// Canonical lines Python writes with lone surrogates and deep nesting verify.
#[test]
fn what_python_writes_verifies() {
    const WRITE: &str = r#"
import json, hashlib, sys
sys.setrecursionlimit(20000)
def nest(n):
    v = 1
    for _ in range(n):
        v = [v]
    return v
payloads = [
    {"s": "\ud800"}, {"\udc00": "\ud83d", "\ue000": 1, "\U0001f600": 2},
    {"k": "\ud83d" + "\ude00"}, {"a": nest(993)}, {"n": int("9" * 4300)},
]
for p in payloads:
    r = {"actor": {"host_id": "h", "user": "u"}, "event_type": "e", "payload": p,
         "prev_hash": "0" * 64, "timestamp": "t", "workflow_id": None}
    r["hash"] = hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()
    sys.stdout.write(json.dumps(r, sort_keys=True) + "\n")
"#;
    let out = python(WRITE, "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert!(ours(line.as_bytes()), "{}", &line[..line.len().min(200)]);
    }
    let owned: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    assert_eq!(assert_same_verdicts(&owned), owned.len());
}

/// The numbers docs/audit-log.md gives for Python 3.11 at its default recursion limit.
#[test]
fn python_depth_and_digit_limits_are_as_documented() {
    const MEASURE: &str = r#"
import json, sys
def nested(n):
    return "[" * n + "]" * n
def reads(n):
    try:
        json.loads(nested(n)); return True
    except RecursionError:
        return False
def writes(n):
    v = 1
    for _ in range(n - 1):
        v = [v]
    v = [v]
    try:
        json.dumps(v, sort_keys=True); return True
    except RecursionError:
        return False
print(max(n for n in range(900, 1100) if reads(n)), max(n for n in range(900, 1100) if writes(n)),
      sys.get_int_max_str_digits())
"#;
    let out = python(MEASURE, "");
    let v: Vec<usize> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    // Called from a function, Python reads and writes a level or two less than from module level.
    assert!(
        (MAX_READ_DEPTH - 3..=MAX_READ_DEPTH).contains(&v[0]),
        "{out}"
    );
    assert!(
        (MAX_READ_DEPTH - 3..=MAX_READ_DEPTH).contains(&v[1]),
        "{out}"
    );
    assert_eq!(v[2], MAX_INT_DIGITS, "{out}");
}

#[test]
fn limits_are_refused_with_dedicated_errors() {
    // The encoder refuses an integer Python cannot read back, naming the limit.
    let big = format!("{{\"n\": 1{}}}", "0".repeat(MAX_INT_DIGITS));
    let e = json::parse_object(&big).unwrap_err();
    assert_eq!(
        e,
        json::JsonError::IntegerTooLong {
            digits: MAX_INT_DIGITS + 1,
            limit: MAX_INT_DIGITS
        }
    );
    assert!(e.to_string().contains("4300"), "{e}");
    let ok = format!("{{\"n\": -9{}}}", "9".repeat(MAX_INT_DIGITS - 1));
    let map = json::parse_object(&ok).unwrap();
    let mut out = Vec::new();
    chain::seal(&event(&map, "e"), 1, Some(&Hash::GENESIS), &mut out).unwrap();
    out.pop();
    assert!(ours(&out));
    // A hand-built value gets the same error at encode time.
    let mut m = serde_json::Map::new();
    m.insert(
        "n".into(),
        serde_json::Value::Number(serde_json::Number::from_string_unchecked(
            "7".repeat(MAX_INT_DIGITS + 1),
        )),
    );
    let mut out = b"keep".to_vec();
    let r = chain::seal(&event(&m, "e"), 1, Some(&Hash::GENESIS), &mut out);
    assert!(
        matches!(
            r,
            Err(chainsink_format::record::RecordError::Payload(
                json::JsonError::IntegerTooLong { .. }
            ))
        ),
        "{r:?}"
    );
    assert_eq!(out, b"keep");

    // The largest record: sealing refuses one byte more, and check_line refuses longer lines.
    let mut m = serde_json::Map::new();
    m.insert("s".into(), serde_json::Value::String(String::new()));
    let mut probe = Vec::new();
    chain::seal(&event(&m, "e"), 1, Some(&Hash::GENESIS), &mut probe).unwrap();
    let room = MAX_RECORD_BYTES - (probe.len() - 1);
    m.insert("s".into(), serde_json::Value::String("x".repeat(room)));
    let mut out = Vec::new();
    chain::seal(&event(&m, "e"), 1, Some(&Hash::GENESIS), &mut out).unwrap();
    assert_eq!(out.len() - 1, MAX_RECORD_BYTES);
    out.pop();
    assert!(ours(&out));
    m.insert("s".into(), serde_json::Value::String("x".repeat(room + 1)));
    let mut out = b"keep".to_vec();
    let e = chain::seal(&event(&m, "e"), 1, Some(&Hash::GENESIS), &mut out).unwrap_err();
    assert_eq!(
        e,
        chainsink_format::record::RecordError::TooLarge {
            size: MAX_RECORD_BYTES + 1,
            limit: MAX_RECORD_BYTES
        }
    );
    assert!(
        e.to_string().contains("1048577") && e.to_string().contains("1048576"),
        "{e}"
    );
    assert_eq!(out, b"keep");
    let long = vec![b' '; MAX_RECORD_BYTES + 1];
    for mode in [Mode::Fast, Mode::Strict] {
        assert_eq!(
            check_line(&long, mode),
            Err(LineError::TooLong {
                len: MAX_RECORD_BYTES + 1,
                limit: MAX_RECORD_BYTES
            })
        );
    }
}

/// Random payload texts (odd whitespace, number spellings, escapes, raw UTF-8, duplicate and
/// unsorted keys, surrogate-escape keys), each forged, resealed the Python way, and in canonical
/// form; `CHAINSINK_ORACLE_SCALE=k` runs k times as many.
#[test]
fn generated_payload_variants_match_python() {
    use proptest::prelude::*;
    let texts = crate::python_oracle::sample(crate::python_oracle::arb_json_text(), 600);
    let key = prop::sample::select(vec![
        "a",
        "b",
        "A",
        "\\u00e9",
        "\\ud800",
        "\\udc00",
        "\\ud83d\\ude00",
        "\\ud83d",
        "\\ude00",
        "\\ue000",
        "\\uffff",
        "\\udbff\\udfff",
        "\\n",
        "\\\"",
        "\\\\",
        "z",
        "\\u0000",
        "\\/",
        "\\u00E9",
        "\u{e9}",
        "\u{1f600}",
    ]);
    let keyed = (prop::collection::vec((key.clone(), key), 1..5), 0..3u8).prop_map(|(ks, v)| {
        let members: Vec<String> = ks
            .iter()
            .enumerate()
            .map(|(i, (a, b))| match v {
                0 => format!("\"{a}{b}\": {i}"),
                1 => format!("\"{a}\": \"{b}\""),
                _ => format!("\"{a}\": {{\"{b}\": {i}, \"{a}\": null}}"),
            })
            .collect();
        format!("{{{}}}", members.join(", "))
    });
    let mut payloads: Vec<String> = texts
        .into_iter()
        .filter(|t| t.trim_start().starts_with('{'))
        .collect();
    payloads.extend(crate::python_oracle::sample(keyed, 600));
    // The canonical form of what serde can hold, so there are positives too.
    let canon: Vec<String> = payloads
        .iter()
        .filter_map(|p| {
            json::parse(p)
                .ok()
                .and_then(|v| json::to_canonical(&v).ok())
        })
        .collect();
    payloads.extend(canon);
    let texts: Vec<String> = payloads.iter().map(|p| record_text(p)).collect();
    let mut all: Vec<String> = texts.iter().map(|t| forge(t)).collect();
    all.extend(python_reseal(&texts));
    let valid = assert_same_verdicts(&all);
    assert!(valid > 100, "{valid} of {} valid", all.len());
}
