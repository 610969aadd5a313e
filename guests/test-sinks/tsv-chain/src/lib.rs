//! A test sink with a custom record format, `tsv-chain/1`, and a verifier.
//!
//! Each record is one line of nine tab-separated fields:
//!
//! ```text
//! seq  timestamp  event-type  workflow-id  host-id  user  payload  prev  hash
//! ```
//!
//! Text fields are escaped (`\\`, `\t`, `\n`, `\r`; an absent workflow id is
//! `-`, a present one starts with `=`), so a record is always one line.
//! `seq` is the line number. `hash` is the SHA-256, in lowercase hex, of
//! the line's first eight fields joined by tabs (so it covers `prev`, the
//! previous record's hash, 64 zeros for the first); both are `-` when the
//! chain is off. Hashes come from the host's `digest` import.
//!
//! `verifier.verify` reads the whole log and checks every line: its fields,
//! its `seq`, its link and its hash.

use std::cell::RefCell;

use chainsink_format::json::parse_object;
#[cfg(not(feature = "wasm-sha256"))]
use chainsink_test_sink_common::chainsink::audit::digest;
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, RecordFormat, SinkError, SinkInfo, VerifyFailure,
    VerifyReport,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;
use chainsink_test_sink_common::exports::chainsink::audit::verifier::Guest as Verifier;
use chainsink_test_sink_common::{durability_syncs, fold_lines};

/// The format's name, as `describe` gives it.
pub const FORMAT: &str = "tsv-chain/1";

/// The hash before the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Fields on a line.
const FIELDS: usize = 9;

struct Component;

/// Where the log stands for this instance.
struct State {
    options: Options,
    /// Lines in the log.
    records: u64,
    /// The last record's hash (hex), or GENESIS.
    prev: String,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// `text` with `\`, tab, newline and CR escaped.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// SHA-256 of `data` in lowercase hex, computed by the host.
#[cfg(not(feature = "wasm-sha256"))]
fn sha256_hex(data: &[u8]) -> Result<String, String> {
    let digest: [u8; 32] = digest::sha256(data)?
        .try_into()
        .map_err(|_| "digest.sha256 did not return 32 bytes".to_string())?;
    Ok(chainsink_format::Hash(digest).to_hex())
}

/// SHA-256 of `data` in lowercase hex, computed in wasm (the
/// `tsv-chain-wasm-sha` build of this file).
#[cfg(feature = "wasm-sha256")]
fn sha256_hex(data: &[u8]) -> Result<String, String> {
    use sha2::Digest;
    Ok(chainsink_format::Hash(sha2::Sha256::digest(data).into()).to_hex())
}

/// The line for `event` as record `seq` after `prev` (None: chain off),
/// and its hash.
fn line(
    event: &Event,
    seq: u64,
    prev: Option<&str>,
) -> Result<(String, Option<String>), SinkError> {
    parse_object(&event.payload).map_err(|e| SinkError::InvalidEvent(format!("payload: {e}")))?;
    let mut body = format!("{seq}\t");
    escape(&event.timestamp, &mut body);
    body.push('\t');
    escape(&event.event_type, &mut body);
    body.push('\t');
    match &event.workflow_id {
        Some(w) => {
            body.push('=');
            escape(w, &mut body);
        }
        None => body.push('-'),
    }
    body.push('\t');
    escape(&event.actor.host_id, &mut body);
    body.push('\t');
    escape(&event.actor.user, &mut body);
    body.push('\t');
    escape(&event.payload, &mut body);
    body.push('\t');
    let hash = match prev {
        Some(prev) => {
            body.push_str(prev);
            let hash = sha256_hex(body.as_bytes()).map_err(SinkError::InvalidEvent)?;
            body.push('\t');
            body.push_str(&hash);
            Some(hash)
        }
        None => {
            body.push_str("-\t-");
            None
        }
    };
    body.push('\n');
    Ok((body, hash))
}

/// Appends `events` as records in one write; all or nothing.
fn write(events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
    STATE.with_borrow_mut(|state| {
        let state = state.as_mut().ok_or(SinkError::NotOpen)?;
        let mut out = String::new();
        let mut receipts = Vec::with_capacity(events.len());
        let mut prev = state.prev.clone();
        let mut seq = state.records;
        for (i, event) in events.iter().enumerate() {
            seq += 1;
            let chain = state.options.hash_chain.then_some(prev.as_str());
            let (text, hash) = line(event, seq, chain).map_err(|e| match e {
                SinkError::InvalidEvent(m) if events.len() > 1 => {
                    SinkError::InvalidEvent(format!("event {i}: {m}"))
                }
                e => e,
            })?;
            out.push_str(&text);
            if let Some(h) = &hash {
                prev = h.clone();
            }
            receipts.push(Receipt { seq, hash });
        }
        if !out.is_empty() {
            log_file::append(out.as_bytes()).map_err(SinkError::Io)?;
            if durability_syncs(state.options.durability) {
                log_file::sync().map_err(SinkError::Io)?;
            }
        }
        state.records = seq;
        state.prev = prev;
        Ok(receipts)
    })
}

fn head() -> Result<ChainHead, SinkError> {
    STATE.with_borrow(|state| {
        let state = state.as_ref().ok_or(SinkError::NotOpen)?;
        Ok(ChainHead {
            records: state.records,
            hash: state.options.hash_chain.then(|| state.prev.clone()),
            bytes: log_file::size().map_err(SinkError::Io)?,
        })
    })
}

/// The fields of one line, or why it is not a `tsv-chain/1` record.
fn fields(line: &[u8]) -> Result<Vec<&str>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_string())?;
    let fields: Vec<&str> = text.split('\t').collect();
    if fields.len() != FIELDS {
        return Err(format!(
            "the line has {} tab-separated fields, not {FIELDS}",
            fields.len()
        ));
    }
    Ok(fields)
}

/// Resumes from the log's last line: its seq and hash.
fn resume() -> Result<(u64, String), SinkError> {
    let (_, tail) = log_file::read_tail(2 << 20).map_err(SinkError::Io)?;
    if tail.is_empty() {
        return Ok((0, GENESIS.into()));
    }
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err(SinkError::CorruptLog(
            "the log ends in a partial line (no newline): check it with `chainsink verify --sink`"
                .into(),
        ));
    };
    let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
    let f = fields(last).map_err(|e| SinkError::CorruptLog(format!("the last line: {e}")))?;
    let seq = f[0].parse().map_err(|_| {
        SinkError::CorruptLog(format!("the last line's seq {:?} is not a number", f[0]))
    })?;
    let hash = if f[8] == "-" { GENESIS } else { f[8] };
    Ok((seq, hash.to_string()))
}

impl Guest for Component {
    fn describe() -> SinkInfo {
        SinkInfo {
            name: "tsv-chain".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            format: RecordFormat::Custom(FORMAT.into()),
        }
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        let (records, prev) = resume()?;
        STATE.set(Some(State {
            options,
            records,
            prev,
        }));
        head()
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        Ok(write(std::slice::from_ref(&event))?.remove(0))
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        write(&events)
    }

    fn flush() -> Result<(), SinkError> {
        STATE.with_borrow(|s| s.as_ref().map(|_| ()).ok_or(SinkError::NotOpen))?;
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        head()
    }

    fn close() -> Result<ChainHead, SinkError> {
        let head = head()?;
        log_file::sync().map_err(SinkError::Io)?;
        STATE.set(None);
        Ok(head)
    }
}

impl Verifier for Component {
    fn verify() -> Result<VerifyReport, VerifyFailure> {
        let mut prev: Option<String> = None;
        let mut chained = None;
        let (records, bytes) = fold_lines(1 << 20, |number, _, line| {
            let f = fields(line)?;
            if f[0] != number.to_string() {
                return Err(format!("seq is {:?}, but this is line {number}", f[0]));
            }
            let is_chained = f[8] != "-";
            if *chained.get_or_insert(is_chained) != is_chained {
                return Err("the chain is on for some records and off for others".into());
            }
            if !is_chained {
                return match f[7] {
                    "-" => Ok(()),
                    p => Err(format!("prev is {p:?} although the record has no hash")),
                };
            }
            let expected = prev.as_deref().unwrap_or(GENESIS);
            if f[7] != expected {
                return Err(format!(
                    "prev is {}, but the record before it has hash {expected}",
                    f[7]
                ));
            }
            let cut = line.len() - f[8].len() - 1;
            let hash = sha256_hex(&line[..cut])?;
            if f[8] != hash {
                return Err(format!(
                    "hash is {}, but the record's fields hash to {hash}: the line was changed",
                    f[8]
                ));
            }
            prev = Some(hash);
            Ok(())
        })?;
        Ok(VerifyReport {
            records,
            head: prev,
            bytes,
        })
    }
}

chainsink_test_sink_common::export_sink!(Component);
