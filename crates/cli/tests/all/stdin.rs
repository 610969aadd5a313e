//! `chainsink emit --stdin` end to end (issue 10): one answer per line in
//! line order, bad lines (not UTF-8, too long) refused alone, big input in
//! bounded memory, and a truthful line number when the log's disk fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;

use serde_json::Value;

use crate::common::{bin, lines, stderr, verify};

fn emit_stdin(log: &Path) -> std::process::Command {
    let mut cmd = bin();
    cmd.args([
        "emit",
        "--stdin",
        "--durability",
        "none",
        "--log",
        log.to_str().unwrap(),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn event_line(i: usize) -> Vec<u8> {
    format!("{{\"event_type\": \"step\", \"payload\": {{\"i\": {i}}}}}\n").into_bytes()
}

/// Runs `emit --stdin` on `input` (any bytes): the answers, exit code, stderr.
fn run_bytes(log: &Path, input: Vec<u8>) -> (Vec<Value>, Option<i32>, String) {
    let mut child = emit_stdin(log).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let answers = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (answers, out.status.code(), stderr(&out))
}

/// `(line, Some(seq))` for a receipt, `(line, None)` for an error line.
fn shape(answers: &[Value]) -> Vec<(u64, Option<u64>)> {
    answers
        .iter()
        .map(|a| {
            assert!(
                a["seq"].is_u64() != a["error"].is_string(),
                "a receipt or an error: {a}"
            );
            (a["line"].as_u64().unwrap(), a["seq"].as_u64())
        })
        .collect()
}

fn records(log: &Path) -> usize {
    assert_eq!(verify(log, &[]).status.code(), Some(0), "the log verifies");
    lines(log).len()
}

#[test]
fn a_line_of_invalid_utf8_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut input = event_line(1);
    input.extend(b"{\"event_type\": \"caf\xe9\"}\n");
    input.extend(event_line(3));
    let (answers, code, err) = run_bytes(&log, input);
    assert_eq!(
        shape(&answers),
        [(1, Some(1)), (2, None), (3, Some(2))],
        "{err}"
    );
    let error = answers[1]["error"].as_str().unwrap();
    assert!(error.contains("UTF-8"), "{error}");
    assert_eq!(code, Some(1), "a refused line makes the exit status 1");
    assert!(err.contains("1 line(s) refused, 2 written"), "{err}");
    assert_eq!(records(&log), 2);
}

#[test]
fn answers_come_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut input = Vec::new();
    let mut expect = Vec::new();
    let mut seq = 0;
    for i in 1..=60u64 {
        if i % 4 == 0 {
            input.extend(b"not json\n");
            expect.push((i, None));
        } else if i % 7 == 0 {
            input.extend(b"\xff\xfe\n");
            expect.push((i, None));
        } else {
            input.extend(event_line(i as usize));
            seq += 1;
            expect.push((i, Some(seq)));
        }
    }
    let (answers, code, err) = run_bytes(&log, input);
    assert_eq!(shape(&answers), expect, "{err}");
    assert_eq!(code, Some(1));
    assert_eq!(records(&log), seq as usize);
}

#[test]
fn a_too_long_line_between_two_good_ones_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut input = event_line(1);
    let mut long = b"{\"event_type\": \"big\", \"payload\": {\"s\": \"".to_vec();
    long.resize(3 << 20, b'x');
    long.extend(b"\"}}\n");
    input.extend(long);
    input.extend(event_line(3));
    let (answers, code, err) = run_bytes(&log, input);
    assert_eq!(
        shape(&answers),
        [(1, Some(1)), (2, None), (3, Some(2))],
        "{err}"
    );
    let error = answers[1]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{} bytes long", (3 << 20) + 3)),
        "{error}"
    );
    assert!(
        error.contains("more than the limit of 1048576 bytes"),
        "{error}"
    );
    assert_eq!(code, Some(1));
    assert_eq!(records(&log), 2);
}

/// Bytes of a [`big_line`]: 1 MB, just under the line limit of 1 MiB.
const BIG: usize = 1_000_000;

/// An event line of [`BIG`] bytes.
fn big_line(i: usize) -> Vec<u8> {
    let mut line =
        format!("{{\"event_type\": \"big\", \"payload\": {{\"i\": {i}, \"s\": \"").into_bytes();
    line.resize(BIG - 4, b'x');
    line.extend(b"\"}}\n");
    line
}

/// Peak resident memory (VmHWM) of a live process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// Reads `n` answer lines.
fn read_answers(out: &mut BufReader<ChildStdout>, n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
        })
        .collect()
}

/// Sends `lines` to `child` from a thread, leaving stdin open until `done`
/// is dropped: the process stays alive to be measured.
fn feed_and_hold(child: &mut Child, input: Vec<Vec<u8>>) -> mpsc::Sender<()> {
    let mut stdin = child.stdin.take().unwrap();
    let (done, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in input {
            if stdin.write_all(&line).is_err() {
                return;
            }
        }
        let _ = wait.recv();
    });
    done
}

/// Peak RSS of `emit --stdin` once it has answered `lines`.
fn peak_after(log: &Path, lines: Vec<Vec<u8>>) -> (u64, Vec<Value>) {
    let n = lines.len();
    let mut child = emit_stdin(log).spawn().unwrap();
    let done = feed_and_hold(&mut child, lines);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let answers = read_answers(&mut out, n);
    let peak = peak_rss(child.id());
    drop(done);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "one answer a line");
    assert!(child.wait().unwrap().success());
    (peak, answers)
}

#[test]
fn seventy_one_megabyte_lines_complete_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // The same process with one small line: what the runtime itself takes.
    let (baseline, _) = peak_after(&dir.path().join("small.jsonl"), vec![event_line(1)]);

    let log = dir.path().join("big.jsonl");
    let (n, size) = (70, BIG);
    let input: Vec<Vec<u8>> = (1..=n).map(big_line).collect();
    let total = (n * size) as u64;
    let (peak, answers) = peak_after(&log, input);
    let expect: Vec<(u64, Option<u64>)> = (1..=n as u64).map(|i| (i, Some(i))).collect();
    assert_eq!(shape(&answers), expect);
    assert_eq!(records(&log), n);
    eprintln!(
        "emit --stdin: peak RSS {:.1} MiB for {:.1} MiB of input ({:.1} MiB with one small line)",
        peak as f64 / f64::from(1 << 20),
        total as f64 / f64::from(1 << 20),
        baseline as f64 / f64::from(1 << 20),
    );
    // Two 4 MiB batches in the host (one being written, one being read),
    // the one being written in the sink too, and the sink's working memory;
    // never the whole input.
    assert!(
        peak < baseline + total / 2,
        "peak RSS {peak} bytes; {baseline} with one small line; input {total} bytes"
    );
}

#[test]
fn a_full_disk_mid_stream_names_the_first_line_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    // A log of 4 big records first, written without a limit.
    let big: Vec<u8> = (1..=4).flat_map(big_line).collect();
    let (answers, code, err) = run_bytes(&log, big);
    assert_eq!((answers.len(), code), (4, Some(0)), "{err}");
    let before = std::fs::metadata(&log).unwrap().len();
    // Then the log may grow by 32 KiB only: writing past that fails with
    // EFBIG, as a full disk fails with ENOSPC (SIGXFSZ ignored, so write(2)
    // returns the error). The limit is far above the log's start so that
    // wasmtime's own memfd images, also files, still fit.
    let limit = before + (32 << 10);
    let mut cmd = emit_stdin(&log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // First a conversation, a line at a time: these are written.
    for i in 1..=5u64 {
        stdin.write_all(&event_line(i as usize)).unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        out.read_line(&mut answer).unwrap();
        let answer: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{e}: {answer:?}; is the file size limit too low?"));
        assert_eq!(shape(&[answer]), [(i, Some(4 + i))]);
    }
    // Then far more than fits, in one go.
    let feeder = std::thread::spawn(move || {
        for i in 6..=1000 {
            if stdin.write_all(&event_line(i)).is_err() {
                break; // the stream stopped
            }
        }
    });
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    let answers: Vec<Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every answer is a receipt, for lines 6, 7, ... in order, then none.
    let last = 5 + answers.len() as u64;
    let expect: Vec<(u64, Option<u64>)> = (6..=last).map(|i| (i, Some(4 + i))).collect();
    assert_eq!(shape(&answers), expect, "{err}");
    assert!(last < 1000, "the limit was never reached: {err}");
    assert!(err.contains("File too large"), "{err}");
    assert!(
        err.contains(&format!("lines from {} on were not written", last + 1)),
        "{err}"
    );
    assert!(err.contains(&format!("the last one line {last}")), "{err}");
    // Each receipted line is in the log, as its receipt says.
    let text = std::fs::read(&log).unwrap();
    let written: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    assert!(
        written.len() as u64 >= 4 + last,
        "{} records",
        written.len()
    );
    for answer in &answers {
        let seq = answer["seq"].as_u64().unwrap();
        let record: Value = serde_json::from_slice(written[seq as usize - 1]).unwrap();
        assert_eq!(record["hash"], answer["hash"], "record {seq}");
    }
}
