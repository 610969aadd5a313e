//! The `emit --stdin` protocol: events in as JSON lines, receipts out.
//!
//! Each input line is one JSON object:
//! `{"event_type": "task.completed", "workflow_id": "wf-1", "payload": {...}}`,
//! with optional `"timestamp"` (the log's form) and `"actor"`
//! (`{"host_id": .., "user": ..}`). For each line, once its record is written,
//! one output line: `{"line": 3, "seq": 17, "hash": "ab12.."}`; or, when the
//! line is refused, `{"line": 3, "error": "..."}` and nothing is written for
//! it. Lines that arrive together are written with one append.

use std::io::{BufRead, BufReader, Read, Write};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sink::{Actor, Event, Sink, SinkError};

/// Most events written with one append.
const MAX_BATCH: usize = 256;

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
    /// Reading input or writing receipts failed.
    #[error("stdin/stdout: {0}")]
    Io(#[from] std::io::Error),
    /// The sink failed in a way that stops the stream (not a bad line).
    #[error("{error} (after line {line}; lines from {line} on were not written)")]
    Sink {
        /// First line not written.
        line: u64,
        /// The sink's error.
        error: SinkError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputEvent {
    event_type: String,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
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

/// Reads events from `input` until it ends, writing receipts to `output`.
///
/// Bad lines are refused one by one and reported; the stream goes on. A sink
/// failure (I/O, trap) stops it: the error says which lines were not written.
pub fn emit_lines(
    sink: &Sink,
    input: &mut BufReader<impl Read>,
    mut output: impl Write,
) -> Result<StreamReport, StreamError> {
    let mut report = StreamReport::default();
    let mut line_no = 0u64;
    let mut text = String::new();
    let mut batch: Vec<(u64, Event)> = Vec::new();
    loop {
        text.clear();
        let n = input.read_line(&mut text)?;
        if n > 0 {
            line_no += 1;
            let trimmed = text.trim();
            if !trimmed.is_empty() {
                match parse_line(trimmed) {
                    Ok(event) => batch.push((line_no, event)),
                    Err(e) => {
                        report.refused += 1;
                        writeln!(output, "{}", json!({"line": line_no, "error": e}))?;
                    }
                }
            }
        }
        // Write when input pauses (nothing more buffered: never block for
        // more while a receipt is owed), at EOF, or when the batch is full.
        let pause = n == 0 || input.buffer().is_empty();
        if !batch.is_empty() && (pause || batch.len() >= MAX_BATCH) {
            write_batch(sink, &mut batch, &mut output, &mut report)?;
            output.flush()?;
        }
        if n == 0 {
            return Ok(report);
        }
    }
}

fn write_batch(
    sink: &Sink,
    batch: &mut Vec<(u64, Event)>,
    output: &mut impl Write,
    report: &mut StreamReport,
) -> Result<(), StreamError> {
    let events: Vec<Event> = batch.iter().map(|(_, e)| e.clone()).collect();
    match sink.emit_batch(&events) {
        Ok(receipts) => {
            for ((line, _), r) in batch.iter().zip(receipts) {
                writeln!(
                    output,
                    "{}",
                    json!({"line": line, "seq": r.seq, "hash": r.hash})
                )?;
            }
            report.written += batch.len() as u64;
        }
        // One bad event refuses the whole batch: write them one by one so
        // that only the bad ones are refused.
        Err(SinkError::InvalidEvent(_)) => {
            for (line, event) in batch.iter() {
                match sink.emit(event) {
                    Ok(r) => {
                        report.written += 1;
                        writeln!(
                            output,
                            "{}",
                            json!({"line": line, "seq": r.seq, "hash": r.hash})
                        )?;
                    }
                    Err(SinkError::InvalidEvent(m)) => {
                        report.refused += 1;
                        writeln!(output, "{}", json!({"line": line, "error": m}))?;
                    }
                    Err(error) => return Err(StreamError::Sink { line: *line, error }),
                }
            }
        }
        Err(error) => {
            return Err(StreamError::Sink {
                line: batch[0].0,
                error,
            });
        }
    }
    batch.clear();
    Ok(())
}

fn parse_line(text: &str) -> Result<Event, String> {
    let input: InputEvent = serde_json::from_str(text).map_err(|e| {
        format!(
            "{e}; expected {{\"event_type\": \"..\", \"workflow_id\": \"..\" or null, \"payload\": {{..}}}}"
        )
    })?;
    let payload = Value::Object(input.payload.unwrap_or_default());
    Ok(Event {
        event_type: input.event_type,
        workflow_id: input.workflow_id,
        payload: serde_json::to_string(&payload).map_err(|e| e.to_string())?,
        timestamp: input.timestamp,
        actor: input.actor.map(|a| Actor {
            host_id: a.host_id,
            user: a.user,
        }),
    })
}
