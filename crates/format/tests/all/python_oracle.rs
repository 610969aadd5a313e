//! The encoder and the sealer against Python's `json` module, the reference implementation.
//! Each test runs ONE python3 process over a batch of inputs.

use crate::common::{TS, python};
use chainsink_format::verify::{ChainVerifier, Mode, check_line};
use chainsink_format::{Hash, chain, json};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Python: one JSON text a line in, `json.dumps(json.loads(line), sort_keys=True)` a line out.
const DUMPS: &str = r#"
import json, sys
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if line:
        sys.stdout.write(json.dumps(json.loads(line), sort_keys=True) + "\n")
"#;

/// Checks that our parse + encode equals Python's for every text (one line each).
fn assert_same_as_python(texts: &[String]) {
    for t in texts {
        assert!(!t.contains('\n'), "inputs are one a line: {t:?}");
    }
    let py = python(DUMPS, &(texts.join("\n") + "\n"));
    let py: Vec<&str> = py.split_terminator('\n').collect();
    assert_eq!(py.len(), texts.len(), "python answered every line");
    for (t, want) in texts.iter().zip(py) {
        let v = json::parse(t).unwrap_or_else(|e| panic!("we reject {t:?}: {e}"));
        let got = json::to_canonical(&v).unwrap();
        assert_eq!(got, want, "canonical form of {t:?}");
    }
}

fn corpus() -> Vec<String> {
    let mut c: Vec<String> = [
        r#""héllo wörld""#,
        r#""日本語のテキスト""#,
        r#""😀🎉 astral 𝄞 \ud83d\ude00""#,
        "\"\u{2028}\u{2029} line separators\"",
        r#""\u2028\u2029""#,
        "\"\u{7f} del\"",
        r#""quote \" backslash \\ slash / \/""#,
        r#""tab\tnl\ncr\rbs\bff\f""#,
        r#""\u00e9\u00E9\uFFFF\uffff\ufeff""#,
        "\"\u{ffff}\u{fffd}\u{10ffff}\"",
        "-0",
        "0",
        "-1",
        "1267650600228229401496703205376",
        "-1180591620717411303424",
        "0.1",
        "0.3333333333333333",
        "1e-07",
        "1e+22",
        "1e16",
        "1e15",
        "123456789012345678.0",
        "-0.0",
        "5e-324",
        "2.5e-320",
        "1.7976931348623157e308",
        "0.0001",
        "0.00001",
        "1.5e300",
        "1E2",
        "1.0E-5",
        "-1.5e-300",
        "0.1e1",
        "100e-2",
        "1234567.0",
        "9007199254740993.0",
        "1e-400",
        "34e-56789",
        "0.0123456789000000012345678900000001234567890000123456789",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        r#"[1, [2, [3, []]], {}]"#,
        r#"{"b": 1, "a": 2, "B": 3, "é": 4, "e": 5, "z": 6, "😀": 7, "ﬀ": 8, "\uffff": 9, "\ue000": 10, "\u0000": 11, "": 12}"#,
        r#"{"outer": {"zeta": [ {"y": 1, "x": 2} ], "alpha": {"é": {"ü": null, "u": true}}}}"#,
        r#"{"k": 1, "k": 2, "j": [3, 3]}"#,
        "  { \"spaced\" :\t[ 1 ,2 ] }  ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // 2**200 and -2**70 exactly.
    c.push("1606938044258990275541962092341162602522202993782792835301376".into());
    c.push("-1180591620717411303424".into());
    // Every control character, one string, escaped in the input.
    let all: String = (0u32..0x20).map(|i| format!("\\u{i:04x}")).collect();
    c.push(format!("\"{all}\""));
    c
}

#[test]
fn corpus_matches_python() {
    assert_same_as_python(&corpus());
}

/// JSON text for a string with arbitrary chars (escaping only what JSON requires, leaving the
/// rest raw UTF-8 for both parsers to read).
fn json_text_of_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn arb_string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        2 => (0x20u8..0x7f).prop_map(char::from),
        1 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        1 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}', '\u{fffd}', '\u{ffff}']),
        1 => (0x10000u32..0x110000).prop_map(|c| char::from_u32(c).unwrap()),
        1 => (0x80u32..0x800).prop_map(|c| char::from_u32(c).unwrap()),
    ];
    prop::collection::vec(ch, 0..12).prop_map(String::from_iter)
}

/// A finite f64 from an arbitrary bit pattern, as JSON number text (several spellings).
fn arb_float_text() -> impl Strategy<Value = String> {
    let f = prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        // Short decimals like 0.1, 1e-05, 12.5 are the common case.
        (-999_999i64..1_000_000, -30i32..30).prop_map(|(m, e)| format!("{m}e{e}").parse().unwrap()),
        any::<u32>().prop_map(|b| f64::from_bits(u64::from(b))), // subnormals
        // Near 17 significant digits, where two shortest candidates can tie.
        ((1u64 << 50)..(1u64 << 54), -8i32..70).prop_map(|(k, j)| k as f64 * 2f64.powi(j)),
    ]
    .prop_filter("finite", |f: &f64| f.is_finite());
    (f, 0..3u8).prop_map(|(f, style)| match style {
        0 => format!("{f:e}"),
        1 => format!("{f:E}"),
        _ => {
            let d = format!("{f:?}");
            // `{:?}` can print an integer-looking token (e.g. "1e16" is fine, "-0" is not).
            if d.contains(['.', 'e', 'E']) {
                d
            } else {
                format!("{d}.0")
            }
        }
    })
}

fn arb_int_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        (any::<bool>(), "[1-9][0-9]{0,80}").prop_map(|(neg, d)| if neg {
            format!("-{d}")
        } else {
            d
        }),
        Just("-0".to_string()),
        Just("0".to_string()),
    ]
}

/// Arbitrary JSON text: nested arrays/objects, odd strings, huge ints, floats from bit patterns.
pub fn arb_json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        arb_int_text(),
        arb_float_text(),
        arb_string().prop_map(|s| json_text_of_str(&s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let ws = prop::sample::select(vec!["", " ", "\t", "\r", "  "]);
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), ws.clone())
                .prop_map(|(v, w)| format!("[{w}{}{w}]", v.join(&format!("{w},")))),
            (prop::collection::vec((arb_string(), inner), 0..6), ws).prop_map(|(kv, w)| {
                let members: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}{w}:{w}{v}", json_text_of_str(k)))
                    .collect();
                format!("{{{w}{}}}", members.join(","))
            }),
        ]
    })
}

/// `n` values drawn from `s` with a fresh random seed (failures print the input).
/// `CHAINSINK_ORACLE_SCALE=k` multiplies `n` by k for a deeper run.
pub fn sample<S: Strategy>(s: S, n: usize) -> Vec<S::Value> {
    let scale: usize = std::env::var("CHAINSINK_ORACLE_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let n = n * scale;
    let mut runner = TestRunner::new(Config::default());
    (0..n)
        .map(|_| s.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn generated_values_match_python() {
    assert_same_as_python(&sample(arb_json_text(), 2000));
}

#[test]
fn floats_from_bit_patterns_match_python() {
    let mut texts = sample(arb_float_text(), 5000);
    // Edges: powers of ten around both exponent-form switches, subnormal limits, 2^53.
    for e in -330..=310 {
        texts.push(format!("1e{e}"));
        texts.push(format!("9.999999999999999e{e}"));
    }
    for bits in [
        1u64,
        2,
        0x000f_ffff_ffff_ffff,
        0x0010_0000_0000_0000,
        0x7fef_ffff_ffff_ffff,
    ] {
        texts.push(format!("{:e}", f64::from_bits(bits)));
    }
    // Exact ties between two 17-digit candidates (Python rounds them to even).
    for k in (0..200u64).map(|i| 1_125_899_906_842_624 + i * 7_777_777_777) {
        for frac in ["25", "75"] {
            texts.push(format!("{k}.{frac}"));
            texts.push(format!("-{k}.{frac}"));
        }
    }
    texts.retain(|t| t.parse::<f64>().is_ok_and(f64::is_finite));
    texts.push("9007199254740992.0".into());
    texts.push("9007199254740993.0".into());
    assert_same_as_python(&texts);
}

/// Inputs Python accepts but we reject, each with a named error (see the json module docs).
#[test]
fn documented_deviations_from_python() {
    let texts = [
        "NaN",
        "[Infinity]",
        "-Infinity",
        "1e400",
        r#""\ud800""#,
        r#""\udc00 x""#,
    ];
    let py = python(DUMPS, &(texts.join("\n") + "\n"));
    let py: Vec<&str> = py.lines().collect();
    assert_eq!(
        py,
        [
            "NaN",
            "[Infinity]",
            "-Infinity",
            "Infinity",
            r#""\ud800""#,
            r#""\udc00 x""#
        ]
    );
    for t in texts {
        let e = json::parse(t).unwrap_err();
        assert!(
            matches!(
                e,
                json::JsonError::NonFinite { .. }
                    | json::JsonError::NumberOutOfRange { .. }
                    | json::JsonError::LoneSurrogate { .. }
            ),
            "{t}: {e:?}"
        );
    }
}

/// The reference sink's algorithm, plus our `seq` field when the spec has one.
const SINK: &str = r#"
import json, hashlib, sys
prev = "0" * 64
for line in sys.stdin.buffer.read().decode("utf-8").split("\n"):
    if not line:
        continue
    s = json.loads(line)
    record = {"timestamp": s["ts"], "event_type": s["et"], "workflow_id": s["wf"],
              "actor": {"host_id": s["host"], "user": s["user"]}, "payload": s["payload"]}
    if s.get("seq") is not None:
        record["seq"] = s["seq"]
    if s["chain"]:
        record["prev_hash"] = prev
        record["hash"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        prev = record["hash"]
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
"#;

struct Spec {
    et: String,
    wf: Option<String>,
    host: String,
    user: String,
    payload: String,
}

fn spec_line(s: &Spec, seq: Option<u64>, chain: bool) -> String {
    format!(
        r#"{{"ts": "{TS}", "et": {}, "wf": {}, "host": {}, "user": {}, "payload": {}, "seq": {}, "chain": {chain}}}"#,
        json_text_of_str(&s.et),
        s.wf.as_deref().map_or("null".into(), json_text_of_str),
        json_text_of_str(&s.host),
        json_text_of_str(&s.user),
        s.payload,
        seq.map_or("null".into(), |n| n.to_string()),
    )
}

fn specs() -> Vec<Spec> {
    let mut specs = vec![
        Spec {
            et: "workflow.started".into(),
            wf: Some("wf-1".into()),
            host: "build-01".into(),
            user: "ana".into(),
            payload: r#"{"steps": 3, "name": "deploy", "ratio": 0.1, "big": 1606938044258990275541962092341162602522202993782792835301376}"#.into(),
        },
        Spec {
            et: "step.ünïcode".into(),
            wf: None,
            host: "hôst 😀".into(),
            user: "us\"er\\".into(),
            payload: r#"{"hash": "x", "prev_hash": "y", "seq": -1, "nested": {"hash": "0000000000000000000000000000000000000000000000000000000000000000"}, "é": [1e-07, -0.0, 1e16]}"#.into(),
        },
        Spec {
            et: "a".into(),
            wf: Some("".into()),
            host: "".into(),
            user: "\u{1}\u{1f}\u{7f}\u{2028}".into(),
            payload: "{}".into(),
        },
    ];
    let objects = sample(arb_json_text(), 200)
        .into_iter()
        .filter(|t| t.trim_start().starts_with('{'));
    for (i, payload) in objects.enumerate() {
        specs.push(Spec {
            et: format!("gen.{i}"),
            wf: (i % 2 == 0).then(|| format!("wf-{i}")),
            host: "h".into(),
            user: "u".into(),
            payload,
        });
    }
    specs
}

/// Seals the specs ourselves, chained or not, with seq when `with_seq`.
fn seal_specs(specs: &[Spec], chain_on: bool) -> (String, Vec<Option<Hash>>) {
    let mut out = Vec::new();
    let mut hashes = Vec::new();
    let mut prev = Hash::GENESIS;
    for (i, s) in specs.iter().enumerate() {
        let payload = json::parse_object(&s.payload).unwrap();
        let event = chainsink_format::record::Event {
            timestamp: TS,
            event_type: &s.et,
            workflow_id: s.wf.as_deref(),
            actor: chainsink_format::record::Actor {
                host_id: &s.host,
                user: &s.user,
            },
            payload: (&payload).into(),
        };
        let h = chain::seal(&event, i as u64 + 1, chain_on.then_some(&prev), &mut out).unwrap();
        if let Some(h) = h {
            prev = h;
        }
        hashes.push(h);
    }
    (String::from_utf8(out).unwrap(), hashes)
}

#[test]
fn sealed_records_match_python_sink() {
    let specs = specs();
    for chain_on in [true, false] {
        let input: Vec<String> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| spec_line(s, Some(i as u64 + 1), chain_on))
            .collect();
        let want = python(SINK, &(input.join("\n") + "\n"));
        let (got, hashes) = seal_specs(&specs, chain_on);
        for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "record {} (chain {chain_on})", n + 1);
        }
        assert_eq!(got, want, "whole log (chain {chain_on})");
        // And the log verifies, both modes, with the hashes seal returned.
        let mut chain = ChainVerifier::new();
        for (line, h) in got.lines().zip(&hashes) {
            for mode in [Mode::Fast, Mode::Strict] {
                let info = check_line(line.as_bytes(), mode).unwrap();
                assert_eq!(info.hash, *h);
            }
            chain
                .push(&check_line(line.as_bytes(), Mode::Fast).unwrap())
                .unwrap();
        }
        assert_eq!(chain.records(), specs.len() as u64);
        assert_eq!(chain.head(), *hashes.last().unwrap());
    }
}

/// A log written by the Python reference sink (no `seq`) verifies, and its hashes are ours.
#[test]
fn python_written_log_without_seq_verifies() {
    let specs = specs();
    let input: Vec<String> = specs.iter().map(|s| spec_line(s, None, true)).collect();
    let log = python(SINK, &(input.join("\n") + "\n"));
    let mut chain = ChainVerifier::new();
    for line in log.lines() {
        let fast = check_line(line.as_bytes(), Mode::Fast).unwrap();
        let strict = check_line(line.as_bytes(), Mode::Strict).unwrap();
        assert_eq!(fast, strict);
        assert_eq!(fast.seq, None);
        chain.push(&fast).unwrap();
    }
    assert_eq!(chain.records(), specs.len() as u64);
    // Our own chain-on sealing without seq would not exist, but the hash rule is the same: the
    // last hash equals sha256 of the last line without its hash member.
    let last = log.lines().last().unwrap();
    let h = chain.head().unwrap().to_hex();
    let unhashed = last.replace(&format!("\"hash\": \"{h}\", "), "");
    assert_eq!(Hash::of(unhashed.as_bytes()).to_hex(), h);
}
