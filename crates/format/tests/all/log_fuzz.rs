//! Mutated chained logs: our whole-log verdict (check_line in both modes + ChainVerifier + the
//! torn-write rule of `recovery`) against the Python algorithm (`oracle::RULES`), one python3
//! process per batch. The only allowed difference is the documented torn-write exception: lines
//! our side accepts as recovered torn writes are handed to Python as "skip, but check that the
//! next line is a chain.recovered record covering exactly these bytes".
//!
//! `CHAINSINK_FUZZ_CASES=n` sets the number of mutated logs (default 2000).

use chainsink_format::recovery::{RECOVERED_EVENT, Tail, Torn, judge_bad_line, judge_tail};
use chainsink_format::verify::{ChainVerifier, Mode, check_line, check_lines};
use chainsink_format::{Hash, chain, json};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use crate::common::event;
use crate::oracle::python_log_verdicts;

const PAYLOADS: &[&str] = &[
    r#"{"amount": 1000000, "to": "ana"}"#,
    r#"{"ratio": 0.25, "big": -1180591620717411303424, "tiny": 5e-324}"#,
    r#"{"text": "h\u00e9llo \ud83d\ude00 \" \\ / \n", "list": [1, 2.5, null, {"z": 1, "a": 2}]}"#,
    r#"{"hash": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "seq": 3}"#,
    r#"{}"#,
    r#"{"a": {"b": {"c": [[["deep"]]]}}, "\u00e9": 1, "\ue000": 2}"#,
];

/// Base logs: chained and unchained, some with a recovered torn write inside.
fn base_logs() -> Vec<Vec<u8>> {
    let mut logs = Vec::new();
    for (n, chained, torn_at) in [
        (4, true, None),
        (6, true, Some(3)),
        (3, false, None),
        (5, true, Some(1)),
        (5, false, Some(2)),
        (2, true, Some(0)),
    ] {
        let mut log = Vec::new();
        let mut prev = Hash::GENESIS;
        let mut seq = 1;
        for i in 0..n {
            if torn_at == Some(i) {
                // A torn write: a cut record, then "\n" and the recovery record.
                let map = json::parse_object(PAYLOADS[0]).unwrap();
                let mut whole = Vec::new();
                chain::seal(
                    &event(&map, "cut"),
                    seq,
                    chained.then_some(&prev),
                    &mut whole,
                )
                .unwrap();
                let torn = whole[..whole.len() / 2].to_vec();
                let t = Torn::of(log.len() as u64, &torn);
                log.extend_from_slice(&torn);
                log.push(b'\n');
                let p = t.payload();
                let h = chain::seal(
                    &event(&p, RECOVERED_EVENT),
                    seq,
                    chained.then_some(&prev),
                    &mut log,
                )
                .unwrap();
                if let Some(h) = h {
                    prev = h;
                }
                seq += 1;
            }
            let map = json::parse_object(PAYLOADS[i % PAYLOADS.len()]).unwrap();
            let h = chain::seal(
                &event(&map, "step"),
                seq,
                chained.then_some(&prev),
                &mut log,
            )
            .unwrap();
            if let Some(h) = h {
                prev = h;
            }
            seq += 1;
        }
        logs.push(log);
    }
    logs
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize, usize),
    SwapLines(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1..=255u8).prop_map(|(p, m)| Mutation::Flip(p, m)),
        2 => (any::<usize>(), prop::sample::select(b"\"\\ 0}],\n:{[-.eE9a".to_vec()))
            .prop_map(|(p, c)| Mutation::Set(p, c)),
        2 => (any::<usize>(), 1..40usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (any::<usize>(), 1..40usize, any::<usize>()).prop_map(|(p, n, q)| Mutation::Duplicate(p, n, q)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        2 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(log: &mut Vec<u8>, m: &Mutation) {
    if log.is_empty() {
        return;
    }
    let len = log.len();
    let mut lines: Vec<Vec<u8>> = log
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let nl = lines.len();
    match *m {
        Mutation::Flip(p, x) => log[p % len] ^= x,
        Mutation::Set(p, c) => log[p % len] = c,
        Mutation::Delete(p, n) => {
            let p = p % len;
            log.drain(p..(p + n).min(len));
        }
        Mutation::Duplicate(p, n, q) => {
            let p = p % len;
            let chunk = log[p..(p + n).min(len)].to_vec();
            let q = q % (len + 1);
            log.splice(q..q, chunk);
        }
        Mutation::SwapLines(a, b) => {
            lines.swap(a % nl, b % nl);
            *log = lines.concat();
        }
        Mutation::DeleteLine(a) => {
            lines.remove(a % nl);
            *log = lines.concat();
        }
        Mutation::DuplicateLine(a) => {
            let l = lines[a % nl].clone();
            lines.insert(a % nl, l);
            *log = lines.concat();
        }
        Mutation::Truncate(p) => log.truncate(p % len),
    }
}

/// Our whole-log verdict, in the oracle's words, and the lines we accepted as torn writes.
fn our_verdict(log: &[u8]) -> (String, Vec<usize>) {
    let mut parts: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    let tail = parts.pop().unwrap_or_default();
    let mut chain = ChainVerifier::new();
    let mut recovered = Vec::new();
    let mut offset = 0u64;
    // The batch API the verifier uses (hashes two lines at a time) gives each line's verdict.
    let (mut batch_fast, mut batch_strict) = (Vec::new(), Vec::new());
    check_lines(parts.iter().copied(), Mode::Fast, &mut batch_fast);
    check_lines(parts.iter().copied(), Mode::Strict, &mut batch_strict);
    for (i, line) in parts.iter().enumerate() {
        let fast = check_line(line, Mode::Fast);
        let strict = check_line(line, Mode::Strict);
        assert_eq!(
            fast,
            strict,
            "modes disagree on {}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(
            batch_fast[i], fast,
            "check_lines (fast) disagrees on line {i}"
        );
        assert_eq!(
            batch_strict[i], strict,
            "check_lines (strict) disagrees on line {i}"
        );
        match fast {
            Ok(info) => {
                if chain.push(&info).is_err() {
                    return (format!("tampered {i}"), recovered);
                }
            }
            Err(_) => match judge_bad_line(offset, line, parts.get(i + 1).copied()) {
                Ok(_) => recovered.push(i),
                Err(_) => return (format!("tampered {i}"), recovered),
            },
        }
        offset += line.len() as u64 + 1;
    }
    if !tail.is_empty() {
        // Torn, a record without its newline, or (by our stricter shape rule) tampering: all an
        // unterminated last line, which is all Python can tell.
        match judge_tail(offset, tail, false) {
            Tail::Torn(_) | Tail::MissingNewline(_) | Tail::Tampered { .. } => {}
            Tail::Record(_) => unreachable!(),
        }
        return (format!("tail {}", parts.len()), recovered);
    }
    let head = chain.head().map_or("-".to_string(), |h| h.to_hex());
    (format!("valid {} {head}", chain.records()), recovered)
}

#[test]
fn mutated_logs_match_python() {
    let cases: usize = std::env::var("CHAINSINK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let bases = base_logs();
    // The unmutated logs are all valid, recoveries included.
    for b in &bases {
        assert!(
            our_verdict(b).0.starts_with("valid"),
            "{}",
            String::from_utf8_lossy(b)
        );
    }
    let strategy = (0..bases.len(), prop::collection::vec(mutation(), 1..4));
    let mut runner = TestRunner::new(Config::default());
    let started = std::time::Instant::now();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    let mut done = 0;
    while done < cases {
        let batch = (cases - done).min(5000);
        let mut logs = Vec::with_capacity(batch);
        let mut ours = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (base, muts) = strategy.new_tree(&mut runner).unwrap().current();
            let mut log = bases[base].clone();
            for m in &muts {
                apply(&mut log, m);
            }
            let (verdict, recovered) = our_verdict(&log);
            // Python checks the recoveries we accepted, and the log without those lines.
            ours.push((verdict, muts));
            logs.push((log, recovered));
        }
        let py = python_log_verdicts(&logs);
        for ((log, skip), ((got, muts), want)) in logs.iter().zip(ours.iter().zip(&py)) {
            assert_eq!(
                got,
                want,
                "mutations {muts:?}, skipped {skip:?}, log:\n{}",
                String::from_utf8_lossy(log)
            );
            let kind = got.split(' ').next().unwrap_or_default();
            let kind = if kind == "valid" && !skip.is_empty() {
                "valid-with-recovery"
            } else {
                kind
            };
            *tally.entry(kind.to_string()).or_default() += 1;
        }
        done += batch;
    }
    eprintln!(
        "{done} mutated logs in {:.1} s: {tally:?}",
        started.elapsed().as_secs_f64()
    );
}
