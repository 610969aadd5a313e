//! End-to-end tests of the core: the real binary, the embedded default sink
//! component, real log files, and the Python reference algorithm as oracle.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use crate::common::*;
use serde_json::Value;

fn json_line(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn emit_then_verify_ok() {
    let dir = tempfile::tempdir().unwrap();
    // `--log` needs its directory to exist (see
    // cli_run::a_log_in_a_missing_directory_is_refused_not_created).
    std::fs::create_dir_all(dir.path().join("nested/dir")).unwrap();
    let log = dir.path().join("nested/dir/audit.jsonl");
    let out = run(
        &[
            "emit",
            "--log",
            log.to_str().unwrap(),
            "--type",
            "deploy.started",
            "--workflow-id",
            "wf-9",
            "--payload",
            r#"{"service": "api", "replicas": 3}"#,
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let receipt = json_line(&stdout(&out));
    assert_eq!(receipt["seq"], 1);
    let hash = receipt["hash"].as_str().unwrap().to_string();
    let line = &lines(&log)[0];
    let record = json_line(line);
    assert_eq!(record["hash"], hash.as_str());
    assert_eq!(record["event_type"], "deploy.started");
    assert_eq!(record["workflow_id"], "wf-9");
    assert_eq!(record["actor"]["user"], "tester");
    assert_eq!(record["actor"]["host_id"], "test-host");
    assert_eq!(record["payload"]["replicas"], 3);
    assert_eq!(record["prev_hash"], "0".repeat(64));

    let out = verify(&log, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("OK 1 records, head {hash}"));
}

#[test]
fn reference_log_verifies_and_continues_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("telemachy.jsonl");
    let log_s = log.to_str().unwrap();
    let out = reference(&["write", log_s, "5", "--workflow-id", "wf-py"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Our verifier accepts the reference's log.
    let out = verify(&log, &["--strict"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).starts_with("OK 5 records"), "{}", stdout(&out));
    let py_head = json_line(&lines(&log)[4])["hash"]
        .as_str()
        .unwrap()
        .to_string();

    // We continue its chain: counting its records once, linking to its head.
    let out = emit_n(&log, 3, "none");
    let receipts: Vec<Value> = stdout(&out).lines().map(json_line).collect();
    assert_eq!(receipts[0]["seq"], 6);
    assert_eq!(receipts[2]["seq"], 8);
    let ours = json_line(&lines(&log)[5]);
    assert_eq!(ours["prev_hash"], py_head.as_str());

    // The reference continues ours, and both verifiers accept the mix.
    let out = reference(&["write", log_s, "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = verify(&log, &["--strict"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("OK 10 records"),
        "{}",
        stdout(&out)
    );
    let out = reference(&["verify", log_s]);
    assert!(
        out.status.success(),
        "the reference rejects our records: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // And we resume after the reference's records again (they lack `seq`).
    let out = emit_n(&log, 1, "none");
    assert_eq!(json_line(&stdout(&out))["seq"], 11);
    assert_eq!(verify(&log, &[]).status.code(), Some(0));
}

#[test]
fn two_processes_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    emit_n(&log, 3, "always");
    let first_head = json_line(&lines(&log)[2])["hash"].clone();
    let out = emit_n(&log, 2, "always");
    let receipts: Vec<Value> = stdout(&out).lines().map(json_line).collect();
    assert_eq!(receipts[0]["seq"], 4);
    let all = lines(&log);
    assert_eq!(all.len(), 5);
    assert_eq!(json_line(&all[3])["prev_hash"], first_head);
    let out = verify(&log, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("OK 5 records"));
}

#[test]
fn stdin_receipts_arrive_before_the_next_line_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut child = bin()
        .args(["emit", "--stdin", "--log", log.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut receipts = Vec::new();
    // A request/response conversation: each receipt must come back while
    // stdin stays open, or this test hangs instead of passing.
    for i in 0..3 {
        writeln!(
            input,
            r#"{{"event_type": "step", "payload": {{"i": {i}}}}}"#
        )
        .unwrap();
        input.flush().unwrap();
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        receipts.push(json_line(&line));
    }
    writeln!(input, r#"{{"event_type": "step", "payload": [1, 2]}}"#).unwrap();
    writeln!(
        input,
        r#"{{"event_type": "step", "payload": {{"x": NaN}}}}"#
    )
    .unwrap();
    writeln!(input, "not json").unwrap();
    writeln!(input, r#"{{"event_type": "last"}}"#).unwrap();
    drop(input);
    let rest: Vec<Value> = output.lines().map(|l| json_line(&l.unwrap())).collect();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "refused lines make the exit status 1"
    );
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1);
        assert_eq!(r["seq"], i as u64 + 1);
        assert_eq!(r["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(rest.len(), 4, "{rest:?}");
    for (r, line) in rest[..3].iter().zip(4..) {
        assert_eq!(r["line"], line);
        assert!(r["error"].is_string(), "{r}");
    }
    assert_eq!(rest[3]["line"], 7);
    assert_eq!(rest[3]["seq"], 4, "refused lines write nothing");
    assert_eq!(lines(&log).len(), 4);
    assert_eq!(verify(&log, &[]).status.code(), Some(0));
}

#[test]
fn bad_payload_is_refused_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    emit_n(&log, 1, "none");
    let before = std::fs::read(&log).unwrap();
    for (payload, expect) in [
        ("{\"a\": ", "payload"),
        ("[1, 2]", "object"),
        ("{\"x\": 1e999}", "too large"),
    ] {
        let out = run(
            &[
                "emit",
                "--log",
                log.to_str().unwrap(),
                "--type",
                "t",
                "--payload",
                payload,
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(2), "payload {payload}");
        let err = stderr(&out);
        assert!(err.contains("invalid audit event"), "{err}");
        assert!(
            err.to_lowercase().contains(expect),
            "payload {payload}: {err}"
        );
    }
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

#[test]
fn log_path_errors_say_what_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["emit", "--log", dir.path().to_str().unwrap(), "--type", "t"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    assert!(stderr(&out).contains("audit.jsonl"), "{}", stderr(&out));

    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("audit.jsonl");
    let out = run(
        &["emit", "--log", under_file.to_str().unwrap(), "--type", "t"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot create or open the audit log's directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).matches("os error").count(),
        1,
        "the OS error is said once: {}",
        stderr(&out)
    );

    let out = run(&["emit", "--type", "t"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("AUDIT_LOG_PATH"), "{}", stderr(&out));
}

#[test]
fn chain_off_writes_plain_records_and_never_mixes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("plain.jsonl");
    let out = run(
        &[
            "emit",
            "--hash-chain",
            "false",
            "--log",
            log.to_str().unwrap(),
            "--type",
            "t",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rec = json_line(&lines(&log)[0]);
    assert!(
        rec.get("hash").is_none() && rec.get("prev_hash").is_none(),
        "{rec}"
    );
    let out = verify(&log, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("no hash chain"), "{}", stdout(&out));

    // A chained log refuses unchained records, and the reverse.
    let chained = dir.path().join("chained.jsonl");
    emit_n(&chained, 1, "none");
    let out = run(
        &[
            "emit",
            "--hash-chain",
            "false",
            "--log",
            chained.to_str().unwrap(),
            "--type",
            "t",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("AUDIT_HASH_CHAIN=true"),
        "{}",
        stderr(&out)
    );
    let out = run(&["emit", "--log", log.to_str().unwrap(), "--type", "t"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no `hash`"), "{}", stderr(&out));
    assert_eq!(lines(&chained).len(), 1);
    assert_eq!(lines(&log).len(), 1);
}

#[test]
fn env_config_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("env.jsonl");
    let out = bin()
        .env("AUDIT_LOG_PATH", &log)
        .env("HOST_ID", "from-env")
        .env_remove("USER")
        .env("USERNAME", "win-user")
        .args(["emit", "--type", "t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rec = json_line(&lines(&log)[0]);
    assert_eq!(rec["actor"]["host_id"], "from-env");
    assert_eq!(rec["actor"]["user"], "win-user");

    let other = dir.path().join("flag.jsonl");
    let out = bin()
        .env("AUDIT_LOG_PATH", &log)
        .env("AUDIT_HASH_CHAIN", "false")
        .args([
            "emit",
            "--type",
            "t",
            "--log",
            other.to_str().unwrap(),
            "--hash-chain",
            "true",
            "--host-id",
            "from-flag",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&log).len(), 1, "--log overrides AUDIT_LOG_PATH");
    let rec = json_line(&lines(&other)[0]);
    assert_eq!(rec["actor"]["host_id"], "from-flag");
    assert!(
        rec["hash"].is_string(),
        "--hash-chain overrides AUDIT_HASH_CHAIN"
    );
}

#[test]
fn verify_names_each_kind_of_damage_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    emit_n(&good, 5, "none");
    let all = lines(&good);
    let case = |name: &str, body: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = verify(&path, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        json_line(&stdout(&out))
    };

    let mut lines_ = all.clone();
    lines_.remove(2);
    let r = case("deleted.jsonl", lines_.concat());
    assert_eq!(
        (r["reason"].as_str().unwrap(), r["line"].as_u64().unwrap()),
        ("broken-link", 3)
    );

    let mut lines_ = all.clone();
    lines_.swap(1, 2);
    let r = case("swapped.jsonl", lines_.concat());
    assert_eq!(
        (r["reason"].as_str().unwrap(), r["line"].as_u64().unwrap()),
        ("broken-link", 2)
    );

    let mut lines_ = all.clone();
    lines_.insert(3, all[0].clone());
    let r = case("inserted.jsonl", lines_.concat());
    assert_eq!(r["line"], 4);

    let r = case(
        "torn.jsonl",
        format!("{}{}", all[..4].concat(), all[4].trim_end()),
    );
    assert_eq!(
        (r["reason"].as_str().unwrap(), r["line"].as_u64().unwrap()),
        ("missing-newline", 5)
    );

    let r = case(
        "garbage.jsonl",
        format!("{}{{\"actor\": oops\n", all[..2].concat()),
    );
    assert_eq!(
        (r["reason"].as_str().unwrap(), r["line"].as_u64().unwrap()),
        ("bad-json", 3)
    );

    let spaced = all[1].replacen("\"event_type\": ", "\"event_type\":  ", 1);
    let r = case(
        "spaced.jsonl",
        format!("{}{spaced}{}", all[0], all[2..].concat()),
    );
    assert_eq!(
        (r["reason"].as_str().unwrap(), r["line"].as_u64().unwrap()),
        ("not-canonical", 2)
    );

    let out = verify(&dir.path().join("missing.jsonl"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[test]
fn every_single_byte_change_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    emit_n(&log, 3, "none");
    let original = std::fs::read(&log).unwrap();
    let second_start = original.iter().position(|&b| b == b'\n').unwrap() + 1;
    let second_end = second_start
        + original[second_start..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap();
    let options = chainsink_host::verify::VerifyOptions::default();
    assert!(chainsink_host::verify::verify_reader(&original[..], &options).is_ok());
    // Every byte of the middle record, including its newline, flipped to
    // several other values: each change must be reported.
    for pos in second_start..=second_end {
        for replacement in [b'0', b'a', b' ', b'"', b'\n', original[pos] ^ 1] {
            if replacement == original[pos] {
                continue;
            }
            let mut bad = original.clone();
            bad[pos] = replacement;
            let result = chainsink_host::verify::verify_reader(&bad[..], &options);
            assert!(
                result.is_err(),
                "byte {pos} changed from {:?} to {:?} went unnoticed",
                original[pos] as char,
                replacement as char
            );
        }
    }
}

#[test]
fn forged_record_with_a_valid_self_hash_but_wrong_link_is_caught() {
    use chainsink_format::{
        Hash,
        chain::seal,
        json::parse_object,
        record::{Actor, Event},
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    emit_n(&log, 3, "none");
    let all = lines(&log);
    // Re-seal record 3 with the right rules but linked to a made-up hash.
    let rec = json_line(&all[2]);
    let payload = parse_object(&rec["payload"].to_string()).unwrap();
    let event = Event {
        timestamp: rec["timestamp"].as_str().unwrap(),
        event_type: "forged.event",
        workflow_id: rec["workflow_id"].as_str(),
        actor: Actor {
            host_id: "test-host",
            user: "tester",
        },
        payload: (&payload).into(),
    };
    let mut forged = Vec::new();
    seal(&event, 3, Some(&Hash([7; 32])), &mut forged).unwrap();
    let body = format!(
        "{}{}",
        all[..2].concat(),
        String::from_utf8(forged).unwrap()
    );
    let path = dir.path().join("forged.jsonl");
    std::fs::write(&path, body).unwrap();
    let out = verify(&path, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json_line(&stdout(&out));
    assert_eq!(r["reason"], "broken-link");
    assert_eq!(r["line"], 3);
}
