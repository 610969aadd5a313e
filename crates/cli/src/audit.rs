//! The executor's audit trail, over a sink.
//!
//! [`SinkAudit`] hands the executor's events to a live [`Sink`]. Under
//! fail-open, when the sink's instance traps or breaks the contract, it
//! replaces the instance with a fresh one on the same log (which resumes the
//! chain from the tail), writes an `audit.sink_restarted` record saying why
//! and which events were lost, retries the event, and goes on; after
//! [`MAX_RESTARTS`] restarts it stays degraded. [`Unaudited`]
//! stands in when no log is configured (the caller says so on stderr), and
//! [`BrokenAudit`] when the sink could not be built under fail-open: every
//! emit fails, so the executor reports auditing as degraded, loudly.

use std::sync::Mutex;

use chainsink_executor::{AuditError, AuditReceipt, AuditSink};
use serde_json::{Map, Value, json};

use chainsink_host::{Event, Receipt, Sink, SinkError};

/// Most times one run replaces a failed sink instance before it stays
/// degraded (a sink that fails on every event must not loop).
pub const MAX_RESTARTS: u32 = 3;

/// The event type of the record a restarted sink writes first.
pub const RESTARTED_EVENT: &str = "audit.sink_restarted";

/// Records executor events through a sink instance.
pub struct SinkAudit<'a> {
    sink: &'a Sink,
    /// Whether to replace a failed instance and go on (fail-open).
    restart: bool,
    state: Mutex<Restarts>,
}

/// Restarts so far, and the events lost since the last record.
#[derive(Default)]
struct Restarts {
    done: u32,
    lost: Vec<String>,
}

impl<'a> SinkAudit<'a> {
    /// Audits into `sink`; with `restart` (fail-open), replaces an instance
    /// that traps or breaks the contract, up to [`MAX_RESTARTS`] times.
    pub fn new(sink: &'a Sink, restart: bool) -> Self {
        SinkAudit {
            sink,
            restart,
            state: Mutex::new(Restarts::default()),
        }
    }

    /// After `failed` ended the instance: replace it, record the gap, and
    /// retry `event`.
    fn restart_and_retry(&self, event: &Event, failed: &SinkError) -> Result<Receipt, String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have restarted the sink while this one waited.
        match self.sink.emit(event) {
            Ok(receipt) => return Ok(receipt),
            Err(e) if !e.instance_gone() => {
                state.lost.push(event.event_type.clone());
                return Err(format!("{failed}; then: {e}"));
            }
            Err(_) => {}
        }
        if state.done >= MAX_RESTARTS {
            state.lost.push(event.event_type.clone());
            return Err(format!(
                "{failed}; the sink was already restarted {MAX_RESTARTS} times in this run, so \
                 auditing stays degraded"
            ));
        }
        state.done += 1;
        let n = state.done;
        if let Err(e) = self.sink.reopen() {
            state.lost.push(event.event_type.clone());
            return Err(format!("{failed}; restarting the sink failed too: {e}"));
        }
        eprintln!(
            "chainsink: AUDITING DEGRADED: {failed}; restarted sink {} on the same log \
             (restart {n} of at most {MAX_RESTARTS}) and retrying the event",
            self.sink.name()
        );
        let lost = std::mem::take(&mut state.lost);
        let payload = json!({
            "reason": failed.to_string(),
            "restart": n,
            "lost_events": lost.len(),
            "lost_event_types": lost,
        });
        let gap = Event {
            event_type: RESTARTED_EVENT.into(),
            payload: payload.to_string(),
            ..Event::default()
        };
        if let Err(e) = self.sink.emit(&gap) {
            state.lost.extend(lost);
            state.lost.push(event.event_type.clone());
            return Err(format!("{failed}; the restarted sink failed too: {e}"));
        }
        self.sink.emit(event).map_err(|e| {
            state.lost.push(event.event_type.clone());
            format!("{failed}; the restarted sink failed on it too: {e}")
        })
    }
}

impl AuditSink for SinkAudit<'_> {
    fn emit(
        &self,
        event_type: &str,
        workflow_id: Option<&str>,
        payload: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        // Canonical already, so the sink copies it rather than encoding it.
        let payload = Value::Object(payload);
        let payload = chainsink_format::json::to_canonical(&payload)
            .or_else(|_| serde_json::to_string(&payload))
            .map_err(|e| AuditError::new(format!("encoding the payload of {event_type}: {e}")))?;
        let event = Event {
            event_type: event_type.to_string(),
            workflow_id: workflow_id.map(str::to_string),
            payload,
            ..Event::default()
        };
        let receipt = match self.sink.emit(&event) {
            Ok(receipt) => receipt,
            Err(e) if self.restart && e.instance_gone() => self
                .restart_and_retry(&event, &e)
                .map_err(AuditError::new)?,
            Err(e) => {
                if self.restart {
                    let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    state.lost.push(event.event_type.clone());
                }
                return Err(AuditError::new(e.to_string()));
            }
        };
        Ok(AuditReceipt {
            seq: receipt.seq,
            hash: receipt.hash,
        })
    }
}

/// No audit log configured: accepts every event and records nothing.
pub struct Unaudited;

impl AuditSink for Unaudited {
    fn emit(
        &self,
        _: &str,
        _: Option<&str>,
        _: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        Ok(AuditReceipt { seq: 0, hash: None })
    }
}

/// The sink could not be built: every emit fails with the reason.
pub struct BrokenAudit {
    /// Why the sink is missing.
    pub reason: String,
}

impl AuditSink for BrokenAudit {
    fn emit(
        &self,
        _: &str,
        _: Option<&str>,
        _: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        Err(AuditError::new(self.reason.clone()))
    }
}
