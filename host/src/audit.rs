//! The executor's audit trail, over a sink.
//!
//! [`SinkAudit`] hands the executor's events to a live [`Sink`]. [`Unaudited`]
//! stands in when no log is configured (the caller says so on stderr), and
//! [`BrokenAudit`] when the sink could not be built under fail-open: every
//! emit fails, so the executor reports auditing as degraded, loudly.

use chainsink_executor::{AuditError, AuditReceipt, AuditSink};
use serde_json::{Map, Value};

use crate::sink::{Event, Sink};

/// Records executor events through a sink instance.
pub struct SinkAudit<'a> {
    sink: &'a Sink,
}

impl<'a> SinkAudit<'a> {
    /// Audits into `sink`.
    pub fn new(sink: &'a Sink) -> Self {
        SinkAudit { sink }
    }
}

impl AuditSink for SinkAudit<'_> {
    fn emit(
        &self,
        event_type: &str,
        workflow_id: Option<&str>,
        payload: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        let payload = serde_json::to_string(&Value::Object(payload))
            .map_err(|e| AuditError::new(format!("encoding the payload of {event_type}: {e}")))?;
        let receipt = self
            .sink
            .emit(&Event {
                event_type: event_type.to_string(),
                workflow_id: workflow_id.map(str::to_string),
                payload,
                ..Event::default()
            })
            .map_err(|e| AuditError::new(e.to_string()))?;
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
