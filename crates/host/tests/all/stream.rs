//! The `emit --stdin` protocol (`stream::emit_lines`) on the real default
//! sink: one answer per line, in line order; bad lines refused one by one;
//! bounded batches; a truthful line number when the sink fails.

use std::cell::{Cell, RefCell};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::rc::Rc;

use chainsink_host::stream::{
    MAX_BATCH_BYTES, MAX_LINE_BYTES, StreamError, StreamReport, emit_lines,
};
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{Actor, Durability, LogFile, Sink, SinkLimits, SinkOptions, SinkRuntime};
use serde_json::Value;

fn open(path: &Path) -> Sink {
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    runtime
        .open(
            &component,
            LogFile::open(path).unwrap(),
            &SinkOptions {
                hash_chain: true,
                durability: Durability::None,
                actor: Actor {
                    host_id: "stream-host".into(),
                    user: "stream-user".into(),
                },
            },
        )
        .unwrap()
}

fn event_line(i: usize) -> Vec<u8> {
    format!("{{\"event_type\": \"step\", \"payload\": {{\"i\": {i}}}}}\n").into_bytes()
}

/// Runs the stream over `input`; the answers and the result.
fn stream(sink: &Sink, input: &[u8]) -> (Vec<Value>, Result<StreamReport, StreamError>) {
    let mut out = Vec::new();
    let result = emit_lines(sink, &mut BufReader::new(input), &mut out);
    (answers(&out), result)
}

fn answers(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(line, Some(seq))` for a receipt, `(line, None)` for an error.
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

#[test]
fn bad_lines_are_refused_one_by_one_and_the_others_written_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let sink = open(&path);
    let mut input = event_line(1);
    input.extend(b"{\"event_type\": \"caf\xe9\"}\n"); // Latin-1, not UTF-8
    input.extend(b"not json\n");
    input.extend(b"\n");
    input.extend(event_line(5));
    let mut long = b"{\"event_type\": \"big\", \"payload\": {\"s\": \"".to_vec();
    long.resize(MAX_LINE_BYTES + 10, b'x');
    long.extend(b"\"}}\n");
    input.extend(&long);
    input.extend(b"{\"event_type\": \"\"}\n"); // refused by the sink
    input.extend(event_line(8));
    let (answers, result) = stream(&sink, &input);
    assert_eq!(
        shape(&answers),
        [
            (1, Some(1)),
            (2, None),
            (3, None),
            (5, Some(2)),
            (6, None),
            (7, None),
            (8, Some(3)),
        ],
        "{answers:#?}"
    );
    let error = |i: usize| answers[i]["error"].as_str().unwrap().to_string();
    assert!(error(1).contains("UTF-8"), "{}", error(1));
    // Refused by the sink when its batch was written again one event at a
    // time: the message is the event's own, not "event i of the batch".
    assert!(
        error(5).contains("event_type") && !error(5).contains("of the batch"),
        "{}",
        error(5)
    );
    assert!(
        error(4).contains(&format!("more than the limit of {MAX_LINE_BYTES} bytes")),
        "{}",
        error(4)
    );
    assert_eq!(
        result.unwrap(),
        StreamReport {
            written: 3,
            refused: 4
        }
    );
    sink.close().unwrap();
    assert_eq!(
        verify_file(&path, &VerifyOptions::default())
            .unwrap()
            .records,
        3
    );
}

#[test]
fn an_error_never_comes_before_the_receipt_of_an_earlier_line() {
    let dir = tempfile::tempdir().unwrap();
    let sink = open(&dir.path().join("log.jsonl"));
    let mut input = Vec::new();
    for i in 1..=40 {
        if i % 3 == 0 {
            input.extend(b"{\"bad\": 1}\n");
        } else {
            input.extend(event_line(i));
        }
    }
    let (answers, result) = stream(&sink, &input);
    let lines: Vec<u64> = answers
        .iter()
        .map(|a| a["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, (1..=40).collect::<Vec<u64>>());
    assert_eq!(result.unwrap().refused, 13);
}

/// Input of `n` lines of about `size` bytes each, made as it is read; counts
/// the bytes handed out.
struct BigLines {
    n: usize,
    size: usize,
    current: Vec<u8>,
    pos: usize,
    made: usize,
    given: Rc<Cell<u64>>,
}

impl Read for BigLines {
    /// Fills `buf` across line ends, as a pipe with a fast writer would.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.pos == self.current.len() {
                if self.made == self.n {
                    break;
                }
                self.made += 1;
                let head = format!(
                    "{{\"event_type\": \"big\", \"payload\": {{\"i\": {}, \"s\": \"",
                    self.made
                );
                self.current = head.into_bytes();
                self.current.resize(self.size - 4, b'x');
                self.current.extend(b"\"}}\n");
                self.pos = 0;
            }
            let n = (buf.len() - filled).min(self.current.len() - self.pos);
            buf[filled..filled + n].copy_from_slice(&self.current[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
        self.given.set(self.given.get() + filled as u64);
        Ok(filled)
    }
}

/// Per write of answers: the input bytes handed out by then, and the answers.
type Writes = Rc<RefCell<Vec<(u64, Vec<Value>)>>>;

/// Records each write of answers.
struct Watch {
    given: Rc<Cell<u64>>,
    writes: Writes,
}

impl Write for Watch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes
            .borrow_mut()
            .push((self.given.get(), answers(buf)));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn seventy_one_megabyte_lines_go_in_batches_bounded_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let sink = open(&path);
    let (n, size) = (70, 1_000_000);
    let given = Rc::new(Cell::new(0));
    let writes: Writes = Rc::new(RefCell::new(Vec::new()));
    let input = BigLines {
        n,
        size,
        current: Vec::new(),
        pos: 0,
        made: 0,
        given: given.clone(),
    };
    // A big buffer, so that the input never seems to pause: only the
    // batch limits end a batch.
    let mut input = BufReader::with_capacity(1 << 20, input);
    let out = Watch {
        given: given.clone(),
        writes: writes.clone(),
    };
    let report = emit_lines(&sink, &mut input, out).unwrap();
    assert_eq!(
        report,
        StreamReport {
            written: n as u64,
            refused: 0
        }
    );
    let writes = writes.borrow();
    let mut answered = 0u64;
    for (given, answers) in writes.iter() {
        assert!(
            answers.len() * size <= MAX_BATCH_BYTES,
            "a batch of {} lines of {size} bytes",
            answers.len()
        );
        answered += answers.len() as u64;
        // Read ahead of the answers: at most the batch read while this one
        // was written, the line that did not fit in it, and what the
        // BufReader holds.
        let ahead = given - answered * size as u64;
        assert!(
            ahead <= (MAX_BATCH_BYTES + MAX_LINE_BYTES + (1 << 20)) as u64,
            "{ahead} bytes read beyond the last answered line"
        );
    }
    assert_eq!(answered, n as u64);
    sink.close().unwrap();
    assert_eq!(
        verify_file(&path, &VerifyOptions::default())
            .unwrap()
            .records,
        n as u64
    );
}

/// Input in two chunks; the sink is closed (so it fails) before the second.
struct CloseBetween<'a> {
    chunks: Vec<Vec<u8>>,
    sink: &'a Sink,
    closed: bool,
}

impl Read for CloseBetween<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunks.len() == 1 && !self.closed {
            self.sink.close().unwrap();
            self.closed = true;
        }
        let Some(chunk) = self.chunks.first_mut() else {
            return Ok(0);
        };
        let n = buf.len().min(chunk.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.chunks.remove(0);
        }
        Ok(n)
    }
}

#[test]
fn a_sink_failure_names_the_first_line_without_a_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let sink = open(&path);
    let mut first = event_line(1);
    first.extend(b"not json\n");
    let mut second = event_line(3);
    second.extend(b"not json either\n");
    second.extend(event_line(5));
    let mut input = BufReader::new(CloseBetween {
        chunks: vec![first, second],
        sink: &sink,
        closed: false,
    });
    let mut out = Vec::new();
    let error = emit_lines(&sink, &mut input, &mut out).unwrap_err();
    // Lines 1 and 2 were answered; nothing from line 3 on was written, and
    // no later line (not even a refused one) gets an answer.
    assert_eq!(shape(&answers(&out)), [(1, Some(1)), (2, None)]);
    let StreamError::Sink {
        line,
        written,
        last_written,
        ..
    } = &error
    else {
        panic!("not a sink error: {error}");
    };
    assert_eq!((*line, *written, *last_written), (3, 1, Some(1)));
    let text = error.to_string();
    assert!(text.contains("lines from 3 on"), "{text}");
    assert!(text.contains("the last one line 1"), "{text}");
    assert_eq!(
        verify_file(&path, &VerifyOptions::default())
            .unwrap()
            .records,
        1
    );
}
