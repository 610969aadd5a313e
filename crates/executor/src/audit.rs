//! Where audit events go, and what happens when recording one fails.
//!
//! # Policy
//!
//! * [`AuditPolicy::FailClosed`] (the default): the first failed emit stops
//!   the workflow: no further task is started, running tasks are terminated,
//!   and the run ends with [`Outcome::AuditFailed`](crate::Outcome::AuditFailed)
//!   (exit code 3), whatever else happened. The remaining events (task ends,
//!   `workflow.failed`, teardown) are still offered to the sink, best effort,
//!   so a sink that recovers records why the run stopped. It is the default
//!   because an audit trail that silently has gaps is worse than a stopped
//!   run: work that cannot be recorded is not done.
//! * [`AuditPolicy::FailOpen`]: the workflow carries on. Each distinct failure
//!   message is printed once on stderr as
//!   `chainsink: AUDITING DEGRADED: ...`, the report is marked
//!   `audit_degraded` (the summary shows a banner) and the exit code stays that
//!   of the run's outcome.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Where audit events go. Implemented by the host over the wasm sink; tests
/// use an in-memory one.
pub trait AuditSink: Send + Sync {
    /// Record one event. `Err` = the sink failed (the policy decides what happens).
    fn emit(
        &self,
        event_type: &str,
        workflow_id: Option<&str>,
        payload: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError>;
}

/// What the sink says about a recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReceipt {
    /// Sequence number of the record in the log.
    pub seq: u64,
    /// Hash of the record (the chain head after it), if the sink chains.
    pub hash: Option<String>,
}

/// The sink failed to record an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuditError {
    /// What went wrong.
    pub message: String,
}

impl AuditError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        AuditError {
            message: message.into(),
        }
    }
}

/// What to do when the sink fails (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditPolicy {
    /// Stop the workflow; outcome `AuditFailed`, exit code 3.
    #[default]
    FailClosed,
    /// Continue, warn on stderr, mark the report degraded.
    FailOpen,
}

impl AuditPolicy {
    /// The command-line spelling (`fail-closed` / `fail-open`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditPolicy::FailClosed => "fail-closed",
            AuditPolicy::FailOpen => "fail-open",
        }
    }
}

impl fmt::Display for AuditPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unrecognised audit policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit policy \"{0}\"; use \"fail-closed\" or \"fail-open\"")]
pub struct ParsePolicyError(pub String);

impl FromStr for AuditPolicy {
    type Err = ParsePolicyError;

    /// Parse `fail-closed` or `fail-open`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail-closed" => Ok(AuditPolicy::FailClosed),
            "fail-open" => Ok(AuditPolicy::FailOpen),
            other => Err(ParsePolicyError(other.to_string())),
        }
    }
}

/// One event as recorded by [`MemorySink`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The event type, e.g. `task.completed`.
    pub event_type: String,
    /// The record's workflow id.
    pub workflow_id: Option<String>,
    /// The event payload.
    pub payload: Map<String, Value>,
}

/// An in-memory sink, for tests and previews. Receipts count from 1 and carry no hash.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<RecordedEvent>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything recorded so far, in order.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The event types recorded so far, in order.
    pub fn event_types(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.event_type).collect()
    }
}

impl AuditSink for MemorySink {
    fn emit(
        &self,
        event_type: &str,
        workflow_id: Option<&str>,
        payload: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.push(RecordedEvent {
            event_type: event_type.to_string(),
            workflow_id: workflow_id.map(str::to_string),
            payload,
        });
        Ok(AuditReceipt {
            seq: events.len() as u64,
            hash: None,
        })
    }
}

/// Applies the policy around a sink for one run.
pub(crate) struct Auditor<'a> {
    sink: &'a dyn AuditSink,
    policy: AuditPolicy,
    workflow_id: String,
    /// Distinct failure messages, in order of first occurrence.
    pub errors: Vec<String>,
    seen: HashSet<String>,
    /// Number of events the sink failed to record.
    pub lost: u64,
    /// Receipt of the last event recorded.
    pub last_receipt: Option<AuditReceipt>,
}

impl<'a> Auditor<'a> {
    pub(crate) fn new(sink: &'a dyn AuditSink, policy: AuditPolicy, workflow_id: &str) -> Self {
        Auditor {
            sink,
            policy,
            workflow_id: workflow_id.to_string(),
            errors: Vec::new(),
            seen: HashSet::new(),
            lost: 0,
            last_receipt: None,
        }
    }

    /// Offer one event; `false` if the sink failed to record it.
    pub(crate) fn emit(&mut self, event_type: &str, payload: Map<String, Value>) -> bool {
        match self.sink.emit(event_type, Some(&self.workflow_id), payload) {
            Ok(r) => {
                self.last_receipt = Some(r);
                true
            }
            Err(e) => {
                self.lost += 1;
                if self.seen.insert(e.message.clone()) {
                    if self.policy == AuditPolicy::FailOpen {
                        eprintln!(
                            "chainsink: AUDITING DEGRADED: the audit sink failed to record \
                             {event_type}: {}; continuing because the policy is fail-open",
                            e.message
                        );
                    }
                    self.errors.push(e.message);
                }
                false
            }
        }
    }

    /// Whether any event was lost.
    pub(crate) fn any_lost(&self) -> bool {
        self.lost > 0
    }

    /// The policy in force.
    pub(crate) fn policy(&self) -> AuditPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky;
    impl AuditSink for Flaky {
        fn emit(
            &self,
            event_type: &str,
            _: Option<&str>,
            _: Map<String, Value>,
        ) -> Result<AuditReceipt, AuditError> {
            if event_type.starts_with("bad") {
                Err(AuditError::new(format!("disk full ({})", &event_type[..4])))
            } else {
                Ok(AuditReceipt { seq: 7, hash: None })
            }
        }
    }

    #[test]
    fn policy_parses_and_prints() {
        assert_eq!("fail-closed".parse(), Ok(AuditPolicy::FailClosed));
        assert_eq!("fail-open".parse(), Ok(AuditPolicy::FailOpen));
        let e = "open".parse::<AuditPolicy>().unwrap_err();
        assert!(e.to_string().contains("\"fail-closed\" or \"fail-open\""));
        assert_eq!(AuditPolicy::default(), AuditPolicy::FailClosed);
        assert_eq!(AuditPolicy::FailOpen.to_string(), "fail-open");
    }

    #[test]
    fn auditor_counts_losses_and_dedupes_kinds() {
        let sink = Flaky;
        let mut a = Auditor::new(&sink, AuditPolicy::FailOpen, "w1");
        assert!(a.emit("ok.one", Map::new()));
        assert!(!a.emit("bad.one", Map::new()));
        assert!(!a.emit("bad.one", Map::new()));
        assert!(!a.emit("bad2", Map::new()));
        assert_eq!(a.lost, 3);
        assert_eq!(a.errors, vec!["disk full (bad.)", "disk full (bad2)"]);
        assert_eq!(a.last_receipt, Some(AuditReceipt { seq: 7, hash: None }));
    }

    #[test]
    fn memory_sink_records_in_order() {
        let s = MemorySink::new();
        let r = s.emit("a", Some("w"), Map::new()).unwrap();
        let r2 = s.emit("b", None, Map::new()).unwrap();
        assert_eq!((r.seq, r2.seq), (1, 2));
        assert_eq!(s.event_types(), vec!["a", "b"]);
        assert_eq!(s.events()[0].workflow_id.as_deref(), Some("w"));
    }
}
