//! Helpers shared by the end-to-end tests: run the real binary on real files.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `chainsink` binary under test.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chainsink"));
    for var in [
        "AUDIT_LOG_PATH",
        "AUDIT_HASH_CHAIN",
        "AUDIT_SINK",
        "AUDIT_DURABILITY",
        "HOST_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("USER", "tester").env("HOST_ID", "test-host");
    // Keep compiled sinks out of the user's cache dir.
    cmd.env(
        "CHAINSINK_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("sink-cache"),
    );
    cmd
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chainsink");
    // Write from a thread: the binary answers while it reads, and a large
    // input would otherwise fill both pipes and wait forever.
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

/// Text of stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `n` events to `log` through `emit --stdin`, in one process.
pub fn emit_n(log: &Path, n: usize, durability: &str) -> Output {
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!(
            "{{\"event_type\": \"test.event\", \"workflow_id\": \"wf-1\", \"payload\": {{\"i\": {i}, \"name\": \"caf\\u00e9 \\ud83d\\ude00\"}}}}\n"
        ));
    }
    let out = run(
        &[
            "emit",
            "--stdin",
            "--durability",
            durability,
            "--log",
            log.to_str().unwrap(),
        ],
        &input,
    );
    assert!(out.status.success(), "emit failed: {}", stderr(&out));
    out
}

/// `chainsink verify LOG [extra]`.
pub fn verify(log: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args, "")
}

/// The reference Python sink script.
pub fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_sink.py")
}

/// Runs the reference script with `args`.
pub fn reference(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(reference_script())
        .args(args)
        .output()
        .expect("python3 is needed for the compatibility tests")
}

/// Lines of a file, each with its `\n`.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_inclusive('\n')
        .map(String::from)
        .collect()
}

/// Makes `cmd`'s process unable to grow any file past `bytes` (RLIMIT_FSIZE,
/// with SIGXFSZ ignored): its writes past that fail with EFBIG, "File too
/// large". A full disk for one process, on a regular file, without root.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setrlimit, signal), with no allocation.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// A log at the edge of a "full disk": 16 MiB of lines the sink never reads
/// (it resumes from the last record), then one valid record, written in
/// `dir`. Run the writer under
/// [`limit_file_size`] with the log's size (returned): it opens and resumes
/// the log, and its first append fails with EFBIG. (A limit of 0 would also
/// stop the runtime's own scratch files and memory images.)
pub fn full_disk_log(dir: &Path) -> (PathBuf, u64) {
    let scratch = dir.join("scratch.jsonl");
    emit_n(&scratch, 1, "none");
    let record = std::fs::read(&scratch).unwrap();
    std::fs::remove_file(&scratch).unwrap();
    let log = dir.join("full.jsonl");
    let mut line = vec![b'x'; (64 << 10) - 1];
    line.push(b'\n');
    let mut bytes = line.repeat(256);
    bytes.extend_from_slice(&record);
    std::fs::write(&log, &bytes).unwrap();
    (log, bytes.len() as u64)
}
