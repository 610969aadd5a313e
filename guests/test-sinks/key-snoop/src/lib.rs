//! A hostile test sink built for wasm32-wasip2: it hunts for the host's
//! signing key.
//!
//! A sink that could sign checkpoints could forge them, so the host keeps
//! the key (`--signing-key`, `AUDIT_SIGNING_KEY`) to itself. This sink is an
//! honest chain writer that, on `open` and on every `emit`, dumps everything
//! it can reach: every environment variable with its value, its arguments,
//! the preopened directories (`/`, `.`) and each file in them, every path
//! the event's payload lists under `"probe"`, and the whole log as the
//! `log-file` capability returns it. It sends all of it through
//! `diagnostics` (level warn, prefixed `key-snoop:`) and writes it into the
//! record's payload under `"reached"`, so a test can search the log and the
//! host's output for the key's secret: it must appear nowhere.

use std::cell::Cell;

use chainsink_test_sink_common::Chain;
use chainsink_test_sink_common::chainsink::audit::diagnostics::{self, Level};
use chainsink_test_sink_common::chainsink::audit::log_file;
use chainsink_test_sink_common::chainsink::audit::types::{
    ChainHead, Event, Options, Receipt, SinkError,
};
use chainsink_test_sink_common::exports::chainsink::audit::sink::Guest;
use serde_json::{Map, Value};

struct Component;

thread_local! {
    static CHAIN: Cell<Chain> = Cell::new(Chain::default());
}

/// Everything reachable, as (what, what it gave) pairs.
fn dump(probes: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let vars: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    found.push((
        "environment".into(),
        format!("{} variables: {}", vars.len(), vars.join(" ")),
    ));
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    found.push(("arguments".into(), args.join(" ")));
    let mut paths: Vec<String> = probes.to_vec();
    for dir in ["/", "."] {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.path().to_string_lossy().into_owned())
                    .collect();
                found.push((
                    format!("list {dir}"),
                    format!("ALLOWED: {}", names.join(" ")),
                ));
                paths.extend(names);
            }
            Err(e) => found.push((format!("list {dir}"), format!("denied: {e}"))),
        }
    }
    for path in paths {
        let got = match std::fs::read(&path) {
            Ok(bytes) => format!("ALLOWED: {}", String::from_utf8_lossy(&bytes)),
            Err(e) => format!("denied: {e}"),
        };
        found.push((format!("read {path}"), got));
    }
    let log = log_file::size()
        .and_then(|size| log_file::read(0, u32::try_from(size).unwrap_or(u32::MAX)));
    found.push((
        "log".into(),
        match log {
            Ok(bytes) => format!("{} bytes: {}", bytes.len(), String::from_utf8_lossy(&bytes)),
            Err(e) => format!("denied: {e}"),
        },
    ));
    for (what, got) in &found {
        diagnostics::log(Level::Warn, &format!("key-snoop: {what}: {got}"));
    }
    found
}

fn head() -> Result<ChainHead, SinkError> {
    let chain = CHAIN.get();
    Ok(ChainHead {
        records: chain.records,
        hash: Some(chain.prev.to_hex()),
        bytes: log_file::size().map_err(SinkError::Io)?,
    })
}

fn write(event: &Event) -> Result<Receipt, SinkError> {
    let mut payload: Map<String, Value> = serde_json::from_str(&event.payload)
        .map_err(|e| SinkError::InvalidEvent(format!("payload: {e}")))?;
    let probes: Vec<String> = payload
        .get("probe")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let reached: Map<String, Value> = dump(&probes)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    payload.insert("reached".into(), Value::Object(reached));
    let event = Event {
        payload: Value::Object(payload).to_string(),
        ..event.clone()
    };
    let mut chain = CHAIN.get();
    let mut buf = Vec::new();
    let (receipt, hash) = chain.seal(&event, &mut buf)?;
    log_file::append(&buf).map_err(SinkError::Io)?;
    chain.commit(hash);
    CHAIN.set(chain);
    Ok(receipt)
}

impl Guest for Component {
    fn describe() -> chainsink_test_sink_common::chainsink::audit::types::SinkInfo {
        chainsink_test_sink_common::describe("key-snoop")
    }

    fn open(_: Options) -> Result<ChainHead, SinkError> {
        dump(&[]);
        CHAIN.set(Chain::resume()?);
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
