//! `chainsink verify --sink SINK.wasm LOG`: a sink checks its own log.
//!
//! A sink that writes a custom record format (`describe` says
//! `custom(...)`) is the only one that knows its rules, so it may export a
//! `verifier` (WIT 0.2, world `verifying-sink`). [`verify_with_sink`] runs
//! it in the same sandbox as any sink call, on a fresh instance:
//!
//! - the log is opened **read-only** ([`LogFile::open_read_only`]): the
//!   sink's `append` and `sync` return an error and nothing reaches the
//!   file (the descriptor cannot write either), and no writer's lock is
//!   taken;
//! - `verify` runs once, with a deadline suited to reading the whole log
//!   ([`verify_timeout`]): the sink's call timeout, at least
//!   [`VERIFY_BASE_TIMEOUT`], plus one second for every
//!   [`VERIFY_BYTES_PER_SECOND`] bytes of log. Host time spent reading the
//!   log is credited back, as for every call. The memory, table, instance
//!   and fuel limits are the sink's usual ones.
//!
//! [`describe`] runs only `describe`, on an empty in-memory log, for
//! `chainsink inspect`.
//!
//! This module is apart from [`crate::verify`] (the native verifier of
//! `telemachy-json` logs); [`foreign_first_line`] is how the native side
//! tells a log that is not `telemachy-json` at all.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use crate::bindings::AuditSinkPre;
use crate::capability::{CapabilityError, LogFile};
use crate::runtime::world::WitVersion;
use crate::runtime::{EPOCH_TICK, SinkComponent, SinkRuntime};
use crate::sink::SinkInfo;
use crate::sink::exports::SinkExports;
use crate::store::SinkState;

/// The least time `verify` gets, however small the log.
pub const VERIFY_BASE_TIMEOUT: Duration = Duration::from_secs(10);

/// The slowest a verifier may read and check the log: one more second of
/// deadline per this many bytes (8 MiB). An in-wasm SHA-256 alone runs at
/// well over 100 MiB/s, so an honest verifier stays far inside it.
pub const VERIFY_BYTES_PER_SECOND: u64 = 8 << 20;

/// The deadline of `verify` over a log of `size` bytes, for a sink whose
/// call timeout is `call_timeout`.
pub fn verify_timeout(call_timeout: Duration, size: u64) -> Duration {
    call_timeout.max(VERIFY_BASE_TIMEOUT)
        + Duration::from_secs(size.div_ceil(VERIFY_BYTES_PER_SECOND))
}

/// A log that passed the sink's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkVerifyReport {
    /// Records (lines) in the log.
    pub records: u64,
    /// The last record's hash, as the format spells it.
    pub head: Option<String>,
    /// Bytes checked.
    pub bytes: u64,
}

/// Where the sink found its log bad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkVerifyFailure {
    /// The 1-based line of the first bad record.
    pub line: u64,
    /// Its byte offset.
    pub offset: u64,
    /// What is wrong, as the sink says (escaped to one line).
    pub reason: String,
}

/// What `verify --sink` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkVerified {
    /// What the sink is.
    pub info: SinkInfo,
    /// Its verdict.
    pub outcome: Result<SinkVerifyReport, SinkVerifyFailure>,
}

/// Why the sink could not check the log.
#[derive(Debug, thiserror::Error)]
pub enum SinkVerifyError {
    /// The log could not be opened for reading.
    #[error(transparent)]
    Open(#[from] CapabilityError),
    /// The sink does not export a verifier.
    #[error(
        "sink {sink} exports no verifier (it writes {format}{}); {}",
        if *wit == WitVersion::V0_1 { ", as a WIT 0.1 sink" } else { "" },
        if format.starts_with("custom(") {
            "rebuild it with world `verifying-sink` (wit/audit.wit) to check its logs"
        } else {
            "a telemachy-json log is checked natively: run `chainsink verify LOG`"
        }
    )]
    NoVerifier {
        /// The sink.
        sink: String,
        /// The format it says it writes.
        format: String,
        /// Its WIT version.
        wit: WitVersion,
    },
    /// The sink could not be instantiated, trapped, or broke the contract.
    #[error("sink {sink} failed in `{call}`: {reason}")]
    Sink {
        /// The sink.
        sink: String,
        /// The call: `instantiate`, `describe` or `verify`.
        call: &'static str,
        /// Why.
        reason: String,
    },
}

/// A fresh instance of `component` on `log`, with `limits`' deadline of
/// `timeout`, and its exports.
fn instantiate(
    runtime: &SinkRuntime,
    component: &SinkComponent,
    log: LogFile,
    timeout: Duration,
) -> Result<(Store<SinkState>, SinkExports, AuditSinkPre<SinkState>), SinkVerifyError> {
    let failed = |call, e: wasmtime::Error| SinkVerifyError::Sink {
        sink: component.name().into(),
        call,
        reason: crate::sink::describe_trap(&e),
    };
    let compiled = component.component();
    let engine = compiled.engine();
    // Pre-instantiated when it was loaded, with its runtime's linker.
    let pre = component.pre().clone();
    let mut limits = runtime.limits().clone();
    limits.call_timeout = timeout;
    let state = SinkState::new(
        Arc::new(log),
        component.name().into(),
        limits.clone(),
        false,
    );
    let ticks = state.limiter.deadline_ticks(EPOCH_TICK);
    let mut store = crate::store::new_store(engine, state, EPOCH_TICK);
    store.set_epoch_deadline(ticks);
    if store.get_fuel().is_ok() {
        // The runtime meters fuel: the sink's budget, or no limit.
        store.set_fuel(limits.fuel.unwrap_or(u64::MAX)).ok();
    }
    store.data_mut().start_call();
    let exports = pre
        .instantiate(&mut store)
        .map_err(|e| failed("instantiate", e))?;
    Ok((store, exports, pre))
}

/// What `component` says it is (`describe`, run on an empty in-memory log),
/// or what the host takes a 0.1 sink to be.
pub fn describe(
    runtime: &SinkRuntime,
    component: &SinkComponent,
) -> Result<SinkInfo, SinkVerifyError> {
    let log = LogFile::empty().map_err(|e| SinkVerifyError::Sink {
        sink: component.name().into(),
        call: "describe",
        reason: format!("cannot make an empty log to describe it in: {e}"),
    })?;
    let timeout = runtime.limits().call_timeout;
    let (mut store, exports, pre) = instantiate(runtime, component, log, timeout)?;
    info(&mut store, &exports, &pre, component)
}

fn info(
    store: &mut Store<SinkState>,
    exports: &SinkExports,
    pre: &AuditSinkPre<SinkState>,
    component: &SinkComponent,
) -> Result<SinkInfo, SinkVerifyError> {
    let failed = |reason| SinkVerifyError::Sink {
        sink: component.name().into(),
        call: "describe",
        reason,
    };
    match exports.describe(&mut *store) {
        Ok(None) => Ok(SinkInfo::synthesised(component.name())),
        Ok(Some(info)) => SinkInfo::from_wit(info, pre.has_verifier()).map_err(failed),
        Err(e) => Err(failed(crate::sink::describe_trap(&e))),
    }
}

/// Runs `component`'s verifier over the log at `path`, read-only (see the
/// [module docs](self)).
pub fn verify_with_sink(
    runtime: &SinkRuntime,
    component: &SinkComponent,
    path: &Path,
) -> Result<SinkVerified, SinkVerifyError> {
    let log = LogFile::open_read_only(path)?;
    let size = log.size().map_err(|error| CapabilityError::Open {
        path: path.into(),
        error,
    })?;
    let timeout = verify_timeout(runtime.limits().call_timeout, size);
    let (mut store, exports, pre) = instantiate(runtime, component, log, timeout)?;
    let info = info(&mut store, &exports, &pre, component)?;
    store.data_mut().start_call();
    let verdict = exports.verify(&mut store).map_err(|e| {
        let mut reason = crate::sink::describe_trap(&e);
        if let Some(msg) = store.data_mut().diagnostics.last_error.take() {
            reason.push_str(&format!(" ({msg})"));
        }
        SinkVerifyError::Sink {
            sink: component.name().into(),
            call: "verify",
            reason,
        }
    })?;
    let Some(verdict) = verdict else {
        return Err(SinkVerifyError::NoVerifier {
            sink: component.name().into(),
            format: info.format.to_string(),
            wit: info.wit,
        });
    };
    let outcome = verdict
        .map(|r| SinkVerifyReport {
            records: r.records,
            head: r.head.map(|h| crate::capability::diagnostics::escape(&h)),
            bytes: r.bytes,
        })
        .map_err(|f| SinkVerifyFailure {
            line: f.line,
            offset: f.offset,
            reason: crate::capability::diagnostics::escape(&f.reason),
        });
    Ok(SinkVerified { info, outcome })
}

/// Whether the log at `path` starts with a line that is not a JSON record
/// at all (it does not start with `{`): a log in some sink's own format,
/// which only `chainsink verify --sink` can check. False for an empty or
/// unreadable log, and for a JSON line (a changed telemachy record is
/// tampering, not another format).
pub fn foreign_first_line(path: &Path) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut first)) {
        Ok(1) => first[0] != b'{',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_log() {
        let base = Duration::from_secs(1);
        assert_eq!(verify_timeout(base, 0), VERIFY_BASE_TIMEOUT);
        assert_eq!(
            verify_timeout(base, 1 << 30),
            VERIFY_BASE_TIMEOUT + Duration::from_secs(128)
        );
        assert_eq!(
            verify_timeout(Duration::from_secs(60), 1),
            Duration::from_secs(61)
        );
    }

    #[test]
    fn a_log_in_another_format_is_told_apart_from_json() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("a.tsv");
        std::fs::write(&tsv, b"1\t2026\tx\n").unwrap();
        assert!(foreign_first_line(&tsv));
        let json = dir.path().join("a.jsonl");
        std::fs::write(&json, b"{\"actor\": 1}\n").unwrap();
        assert!(!foreign_first_line(&json));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(!foreign_first_line(&empty));
        assert!(!foreign_first_line(&dir.path().join("missing")));
    }
}
