//! Helpers shared by the executor tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chainsink_executor::audit::{AuditError, AuditReceipt, AuditSink, MemorySink, RecordedEvent};
use chainsink_executor::{RunOptions, Workflow};
use serde_json::{Map, Value};

/// Parse a workflow or panic with the errors.
pub fn wf(yaml: &str) -> Workflow {
    Workflow::from_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("invalid test workflow:\n{e}"))
}

/// A fresh, empty directory for one test, removed when dropped.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty directory for one test.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "chainsink-executor-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Options for tests: quick grace, given parallelism.
pub fn opts(max_parallel: usize) -> RunOptions {
    RunOptions {
        max_parallel,
        grace: std::time::Duration::from_millis(500),
        ..RunOptions::default()
    }
}

/// Event types, in order.
pub fn types(events: &[RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// A payload field as a string (panics if absent or not a string).
pub fn s<'a>(e: &'a RecordedEvent, key: &str) -> &'a str {
    e.payload
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{} has no string {key}: {:?}", e.event_type, e.payload))
}

/// Index of the first event of `event_type` whose `task_subject` is `subject`.
pub fn find(events: &[RecordedEvent], event_type: &str, subject: &str) -> usize {
    events
        .iter()
        .position(|e| {
            e.event_type == event_type
                && e.payload.get("task_subject").and_then(Value::as_str) == Some(subject)
        })
        .unwrap_or_else(|| panic!("no {event_type} for {subject:?} in {:?}", types(events)))
}

/// Terminal task event types.
pub const TERMINAL: [&str; 3] = ["task.completed", "task.failed", "task.skipped"];

/// A sink that fails the emits `fail` selects (given event type and the
/// 1-based attempt number) and records the rest.
pub struct FlakySink<F: Fn(&str, u64) -> bool + Send + Sync> {
    pub inner: MemorySink,
    pub attempts: Mutex<u64>,
    pub fail: F,
}

impl<F: Fn(&str, u64) -> bool + Send + Sync> FlakySink<F> {
    pub fn new(fail: F) -> Self {
        FlakySink {
            inner: MemorySink::new(),
            attempts: Mutex::new(0),
            fail,
        }
    }
}

impl<F: Fn(&str, u64) -> bool + Send + Sync> AuditSink for FlakySink<F> {
    fn emit(
        &self,
        event_type: &str,
        workflow_id: Option<&str>,
        payload: Map<String, Value>,
    ) -> Result<AuditReceipt, AuditError> {
        let n = {
            let mut a = self.attempts.lock().unwrap();
            *a += 1;
            *a
        };
        if (self.fail)(event_type, n) {
            return Err(AuditError::new("sink unavailable: disk full"));
        }
        self.inner.emit(event_type, workflow_id, payload)
    }
}
