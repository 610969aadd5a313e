//! The `emit --stdin` protocol: events in as JSON lines, answers out.
//!
//! Each input line is one JSON object:
//! `{"event_type": "task.completed", "workflow_id": "wf-1", "payload": {...}}`,
//! with optional `"timestamp"` (the log's form) and `"actor"`
//! (`{"host_id": .., "user": ..}`). Lines are numbered from 1, blank lines
//! included; a blank line gets no answer. Every other line gets exactly one
//! answer line, and answers come in input order:
//!
//! - `{"line": 3, "seq": 17, "hash": "ab12.."}` once its record is written
//!   (`hash` is null with the chain off);
//! - `{"line": 3, "error": "..."}` when the line is refused: not UTF-8, not
//!   JSON, not an event, longer than [`MAX_LINE_BYTES`], or refused by the
//!   sink. Nothing is written for it; the lines before and after it are.
//!
//! Lines are written in batches, one append each. A batch ends when the
//! input pauses (nothing more is buffered: a receipt is never held back
//! waiting for more input), at the end of the input, at [`MAX_BATCH`] lines,
//! or before its events would hold more than [`MAX_BATCH_BYTES`] of input.
//! Once a batch is written its answers are printed, in line order, and the
//! output flushed once.
//!
//! Two threads share the work: a second thread calls the sink, one batch at
//! a time, while the calling thread reads and parses the next batch and
//! makes its events ready for the sink (canonical payloads:
//! `Sink::prepare`; the time stamp stays in the sink's call, inside its
//! lock, so times never run backwards along the chain). The reading thread
//! reads on only while input is buffered: before it would block for more, it
//! waits for the batch being written, writes the batch it holds itself (no
//! hand-over to wait on when lines come one at a time) and prints their
//! answers. So the stream holds at most two batches (one being written, one
//! being read) plus the line being read, and a line longer than
//! [`MAX_LINE_BYTES`] is refused as it is read: the rest of it is read and
//! discarded up to its newline, never held.
//!
//! If the sink fails (an I/O error such as a full disk, a trap), the stream
//! stops. The answers of the lines before the first line that got no receipt
//! are printed, and the error names that line N: lines from N on were not
//! written. A line counts as written only once its receipt came back.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc;

use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::sink::{Actor, Event, Prepared, Receipt, Sink, SinkError};

/// Most lines answered per batch (events written with one append, plus
/// refused lines).
pub const MAX_BATCH: usize = 256;

/// Most input bytes whose events one batch holds: a batch is written before
/// a line would take it past this.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Longest input line accepted, in bytes, not counting its line ending: the
/// largest record ([`chainsink_format::MAX_RECORD_BYTES`]). The record adds
/// fields to the event, so a longer line could only fit by carrying padding;
/// it is refused unread. A shorter line can still make a record over the
/// limit; the sink refuses that one.
pub const MAX_LINE_BYTES: usize = chainsink_format::MAX_RECORD_BYTES;

/// What a stream run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Records written.
    pub written: u64,
    /// Lines refused (each reported on the output).
    pub refused: u64,
}

/// Why a stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Writing the answers failed.
    #[error("stdin/stdout: {0}")]
    Io(#[from] io::Error),
    /// Reading the input failed; the lines before `line` were written or
    /// refused as their answers say.
    #[error("reading line {line} failed: {error}; lines from {line} on were not read")]
    Input {
        /// The line being read.
        line: u64,
        /// The read error.
        error: io::Error,
    },
    /// The sink failed in a way that stops the stream (not a bad line).
    #[error(
        "{error}; lines from {line} on were not written: no receipt came back for them (if the \
         error cut a write short, some of them may be at the end of the log: check its tail \
         before sending them again); {}",
        written_note(*.written, *.last_written)
    )]
    Sink {
        /// First line not written: every line before it has its answer on
        /// the output, and no line from it on does.
        line: u64,
        /// Records written by this stream before the failure.
        written: u64,
        /// The last line written (answered with a receipt), if any.
        last_written: Option<u64>,
        /// The sink's error.
        error: SinkError,
    },
}

fn written_note(written: u64, last: Option<u64>) -> String {
    match last {
        Some(last) => format!(
            "the {written} line(s) answered with a receipt were written, the last one line {last}"
        ),
        None => "no line got a receipt".to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputEvent<'a> {
    event_type: String,
    #[serde(default)]
    workflow_id: Option<String>,
    /// The payload's text as sent: the sink parses and canonicalizes it
    /// anyway, so the host only checks that it is JSON and an object
    /// instead of building a tree and serializing it again.
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    actor: Option<InputActor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputActor {
    host_id: String,
    user: String,
}

/// Reads events from `input` until it ends, writing answers to `output`.
///
/// Bad lines are refused one by one and reported; the stream goes on. A sink
/// failure (I/O, trap) stops it: the error says which lines were not written.
pub fn emit_lines(
    sink: &Sink,
    input: &mut BufReader<impl Read>,
    output: impl Write,
) -> Result<StreamReport, StreamError> {
    let out = Output {
        output,
        buf: Vec::new(),
        report: StreamReport::default(),
        last_written: None,
    };
    std::thread::scope(|scope| {
        let (jobs, job_rx) = mpsc::sync_channel::<Sent>(1);
        let (done_tx, done) = mpsc::channel::<Sent>();
        // The sink's thread: writes one batch at a time, as this one hands them over.
        scope.spawn(move || {
            for mut sent in job_rx {
                sent.failure = sent.emit(sink);
                if done_tx.send(sent).is_err() {
                    break;
                }
            }
        });
        let mut writer = Writer {
            sink,
            jobs,
            done,
            in_flight: false,
            out,
        };
        // The writer is dropped on return, which closes `jobs` and so ends the sink's thread.
        read_lines(input, &mut writer)
    })
}

/// The reading half of [`emit_lines`]: lines in, batches out to `writer`.
fn read_lines(
    input: &mut BufReader<impl Read>,
    writer: &mut Writer<'_, impl Write>,
) -> Result<StreamReport, StreamError> {
    let mut batch = Batch::default();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        let read = match read_line_bounded(input, &mut line, MAX_LINE_BYTES) {
            Ok(read) => read,
            Err(error) => {
                // Write what was read whole before the input failed.
                writer.write_now(&mut batch)?;
                return Err(StreamError::Input {
                    line: line_no + 1,
                    error,
                });
            }
        };
        match read {
            ReadLine::Eof => {
                writer.write_now(&mut batch)?;
                return Ok(writer.out.report.clone());
            }
            ReadLine::TooLong(len) => {
                line_no += 1;
                batch.refuse(
                    line_no,
                    format!(
                        "line is {len} bytes long, more than the limit of {MAX_LINE_BYTES} \
                         bytes; nothing was written for it (send large data by reference)"
                    ),
                );
            }
            ReadLine::Line => {
                line_no += 1;
                match std::str::from_utf8(&line) {
                    Err(e) => batch.refuse(
                        line_no,
                        format!(
                            "line is not valid UTF-8 (invalid byte at offset {}); send JSON \
                             text in UTF-8",
                            e.valid_up_to()
                        ),
                    ),
                    Ok(text) => {
                        let text = text.trim();
                        if !text.is_empty() {
                            // Keep to the batch being written, this one and this line: hand
                            // this batch over before parsing a line it has no room for.
                            if batch.bytes + text.len() > MAX_BATCH_BYTES {
                                writer.submit(&mut batch)?;
                            }
                            match parse_line(text) {
                                Ok(event) => batch.push(line_no, event, text.len()),
                                Err(e) => batch.refuse(line_no, e),
                            }
                        }
                    }
                }
            }
        }
        if input.buffer().is_empty() {
            // The input paused (nothing more buffered): every answer owed is printed before
            // this thread blocks for more, so a receipt is never held back waiting for input.
            writer.write_now(&mut batch)?;
        } else if batch.items.len() >= MAX_BATCH {
            // More is buffered: read on while the sink writes this batch.
            writer.submit(&mut batch)?;
        }
    }
}

/// What [`read_line_bounded`] read.
#[derive(Debug, PartialEq, Eq)]
enum ReadLine {
    /// The input ended before any byte of a new line.
    Eof,
    /// A whole line (ended by `\n` or by the end of the input) is in the buffer,
    /// without its `\n`.
    Line,
    /// The line had this many bytes (without `\n`), more than the limit; it
    /// was consumed up to its end and discarded, and the buffer is empty.
    TooLong(u64),
}

/// Reads one line into `buf` (cleared first), holding at most `max` bytes
/// of it: the rest of a longer line is consumed and discarded.
fn read_line_bounded(
    input: &mut BufReader<impl Read>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<ReadLine> {
    buf.clear();
    let mut len = 0u64;
    let mut started = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match started {
                false => ReadLine::Eof,
                true if len > max as u64 => ReadLine::TooLong(len),
                true => ReadLine::Line,
            });
        }
        started = true;
        let (chunk, used, end) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        len += chunk.len() as u64;
        if len <= max as u64 {
            buf.extend_from_slice(chunk);
        } else if !buf.is_empty() {
            buf.clear();
        }
        input.consume(used);
        if end {
            return Ok(if len > max as u64 {
                ReadLine::TooLong(len)
            } else {
                ReadLine::Line
            });
        }
    }
}

/// Where answers go, and what has been answered so far.
struct Output<W> {
    output: W,
    /// One batch's answers, written with one call.
    buf: Vec<u8>,
    report: StreamReport,
    /// The last line answered with a receipt.
    last_written: Option<u64>,
}

/// One line's answer, once known.
enum Answer {
    /// Waiting for its event (`events[i]`) to be written.
    Pending(usize),
    Written(Receipt),
    Refused(String),
}

/// The lines read since the last write, in order.
#[derive(Default)]
struct Batch {
    items: Vec<(u64, Answer)>,
    events: Vec<Event>,
    /// Input bytes of the lines in `events`.
    bytes: usize,
}

impl Batch {
    fn push(&mut self, line: u64, event: Event, bytes: usize) {
        self.items.push((line, Answer::Pending(self.events.len())));
        self.events.push(event);
        self.bytes += bytes;
    }

    fn refuse(&mut self, line: u64, error: String) {
        self.items.push((line, Answer::Refused(error)));
    }
}

/// A batch on its way through the sink: its answers so far, its events made ready for the sink
/// ([`Sink::prepare`]), and, once written, the first line not written and why.
struct Sent {
    items: Vec<(u64, Answer)>,
    events: Prepared,
    failure: Option<(u64, SinkError)>,
}

impl Sent {
    /// Writes the events, turning each pending answer into a receipt or a
    /// refusal; on a sink failure, returns the first line not written.
    fn emit(&mut self, sink: &Sink) -> Option<(u64, SinkError)> {
        let n = self.events.len();
        if n == 0 {
            return None;
        }
        let error = match sink.emit_prepared(&mut self.events, 0..n) {
            Ok(receipts) => {
                // `emit_prepared` checked there is one receipt per event.
                let mut receipts = receipts.into_iter();
                for (line, answer) in &mut self.items {
                    if let Answer::Pending(_) = answer {
                        let Some(r) = receipts.next() else {
                            let error = SinkError::Contract {
                                sink: sink.name().to_string(),
                                call: "emit-batch",
                                message: "it returned fewer receipts than events".to_string(),
                            };
                            return Some((*line, error));
                        };
                        *answer = Answer::Written(r);
                    }
                }
                return None;
            }
            Err(error) => error,
        };
        if !matches!(error, SinkError::InvalidEvent(_)) {
            return self.first_pending().map(|line| (line, error));
        }
        // One bad event refuses the whole batch: write them one by one so
        // that only the bad ones are refused.
        for (line, answer) in &mut self.items {
            let Answer::Pending(i) = *answer else {
                continue;
            };
            *answer = match sink.emit_prepared(&mut self.events, i..i + 1) {
                // One receipt for one event, checked by `emit_prepared`.
                Ok(mut r) => Answer::Written(r.remove(0)),
                Err(SinkError::InvalidEvent(m)) => Answer::Refused(m),
                Err(error) => return Some((*line, error)),
            };
        }
        None
    }

    fn first_pending(&self) -> Option<u64> {
        self.items
            .iter()
            .find(|(_, a)| matches!(a, Answer::Pending(_)))
            .map(|(line, _)| *line)
    }
}

/// The writing half of [`emit_lines`]: hands batches to the sink's thread one at a time and
/// prints their answers.
struct Writer<'s, W> {
    sink: &'s Sink,
    jobs: mpsc::SyncSender<Sent>,
    done: mpsc::Receiver<Sent>,
    /// Whether a batch was handed over and its answers are not printed yet.
    in_flight: bool,
    out: Output<W>,
}

impl<W: Write> Writer<'_, W> {
    /// Hands `batch` (emptied) to the sink's thread once the batch before it is written (unless
    /// that failed), then prints that batch's answers. Its events are made ready for the sink
    /// here, while that batch is written.
    fn submit(&mut self, batch: &mut Batch) -> Result<(), StreamError> {
        if batch.items.is_empty() {
            return Ok(());
        }
        let sent = self.sent(batch);
        let before = self.take_done()?;
        if before.as_ref().is_some_and(|b| b.failure.is_some()) {
            // The sink failed: nothing more goes to it; printing the batch before says why.
            return before.map_or(Ok(()), |b| self.out.print(b));
        }
        // Hand this batch over first, then print (and free) the one before, so that the sink
        // does not wait for that (issue 15).
        self.jobs.send(sent).map_err(|_| thread_gone())?;
        self.in_flight = true;
        before.map_or(Ok(()), |b| self.out.print(b))
    }

    /// Writes `batch` (emptied) on this thread, after the batch handed over before it, and
    /// prints the answers of both: for when nothing more is to be read for now, so a hand-over
    /// would only add two thread wake-ups to each answer (a line at a time, at the end).
    fn write_now(&mut self, batch: &mut Batch) -> Result<(), StreamError> {
        self.finish()?;
        if batch.items.is_empty() {
            return Ok(());
        }
        let mut sent = self.sent(batch);
        sent.failure = sent.emit(self.sink);
        self.out.print(sent)
    }

    /// `batch`'s lines, its events made ready for the sink; `batch` is left empty.
    fn sent(&self, batch: &mut Batch) -> Sent {
        batch.bytes = 0;
        Sent {
            events: self
                .sink
                .prepare(Cow::Owned(std::mem::take(&mut batch.events))),
            items: std::mem::take(&mut batch.items),
            failure: None,
        }
    }

    /// Waits for the batch handed over, if any, and prints its answers.
    fn finish(&mut self) -> Result<(), StreamError> {
        match self.take_done()? {
            Some(sent) => self.out.print(sent),
            None => Ok(()),
        }
    }

    /// Waits for the batch handed over, if any, and returns it, written.
    fn take_done(&mut self) -> Result<Option<Sent>, StreamError> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(None);
        }
        self.done.recv().map(Some).map_err(|_| thread_gone())
    }
}

/// The sink's thread ended before answering (it panicked; the panic follows).
fn thread_gone() -> StreamError {
    StreamError::Io(io::Error::other(
        "the thread writing to the sink stopped before answering",
    ))
}

impl<W: Write> Output<W> {
    /// Prints every answer of a written batch in line order and flushes
    /// once. On a sink failure, prints the answers of the lines before the
    /// first line not written, then returns the error.
    fn print(&mut self, sent: Sent) -> Result<(), StreamError> {
        self.buf.clear();
        for (line, answer) in &sent.items {
            match answer {
                Answer::Written(r) => {
                    self.report.written += 1;
                    self.last_written = Some(*line);
                    write_receipt(&mut self.buf, *line, r);
                }
                Answer::Refused(error) => {
                    self.report.refused += 1;
                    // serde_json's object keys are sorted: error, line.
                    let answer = json!({"line": line, "error": error});
                    serde_json::to_writer(&mut self.buf, &answer).map_err(io::Error::from)?;
                    self.buf.push(b'\n');
                }
                // The first line not written (after a sink failure): no
                // later line gets an answer.
                Answer::Pending(_) => break,
            }
        }
        self.output.write_all(&self.buf)?;
        self.output.flush()?;
        match sent.failure {
            None => Ok(()),
            Some((line, error)) => Err(StreamError::Sink {
                line,
                written: self.report.written,
                last_written: self.last_written,
                error,
            }),
        }
    }
}

/// Appends `{"hash":..,"line":..,"seq":..}` and a newline to `buf`: the
/// bytes serde_json writes for that object (keys sorted), without building
/// it. A receipt's hash is 64 hex digits (checked by the host before it
/// gets here), so it needs no escaping; anything else is escaped anyway.
fn write_receipt(buf: &mut Vec<u8>, line: u64, r: &Receipt) {
    match &r.hash {
        Some(h) if needs_no_escape(h) => {
            buf.extend_from_slice(b"{\"hash\":\"");
            buf.extend_from_slice(h.as_bytes());
            buf.push(b'"');
        }
        Some(h) => {
            buf.extend_from_slice(b"{\"hash\":");
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *buf, h);
        }
        None => buf.extend_from_slice(b"{\"hash\":null"),
    }
    let mut digits = itoa::Buffer::new();
    buf.extend_from_slice(b",\"line\":");
    buf.extend_from_slice(digits.format(line).as_bytes());
    buf.extend_from_slice(b",\"seq\":");
    buf.extend_from_slice(digits.format(r.seq).as_bytes());
    buf.extend_from_slice(b"}\n");
}

/// Whether `s` can be written between quotes in JSON as it is: no `"`, `\` or control byte.
/// (A fold, not `all`, so that it runs without a branch a byte: this check was 4% of an
/// `emit --stdin` profile when it stopped at each byte, issue 15.)
fn needs_no_escape(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

fn parse_line(text: &str) -> Result<Event, String> {
    let input: InputEvent = serde_json::from_str(text).map_err(|e| {
        format!(
            "{e}; expected {{\"event_type\": \"..\", \"workflow_id\": \"..\" or null, \"payload\": {{..}}}}"
        )
    })?;
    let payload = match input.payload.map(RawValue::get) {
        None => "{}",
        Some(text) if text.starts_with('{') => text,
        Some(text) => {
            return Err(format!(
                "`payload` must be a JSON object, not {}; expected {{\"event_type\": \"..\", \
                 \"workflow_id\": \"..\" or null, \"payload\": {{..}}}}",
                json_kind(text)
            ));
        }
    };
    Ok(Event {
        event_type: input.event_type,
        workflow_id: input.workflow_id,
        payload: payload.to_string(),
        timestamp: input.timestamp,
        actor: input.actor.map(|a| Actor {
            host_id: a.host_id,
            user: a.user,
        }),
    })
}

/// What kind of JSON value `text` (valid JSON, no leading space) is.
fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    use super::{ReadLine, parse_line, read_line_bounded};

    /// A reader that hands out at most `step` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn read_all(data: &[u8], max: usize, step: usize) -> Vec<(ReadLine, Vec<u8>)> {
        let mut input = BufReader::with_capacity(16, Trickle { data, step });
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let r = read_line_bounded(&mut input, &mut buf, max).unwrap();
            assert!(buf.len() <= max && buf.capacity() <= 2 * max + 16);
            if r == ReadLine::Eof {
                return out;
            }
            out.push((r, buf.clone()));
        }
    }

    #[test]
    fn lines_split_at_newlines_whatever_the_reads() {
        for step in [1, 3, 16, 1000] {
            let got = read_all(b"ab\n\ncdef\nlast", 8, step);
            assert_eq!(
                got,
                vec![
                    (ReadLine::Line, b"ab".to_vec()),
                    (ReadLine::Line, b"".to_vec()),
                    (ReadLine::Line, b"cdef".to_vec()),
                    (ReadLine::Line, b"last".to_vec()),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_line_over_the_limit_is_discarded_as_it_is_read() {
        for step in [1, 5, 16, 1000] {
            let mut data = b"12345678\n".to_vec();
            data.extend(std::iter::repeat_n(b'x', 10_000));
            data.extend(b"\nok\n123456789");
            let got = read_all(&data, 8, step);
            assert_eq!(
                got,
                vec![
                    (ReadLine::Line, b"12345678".to_vec()),
                    (ReadLine::TooLong(10_000), Vec::new()),
                    (ReadLine::Line, b"ok".to_vec()),
                    (ReadLine::TooLong(9), Vec::new()),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn receipts_are_the_bytes_serde_json_writes() {
        use crate::sink::Receipt;
        // Every byte a custom format's hash could hold around the ones JSON must escape.
        let odd = [
            "a\"b\\",
            "\u{0}",
            "\u{1f}",
            " ",
            "\u{7f}",
            "é😀",
            "tab\there",
            "ok/1.2",
        ];
        let hashes = [Some("ab".repeat(32)), None]
            .into_iter()
            .chain(odd.iter().map(|h| Some(h.to_string())));
        for hash in hashes {
            let r = Receipt {
                seq: 17,
                hash: hash.clone(),
            };
            let mut got = Vec::new();
            super::write_receipt(&mut got, 3, &r);
            let mut want =
                serde_json::to_vec(&serde_json::json!({"line": 3, "seq": 17, "hash": hash}))
                    .unwrap();
            want.push(b'\n');
            assert_eq!(String::from_utf8(got), String::from_utf8(want));
        }
    }

    #[test]
    fn invalid_events_say_what_is_expected() {
        let e = parse_line(r#"{"payload": {}}"#).unwrap_err();
        assert!(e.contains("event_type"), "{e}");
        let e = parse_line(r#"{"event_type": "t", "extra": 1}"#).unwrap_err();
        assert!(e.contains("extra"), "{e}");
        assert!(parse_line(r#"{"event_type": "t"}"#).is_ok());
    }

    #[test]
    fn the_payload_reaches_the_sink_as_sent_and_must_be_an_object() {
        // Passed through as text (the sink canonicalizes it): number forms
        // and escapes are the sink's to judge, as the log must show them.
        let text = r#"{"b": 1.50, "a": "\u00e9", "n": {"x": [1e2]}}"#;
        let line = format!(r#"{{"event_type": "t", "payload": {text}}}"#);
        assert_eq!(parse_line(&line).unwrap().payload, text);
        for (payload, kind) in [
            ("[1, 2]", "an array"),
            (r#""x""#, "a string"),
            ("3", "a number"),
            ("true", "a boolean"),
        ] {
            let e =
                parse_line(&format!(r#"{{"event_type": "t", "payload": {payload}}}"#)).unwrap_err();
            assert!(
                e.contains(&format!("`payload` must be a JSON object, not {kind}")),
                "{e}"
            );
        }
        for absent in [
            r#"{"event_type": "t"}"#,
            r#"{"event_type": "t", "payload": null}"#,
        ] {
            assert_eq!(parse_line(absent).unwrap().payload, "{}");
        }
        // Not JSON at all is still refused here, before the sink.
        assert!(parse_line(r#"{"event_type": "t", "payload": {"v": NaN}}"#).is_err());
    }
}
