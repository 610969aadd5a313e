//! The default sink embedded from Node (jco) and Python (wasmtime-py): the
//! hosts in `examples/` run as real processes on real files, and their logs
//! must verify, match the Rust host's byte for byte, and continue each other's
//! chains.
//!
//! Set-up is done here, once per run and cached under the target dir
//! (`target/polyglot/`): `npm ci` for the Node host (jco from the npm
//! registry) and `pip install --target` for the Python host (wasmtime from
//! PyPI). It needs `node`, `npm`, `python3` and pip on PATH; without them
//! these tests fail and say what is missing.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::common::*;
use serde_json::{Value, json};

/// Where the tests keep what they install, and the exported component.
struct Hosts {
    /// `target/polyglot/node`: the Node host with its `node_modules`.
    node_dir: PathBuf,
    /// `target/polyglot/py/site`: wasmtime-py, for `PYTHONPATH`.
    py_site: PathBuf,
    /// The default sink, as `chainsink export-sink` writes it.
    component: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node_example() -> PathBuf {
    repo().join("examples/node-host")
}

fn python_example() -> PathBuf {
    repo().join("examples/python-host")
}

/// The hosts, set up on first use by any test of this binary.
fn hosts() -> &'static Hosts {
    static HOSTS: OnceLock<Result<Hosts, String>> = OnceLock::new();
    match HOSTS.get_or_init(set_up) {
        Ok(hosts) => hosts,
        Err(e) => panic!("polyglot set-up failed: {e}"),
    }
}

/// Runs `cmd`, returning stdout, or an error naming the command and its output.
fn checked(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn tool_version(program: &str, args: &[&str], hint: &str) -> Result<String, String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(text.trim().to_string())
        }
        Ok(out) => Err(format!(
            "`{program} {}` failed ({}): {}; {hint}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("`{program}` is not runnable here ({e}); {hint}")),
    }
}

/// Copies `name` from `from` to `to` when its bytes differ (or it is missing).
fn sync_file(from: &Path, to: &Path, name: &str) -> Result<(), String> {
    let src = fs::read(from.join(name)).map_err(|e| format!("read {name}: {e}"))?;
    if fs::read(to.join(name)).ok().as_deref() != Some(&src[..]) {
        fs::write(to.join(name), &src).map_err(|e| format!("write {name}: {e}"))?;
    }
    Ok(())
}

/// Idempotent set-up, cached under `target/polyglot`; a lock file keeps two
/// test processes from installing at once.
fn set_up() -> Result<Hosts, String> {
    const NODE_HINT: &str =
        "the polyglot tests need Node.js >= 20.19 (jco 1.35 needs it) with npm on PATH";
    const PY_HINT: &str = "the polyglot tests need python3 >= 3.9 with pip (Debian: `apt-get install python3 python3-pip`)";
    let node = tool_version("node", &["--version"], NODE_HINT)?;
    let version: Vec<u32> = node
        .trim_start_matches('v')
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    if version.len() < 2 || (version[0], version[1]) < (20, 19) {
        return Err(format!("node is {node}; {NODE_HINT}"));
    }
    tool_version("npm", &["--version"], NODE_HINT)?;
    let python = tool_version("python3", &["--version"], PY_HINT)?;
    let version: Vec<u32> = python
        .trim_start_matches("Python ")
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    if version.len() < 2 || (version[0], version[1]) < (3, 9) {
        return Err(format!("python3 is {python}; {PY_HINT}"));
    }
    tool_version("python3", &["-m", "pip", "--version"], PY_HINT)?;

    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("polyglot");
    let node_dir = root.join("node");
    let py_dir = root.join("py");
    fs::create_dir_all(&node_dir).map_err(|e| format!("create {}: {e}", node_dir.display()))?;
    fs::create_dir_all(&py_dir).map_err(|e| format!("create {}: {e}", py_dir.display()))?;
    let lock = File::create(root.join(".lock")).map_err(|e| format!("lock file: {e}"))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", root.display()))?;

    // Node: the example's package.json and lock file, installed with `npm ci`
    // (exact versions from the lock); the host script next to them, so that
    // it resolves `@bytecodealliance/jco` from that node_modules.
    let example = node_example();
    for name in ["package.json", "package-lock.json", "host.js"] {
        sync_file(&example, &node_dir, name)?;
    }
    let lock_text = fs::read_to_string(example.join("package-lock.json"))
        .map_err(|e| format!("read package-lock.json: {e}"))?;
    let node_stamp = format!("{node}\n{lock_text}");
    let stamp = node_dir.join(".installed");
    let jco = node_dir.join("node_modules/@bytecodealliance/jco/package.json");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(&node_stamp) || !jco.exists() {
        let _ = fs::remove_file(&stamp);
        checked(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&node_dir),
            "npm ci (examples/node-host)",
        )?;
        fs::write(&stamp, &node_stamp).map_err(|e| format!("write stamp: {e}"))?;
    }

    // Python: wasmtime from requirements.txt into a private directory, used
    // through PYTHONPATH (nothing is installed into the system's Python).
    let requirements = python_example().join("requirements.txt");
    let req_text =
        fs::read_to_string(&requirements).map_err(|e| format!("read requirements.txt: {e}"))?;
    let py_stamp = format!("{python}\n{req_text}");
    let stamp = py_dir.join(".installed");
    let site = py_dir.join("site");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(&py_stamp)
        || !site.join("wasmtime").exists()
    {
        let _ = fs::remove_file(&stamp);
        let fresh = py_dir.join("site.new");
        let _ = fs::remove_dir_all(&fresh);
        checked(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    "--target",
                ])
                .arg(&fresh)
                .arg("-r")
                .arg(&requirements),
            "pip install -r examples/python-host/requirements.txt",
        )?;
        let _ = fs::remove_dir_all(&site);
        fs::rename(&fresh, &site).map_err(|e| format!("move {}: {e}", fresh.display()))?;
        fs::write(&stamp, &py_stamp).map_err(|e| format!("write stamp: {e}"))?;
    }

    // The component the hosts load: the binary's embedded default sink.
    let component = root.join("sink.wasm");
    let out = bin()
        .args(["export-sink", component.to_str().unwrap()])
        .output()
        .map_err(|e| format!("run chainsink export-sink: {e}"))?;
    if !out.status.success() {
        return Err(format!("chainsink export-sink failed: {}", stderr(&out)));
    }
    drop(lock);
    Ok(Hosts {
        node_dir,
        py_site: site,
        component,
    })
}

// ---------------------------------------------------------------------------
// Running the hosts.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Rust,
    Node,
    Python,
}

impl Host {
    /// The command for this host writing to `log`, before its stdin.
    fn command(self, log: &Path, extra: &[&str]) -> Command {
        self.command_with(&[], log, extra)
    }

    /// As `command`, with `interpreter` arguments before the host's script
    /// (for Node and Python).
    fn command_with(self, interpreter: &[&str], log: &Path, extra: &[&str]) -> Command {
        self.command_for(interpreter, &hosts().component, log, extra)
    }

    /// As `command_with`, loading `sink` instead of the default sink.
    fn command_for(self, interpreter: &[&str], sink: &Path, log: &Path, extra: &[&str]) -> Command {
        let hosts = hosts();
        let mut cmd = match self {
            Host::Rust => {
                let mut cmd = bin();
                cmd.args(["emit", "--stdin", "--log", log.to_str().unwrap()]);
                if sink != hosts.component {
                    cmd.arg("--sink").arg(sink);
                }
                cmd.args(extra);
                return cmd;
            }
            Host::Node => {
                let mut cmd = Command::new("node");
                cmd.args(interpreter).arg(hosts.node_dir.join("host.js"));
                cmd
            }
            Host::Python => {
                let mut cmd = Command::new("python3");
                cmd.args(interpreter)
                    .arg(python_example().join("host.py"))
                    .env("PYTHONPATH", &hosts.py_site)
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                cmd
            }
        };
        for var in ["AUDIT_DURABILITY", "HOST_ID", "USERNAME", "JCO_DEBUG"] {
            cmd.env_remove(var);
        }
        cmd.env("USER", "tester").env("HOST_ID", "test-host");
        cmd.args(extra).arg(sink).arg(log.to_str().unwrap());
        cmd
    }

    /// Writes the JSON lines `input` to `log`; returns the process output.
    fn emit(self, log: &Path, input: &str, extra: &[&str]) -> Output {
        feed(self.command(log, extra), input)
    }

    /// As `emit`, and requires success.
    fn emit_ok(self, log: &Path, input: &str) -> Vec<Value> {
        let out = self.emit(log, input, &["--durability", "none"]);
        assert!(
            out.status.success(),
            "{self:?} host failed ({}):\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out).lines().map(parse).collect()
    }
}

fn feed(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Write from a thread: a host may answer before it has read everything.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

// ---------------------------------------------------------------------------
// Events.

/// The events of a real workflow: a dry run of `workflows/example.yaml` by
/// the Rust host, read back from its log as `emit --stdin` input lines
/// (with their timestamps and actor).
pub(crate) fn workflow_events(dir: &Path) -> Vec<Value> {
    let log = dir.join("dry-run.jsonl");
    let out = bin()
        .args(["run", "--dry-run", "--durability", "none", "--log"])
        .arg(&log)
        .arg(repo().join("workflows/example.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "dry run failed: {}", stderr(&out));
    lines(&log)
        .iter()
        .map(|l| {
            let r = parse(l);
            json!({
                "event_type": r["event_type"],
                "workflow_id": r["workflow_id"],
                "payload": r["payload"],
                "timestamp": r["timestamp"],
                "actor": r["actor"],
            })
        })
        .collect()
}

/// Events whose payloads are hard to carry faithfully: non-ASCII, escapes,
/// floats that look like integers, integers past 2^64, exponents, nesting,
/// absent fields. Fed to the hosts exactly as written here.
const TRICKY: [&str; 3] = [
    r#"{"event_type": "deploy.started", "workflow_id": "wf-\u00e9", "payload": {"service": "caf\u00e9 \ud83d\ude00 \u2028", "ratio": 1.0, "big": 123456789012345678901234567890, "neg": -0, "exp": 1E2, "tiny": 0.00001, "huge": 1e16, "ctl": "tab\there\u0001\u007f", "nested": {"z": [1, 2.5, {"b": null, "a": true}], "a": []}}, "timestamp": "2026-06-04T15:30:45.123456+00:00", "actor": {"host_id": "build-7", "user": "alice"}}"#,
    r#"{"event_type": "deploy.finished", "workflow_id": null, "payload": {}, "timestamp": "2026-06-04T15:30:46.000001+00:00", "actor": {"host_id": "build-7", "user": "b\u00f6b"}}"#,
    r#"  {"actor": {"user": "u", "host_id": "h"}, "timestamp": "2026-06-04T15:30:47.999999+00:00", "event_type": "note"}  "#,
];

/// JSON lines for stdin.
fn to_input(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn without_stamps(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let obj = e.as_object_mut().unwrap();
            obj.remove("timestamp");
            obj.remove("actor");
            e
        })
        .collect()
}

fn assert_verifies(log: &Path, records: usize) -> String {
    let out = verify(log, &["--strict"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "chainsink verify rejects {}: {}{}",
        log.display(),
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("OK {records} records, head ")),
        "{text}"
    );
    text.trim().rsplit(' ').next().unwrap().to_string()
}

/// Receipts must be numbered like the input lines, carry consecutive `seq`s
/// from `first_seq`, and name the hashes of the records written.
fn assert_receipts(receipts: &[Value], log: &Path, first_seq: u64) {
    let records = lines(log);
    for (k, r) in receipts.iter().enumerate() {
        let seq = first_seq + k as u64;
        assert_eq!(r["line"], k as u64 + 1, "{r}");
        assert_eq!(r["seq"], seq, "{r}");
        let record = parse(&records[seq as usize - 1]);
        assert_eq!(r["hash"], record["hash"], "{r}");
        assert_eq!(record["seq"], seq);
    }
}

fn is_log_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 32
        && t.ends_with("+00:00")
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26.. => true,
            _ => c.is_ascii_digit(),
        })
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn exported_component_is_the_embedded_default_sink() {
    let exported = fs::read(&hosts().component).unwrap();
    let built = chainsink_host::runtime::DEFAULT_SINK_WASM;
    assert!(
        exported == built,
        "export-sink wrote {} bytes, the built default sink has {}",
        exported.len(),
        built.len()
    );
}

#[test]
fn node_and_python_hosts_write_logs_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let events = without_stamps(&workflow_events(dir.path()));
    let input = to_input(&events);
    for host in [Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        // The default durability (always): fsync after each write.
        let out = host.emit(&log, &input, &[]);
        assert!(
            out.status.success(),
            "{host:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let receipts: Vec<Value> = stdout(&out).lines().map(parse).collect();
        assert_eq!(receipts.len(), events.len(), "{host:?}");
        assert_receipts(&receipts, &log, 1);
        let head = assert_verifies(&log, events.len());
        assert_eq!(receipts.last().unwrap()["hash"], head.as_str());

        // Defaults stamped by the host: the actor from HOST_ID and USER, the
        // time now, in the log's form.
        for (line, event) in lines(&log).iter().zip(&events) {
            let record = parse(line);
            assert_eq!(
                record["actor"],
                json!({"host_id": "test-host", "user": "tester"})
            );
            let t = record["timestamp"].as_str().unwrap();
            assert!(is_log_timestamp(t), "{host:?} timestamp {t}");
            assert!(&t[..4] >= "2024", "{t}");
            assert_eq!(record["event_type"], event["event_type"]);
            assert_eq!(record["payload"], event["payload"]);
        }
        // The Python reference algorithm accepts it too.
        let out = reference(&["verify", log.to_str().unwrap()]);
        assert!(out.status.success(), "{host:?}: {}", stdout(&out));
    }
}

#[test]
fn rust_node_and_python_write_byte_identical_logs() {
    let dir = tempfile::tempdir().unwrap();
    let events = workflow_events(dir.path());
    let workflow_log = fs::read(dir.path().join("dry-run.jsonl")).unwrap();
    let mut input = to_input(&events);
    for line in TRICKY {
        input.push_str(line);
        input.push('\n');
    }
    let records = events.len() + TRICKY.len();

    let mut logs = Vec::new();
    let mut receipts = Vec::new();
    for host in [Host::Rust, Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        let out = host.emit(&log, &input, &["--durability", "none"]);
        assert!(
            out.status.success(),
            "{host:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        receipts.push(stdout(&out));
        logs.push(fs::read(&log).unwrap());
    }
    assert_eq!(lines(&dir.path().join("Rust.jsonl")).len(), records);
    // The workflow's records are the dry run's own, byte for byte.
    assert!(
        logs[0].starts_with(&workflow_log),
        "the Rust host re-wrote the dry run's events differently"
    );
    for (k, host) in [(1, Host::Node), (2, Host::Python)] {
        if logs[k] != logs[0] {
            let ours = String::from_utf8_lossy(&logs[0]);
            let theirs = String::from_utf8_lossy(&logs[k]);
            let (a, b) = ours
                .lines()
                .zip(theirs.lines())
                .find(|(a, b)| a != b)
                .unwrap_or(("(same lines)", "(different length)"));
            panic!("{host:?} log differs from the Rust host's:\n rust: {a}\n {host:?}: {b}");
        }
        assert_eq!(
            receipts[k], receipts[0],
            "{host:?} receipts differ from the Rust CLI's"
        );
    }
    assert_verifies(&dir.path().join("Node.jsonl"), records);
}

#[test]
fn a_chain_passes_from_rust_to_node_to_python_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let events = workflow_events(dir.path());
    let dry_run = fs::read(dir.path().join("dry-run.jsonl")).unwrap();
    let log = dir.path().join("relay.jsonl");
    let legs = [
        (Host::Rust, 0..5),
        (Host::Node, 5..9),
        (Host::Python, 9..13),
        (Host::Rust, 13..events.len()),
    ];
    for (host, range) in legs {
        let first_seq = range.start as u64 + 1;
        let before = lines(&log_or_empty(&log)).len();
        let receipts = host.emit_ok(&log, &to_input(&events[range.clone()]));
        assert_eq!(receipts.len(), range.len(), "{host:?}");
        assert_receipts(&receipts, &log, first_seq);
        // The first record of this leg links to the last of the one before.
        if before > 0 {
            let all = lines(&log);
            assert_eq!(
                parse(&all[before])["prev_hash"],
                parse(&all[before - 1])["hash"],
                "{host:?} did not resume the chain"
            );
        }
    }
    assert_verifies(&log, events.len());
    let out = reference(&["verify", log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "the reference rejects the relay: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Four processes in three languages wrote what one dry run wrote.
    assert!(
        fs::read(&log).unwrap() == dry_run,
        "the relayed log differs from the dry run's"
    );
}

fn log_or_empty(log: &Path) -> PathBuf {
    if !log.exists() {
        File::create(log).unwrap();
    }
    log.to_path_buf()
}

#[test]
fn node_and_python_continue_a_telemachy_log() {
    // Records without `seq` make the sink count the log's lines once,
    // through the host's `read`.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("telemachy.jsonl");
    let log_s = log.to_str().unwrap();
    let write = |n: &str| {
        let out = reference(&["write", log_s, n, "--workflow-id", "wf-py"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let events = to_input(&tricky_events()[..2]);
    write("3");
    let receipts = Host::Node.emit_ok(&log, &events);
    assert_eq!(receipts[0]["seq"], 4);
    assert_eq!(receipts[1]["seq"], 5);
    write("1");
    let receipts = Host::Python.emit_ok(&log, &events);
    assert_eq!(receipts[0]["seq"], 7);
    assert_receipts(&receipts, &log, 7);
    assert_verifies(&log, 8);
    let out = reference(&["verify", log_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn tricky_events() -> Vec<Value> {
    TRICKY.iter().map(|l| parse(l)).collect()
}

#[test]
fn bad_lines_are_refused_as_the_rust_cli_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        TRICKY[0],
        r#"{"event_type": "x", "payload": [1, 2]}"#,
        r#"{"event_type": "x", "payload": {"v": NaN}}"#,
        "not json",
        "",
        r#"{"event_type": "x", "extra": 1}"#,
        r#"{"event_type": "x", "payload": {"v": 1e999}, "timestamp": "2026-06-04T15:30:45.123456+00:00"}"#,
        r#"{"event_type": "x", "timestamp": "yesterday"}"#,
        TRICKY[1],
    ]
    .join("\n");
    let mut shapes = Vec::new();
    let mut logs = Vec::new();
    for host in [Host::Rust, Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        let out = host.emit(&log, &input, &["--durability", "none"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{host:?}: refused lines make the exit status 1: {}",
            stderr(&out)
        );
        // Which lines got a receipt and which an error, and the seqs.
        let mut shape: Vec<(u64, Option<u64>)> = stdout(&out)
            .lines()
            .map(|l| {
                let v = parse(l);
                assert!(v["error"].is_string() != v["seq"].is_u64(), "{host:?}: {v}");
                (v["line"].as_u64().unwrap(), v["seq"].as_u64())
            })
            .collect();
        shape.sort();
        shapes.push(shape);
        logs.push(fs::read(&log).unwrap());
    }
    assert_eq!(
        shapes[0],
        vec![
            (1, Some(1)),
            (2, None),
            (3, None),
            (4, None),
            (6, None),
            (7, None),
            (8, None),
            (9, Some(2))
        ]
    );
    assert_eq!(shapes[1], shapes[0], "Node");
    assert_eq!(shapes[2], shapes[0], "Python");
    assert!(logs[1] == logs[0] && logs[2] == logs[0], "logs differ");
}

#[test]
fn receipts_come_back_before_the_next_line_is_sent() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    for host in [Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        let mut child = host
            .command(&log, &["--durability", "none"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        // A request/response conversation: if a host waited for more input
        // before answering, this would hang instead of pass.
        for i in 1..=3u64 {
            writeln!(
                input,
                r#"{{"event_type": "step", "payload": {{"i": {i}}}}}"#
            )
            .unwrap();
            input.flush().unwrap();
            let mut line = String::new();
            output.read_line(&mut line).unwrap();
            let receipt = parse(&line);
            assert_eq!(receipt["line"], i, "{host:?}");
            assert_eq!(receipt["seq"], i, "{host:?}");
        }
        drop(input);
        assert!(child.wait().unwrap().success(), "{host:?}");
        assert_verifies(&log, 3);
    }
}

/// A Node preload that makes reads of the log (the file opened 'a+') fail
/// as a disk would.
const NODE_READ_FAULT: &str = r#"
import fs from 'node:fs';
const logs = new Set();
const { openSync, readSync } = fs;
fs.openSync = (path, flags, ...rest) => {
  const fd = openSync(path, flags, ...rest);
  if (flags === 'a+') logs.add(fd);
  return fd;
};
fs.readSync = (fd, ...rest) => {
  if (!logs.has(fd)) return readSync(fd, ...rest);
  const e = new Error('EIO: i/o error, read (injected by the test)');
  e.code = 'EIO';
  throw e;
};
"#;

/// Python that makes every `os.pread` fail as a disk would, then runs the host.
const PYTHON_READ_FAULT: &str = r#"
import errno, os, runpy, sys
def pread(*args):
    raise OSError(errno.EIO, "Input/output error (injected by the test)")
os.pread = pread
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

#[test]
fn a_failing_read_becomes_the_sinks_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("read-fault.mjs");
    fs::write(&fault, NODE_READ_FAULT).unwrap();
    let fault_url = format!("file://{}", fault.display());
    let cases: [(Host, Vec<&str>); 2] = [
        (Host::Node, vec!["--import", &fault_url]),
        (Host::Python, vec!["-c", PYTHON_READ_FAULT]),
    ];
    for (host, interpreter) in cases {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        // A log with records: opening it reads its tail, and that read fails.
        Host::Rust.emit_ok(&log, &to_input(&tricky_events()));
        let before = fs::read(&log).unwrap();
        let out = feed(
            host.command_with(&interpreter, &log, &[]),
            &to_input(&tricky_events()),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{host:?}: {err}");
        assert!(
            err.contains("sink error io: read ") && err.contains("(injected by the test)"),
            "{host:?}: the host's read error should come back as the sink's io error: {err}"
        );
        assert!(stdout(&out).is_empty(), "{host:?}: {}", stdout(&out));
        assert_eq!(fs::read(&log).unwrap(), before, "{host:?} changed the log");
    }
}

#[test]
fn a_failing_append_becomes_the_sinks_io_error() {
    // A process that may not grow any file (RLIMIT_FSIZE 0) gets EFBIG on
    // every append: a real I/O error, no injection.
    for host in [Host::Node, Host::Python] {
        let dir = tempfile::tempdir().unwrap();
        let (log, limit) = full_disk_log(dir.path());
        let mut cmd = host.command(&log, &[]);
        limit_file_size(&mut cmd, limit);
        let out = feed(cmd, &to_input(&tricky_events()));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{host:?}: {err}");
        assert!(
            err.contains(&format!("sink error io: append to {}", log.display()))
                && (err.contains("EFBIG") || err.contains("File too large")),
            "{host:?}: {err}"
        );
        assert!(
            err.contains("lines from 1 on were not written"),
            "{host:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{host:?}: {}", stdout(&out));
    }
}

#[test]
fn bench_mode_reports_events_per_second() {
    let dir = tempfile::tempdir().unwrap();
    for host in [Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        let out = host.emit(&log, "", &["--bench", "300", "--durability", "none"]);
        assert!(out.status.success(), "{host:?}: {}", stderr(&out));
        let reports: Vec<Value> = stdout(&out).lines().map(parse).collect();
        assert_eq!(reports.len(), 2, "{host:?}: {}", stdout(&out));
        assert_eq!(reports[0]["mode"], "emit");
        assert_eq!(reports[0]["events"], 300);
        assert_eq!(reports[1]["mode"], "emit-batch-256");
        assert_eq!(reports[1]["events"], 256);
        for r in &reports {
            assert!(r["events_per_s"].as_f64().unwrap() > 0.0, "{r}");
        }
        assert_verifies(&log, 556);
    }
}

#[test]
fn a_log_held_by_another_writer_is_refused_with_status_2_by_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    // The Rust host holds the log while its stdin stays open.
    let mut holder = Host::Rust
        .command(&log, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    stdin
        .write_all(to_input(&tricky_events()[..1]).as_bytes())
        .unwrap();
    // Its receipt means it has the log open (and locked).
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("\"seq\""), "{first}");
    // A symlink to it is the same file, and the same lock.
    let alias = dir.path().join("alias.jsonl");
    std::os::unix::fs::symlink(&log, &alias).unwrap();
    for host in [Host::Python, Host::Rust] {
        let out = host.emit(&alias, &to_input(&tricky_events()), &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{host:?}: {err}");
        assert!(err.contains("in use by another writer"), "{host:?}: {err}");
    }
    drop(stdin);
    assert!(holder.wait().unwrap().success());
}

/// `examples/node-host/api-example.mjs` (the README's API example; the
/// snippet test holds the README to it), run next to host.js in a
/// directory holding `sink.wasm`.
#[test]
fn the_node_readme_snippet_runs_as_written() {
    let snippet = fs::read_to_string(node_example().join("api-example.mjs")).unwrap();
    let hosts = hosts();
    let script = hosts.node_dir.join("readme-snippet.mjs");
    fs::write(&script, snippet).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::copy(&hosts.component, dir.path().join("sink.wasm")).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_verifies(&dir.path().join("audit.jsonl"), 1);
}

/// `examples/node-host/minimal-host.mjs` (the host written out by hand in
/// docs/embedding.md; the snippet test holds the guide to it), run next to
/// jco, twice: the second run resumes a non-empty log.
#[test]
fn the_node_embedding_snippet_runs_as_written() {
    let snippet = fs::read_to_string(node_example().join("minimal-host.mjs")).unwrap();
    let hosts = hosts();
    let script = hosts.node_dir.join("embedding-snippet.mjs");
    fs::write(&script, &snippet).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::copy(&hosts.component, dir.path().join("sink.wasm")).unwrap();
    for _ in 0..2 {
        let out = Command::new("node")
            .arg(&script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_verifies(&dir.path().join("audit.jsonl"), 2);
}

/// `examples/python-host/minimal_host.py` (the host written out by hand in
/// docs/embedding.md; the snippet test holds the guide to it), run with
/// wasmtime-py, twice: the second run resumes a non-empty log.
#[test]
fn the_python_embedding_snippet_runs_as_written() {
    let hosts = hosts();
    let dir = tempfile::tempdir().unwrap();
    fs::copy(&hosts.component, dir.path().join("sink.wasm")).unwrap();
    for _ in 0..2 {
        let out = Command::new("python3")
            .arg(python_example().join("minimal_host.py"))
            .env("PYTHONPATH", &hosts.py_site)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    assert_verifies(&dir.path().join("audit.jsonl"), 2);
}

// ---------------------------------------------------------------------------
// WIT versions: the default sink speaks 0.2.0 (and hashes through the host's
// `digest`); a 0.1.0 sink still loads; a component that mixes versions, or
// imports anything else, or writes a format these hosts cannot, is refused.

/// `guests/test-sinks/v0-1-0`: a sink built against the frozen WIT 0.1.0.
fn v0_1_sink() -> PathBuf {
    PathBuf::from(chainsink_test_programs::CHAINSINK_GUEST_V0_1_0)
}

#[test]
fn a_wit_0_1_sink_still_loads_in_node_and_python_and_its_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let events = workflow_events(dir.path());
    let (first, second) = events.split_at(6);
    let mut logs = Vec::new();
    for host in [Host::Rust, Host::Node, Host::Python] {
        let log = dir.path().join(format!("{host:?}.jsonl"));
        // Two runs: the second resumes the chain the first left.
        for (part, verbose) in [(first, true), (second, false)] {
            let extra: &[&str] = if verbose && host != Host::Rust {
                &["--durability", "none", "--verbose"]
            } else {
                &["--durability", "none"]
            };
            let out = feed(
                host.command_for(&[], &v0_1_sink(), &log, extra),
                &to_input(part),
            );
            assert!(
                out.status.success(),
                "{host:?} with the 0.1 sink: {}",
                stderr(&out)
            );
            assert_eq!(stdout(&out).lines().count(), part.len(), "{host:?}");
            if verbose && host != Host::Rust {
                let err = stderr(&out);
                assert!(
                    err.contains("sink: WIT 0.1.0 (no describe), taken as telemachy-json")
                        && err.contains("granted log-file, diagnostics, types"),
                    "{host:?} should say it loaded a 0.1 sink, granted no digest: {err}"
                );
                assert!(!err.contains("digest:"), "{host:?}: {err}");
            }
        }
        assert_verifies(&log, events.len());
        logs.push(fs::read(&log).unwrap());
    }
    // The same events with the same stamps: the same bytes in every host.
    assert!(
        logs[1] == logs[0],
        "Node's 0.1 log differs from the Rust host's"
    );
    assert!(
        logs[2] == logs[0],
        "Python's 0.1 log differs from the Rust host's"
    );
}

/// A Node preload that makes `crypto.createHash` hash a prefix before the
/// data, so every digest it computes is wrong (but 32 bytes).
const NODE_WRONG_DIGEST: &str = r#"
import crypto from 'node:crypto';
const { createHash } = crypto;
crypto.createHash = (algorithm, ...rest) => createHash(algorithm, ...rest).update('wrong (injected by the test)');
"#;

/// Python that makes `hashlib.sha256` hash a prefix before the data, then
/// runs the host.
const PYTHON_WRONG_DIGEST: &str = r#"
import hashlib, runpy, sys
real = hashlib.sha256
hashlib.sha256 = lambda data=b"": real(b"wrong (injected by the test)" + bytes(data))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

#[test]
fn the_default_sink_hashes_its_records_through_the_hosts_digest() {
    let dir = tempfile::tempdir().unwrap();
    let events = without_stamps(&workflow_events(dir.path()));
    let input = to_input(&events);
    let fault = dir.path().join("wrong-digest.mjs");
    fs::write(&fault, NODE_WRONG_DIGEST).unwrap();
    let fault_url = format!("file://{}", fault.display());
    let cases: [(Host, Vec<&str>); 2] = [
        (Host::Node, vec!["--import", &fault_url]),
        (Host::Python, vec!["-c", PYTHON_WRONG_DIGEST]),
    ];
    for (host, wrong) in cases {
        // Honest: one native sha256 a record, and the log verifies.
        let log = dir.path().join(format!("{host:?}.jsonl"));
        let out = host.emit(&log, &input, &["--durability", "none", "--verbose"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{host:?}: {err}");
        assert!(
            err.contains("sink: chainsink-guest-sink ")
                && err.contains("WIT 0.2.0, writes telemachy-json, has a verifier")
                && err.contains("granted log-file, diagnostics, digest, types"),
            "{host:?}: --verbose should show what `describe` said: {err}"
        );
        assert!(
            err.contains(&format!("digest: {} sha256 call(s)", events.len())),
            "{host:?}: one digest call a record: {err}"
        );
        assert_verifies(&log, events.len());

        // A host whose SHA-256 is wrong: the sink takes its word, so the
        // records carry hashes `chainsink verify` refuses.
        let bad = dir.path().join(format!("{host:?}-wrong-digest.jsonl"));
        let out = feed(
            host.command_with(&wrong, &bad, &["--durability", "none"]),
            &input,
        );
        assert!(out.status.success(), "{host:?}: {}", stderr(&out));
        assert_eq!(lines(&bad).len(), events.len(), "{host:?}");
        let out = verify(&bad, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{host:?}: a log hashed by a wrong digest must not verify: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            said.contains("line 1 (byte 0): hash mismatch"),
            "{host:?}: {said}"
        );
    }
}

#[test]
fn the_digest_import_hashes_at_most_one_mib_a_call() {
    let hosts = hosts();
    // sha256 of 1 MiB of 'a' and of 1 MiB + 1: the first is hashed, the
    // second gets the error naming the limit.
    let host_js = format!("file://{}", hosts.node_dir.join("host.js").display());
    let node = Command::new("node")
        .args(["--input-type=module", "-e"])
        .arg(format!(
            "import {{ digestImports }} from {:?};
             const {{ sha256 }} = digestImports();
             console.log(Buffer.from(sha256(Buffer.alloc(1048576, 97))).toString('hex'));
             try {{ sha256(Buffer.alloc(1048577, 97)); console.log('hashed'); }}
             catch (e) {{ console.log(e.payload); }}",
            host_js
        ))
        .output()
        .unwrap();
    let python = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); import host
sha256 = host.digest_functions()['sha256']
print(sha256(None, b'a' * 1048576).hex())
print(sha256(None, b'a' * 1048577))",
        )
        .arg(python_example())
        .env("PYTHONPATH", &hosts.py_site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let expected = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(vec![b'a'; 1 << 20]);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    for (host, out) in [(Host::Node, node), (Host::Python, python)] {
        assert!(out.status.success(), "{host:?}: {}", stderr(&out));
        let text = stdout(&out);
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), 2, "{host:?}: {text}");
        assert_eq!(got[0], expected, "{host:?}: the digest of 1 MiB");
        assert!(
            got[1].starts_with("sha256: 1048577 bytes is more than the limit of 1048576 bytes"),
            "{host:?}: {}",
            got[1]
        );
    }
}

/// The default sink with one import renamed to another version: a
/// component that mixes `chainsink:audit` versions.
fn mixed_version_sink(dir: &Path) -> PathBuf {
    let bytes = fs::read(&hosts().component).unwrap();
    let (from, to) = (b"diagnostics@0.2.0", b"diagnostics@0.1.0");
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| w == from)
        .map(|(i, _)| i)
        .collect();
    assert!(
        !at.is_empty(),
        "the default sink no longer imports diagnostics@0.2.0"
    );
    let mut patched = bytes;
    for i in at {
        patched[i..i + to.len()].copy_from_slice(to);
    }
    let path = dir.join("mixed.wasm");
    fs::write(&path, patched).unwrap();
    // chainsink itself refuses it (so it is a mix, not a broken file).
    let out = bin().arg("inspect").arg(&path).output().unwrap();
    assert!(
        stdout(&out).contains(
            "imports `chainsink:audit/diagnostics@0.1.0` but exports `chainsink:audit/sink@0.2.0`"
        ),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    path
}

#[test]
fn components_these_hosts_cannot_serve_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = mixed_version_sink(dir.path());
    let wasi = PathBuf::from(chainsink_test_programs::CHAINSINK_GUEST_WASI_SNOOP);
    let custom = PathBuf::from(chainsink_test_programs::CHAINSINK_GUEST_TSV_CHAIN);
    let cases: [(&Path, &[&str]); 3] = [
        (
            &mixed,
            &[
                "mixes WIT versions: it exports chainsink:audit/sink@0.2.0 but imports chainsink:audit/diagnostics@0.1.0",
                "rebuild it against one WIT",
            ],
        ),
        (
            &wasi,
            &[
                "imports wasi:",
                "this host grants a WIT 0.2.0 sink only chainsink:audit/log-file@0.2.0",
                "rebuild the sink without those imports",
            ],
        ),
        (
            &custom,
            &[
                "the sink tsv-chain ",
                "writes its own record format (custom(tsv-chain/1))",
                "chainsink emit --sink SINK.wasm",
            ],
        ),
    ];
    for host in [Host::Node, Host::Python] {
        for (k, (sink, needles)) in cases.iter().enumerate() {
            let log = dir.path().join(format!("{host:?}-{k}.jsonl"));
            let out = feed(
                host.command_for(&[], sink, &log, &[]),
                &to_input(&tricky_events()),
            );
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{host:?} {}: {err}",
                sink.display()
            );
            let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
            assert_eq!(errors.len(), 1, "{host:?}: one error line: {err}");
            for needle in *needles {
                assert!(
                    errors[0].contains(needle),
                    "{host:?}: `{needle}` not in: {}",
                    errors[0]
                );
            }
            assert!(stdout(&out).is_empty(), "{host:?}: {}", stdout(&out));
            assert!(
                fs::metadata(&log).map_or(0, |m| m.len()) == 0,
                "{host:?} wrote to the log of a refused sink"
            );
        }
    }
}

#[test]
fn verify_mode_runs_the_sinks_own_verifier_read_only() {
    // A custom-format log (tsv-chain/1), written by the Rust host: only the
    // sink's verifier can check it.
    let dir = tempfile::tempdir().unwrap();
    let tsv = PathBuf::from(chainsink_test_programs::CHAINSINK_GUEST_TSV_CHAIN);
    let log = dir.path().join("tsv.jsonl");
    let out = feed(
        Host::Rust.command_for(&[], &tsv, &log, &["--durability", "none"]),
        &to_input(&tricky_events()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let good = fs::read(&log).unwrap();
    let tampered = dir.path().join("tampered.jsonl");
    let text = String::from_utf8(good.clone()).unwrap();
    let second = text.find('\n').unwrap() + 1;
    let mut bad = text.clone().into_bytes();
    let at = second + text[second..].find("deploy.finished").unwrap();
    bad[at] = b'D';
    fs::write(&tampered, &bad).unwrap();
    for host in [Host::Node, Host::Python] {
        let out = feed(host.command_for(&[], &tsv, &log, &["--verify"]), "");
        assert_eq!(out.status.code(), Some(0), "{host:?}: {}", stderr(&out));
        let said = stdout(&out);
        assert!(
            said.starts_with(&format!(
                "OK {}: 3 record(s), {} bytes, verified by sink tsv-chain ",
                log.display(),
                good.len()
            )) && said.contains("(custom(tsv-chain/1))"),
            "{host:?}: {said}"
        );
        assert_eq!(fs::read(&log).unwrap(), good, "{host:?} changed the log");

        let out = feed(host.command_for(&[], &tsv, &tampered, &["--verify"]), "");
        assert_eq!(out.status.code(), Some(1), "{host:?}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!(
                "TAMPERED {}: line 2 (byte {second}): ",
                tampered.display()
            )),
            "{host:?}: {}",
            stdout(&out)
        );
        assert_eq!(
            fs::read(&tampered).unwrap(),
            bad,
            "{host:?} changed the log"
        );

        // A 0.1 sink has no verifier.
        let out = feed(host.command_for(&[], &v0_1_sink(), &log, &["--verify"]), "");
        assert_eq!(out.status.code(), Some(2), "{host:?}");
        assert!(
            stderr(&out).contains("exports no chainsink:audit/verifier"),
            "{host:?}: {}",
            stderr(&out)
        );
    }
}
