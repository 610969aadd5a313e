//! Sinks written in Python and JavaScript with chainsink's SDKs (`sdk/python`,
//! `sdk/js`): generated from `templates/<lang>`, built with the one command
//! their README documents (componentize-py from PyPI, componentize-js from
//! npm, pinned, installed by [`crate::tools`]), then loaded by `chainsink`
//! with `--sink`. Their logs must verify and be byte for byte the default
//! sink's for the same events, and they must continue each other's logs.
//!
//! The JS SDK's canonical encoder is checked on its own against python3, the
//! oracle, over thousands of generated JSON texts.
//!
//! Each component is built once per test binary (about 25 s each) under
//! `target/tmp/polyglot-sinks/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::common::*;
use crate::tools;

/// componentize-py, as pinned in `templates/python/README.md` and the guide.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// componentize-js, as pinned in `templates/js/package.json` (and its lock).
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// A language with an SDK and a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `templates/python`, built with componentize-py.
    Python,
    /// `templates/js`, built with componentize-js.
    Js,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn work_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("polyglot-sinks")
}

/// A fresh project for `lang` in `dir`, written by `chainsink new-sink`:
/// the template, the SDK and the current WIT.
fn generate(lang: Lang, dir: &Path, name: &str) {
    let _ = fs::remove_dir_all(dir);
    let out = bin()
        .args(["new-sink", "--lang", lang.name(), "--name", name])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chainsink new-sink --lang {}: {}",
        lang.name(),
        stderr(&out)
    );
}

fn checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the project in `dir` with its documented command; returns the component.
fn build(lang: Lang, dir: &Path) -> PathBuf {
    match lang {
        Lang::Python => {
            let packages = tools::python_packages(&[COMPONENTIZE_PY]);
            // templates/python/README.md: the one build command.
            checked(
                tools::python_tool(&packages, "componentize-py")
                    .args(["-d", "wit", "-w", "audit-sink", "componentize", "app"])
                    .args(["-o", "sink.wasm"])
                    .current_dir(dir),
                "componentize-py (templates/python)",
            );
        }
        Lang::Js => {
            let package: Value =
                serde_json::from_str(&fs::read_to_string(dir.join("package.json")).unwrap())
                    .unwrap();
            let (tool, version) = COMPONENTIZE_JS.rsplit_once('@').unwrap();
            assert_eq!(
                package["devDependencies"][tool], version,
                "templates/js/package.json pins the componentize-js these tests install"
            );
            let prefix = tools::npm_packages(&[COMPONENTIZE_JS]);
            let modules = dir.join("node_modules");
            let _ = fs::remove_file(&modules);
            std::os::unix::fs::symlink(prefix.join("node_modules"), &modules).unwrap();
            // templates/js/README.md: `npm ci && npm run build`; the
            // packages come from the shared install of the same pin.
            checked(
                Command::new("npm")
                    .args(["run", "--silent", "build"])
                    .current_dir(dir),
                "npm run build (templates/js)",
            );
        }
    }
    let wasm = dir.join("sink.wasm");
    assert!(wasm.exists(), "the build wrote no {}", wasm.display());
    wasm
}

/// The template's sink for `lang`, generated and built once per test binary.
pub fn template_sink(lang: Lang) -> PathBuf {
    built_sink(lang, None)
}

/// A sink generated for `lang` with its module (`app.py`, `sink.js`)
/// replaced by `fixture` from `tests/fixtures/sinks/` when given, built once
/// per test binary. Builds run one at a time: each takes both cores.
fn built_sink(lang: Lang, fixture: Option<&str>) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let key = format!("{}-{}", lang.name(), fixture.unwrap_or("template"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(wasm) = built.get(&key) {
        return wasm.clone();
    }
    let dir = work_root().join(&key);
    generate(lang, &dir, &format!("{}-sink", lang.name()));
    if let Some(fixture) = fixture {
        let module = match lang {
            Lang::Python => "app.py",
            Lang::Js => "sink.js",
        };
        let src = repo().join("crates/cli/tests/fixtures/sinks").join(fixture);
        fs::copy(&src, dir.join(module)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
    let wasm = build(lang, &dir);
    built.insert(key, wasm.clone());
    wasm
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The events of `workflows/example.yaml` as the default sink logged them in
/// a dry run, as `emit --stdin` lines with their timestamps and actor, so that
/// another sink can be given exactly the same events.
fn workflow_events(dir: &Path) -> Vec<String> {
    crate::polyglot::workflow_events(dir)
        .iter()
        .map(Value::to_string)
        .collect()
}

/// Events whose payloads are hard to carry: non-ASCII, escapes, floats that
/// look like integers, integers past 2^64, exponents, nesting, `-0`.
const TRICKY: [&str; 3] = [
    r#"{"event_type": "deploy.started", "workflow_id": "wf-\u00e9", "payload": {"service": "caf\u00e9 \ud83d\ude00 \u2028", "ratio": 1.0, "big": 123456789012345678901234567890, "neg": -0, "exp": 1E2, "tiny": 0.00001, "huge": 1e16, "ctl": "tab\there\u0001\u007f", "nested": {"z": [1, 2.5, {"b": null, "a": true}], "a": []}, "\ue000": 1, "\ud83d\ude00": 2}, "timestamp": "2026-06-04T15:30:45.123456+00:00", "actor": {"host_id": "build-7", "user": "alice"}}"#,
    r#"{"event_type": "deploy.finished", "workflow_id": null, "payload": {}, "timestamp": "2026-06-04T15:30:46.000001+00:00", "actor": {"host_id": "build-7", "user": "b\u00f6b"}}"#,
    r#"{"event_type": "note", "workflow_id": "w", "payload": {"p": 0.1, "q": 5e-324, "r": 1.7976931348623157e308, "s": -0.0, "t": 9007199254740993}, "timestamp": "2024-02-29T23:59:59.999999+00:00", "actor": {"host_id": "h", "user": "u"}}"#,
];

/// `chainsink emit --stdin` of `events` into `log`, through `sink` (the
/// default sink when None). Returns the output, asserting success.
fn emit_events(sink: Option<&Path>, log: &Path, events: &[String]) -> Output {
    let mut args = vec!["emit", "--stdin", "--durability", "none", "--log", s(log)];
    if let Some(sink) = sink {
        args.extend(["--sink", s(sink)]);
    }
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    let out = run(&args, &input);
    assert!(
        out.status.success(),
        "emit through {} failed: {}",
        sink.map_or("the default sink".into(), |p| p.display().to_string()),
        stderr(&out)
    );
    out
}

fn assert_verifies(log: &Path, records: usize) {
    let out = verify(log, &["--strict"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "chainsink verify rejects {}: {}{}",
        log.display(),
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with(&format!("OK {records} records, head ")),
        "{}",
        stdout(&out)
    );
}

/// What every template sink must do, end to end.
fn template_sink_end_to_end(lang: Lang) {
    let sink = template_sink(lang);
    let dir = tempfile::tempdir().unwrap();

    // The contract, call by call: every case passes unchanged. (The SDKs
    // refuse a torn tail with corrupt-log instead of recovering it, which the
    // contract allows; `sdk_sink_refusals` checks that refusal.)
    let out = run(&["test-sink", s(&sink)], "");
    let report = stdout(&out);
    let cases: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    assert!(
        cases.len() > 10,
        "test-sink ran its cases: {report}{}",
        stderr(&out)
    );
    assert!(
        out.status.success(),
        "test-sink {} failed: {report}{}",
        sink.display(),
        stderr(&out)
    );
    for case in cases {
        assert!(
            case.starts_with("PASS "),
            "test-sink {}: {case}",
            sink.display()
        );
    }

    // `inspect` tells the language from the component's own marks (load
    // errors use it to give advice for the author's toolchain).
    let out = run(&["inspect", s(&sink)], "");
    let written_in = match lang {
        Lang::Python => "written in: Python",
        Lang::Js => "written in: JavaScript",
    };
    assert!(stdout(&out).contains(written_in), "{}", stdout(&out));

    // A dry run of the example workflow through the sink; its log verifies
    // and holds the same event types, in order, as the default sink's.
    let log = dir.path().join("run.jsonl");
    let out = bin()
        .args(["run", "--dry-run", "--sink", s(&sink), "--log", s(&log)])
        .arg(repo().join("workflows/example.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run --dry-run --sink {}: {}",
        sink.display(),
        stderr(&out)
    );
    let events = workflow_events(dir.path());
    let types = |l: &Vec<String>| -> Vec<String> {
        l.iter()
            .map(|l| parse(l)["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    let logged = lines(&log);
    // `events` are the default sink's dry-run records, one per line.
    assert_eq!(types(&logged), types(&events));
    assert_verifies(&log, logged.len());

    // The same events, timestamps and actor pinned: byte for byte the
    // default sink's log.
    let mut all = events.clone();
    all.extend(TRICKY.iter().map(|t| t.to_string()));
    let ours = dir.path().join("ours.jsonl");
    let theirs = dir.path().join("default.jsonl");
    let receipts = stdout(&emit_events(Some(&sink), &ours, &all));
    emit_events(None, &theirs, &all);
    let (a, b) = (fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());
    if a != b {
        let (la, lb) = (lines(&ours), lines(&theirs));
        let k = la.iter().zip(&lb).position(|(x, y)| x != y);
        panic!(
            "the {} sink's log differs from the default sink's at line {k:?}:\n  ours:    {:?}\n  default: {:?}",
            lang.name(),
            k.map(|k| &la[k]),
            k.map(|k| &lb[k]),
        );
    }
    let last: Value = parse(receipts.lines().last().unwrap());
    assert_eq!(last["seq"], all.len() as u64, "{receipts}");
    assert_verifies(&ours, all.len());

    // Each continues the other's log: default, then ours, then default.
    let mixed = dir.path().join("mixed.jsonl");
    emit_events(None, &mixed, &all[..3]);
    emit_events(Some(&sink), &mixed, &all[3..6]);
    emit_events(None, &mixed, &all[6..9]);
    emit_events(Some(&sink), &mixed, &all[9..]);
    assert_eq!(
        fs::read(&mixed).unwrap(),
        b,
        "one log, four writers in turn"
    );
}

#[test]
fn python_template_sink_runs_verifies_and_matches_the_default_sink() {
    template_sink_end_to_end(Lang::Python);
}

#[test]
fn js_template_sink_runs_verifies_and_matches_the_default_sink() {
    template_sink_end_to_end(Lang::Js);
}

/// What an SDK sink does with what it must refuse.
fn sdk_sink_refusals(lang: Lang) {
    let sink = template_sink(lang);
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<String> = TRICKY.iter().map(|t| t.to_string()).collect();

    // A bad event: one line naming the problem, nothing written.
    let log = dir.path().join("bad.jsonl");
    emit_events(Some(&sink), &log, &events[..1]);
    let before = fs::read(&log).unwrap();
    for (bad, says) in [
        (r#"{"v": NaN}"#, "NaN"),
        (r#"{"v": 1e999}"#, "too large"),
        (r#"[1]"#, "object"),
    ] {
        let out = run(
            &[
                "emit",
                "--sink",
                s(&sink),
                "--log",
                s(&log),
                "--type",
                "x",
                "--payload",
                bad,
            ],
            "",
        );
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            stderr(&out).contains(says) || stdout(&out).contains(says),
            "{bad}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(fs::read(&log).unwrap(), before, "{bad}: nothing is written");
    }
    let out = run(
        &[
            "emit",
            "--sink",
            s(&sink),
            "--log",
            s(&log),
            "--type",
            "x",
            "--payload",
            "{}",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A log whose last line is unfinished: the SDK does not repair tails. It
    // refuses, says what to do, and writes nothing; the default sink then
    // recovers the torn write, and the SDK sink continues after it.
    let torn = dir.path().join("torn.jsonl");
    emit_events(None, &torn, &events);
    let mut bytes = fs::read(&torn).unwrap();
    bytes.truncate(bytes.len() - 40);
    fs::write(&torn, &bytes).unwrap();
    let out = run(
        &[
            "emit",
            "--sink",
            s(&sink),
            "--log",
            s(&torn),
            "--type",
            "x",
            "--payload",
            "{}",
        ],
        "",
    );
    assert!(!out.status.success(), "a torn tail was written after");
    let err = stderr(&out);
    assert!(
        err.contains("chainsink verify") && err.contains("default sink"),
        "the refusal points to `chainsink verify` and the default sink: {err}"
    );
    assert!(
        !err.contains("is a torn write"),
        "the SDK does not judge torn writes: {err}"
    );
    assert_eq!(fs::read(&torn).unwrap(), bytes, "nothing was written");
    emit_events(None, &torn, &events[..1]);
    emit_events(Some(&sink), &torn, &events[1..]);
    let out = verify(&torn, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("torn write"), "{}", stdout(&out));

    // A newline-terminated line that is not a record: refused as such.
    let edited = dir.path().join("edited.jsonl");
    emit_events(None, &edited, &events);
    // The last record's payload changed after it was hashed.
    let text = fs::read_to_string(&edited).unwrap();
    assert!(
        text.trim_end()
            .rsplit('\n')
            .next()
            .unwrap()
            .contains("\"p\": 0.1,")
    );
    let text = text.replace("\"p\": 0.1,", "\"p\": 0.2,");
    fs::write(&edited, &text).unwrap();
    let out = run(
        &[
            "emit",
            "--sink",
            s(&sink),
            "--log",
            s(&edited),
            "--type",
            "x",
            "--payload",
            "{}",
        ],
        "",
    );
    assert!(!out.status.success(), "an edited log was continued");
    assert!(
        stderr(&out).contains("not a valid record"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(&edited).unwrap(), text);
}

#[test]
fn python_sdk_sink_refuses_bad_events_and_logs_it_cannot_continue() {
    sdk_sink_refusals(Lang::Python);
}

#[test]
fn js_sdk_sink_refuses_bad_events_and_logs_it_cannot_continue() {
    sdk_sink_refusals(Lang::Js);
}

/// An author's override: a sink that redacts payload keys before chaining
/// (the guide's example), run on the example workflow.
fn redacting_sink(lang: Lang, fixture: &str) {
    let sink = built_sink(lang, Some(fixture));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("redacted.jsonl");
    let out = bin()
        .args(["run", "--dry-run", "--sink", s(&sink), "--log", s(&log)])
        .arg(repo().join("workflows/example.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = lines(&log).iter().map(|l| parse(l)).collect();
    let agents: Vec<&Value> = records
        .iter()
        .filter(|r| r["event_type"] == "agent.created")
        .collect();
    assert!(!agents.is_empty());
    for r in &agents {
        assert_eq!(r["payload"]["program"], "[redacted]", "{r}");
        assert_eq!(r["payload"]["working_dir"], "[redacted]", "{r}");
        assert!(
            r["payload"]["agent_name"].is_string(),
            "other keys stay: {r}"
        );
    }
    assert_verifies(&log, records.len());
}

#[test]
fn python_redacting_sink_redacts_and_verifies() {
    redacting_sink(Lang::Python, "redact_app.py");
}

#[test]
fn js_redacting_sink_redacts_and_verifies() {
    redacting_sink(Lang::Js, "redact_sink.js");
}

/// A Python sink whose records are not canonical is refused by the host at
/// its first append, with an error that names the sink and the fault; the log keeps
/// only the host's mark of the refused bytes and still verifies.
#[test]
fn a_python_sink_that_breaks_the_contract_is_refused_and_named() {
    let sink = built_sink(Lang::Python, Some("unsorted_app.py"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("refused.jsonl");
    let out = bin()
        .args(["run", "--dry-run", "--sink", s(&sink), "--log", s(&log)])
        .arg(repo().join("workflows/example.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    // The run's summary repeats the reason (banner and reason lines); each
    // names the sink and what is wrong.
    let said: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("broke the contract"))
        .collect();
    assert!(!said.is_empty(), "the run says why: {text}");
    for line in said {
        assert!(
            line.contains(s(&sink)) && line.contains("not in canonical form"),
            "the line names the sink and what is wrong: {line}"
        );
    }
    let out = verify(&log, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("BREACH"), "{}", stdout(&out));
}

/// The JS SDK's parser and canonical encoder against Python's json module
/// (the definition of the canonical form), over generated JSON texts: random
/// spacing, key order, duplicate keys, number spellings (`1E5`, `1.50`,
/// `-0`), doubles from random bit patterns, integers past 2^64, lone
/// surrogates, astral and U+E000.. keys (whose order differs by code unit).
#[test]
fn js_canonical_encoder_matches_python_json_dumps() {
    let corpus = repo().join("crates/cli/tests/fixtures/json_corpus.py");
    let runner = repo().join("sdk/js/test/canonical-stdin.mjs");
    for seed in [1, 2, 3] {
        let out = checked(
            Command::new("python3")
                .arg(&corpus)
                .args([seed.to_string(), "4000".to_string()]),
            "python3 json_corpus.py",
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (inputs, wanted): (Vec<&str>, Vec<&str>) = text
            .lines()
            .map(|l| l.split_once('\t').expect("TEXT\\tEXPECTED"))
            .unzip();
        assert_eq!(inputs.len(), 4000);
        // parseJson (native JSON.parse with marked numbers, falling back to
        // the SDK's parser) and the SDK's own parser alone.
        for mode in [None, Some("--exact")] {
            let got = node_lines(&runner, mode, &inputs);
            for ((input, want), got) in inputs.iter().zip(&wanted).zip(&got) {
                assert_eq!(got, want, "seed {seed} {mode:?}: canonical form of {input}");
            }
        }
    }

    // What Python cannot write back as JSON, or cannot read, is refused.
    let refused = [
        r#"{"a": NaN}"#,
        r#"{"a": Infinity}"#,
        r#"{"a": -Infinity}"#,
        r#"{"a": 1e999}"#,
        r#"{"a": -1e400}"#,
        r#"{"a": 1}x"#,
        r#"{"a": "\x"}"#,
        r#"{"a": 01}"#,
        "{\"a\": \"raw\u{1}control\"}",
    ];
    let too_long = format!("{{\"a\": {}}}", "9".repeat(4301));
    let mut inputs: Vec<&str> = refused.to_vec();
    inputs.push(&too_long);
    for mode in [None, Some("--exact")] {
        for (input, got) in inputs.iter().zip(node_lines(&runner, mode, &inputs)) {
            assert!(got.starts_with("ERROR: "), "{input} gave {got} ({mode:?})");
        }
    }
    let py = Command::new("python3")
        .args([
            "-c",
            "import json,sys\nfor l in sys.stdin.read().split('\\n')[:-1]:\n try: json.dumps(json.loads(l), allow_nan=False); print('ok')\n except ValueError: print('refused')",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let answers = feed(py, &inputs);
    assert!(
        answers.iter().all(|a| a == "refused"),
        "python3 refuses them too: {answers:?}"
    );
    // The longest integer Python reads is still read.
    let longest = format!("{{\"a\": {}}}", "9".repeat(4300));
    for mode in [None, Some("--exact")] {
        assert_eq!(node_lines(&runner, mode, &[&longest])[0], longest);
    }
}

/// Runs the Node encoder over `inputs`, one a line (`mode`: `--exact` for
/// the SDK's own parser); returns its lines.
fn node_lines(runner: &Path, mode: Option<&str>, inputs: &[&str]) -> Vec<String> {
    let child = Command::new("node")
        .arg(runner)
        .args(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is needed for the JS SDK tests");
    let got = feed(child, inputs);
    assert_eq!(got.len(), inputs.len(), "node answered every line");
    got
}

fn feed(mut child: std::process::Child, inputs: &[&str]) -> Vec<String> {
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    let input: String = inputs.iter().map(|l| format!("{l}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What the Python or JS SDK said when it opened `log` under python3 or node
/// (no component: `tests/fixtures/sdk/resume_tail.py`, `resume-tail.mjs`):
/// `{records, head, bytes, tail_reads}`.
fn sdk_resume(lang: Lang, log: &Path) -> Value {
    let dir = repo().join("crates/cli/tests/fixtures/sdk");
    let mut cmd = match lang {
        Lang::Python => {
            let mut c = Command::new("python3");
            c.arg(dir.join("resume_tail.py"))
                .arg(repo().join("sdk/python"));
            c
        }
        Lang::Js => {
            let mut c = Command::new("node");
            c.arg(dir.join("resume-tail.mjs"))
                .arg(repo().join("sdk/js/chainsink-sdk.js"));
            c
        }
    };
    let out = checked(cmd.arg(log), "an SDK resuming a log");
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Opening a log reads its tail in a window that starts at 8 KiB, as the Rust
/// SDK's does, and doubles only while the last two lines do not fit: each
/// byte more is copied into the sink by every process that opens the log.
/// Both SDKs must still resume after a last record far longer than the window.
#[test]
fn python_and_js_sdks_resume_from_a_small_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let events: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"event_type": "task.completed", "payload": {{"i": {i}}}}}"#))
        .collect();
    emit_events(None, &log, &events);
    let last_hash = |log: &Path| {
        let text = fs::read_to_string(log).unwrap();
        parse(text.lines().last().unwrap())["hash"].clone()
    };
    let size = fs::metadata(&log).unwrap().len();
    assert!(
        size > 64 * 1024,
        "the log ({size} bytes) is larger than the old window"
    );
    for lang in [Lang::Python, Lang::Js] {
        let got = sdk_resume(lang, &log);
        assert_eq!(got["records"], 300, "{lang:?}: {got}");
        assert_eq!(got["head"], last_hash(&log), "{lang:?}: {got}");
        assert_eq!(got["bytes"], size, "{lang:?}: {got}");
        let reads = got["tail_reads"].as_array().unwrap();
        assert!(
            !reads.is_empty() && reads.iter().all(|r| r.as_u64().unwrap() <= 8 * 1024),
            "{lang:?} read more of the tail than two small records need: {got}"
        );
    }
    // A last record of about 100 KB: the window doubles until it fits.
    let big = format!(
        r#"{{"event_type": "big", "payload": {{"blob": "{}"}}}}"#,
        "x".repeat(100_000)
    );
    emit_events(None, &log, &[big]);
    let size = fs::metadata(&log).unwrap().len();
    for lang in [Lang::Python, Lang::Js] {
        let got = sdk_resume(lang, &log);
        assert_eq!(got["records"], 301, "{lang:?}: {got}");
        assert_eq!(got["head"], last_hash(&log), "{lang:?}: {got}");
        assert_eq!(got["bytes"], size, "{lang:?}: {got}");
        let reads: Vec<u64> = got["tail_reads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect();
        assert_eq!(reads[0], 8 * 1024, "{lang:?}: {got}");
        assert!(
            reads.windows(2).all(|w| w[1] == 2 * w[0]) && *reads.last().unwrap() > 100_000,
            "{lang:?} did not double the window up to the long record: {got}"
        );
    }
}
