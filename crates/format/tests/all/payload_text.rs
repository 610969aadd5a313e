//! Payload text sealed without a tree (`json::write_object_text_within`, issue 15): text that is
//! already canonical is copied, anything else parsed and encoded. The copy must never change what
//! a record holds, so every test here checks the one rule: `is_canonical_object(t)` holds exactly
//! when encoding `t`'s parse gives `t` back (nesting and lone surrogates aside, where the encoder
//! refuses), and `write_object_text_within(t)` gives the same bytes or the same error as the tree.

use chainsink_format::json::{self, JsonError};
use chainsink_format::record::{MAX_PAYLOAD_DEPTH, Payload};
use chainsink_format::verify::is_canonical_object;
use chainsink_format::{Hash, chain};

use crate::common::{event, python};
use crate::python_oracle::{arb_json_text, sample};

/// What the tree path gives for `text`: parse, then encode.
fn via_tree(text: &str, depth: usize) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::new();
    json::write_object_within(&mut out, &json::parse_object(text)?, depth)?;
    Ok(out)
}

/// What the text path gives.
fn via_text(text: &str, depth: usize) -> Result<Vec<u8>, JsonError> {
    let mut out = b"kept".to_vec();
    let r = json::write_object_text_within(&mut out, text, depth);
    if r.is_err() {
        assert_eq!(
            out, b"kept",
            "an error leaves the buffer as it was: {text:?}"
        );
    }
    r.map(|()| out[4..].to_vec())
}

/// The rule, for one text.
fn check(text: &str) {
    let depth = MAX_PAYLOAD_DEPTH;
    let tree = via_tree(text, depth);
    assert_eq!(
        via_text(text, depth),
        tree,
        "text and tree paths differ on {text:?}"
    );
    let copies = is_canonical_object(text.as_bytes(), depth);
    let round_trips = tree.as_deref().is_ok_and(|b| b == text.as_bytes());
    assert_eq!(
        copies, round_trips,
        "is_canonical_object({text:?}) is {copies}, but encoding its parse gives {tree:?}"
    );
}

/// `text` and its canonical form (when it has one), each wrapped as an object's member.
fn both_forms(texts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in texts {
        let wrapped = format!("{{\"v\": {t}, \"a\": [{t}]}}");
        if let Ok(c) = via_tree(&wrapped, MAX_PAYLOAD_DEPTH) {
            out.push(String::from_utf8(c).unwrap());
        }
        out.push(wrapped);
    }
    out
}

#[test]
fn spellings_that_are_not_canonical_are_encoded_and_canonical_ones_copied() {
    for (text, want) in [
        (r#"{"a": 1}"#, Ok(r#"{"a": 1}"#)),
        (r#"{"a":1}"#, Ok(r#"{"a": 1}"#)),
        (r#"{"b": 1, "a": 2}"#, Ok(r#"{"a": 2, "b": 1}"#)),
        (r#"{"a": 1, "a": 2}"#, Ok(r#"{"a": 2}"#)),
        (r#"{"a": 1.50}"#, Ok(r#"{"a": 1.5}"#)),
        (r#"{"a": 1E2}"#, Ok(r#"{"a": 100.0}"#)),
        (r#"{"a": -0}"#, Ok(r#"{"a": 0}"#)),
        (r#"{"a": -0.0}"#, Ok(r#"{"a": -0.0}"#)),
        (r#"{"a": "\u00E9"}"#, Ok(r#"{"a": "\u00e9"}"#)),
        ("{\"a\": \"é\"}", Ok(r#"{"a": "\u00e9"}"#)),
        (r#"{"a": "\/"}"#, Ok(r#"{"a": "/"}"#)),
        (r#"{"a": "\u0041"}"#, Ok(r#"{"a": "A"}"#)),
        (r#"{"a": [1,2]}"#, Ok(r#"{"a": [1, 2]}"#)),
        (r#"{"a": [1, 2] }"#, Ok(r#"{"a": [1, 2]}"#)),
        (r#" {"a": 1}"#, Ok(r#"{"a": 1}"#)),
        ("{\"a\": 1}\n", Ok(r#"{"a": 1}"#)),
        (
            r#"{"\ud83d\ude00": 1, "\uffff": 2}"#,
            Ok(r#"{"\uffff": 2, "\ud83d\ude00": 1}"#),
        ),
        (
            r#"{"\uffff": 2, "\ud83d\ude00": 1}"#,
            Ok(r#"{"\uffff": 2, "\ud83d\ude00": 1}"#),
        ),
        (r#"{}"#, Ok("{}")),
        (r#"{"a": "\ud800"}"#, Err("unpaired UTF-16 surrogate")),
        (r#"{"a": NaN}"#, Err("NaN")),
        (r#"{"a": 1e400}"#, Err("too large for a 64-bit float")),
        (r#"[1]"#, Err("expected a JSON object, found an array")),
        (r#"{"a": 1} x"#, Err("invalid JSON")),
        (r#"{"a": 1"#, Err("invalid JSON")),
        ("", Err("invalid JSON")),
    ] {
        let got = via_text(text, MAX_PAYLOAD_DEPTH);
        match want {
            Ok(want) => assert_eq!(
                String::from_utf8(got.unwrap()).unwrap(),
                want,
                "canonical form of {text:?}"
            ),
            Err(part) => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains(part), "{text:?}: {e}");
            }
        }
        check(text);
    }
}

#[test]
fn integers_at_and_past_the_digit_limit() {
    let at = "9".repeat(json::MAX_INT_DIGITS);
    let past = "9".repeat(json::MAX_INT_DIGITS + 1);
    for t in [
        format!("{{\"n\": {at}}}"),
        format!("{{\"n\": -{at}}}"),
        format!("{{\"n\": {past}}}"),
    ] {
        check(&t);
    }
    assert!(via_text(&format!("{{\"n\": {past}}}"), MAX_PAYLOAD_DEPTH).is_err());
}

#[test]
fn nesting_at_and_past_the_payload_limit() {
    for depth in [
        MAX_PAYLOAD_DEPTH - 1,
        MAX_PAYLOAD_DEPTH,
        MAX_PAYLOAD_DEPTH + 1,
    ] {
        // depth levels in all, the payload object included; empty and full innermost containers.
        for inner in ["[]", "{}", "[1]", r#"{"k": null}"#] {
            let text = format!(
                "{{\"a\": {}{inner}{}}}",
                "[".repeat(depth - 2),
                "]".repeat(depth - 2)
            );
            check(&text);
            let got = via_text(&text, MAX_PAYLOAD_DEPTH);
            assert_eq!(
                got.is_ok(),
                depth <= MAX_PAYLOAD_DEPTH,
                "depth {depth}, {inner}"
            );
        }
    }
    // A smaller limit is honoured by both paths alike.
    check(r#"{"a": [[1]]}"#);
    assert!(via_text(r#"{"a": [[1]]}"#, 3).is_ok());
    assert!(matches!(
        via_text(r#"{"a": [[1]]}"#, 2),
        Err(JsonError::TooDeep { limit: 2 })
    ));
    assert!(!is_canonical_object(br#"{"a": [[1]]}"#, 2));
}

#[test]
fn generated_texts_and_their_canonical_forms() {
    for t in both_forms(&sample(arb_json_text(), 1500)) {
        check(&t);
    }
}

/// Canonical texts with one byte changed, inserted or removed: the places a copy could go wrong
/// (one space too many, an uppercase hex escape, keys one swap out of order).
#[test]
fn one_byte_edits_of_canonical_texts() {
    let canon: Vec<String> = both_forms(&sample(arb_json_text(), 150))
        .into_iter()
        .filter(|t| is_canonical_object(t.as_bytes(), MAX_PAYLOAD_DEPTH))
        .collect();
    assert!(
        canon.len() > 100,
        "enough canonical texts to edit: {}",
        canon.len()
    );
    let bytes = [
        b' ', b'"', b'\\', b'0', b'1', b'e', b'E', b'.', b'-', b',', b':', b'u', b'A', b'a', b'}',
        b']',
    ];
    let mut n = 0;
    for (k, t) in canon.iter().enumerate() {
        let b = t.as_bytes();
        for step in 0..6 {
            let at = (k * 7919 + step * 104_729) % b.len();
            let c = bytes[(k + step) % bytes.len()];
            let mut edits = vec![b.to_vec(), b.to_vec(), b.to_vec()];
            edits[0][at] = c;
            edits[1].insert(at, c);
            edits[2].remove(at);
            for e in edits {
                if let Ok(e) = String::from_utf8(e) {
                    check(&e);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 1000, "{n} edits checked");
}

/// The text path against Python itself: `json.dumps(json.loads(t), sort_keys=True)`.
#[test]
fn text_path_matches_python() {
    const DUMPS: &str = r#"
import json, sys
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if line:
        sys.stdout.write(json.dumps(json.loads(line), sort_keys=True) + "\n")
"#;
    let texts = both_forms(&sample(arb_json_text(), 800));
    let py = python(DUMPS, &(texts.join("\n") + "\n"));
    for (t, want) in texts.iter().zip(py.split_terminator('\n')) {
        match via_text(t, MAX_PAYLOAD_DEPTH) {
            Ok(got) => assert_eq!(String::from_utf8(got).unwrap(), want, "{t:?}"),
            // Our documented refusals (lone surrogates; see the json module docs).
            Err(JsonError::LoneSurrogate { .. }) => {}
            Err(e) => panic!("{t:?}: {e}"),
        }
    }
}

/// A record sealed from the payload's text is byte for byte the one sealed from its tree.
#[test]
fn records_sealed_from_text_and_from_tree_are_identical() {
    for t in both_forms(&sample(arb_json_text(), 300)) {
        let Ok(tree) = json::parse_object(&t) else {
            continue;
        };
        let mut from_tree = Vec::new();
        let h1 = chain::seal(&event(&tree, "e"), 3, Some(&Hash::GENESIS), &mut from_tree);
        let mut text_event = event(&tree, "e");
        text_event.payload = Payload::Text(&t);
        let mut from_text = Vec::new();
        let h2 = chain::seal(&text_event, 3, Some(&Hash::GENESIS), &mut from_text);
        assert_eq!(h1, h2, "{t:?}");
        assert_eq!(from_tree, from_text, "{t:?}");
    }
}
