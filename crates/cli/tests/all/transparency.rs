//! Signed checkpoints, proofs and witnessing, end to end (issue 13): a cut
//! tail and a rewritten chain are caught, proofs verify offline, a witness
//! on loopback cosigns, a hostile sink never reaches the key, and an
//! independent Python implementation agrees byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use chainsink_test_programs as guests;
use chainsink_transparency::checkpoint;
use chainsink_transparency::merkle;
use chainsink_transparency::note::{KeyType, SigningKey, VerifierKey};
use chainsink_transparency::proof::ConsistencyProof;

use crate::common::{bin, lines, run, stderr, stdout};
use crate::tools;

/// `cryptography` for the Python oracle's Ed25519.
const CRYPTOGRAPHY: &str = "cryptography==44.0.0";

/// A log key made by `chainsink keygen` in `dir`: (PREFIX.key, PREFIX.vkey).
fn keygen(dir: &Path, origin: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join("log");
    let out = run(
        &[
            "keygen",
            "--origin",
            origin,
            "--out",
            prefix.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (key, vkey) = (dir.join("log.key"), dir.join("log.vkey"));
    assert_eq!(
        stdout(&out).trim(),
        std::fs::read_to_string(&vkey).unwrap().trim()
    );
    (key, vkey)
}

/// Writes `n` events to `log`, signing checkpoints with `key`.
fn emit_signed(log: &Path, n: usize, key: &Path) -> Output {
    let input: String = (0..n)
        .map(|i| format!("{{\"event_type\": \"test.event\", \"payload\": {{\"i\": {i}}}}}\n"))
        .collect();
    let out = run(
        &[
            "emit",
            "--stdin",
            "--durability",
            "none",
            "--log",
            log.to_str().unwrap(),
            "--signing-key",
            key.to_str().unwrap(),
        ],
        &input,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn cp_of(log: &Path) -> PathBuf {
    chainsink_transparency::checkpointer::checkpoint_path(log)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `chainsink verify LOG --checkpoint CP --key VKEY`.
fn verify_cp(log: &Path, cp: &Path, vkey: &Path) -> Output {
    run(
        &["verify", s(log), "--checkpoint", s(cp), "--key", s(vkey)],
        "",
    )
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+example.com/audit+"), "{text}");
    let v = VerifierKey::from_text(&std::fs::read_to_string(&vkey).unwrap()).unwrap();
    assert_eq!(
        SigningKey::from_text(&text).unwrap().verifier().to_text(),
        v.to_text()
    );
    let again = run(
        &[
            "keygen",
            "--origin",
            "x.example/y",
            "--out",
            s(&dir.path().join("log")),
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
}

#[test]
fn cutting_the_last_3_lines_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 40, &key);
    let cp = cp_of(&log);
    let ok = verify_cp(&log, &cp, &vkey);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("checkpoint OK"), "{}", stdout(&ok));

    let all = lines(&log);
    std::fs::write(&log, all[..all.len() - 3].concat()).unwrap();
    // The chain alone still agrees with itself.
    let chain = run(&["verify", s(&log)], "");
    assert!(chain.status.success(), "{}", stdout(&chain));
    let out = verify_cp(&log, &cp, &vkey);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("log has 37 records, checkpoint says 40: the last 3 records were cut"),
        "{}",
        stdout(&out)
    );
    let json = run(
        &[
            "verify",
            s(&log),
            "--checkpoint",
            s(&cp),
            "--key",
            s(&vkey),
            "--json",
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checkpoint"]["reason"], "truncated");
    // The host refuses to sign over the cut.
    let sign = run(&["checkpoint", s(&log), "--signing-key", s(&key)], "");
    assert_eq!(sign.status.code(), Some(2));
    assert!(
        stderr(&sign).contains("refusing to sign"),
        "{}",
        stderr(&sign)
    );
}

/// Cuts `log` to its first `keep` lines and appends `n` fresh records with
/// `chainsink emit` (no key): a valid chain from there on.
fn rewrite_from(log: &Path, keep: usize, n: usize) {
    let all = lines(log);
    std::fs::write(log, all[..keep].concat()).unwrap();
    let input: String = (0..n)
        .map(|i| format!("{{\"event_type\": \"forged.event\", \"payload\": {{\"i\": {i}}}}}\n"))
        .collect();
    let out = run(&["emit", "--stdin", "--log", s(log)], &input);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rewriting_the_chain_from_record_10_with_fresh_hashes_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 40, &key);
    let cp = cp_of(&log);
    rewrite_from(&log, 9, 31);
    assert_eq!(lines(&log).len(), 40);
    let chain = run(&["verify", s(&log)], "");
    assert!(
        chain.status.success(),
        "the rewritten chain is valid: {}",
        stdout(&chain)
    );
    let out = verify_cp(&log, &cp, &vkey);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("the log was rewritten"), "{text}");
    // 40 = 32 + 8 leaves: the stored frontier places the change in the
    // first 32 records.
    assert!(text.contains("within records 1..32"), "{text}");
}

#[test]
fn an_inclusion_proof_of_any_record_verifies_offline_and_a_modified_line_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 13, &key);
    let all = lines(&log);
    // Offline: a separate directory with only the line, the proof and the key.
    let offline = tempfile::tempdir().unwrap();
    let vkey_copy = offline.path().join("log.vkey");
    std::fs::copy(&vkey, &vkey_copy).unwrap();
    for seq in 1..=13 {
        let out = run(&["prove", s(&log), "--seq", &seq.to_string()], "");
        assert!(out.status.success(), "{}", stderr(&out));
        let proof = offline.path().join(format!("{seq}.tlog-proof"));
        std::fs::write(&proof, &out.stdout).unwrap();
        assert!(stdout(&out).starts_with("c2sp.org/tlog-proof@v1\nindex "));
        let line = offline.path().join(format!("{seq}.line"));
        std::fs::write(&line, &all[seq - 1]).unwrap();
        let ok = run(
            &[
                "verify-proof",
                "--line",
                s(&line),
                "--proof",
                s(&proof),
                "--key",
                s(&vkey_copy),
            ],
            "",
        );
        assert!(ok.status.success(), "seq {seq}: {}", stdout(&ok));
        // The same line from stdin, modified: refused.
        let modified = all[seq - 1].replace("\"i\": ", "\"i\": 1");
        let bad = run(
            &[
                "verify-proof",
                "--line",
                "-",
                "--proof",
                s(&proof),
                "--key",
                s(&vkey_copy),
            ],
            &modified,
        );
        assert_eq!(bad.status.code(), Some(1), "seq {seq}: {}", stdout(&bad));
        assert!(stdout(&bad).contains("FAILED"), "{}", stdout(&bad));
    }
    // Another record's line against this proof fails too.
    let proof = offline.path().join("5.tlog-proof");
    let other = offline.path().join("6.line");
    let out = run(
        &[
            "verify-proof",
            "--line",
            s(&other),
            "--proof",
            s(&proof),
            "--key",
            s(&vkey_copy),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn consistency_between_two_checkpoints_verifies_and_fails_for_a_rewritten_log() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 21, &key);
    let old = dir.path().join("old.checkpoint");
    std::fs::copy(cp_of(&log), &old).unwrap();
    emit_signed(&log, 17, &key);
    let new = cp_of(&log);
    let out = run(
        &[
            "verify-consistency",
            s(&old),
            s(&new),
            s(&log),
            "--key",
            s(&vkey),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("extends"), "{}", stdout(&out));
    // The proof alone, offline.
    let proof = dir.path().join("cons.proof");
    let p = run(&["prove", s(&log), "--from", s(&old)], "");
    assert!(p.status.success(), "{}", stderr(&p));
    std::fs::write(&proof, &p.stdout).unwrap();
    let ok = run(
        &[
            "verify-proof",
            "--proof",
            s(&proof),
            "--old-checkpoint",
            s(&old),
            "--key",
            s(&vkey),
        ],
        "",
    );
    assert!(ok.status.success(), "{}", stdout(&ok));

    // Rewrite from record 10: the log no longer extends the old checkpoint,
    // and a checkpoint signed over the rewrite (a key holder who rewrote
    // history) is inconsistent with the old one.
    rewrite_from(&log, 9, 29);
    let out = run(
        &[
            "verify-consistency",
            s(&old),
            s(&new),
            s(&log),
            "--key",
            s(&vkey),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    std::fs::remove_file(cp_of(&log)).unwrap();
    std::fs::remove_file(chainsink_transparency::checkpointer::tree_path(&log)).unwrap();
    let sign = run(&["checkpoint", s(&log), "--signing-key", s(&key)], "");
    assert!(sign.status.success(), "{}", stderr(&sign));
    let forged = cp_of(&log);
    let out = run(
        &[
            "verify-consistency",
            s(&old),
            s(&forged),
            s(&log),
            "--key",
            s(&vkey),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("does not extend"), "{}", stdout(&out));
    let p = run(&["prove", s(&log), "--from", s(&old)], "");
    assert!(p.status.success(), "{}", stderr(&p));
    std::fs::write(&proof, &p.stdout).unwrap();
    let bad = run(
        &[
            "verify-proof",
            "--proof",
            s(&proof),
            "--old-checkpoint",
            s(&old),
            "--key",
            s(&vkey),
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
}

#[test]
fn unknown_signatures_are_ignored_and_cosignatures_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 5, &key);
    let cp = cp_of(&log);
    let text = std::fs::read_to_string(&cp).unwrap();
    let signed = checkpoint::parse_unverified(&text).unwrap();
    // A witness's cosignature and a signature by a key nobody knows.
    let witness = SigningKey::generate("witness.example/w1", KeyType::Cosignature).unwrap();
    let stranger = SigningKey::generate("stranger.example/k", KeyType::Ed25519).unwrap();
    let mut note = signed.note.clone();
    note.add_signature(witness.sign(note.text(), 1_700_000_000));
    note.add_signature(stranger.sign("something else\n", 0));
    std::fs::write(&cp, note.to_string()).unwrap();
    let out = verify_cp(&log, &cp, &vkey);
    assert!(out.status.success(), "{}", stdout(&out));
    // Nothing new: the checkpoint, with its cosignatures, stays as it is.
    let again = run(&["checkpoint", s(&log), "--signing-key", s(&key)], "");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&cp).unwrap(), note.to_string());
    // A bad signature by the log's own key is refused.
    let forged = note.to_string().replacen("\n5\n", "\n4\n", 1);
    let forged_cp = dir.path().join("forged.checkpoint");
    std::fs::write(&forged_cp, forged).unwrap();
    let out = verify_cp(&log, &forged_cp, &vkey);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("TAMPERED CHECKPOINT"),
        "{}",
        stdout(&out)
    );
}

/// A C2SP tlog-witness on 127.0.0.1 (an ephemeral port), in a thread: checks
/// the log's signature, the old size against what it cosigned last, and the
/// consistency proof; cosigns. Returns its URL and the sizes it cosigned.
fn start_witness(
    log_key: VerifierKey,
    witness: SigningKey,
    requests: usize,
) -> (String, Arc<Mutex<Vec<u64>>>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/w", listener.local_addr().unwrap());
    let cosigned = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&cosigned);
    let thread = std::thread::spawn(move || {
        let mut latest: Option<(u64, merkle::Hash)> = None;
        for _ in 0..requests {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let (status, ctype, answer) = (|| {
                if request_line != "POST /w/add-checkpoint HTTP/1.1\r\n" {
                    return (404, "text/plain", "no such endpoint\n".to_string());
                }
                let Ok(proof) = ConsistencyProof::from_text(&body) else {
                    return (400, "text/plain", "malformed\n".into());
                };
                let Ok(new) = checkpoint::open(&proof.checkpoint, &log_key) else {
                    return (403, "text/plain", "not signed by a known log key\n".into());
                };
                let (size, root) = (new.checkpoint.size, new.checkpoint.root);
                if proof.old_size > size {
                    return (400, "text/plain", "old size beyond the checkpoint\n".into());
                }
                let (old_size, old_root) = latest.unwrap_or((0, merkle::empty_root()));
                if proof.old_size != old_size {
                    return (409, "text/x.tlog.size", format!("{old_size}\n"));
                }
                if merkle::verify_consistency(old_size, size, &old_root, &root, &proof.hashes)
                    .is_err()
                {
                    return (422, "text/plain", "inconsistent\n".into());
                }
                latest = Some((size, root));
                seen.lock().unwrap().push(size);
                (
                    200,
                    "text/plain",
                    witness.sign(new.note.text(), 1_700_000_000).to_line(),
                )
            })();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (url, cosigned, thread)
}

#[test]
fn a_witness_on_loopback_checks_consistency_and_cosigns() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let log_key = VerifierKey::from_text(&std::fs::read_to_string(&vkey).unwrap()).unwrap();
    let witness = SigningKey::generate("witness.example/w1", KeyType::Cosignature).unwrap();
    let wvkey = dir.path().join("witness.vkey");
    std::fs::write(&wvkey, witness.verifier().to_text()).unwrap();
    let wkey = witness.verifier();
    // Request 1: old 0 -> cosigned. Request 2: old 0 -> 409 (it has 9).
    // Request 3: old 9 with a proof -> cosigned. Request 4: a rewritten
    // log's checkpoint, from 0 -> 409. Request 5: from 20, inconsistent -> 422.
    let (url, cosigned, thread) = start_witness(log_key.clone(), witness, 5);
    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 9, &key);
    let out = run(
        &[
            "witness",
            s(&log),
            "--url",
            &url,
            "--witness-key",
            s(&wvkey),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    emit_signed(&log, 11, &key);
    let out = run(
        &[
            "witness",
            s(&log),
            "--url",
            &url,
            "--witness-key",
            s(&wvkey),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("from size 9 to 20"),
        "{}",
        stdout(&out)
    );
    assert_eq!(*cosigned.lock().unwrap(), [9, 20]);
    // The cosigned checkpoint is kept, and still verifies with the log key.
    let text = std::fs::read_to_string(cp_of(&log)).unwrap();
    let signed = checkpoint::open(&text, &log_key).unwrap();
    assert_eq!(signed.note.signatures().len(), 2);
    signed.note.verify(&[wkey]).unwrap();
    let ok = verify_cp(&log, &cp_of(&log), &vkey);
    assert!(ok.status.success(), "{}", stdout(&ok));

    // The log's key holder rewrites history and signs it: the witness,
    // which has seen 20 records, refuses to cosign.
    rewrite_from(&log, 9, 15);
    std::fs::remove_file(cp_of(&log)).unwrap();
    std::fs::remove_file(chainsink_transparency::checkpointer::tree_path(&log)).unwrap();
    let sign = run(&["checkpoint", s(&log), "--signing-key", s(&key)], "");
    assert!(sign.status.success(), "{}", stderr(&sign));
    let out = run(
        &[
            "witness",
            s(&log),
            "--url",
            &url,
            "--witness-key",
            s(&wvkey),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("422"), "{}", stderr(&out));
    thread.join().unwrap();
    assert_eq!(*cosigned.lock().unwrap(), [9, 20]);
}

/// Runs `chainsink run` on a dry-run workflow with the key-snoop sink.
fn run_snooped(dir: &Path, log: &Path, key_by: &dyn Fn(&mut Command)) -> Output {
    let wf = dir.join("wf.yaml");
    std::fs::write(
        &wf,
        "apiVersion: telemachy/v1\nmetadata:\n  name: snooped\nagents:\n  - name: a\n    program: 'true'\n    runtime: local\nteams:\n  - name: t\n    agents: [a]\n    tasks:\n      - subject: one\n        description: d\n        assign_to: a\n",
    )
    .unwrap();
    let mut cmd = bin();
    cmd.args([
        "run",
        s(&wf),
        "--dry-run",
        "--log",
        s(log),
        "--sink",
        guests::CHAINSINK_GUEST_KEY_SNOOP,
        "--checkpoint-every",
        "1",
    ]);
    key_by(&mut cmd);
    cmd.output().unwrap()
}

/// How a case hands `run` the key.
type KeyBy<'a> = Box<dyn Fn(&mut Command) + 'a>;

#[test]
fn a_hostile_sink_cannot_reach_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let secret = key_text.trim().splitn(5, '+').nth(4).unwrap().to_string();
    assert!(secret.len() > 40);
    let cases: [(&str, KeyBy<'_>); 3] = [
        (
            "flag",
            Box::new(|c: &mut Command| {
                c.arg("--signing-key").arg(&key);
            }),
        ),
        (
            "env-path",
            Box::new(|c: &mut Command| {
                c.env("AUDIT_SIGNING_KEY", &key);
            }),
        ),
        (
            "env-text",
            Box::new(|c: &mut Command| {
                c.env("AUDIT_SIGNING_KEY", key_text.trim());
            }),
        ),
    ];
    for (name, key_by) in cases {
        let log = dir.path().join(format!("{name}.jsonl"));
        let out = run_snooped(dir.path(), &log, &*key_by);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let text = std::fs::read_to_string(&log).unwrap();
        let err = stderr(&out);
        // The sink ran its probes and wrote what it reached.
        assert!(text.contains("\"reached\""), "{name}: {text}");
        assert!(
            err.contains("key-snoop: environment: 0 variables"),
            "{name}: {err}"
        );
        assert!(err.contains("key-snoop: log: "), "{name}: {err}");
        for (what, haystack) in [("log", &text), ("stderr", &err), ("stdout", &stdout(&out))] {
            assert!(
                !haystack.contains(&secret),
                "{name}: the secret is in the {what}"
            );
            assert!(
                !haystack.contains("PRIVATE+KEY"),
                "{name}: the key is in the {what}"
            );
        }
        // And the host signed checkpoints of what the sink wrote.
        let ok = verify_cp(&log, &cp_of(&log), &vkey);
        assert!(ok.status.success(), "{name}: {}", stdout(&ok));
    }
}

#[test]
fn the_key_stays_out_of_the_tasks_environment() {
    // AUDIT_SIGNING_KEY leaves chainsink's environment at start-up, so a
    // workflow's task cannot print it.
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "example.com/audit");
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "apiVersion: telemachy/v1\nmetadata:\n  name: env\nagents:\n  - name: a\n    program: 'cat > /dev/null; echo \"seen=[$AUDIT_SIGNING_KEY]\"'\n    runtime: local\nteams:\n  - name: t\n    agents: [a]\n    tasks:\n      - subject: one\n        description: d\n        assign_to: a\n",
    )
    .unwrap();
    let log = dir.path().join("env.jsonl");
    let out = bin()
        .args(["run", s(&wf), "--log", s(&log)])
        .env("AUDIT_SIGNING_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("seen=[]"), "{}", stdout(&out));
    assert!(cp_of(&log).exists());
}

fn oracle(packages: &Path, args: &[&str]) -> Output {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c2sp_oracle.py"))
        .args(args)
        .env("PYTHONPATH", packages)
        .output()
        .expect("python3")
}

#[test]
fn an_independent_python_implementation_agrees_byte_for_byte() {
    let packages = tools::python_packages(&[CRYPTOGRAPHY]);
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = keygen(dir.path(), "example.com/audit");
    // The same vkey from the private key text.
    let out = oracle(&packages, &["vkey", s(&key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        std::fs::read_to_string(&vkey).unwrap().trim()
    );

    let log = dir.path().join("audit.jsonl");
    emit_signed(&log, 23, &key);
    let old = dir.path().join("old.checkpoint");
    std::fs::copy(cp_of(&log), &old).unwrap();
    emit_signed(&log, 19, &key);
    let cp = cp_of(&log);
    // chainsink's checkpoint: the oracle checks its signature and root.
    let out = oracle(&packages, &["verify-checkpoint", s(&vkey), s(&cp), s(&log)]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The oracle's checkpoint of the same tree is the same bytes (Ed25519
    // is deterministic), and chainsink verifies it.
    let out = oracle(&packages, &["checkpoint", s(&key), s(&log)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), std::fs::read_to_string(&cp).unwrap());
    let theirs = dir.path().join("python.checkpoint");
    std::fs::write(&theirs, &out.stdout).unwrap();
    let ok = verify_cp(&log, &theirs, &vkey);
    assert!(ok.status.success(), "{}", stdout(&ok));
    // An oracle checkpoint at another size, too.
    let out = oracle(&packages, &["checkpoint", s(&key), s(&log), "17"]);
    std::fs::write(&theirs, &out.stdout).unwrap();
    let ok = verify_cp(&log, &theirs, &vkey);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("the first 17 records"),
        "{}",
        stdout(&ok)
    );

    // Inclusion proofs of every record; a modified line fails.
    let all = lines(&log);
    for seq in 1..=all.len() {
        let p = run(&["prove", s(&log), "--seq", &seq.to_string()], "");
        assert!(p.status.success(), "{}", stderr(&p));
        let proof = dir.path().join("p.tlog-proof");
        std::fs::write(&proof, &p.stdout).unwrap();
        let line = dir.path().join("line");
        std::fs::write(&line, &all[seq - 1]).unwrap();
        let out = oracle(
            &packages,
            &["verify-inclusion", s(&vkey), s(&proof), s(&line)],
        );
        assert!(
            out.status.success(),
            "seq {seq}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        std::fs::write(&line, all[seq - 1].replace("test.event", "test.evenT")).unwrap();
        let out = oracle(
            &packages,
            &["verify-inclusion", s(&vkey), s(&proof), s(&line)],
        );
        assert_eq!(out.status.code(), Some(1), "seq {seq}: {}", stdout(&out));
    }
    // The consistency proof between the two checkpoints.
    let p = run(&["prove", s(&log), "--from", s(&old)], "");
    assert!(p.status.success(), "{}", stderr(&p));
    let proof = dir.path().join("c.proof");
    std::fs::write(&proof, &p.stdout).unwrap();
    let out = oracle(
        &packages,
        &["verify-consistency", s(&vkey), s(&old), s(&proof)],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK 23 -> 42"), "{}", stdout(&out));
    // A rewritten log's checkpoint is inconsistent for the oracle too.
    rewrite_from(&log, 9, 33);
    std::fs::remove_file(cp_of(&log)).unwrap();
    std::fs::remove_file(chainsink_transparency::checkpointer::tree_path(&log)).unwrap();
    let sign = run(&["checkpoint", s(&log), "--signing-key", s(&key)], "");
    assert!(sign.status.success(), "{}", stderr(&sign));
    let p = run(&["prove", s(&log), "--from", s(&old)], "");
    std::fs::write(&proof, &p.stdout).unwrap();
    let out = oracle(
        &packages,
        &["verify-consistency", s(&vkey), s(&old), s(&proof)],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
