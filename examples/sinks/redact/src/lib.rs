//! A chainsink sink that removes configured payload keys before records are
//! chained, so secrets never reach the log. Everything else (canonical
//! records, the hash chain, resume, receipts, the verifier) is the SDK's.

use chainsink_sdk::{Event, Map, Sink, SinkError, Value};

/// The keys to remove, one a line (`#` starts a comment), read at build time.
const KEYS: &str = include_str!("../redact.txt");

/// The sink: the configured keys.
struct Redact {
    keys: Vec<&'static str>,
}

impl Default for Redact {
    fn default() -> Self {
        let keys = KEYS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Redact { keys }
    }
}

impl Sink for Redact {
    fn transform(&mut self, event: &mut Event) -> Result<(), SinkError> {
        let removed = self.redact(&mut event.payload);
        if removed > 0 {
            event
                .payload
                .insert("redacted".into(), Value::from(removed));
        }
        Ok(())
    }
}

impl Redact {
    /// Removes the keys from `object` and every object inside it; returns
    /// how many it removed.
    fn redact(&self, object: &mut Map<String, Value>) -> u64 {
        let before = object.len();
        object.retain(|key, _| !self.keys.contains(&key.as_str()));
        let mut removed = (before - object.len()) as u64;
        for value in object.values_mut() {
            removed += self.redact_value(value);
        }
        removed
    }

    fn redact_value(&self, value: &mut Value) -> u64 {
        match value {
            Value::Object(inner) => self.redact(inner),
            Value::Array(items) => items.iter_mut().map(|v| self.redact_value(v)).sum(),
            _ => 0,
        }
    }
}

chainsink_sdk::export_sink!(Redact);
