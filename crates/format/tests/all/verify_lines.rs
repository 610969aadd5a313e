//! check_line and ChainVerifier on sealed logs and on damaged copies of them.

use crate::common::{event, seal_log};
use chainsink_format::verify::{ChainVerifier, LineError, LineInfo, LinkError, Mode, check_line};
use chainsink_format::{Hash, chain, json};

const PAYLOADS: &[&str] = &[
    r#"{"step": "build", "ok": true, "ms": 1234, "ratio": 0.25}"#,
    r#"{"text": "héllo 😀 \" \\ \n", "list": [1, 2.5, null, {"z": 1, "a": 2}]}"#,
    r#"{"hash": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000", "seq": 99, "inner": {"hash": "x", "prev_hash": "y", "seq": 1}}"#,
    r#"{"big": -1180591620717411303424, "tiny": 5e-324, "huge": 1.5e300}"#,
    r#"{}"#,
    r#"{"a": {"b": {"c": [[["deep"]]]}}}"#,
];

fn both_modes(line: &[u8]) -> [Result<LineInfo, LineError>; 2] {
    [check_line(line, Mode::Fast), check_line(line, Mode::Strict)]
}

#[test]
fn good_lines_pass_in_both_modes() {
    for chain_on in [true, false] {
        let (lines, hashes) = seal_log(PAYLOADS, chain_on);
        let mut prev = chain_on.then_some(Hash::GENESIS);
        for (i, (line, h)) in lines.iter().zip(&hashes).enumerate() {
            for r in both_modes(line) {
                assert_eq!(
                    r,
                    Ok(LineInfo {
                        hash: *h,
                        prev_hash: prev,
                        seq: Some(i as u64 + 1)
                    })
                );
            }
            prev = *h;
        }
    }
}

#[test]
fn nested_hash_keys_do_not_confuse_fast_mode() {
    // The payload and the actor both carry text that looks like the top-level chain fields.
    let payload = json::parse_object(PAYLOADS[2]).unwrap();
    let mut ev = event(&payload, "x\", \"hash\": \"");
    ev.actor.user = ", \"prev_hash\": \"0000000000000000000000000000000000000000000000000000000000000000\", \"seq\": 5";
    let prev = Hash::of(b"prev");
    let mut out = Vec::new();
    let h = chain::seal(&ev, 3, Some(&prev), &mut out).unwrap();
    out.pop();
    let want = Ok(LineInfo {
        hash: h,
        prev_hash: Some(prev),
        seq: Some(3),
    });
    assert_eq!(check_line(&out, Mode::Fast), want);
    assert_eq!(check_line(&out, Mode::Strict), want);
}

#[test]
fn every_single_byte_change_is_detected() {
    let (lines, _) = seal_log(PAYLOADS, true);
    for line in &lines {
        for i in 0..line.len() {
            let b = line[i];
            for new in [b ^ 0x01, b ^ 0x20, b'"', b' ', b'\\', b'0', 0x80] {
                if new == b {
                    continue;
                }
                let mut bad = line.clone();
                bad[i] = new;
                for r in both_modes(&bad) {
                    assert!(
                        r.is_err(),
                        "byte {i} {:?} -> {:?} accepted in {}",
                        b as char,
                        new as char,
                        String::from_utf8_lossy(&bad)
                    );
                }
            }
        }
    }
}

#[test]
fn payload_edit_is_a_hash_mismatch() {
    let (lines, hashes) = seal_log(PAYLOADS, true);
    let line = String::from_utf8(lines[0].clone()).unwrap();
    let bad = line.replace("1234", "1235");
    for r in both_modes(bad.as_bytes()) {
        match r {
            Err(LineError::HashMismatch { stored, computed }) => {
                assert_eq!(Some(stored), hashes[0]);
                assert_ne!(stored, computed);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn non_canonical_whitespace_is_not_canonical() {
    let (lines, _) = seal_log(PAYLOADS, true);
    let line = String::from_utf8(lines[1].clone()).unwrap();
    let variants = [
        line.replacen("\"payload\": ", "\"payload\":  ", 1),
        line.replacen("\"payload\": ", "\"payload\":", 1),
        line.replacen(", \"seq\"", ",\"seq\"", 1),
        line.replacen("[1, 2.5", "[ 1, 2.5", 1),
        format!("{line} "),
        format!(" {line}"),
        format!("{line}\r"),
    ];
    for v in &variants {
        assert_ne!(v, &line);
        for r in both_modes(v.as_bytes()) {
            assert!(
                matches!(r, Err(LineError::NotCanonical { .. })),
                "{v}: {r:?}"
            );
        }
    }
    // Other non-canonical spellings of the same content.
    let other = [
        line.replacen("2.5", "2.50", 1),
        line.replacen("\\u00e9", "\\u00E9", 1),
        line.replacen("\\u00e9", "\u{e9}", 1),
        line.replacen("{\"a\": 2, \"z\": 1}", "{\"z\": 1, \"a\": 2}", 1),
    ];
    for v in &other {
        assert_ne!(v, &line);
        for r in both_modes(v.as_bytes()) {
            assert!(
                matches!(r, Err(LineError::NotCanonical { .. })),
                "{v}: {r:?}"
            );
        }
    }
    let e = check_line(variants[0].as_bytes(), Mode::Fast)
        .unwrap_err()
        .to_string();
    assert!(e.contains("canonical") && e.contains("byte"), "{e}");
}

#[test]
fn garbage_is_bad_json() {
    for g in [
        &b""[..],
        b"garbage",
        b"{",
        b"{\"a\": 1,}",
        b"\xff\xfe{}",
        b"{\"payload\": NaN}",
        b"{\"s\": \"\\ud800\\u00\"}",
        b"{\"s\": 1}x",
    ] {
        for r in both_modes(g) {
            assert!(matches!(r, Err(LineError::BadJson(_))), "{g:?}: {r:?}");
        }
    }
    // A lone surrogate is JSON Python reads and writes: this line is only missing its fields.
    for r in both_modes(b"{\"s\": \"\\ud800\"}") {
        assert_eq!(r, Err(LineError::MissingField("actor")));
    }
    for r in both_modes(b"[1, 2]") {
        assert_eq!(r, Err(LineError::NotAnObject { found: "an array" }));
    }
}

#[test]
fn missing_and_bad_fields_are_named() {
    let (lines, hashes) = seal_log(PAYLOADS, true);
    let line = String::from_utf8(lines[4].clone()).unwrap();
    let h = hashes[4].unwrap();
    let cases: Vec<(String, LineError)> = vec![
        (
            line.replacen(&format!("\"hash\": \"{h}\", "), "", 1),
            LineError::MissingField("hash"),
        ),
        (
            line.replacen("\"payload\": {}, ", "", 1),
            LineError::MissingField("payload"),
        ),
        (
            line.replacen("\"payload\": {}", "\"payload\": []", 1),
            LineError::BadField {
                field: "payload",
                reason: "must be an object",
            },
        ),
        (
            line.replacen("\"seq\": 5", "\"seq\": 0", 1),
            LineError::BadField {
                field: "seq",
                reason: "must be an integer from 1 to 18446744073709551615",
            },
        ),
        (
            line.replacen("\"seq\": 5", "\"seq\": 5.0", 1),
            LineError::BadField {
                field: "seq",
                reason: "must be an integer from 1 to 18446744073709551615",
            },
        ),
        (
            line.replacen(&h.to_hex(), &h.to_hex().to_uppercase(), 1),
            LineError::BadField {
                field: "hash",
                reason: "must be 64 lowercase hex digits",
            },
        ),
    ];
    for (bad, want) in cases {
        for r in both_modes(bad.as_bytes()) {
            assert_eq!(r.as_ref(), Err(&want), "{bad}");
        }
    }
    let e = LineError::MissingField("payload").to_string();
    assert!(
        e.contains("payload") && e.contains("every record needs"),
        "{e}"
    );
}

#[test]
fn deep_payloads_seal_and_verify_up_to_the_limit() {
    use chainsink_format::record::MAX_PAYLOAD_DEPTH;
    let nested = |n: usize| format!("{{\"a\": {}{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
    let ok = json::parse_object(&nested(MAX_PAYLOAD_DEPTH)).unwrap();
    let mut out = Vec::new();
    chain::seal(&event(&ok, "deep"), 1, Some(&Hash::GENESIS), &mut out).unwrap();
    out.pop();
    for r in both_modes(&out) {
        r.unwrap();
    }
    let too_deep = json::parse_object(&nested(MAX_PAYLOAD_DEPTH + 1)).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        chain::seal(&event(&too_deep, "deep"), 1, Some(&Hash::GENESIS), &mut out),
        Err(chainsink_format::record::RecordError::Payload(
            json::JsonError::TooDeep {
                limit: MAX_PAYLOAD_DEPTH
            }
        ))
    );
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------------------------
// ChainVerifier

fn infos(lines: &[Vec<u8>]) -> Vec<LineInfo> {
    lines
        .iter()
        .map(|l| check_line(l, Mode::Fast).unwrap())
        .collect()
}

/// Pushes all infos; returns (position, error) for each failure.
fn run(v: &mut ChainVerifier, infos: &[LineInfo]) -> Vec<(usize, LinkError)> {
    infos
        .iter()
        .enumerate()
        .filter_map(|(i, info)| v.push(info).err().map(|e| (i, e)))
        .collect()
}

const TEN: &[&str] = &[
    "{\"n\": 1}",
    "{\"n\": 2}",
    "{\"n\": 3}",
    "{\"n\": 4}",
    "{\"n\": 5}",
    "{\"n\": 6}",
    "{\"n\": 7}",
    "{\"n\": 8}",
    "{\"n\": 9}",
    "{\"n\": 10}",
];

#[test]
fn intact_chain_verifies_and_resumes() {
    let (lines, hashes) = seal_log(TEN, true);
    let all = infos(&lines);
    let mut v = ChainVerifier::new();
    assert_eq!(run(&mut v, &all), vec![]);
    assert_eq!(v.records(), 10);
    assert_eq!(v.head(), hashes[9]);
    // Resuming after the first 4 records checks the rest the same way.
    let mut v = ChainVerifier::resume_from(hashes[3], 4);
    assert_eq!(run(&mut v, &all[4..]), vec![]);
    assert_eq!(v.records(), 10);
    // ... and a wrong resume point is caught on the first record.
    let mut v = ChainVerifier::resume_from(hashes[2], 4);
    assert_eq!(
        run(&mut v, &all[4..]),
        vec![(
            0,
            LinkError::BrokenLink {
                expected: hashes[2].unwrap(),
                found: hashes[3].unwrap()
            }
        )]
    );
}

#[test]
fn removed_record_is_one_broken_link() {
    let (lines, hashes) = seal_log(TEN, true);
    let mut all = infos(&lines);
    all.remove(4);
    let mut v = ChainVerifier::new();
    assert_eq!(
        run(&mut v, &all),
        vec![(
            4,
            LinkError::BrokenLink {
                expected: hashes[3].unwrap(),
                found: hashes[4].unwrap()
            }
        )]
    );
    let e = LinkError::BrokenLink {
        expected: Hash::GENESIS,
        found: Hash::GENESIS,
    }
    .to_string();
    assert!(e.contains("prev_hash") && e.contains("removed"), "{e}");
}

#[test]
fn first_record_must_link_to_genesis() {
    let (lines, hashes) = seal_log(TEN, true);
    let all = infos(&lines);
    let mut v = ChainVerifier::new();
    assert_eq!(
        run(&mut v, &all[1..])[0],
        (
            0,
            LinkError::BrokenLink {
                expected: Hash::GENESIS,
                found: hashes[0].unwrap()
            }
        )
    );
}

#[test]
fn swapped_lines_are_broken_links() {
    let (lines, _) = seal_log(TEN, true);
    let mut all = infos(&lines);
    all.swap(2, 3);
    let mut v = ChainVerifier::new();
    let errs = run(&mut v, &all);
    let at: Vec<usize> = errs.iter().map(|e| e.0).collect();
    assert_eq!(at, vec![2, 3, 4]);
    assert!(
        errs.iter()
            .all(|(_, e)| matches!(e, LinkError::BrokenLink { .. }))
    );
}

#[test]
fn seq_mismatch_without_chain() {
    let (lines, _) = seal_log(TEN, false);
    let mut all = infos(&lines);
    all.remove(6);
    let mut v = ChainVerifier::new();
    assert_eq!(
        run(&mut v, &all),
        vec![(
            6,
            LinkError::SeqMismatch {
                expected: 7,
                found: 8
            }
        )]
    );
    // Swapped unchained lines.
    let mut all = infos(&lines);
    all.swap(0, 1);
    let mut v = ChainVerifier::new();
    let errs = run(&mut v, &all);
    assert_eq!(
        errs[0],
        (
            0,
            LinkError::SeqMismatch {
                expected: 1,
                found: 2
            }
        )
    );
}

#[test]
fn seq_mismatch_with_intact_links() {
    // Linked correctly but numbered wrong (e.g. a sink that restarted its count).
    let map = json::parse_object("{}").unwrap();
    let mut prev = Hash::GENESIS;
    let mut all = Vec::new();
    for seq in [1, 2, 2, 3] {
        let mut out = Vec::new();
        prev = chain::seal(&event(&map, "e"), seq, Some(&prev), &mut out)
            .unwrap()
            .unwrap();
        out.pop();
        all.push(check_line(&out, Mode::Fast).unwrap());
    }
    let mut v = ChainVerifier::new();
    assert_eq!(
        run(&mut v, &all),
        vec![(
            2,
            LinkError::SeqMismatch {
                expected: 3,
                found: 2
            }
        )]
    );
}

#[test]
fn chained_and_unchained_records_do_not_mix() {
    let (on, _) = seal_log(TEN, true);
    let (off, _) = seal_log(TEN, false);
    let mut v = ChainVerifier::new();
    let mixed = vec![infos(&on)[0], infos(&off)[1]];
    assert_eq!(
        run(&mut v, &mixed),
        vec![(
            1,
            LinkError::MixedChain {
                record_chained: false
            }
        )]
    );
    let mut v = ChainVerifier::new();
    let mixed = vec![infos(&off)[0], infos(&on)[1]];
    assert_eq!(
        run(&mut v, &mixed),
        vec![(
            1,
            LinkError::MixedChain {
                record_chained: true
            }
        )]
    );
}

#[test]
fn records_without_seq_are_accepted() {
    let (lines, _) = seal_log(TEN, true);
    let mut all = infos(&lines);
    for i in &mut all[..5] {
        i.seq = None;
    }
    let mut v = ChainVerifier::new();
    assert_eq!(run(&mut v, &all), vec![]);
}
