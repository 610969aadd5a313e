//! A hostile test sink built for wasm32-wasip2: it snoops through WASI.
//!
//! It is an honest chain writer (records sealed with `chainsink-format`), but
//! on `open` and on every `emit` it also tries, with plain `std::fs` and
//! `std::env`, to read `/etc/passwd`, to list `/` and `.`, to create a file in
//! `/tmp`, to read the wall clock and random numbers (through std's hash-map
//! seed), to sleep for 30 s (which, allowed, would block the host thread out
//! of reach of the call deadline), and to read every path the event's
//! payload lists under `"probe"` (tests pass the log's own directory). It
//! reports each outcome through the `diagnostics` import (level warn,
//! prefixed `wasi-snoop:`) and records them in the record's payload under
//! `"sandbox_probes"`, so a test can read what the sandbox allowed from the
//! log itself.
//!
//! The host gives WASI components an empty context (no preopened
//! directories, no environment, no arguments, no sockets) and clocks that
//! never block: every probe must fail (and the sleep return at once), and
//! the record must say so.

use std::cell::RefCell;

use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json::parse_object;
use chainsink_format::record::{Actor, Event as FormatEvent};
use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;
use serde_json::{Map, Value};

struct Component;

struct Chain {
    prev: Hash,
    records: u64,
}

thread_local! {
    static CHAIN: RefCell<Chain> = const { RefCell::new(Chain { prev: Hash::GENESIS, records: 0 }) };
}

/// What one attempt to reach outside the sandbox gave.
fn outcome<T>(result: std::io::Result<T>, describe: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(v) => format!("ALLOWED: {}", describe(v)),
        Err(e) => format!("denied: {e}"),
    }
}

/// Runs every probe; returns (probe, outcome) pairs and reports each one.
fn snoop(extra: &[String]) -> Vec<(String, String)> {
    let mut found = vec![
        (
            "read /etc/passwd".to_string(),
            outcome(std::fs::read("/etc/passwd"), |b| {
                format!("{} bytes", b.len())
            }),
        ),
        (
            "list /".to_string(),
            outcome(std::fs::read_dir("/"), |d| format!("{} entries", d.count())),
        ),
        (
            "list .".to_string(),
            outcome(std::fs::read_dir("."), |d| format!("{} entries", d.count())),
        ),
        (
            "create /tmp/chainsink-wasi-snoop".to_string(),
            outcome(std::fs::write("/tmp/chainsink-wasi-snoop", b"x"), |()| {
                "file written".into()
            }),
        ),
        ("sleep 30 s".to_string(), {
            let start = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_secs(30));
            format!("returned after {} ms", start.elapsed().as_millis())
        }),
        ("wall clock".to_string(), {
            match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => format!("{} s after the Unix epoch", d.as_secs()),
                Err(_) => "before the Unix epoch".into(),
            }
        }),
        ("random".to_string(), {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(1);
            format!("hash seed gives {:016x}", h.finish())
        }),
        (
            "environment".to_string(),
            format!("{} variables", std::env::vars_os().count()),
        ),
        (
            "arguments".to_string(),
            format!("{} arguments", std::env::args_os().count()),
        ),
    ];
    for path in extra {
        found.push((
            format!("list {path}"),
            outcome(std::fs::read_dir(path), |d| {
                format!("{} entries", d.count())
            }),
        ));
        found.push((
            format!("read {path}"),
            outcome(std::fs::read(path), |b| format!("{} bytes", b.len())),
        ));
    }
    for (probe, result) in &found {
        diagnostics::log(Level::Warn, &format!("wasi-snoop: {probe}: {result}"));
    }
    found
}

fn write(event: &Event) -> Result<Receipt, SinkError> {
    let mut payload = parse_object(&event.payload)
        .map_err(|err| SinkError::InvalidEvent(format!("payload: {err}")))?;
    let extra: Vec<String> = payload
        .get("probe")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let probes: Map<String, Value> = snoop(&extra)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    payload.insert("sandbox_probes".into(), Value::Object(probes));
    CHAIN.with_borrow_mut(|chain| {
        let record = FormatEvent {
            timestamp: &event.timestamp,
            event_type: &event.event_type,
            workflow_id: event.workflow_id.as_deref(),
            actor: Actor {
                host_id: &event.actor.host_id,
                user: &event.actor.user,
            },
            payload: (&payload).into(),
        };
        let mut buf = Vec::new();
        let seq = chain.records + 1;
        let hash = seal(&record, seq, Some(&chain.prev), &mut buf)
            .map_err(|err| SinkError::InvalidEvent(err.to_string()))?
            .expect("the chain is on");
        log_file::append(&buf).map_err(SinkError::Io)?;
        chain.prev = hash;
        chain.records = seq;
        Ok(Receipt {
            seq,
            hash: Some(hash.to_hex()),
        })
    })
}

fn head() -> Result<ChainHead, SinkError> {
    let (records, prev) = CHAIN.with_borrow(|c| (c.records, c.prev));
    Ok(ChainHead {
        records,
        hash: Some(prev.to_hex()),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("wasi-snoop")
    }

    fn open(options: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        if !options.hash_chain {
            return Err(SinkError::InvalidEvent(
                "this test sink only writes chained logs".into(),
            ));
        }
        if log_file::size().map_err(SinkError::Io)? != 0 {
            return Err(SinkError::CorruptLog(
                "this test sink only writes new logs".into(),
            ));
        }
        snoop(&[]);
        head()
    }

    fn emit(event: Event) -> Result<Receipt, SinkError> {
        write(&event)
    }

    fn emit_batch(events: Vec<Event>) -> Result<Vec<Receipt>, SinkError> {
        events.iter().map(write).collect()
    }

    fn flush() -> Result<(), SinkError> {
        log_file::sync().map_err(SinkError::Io)
    }

    fn head() -> Result<ChainHead, SinkError> {
        head()
    }

    fn close() -> Result<ChainHead, SinkError> {
        head()
    }
}

chainsink_test_sink_common::telemachy_verifier!(Component);
chainsink_test_sink_common::export_sink!(Component);
