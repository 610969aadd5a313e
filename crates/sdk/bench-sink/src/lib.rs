//! A sink for one measurement: SHA-256 computed in the sink (`sha2`, as
//! `chainsink-format` hashes records) against the host's `digest.sha256`
//! import. Each event's type picks the method and its payload says how
//! many hashes (`rounds`) of how many bytes (`bytes`) to compute before the
//! event is recorded; `run.sh` times a batch of such events per method.

use chainsink_format::Hash;
use chainsink_sdk::bindings::chainsink::audit::digest;
use chainsink_sdk::{Event, Sink, SinkError, Value};

/// The sink: no state.
#[derive(Default)]
struct Bench;

impl Sink for Bench {
    fn transform(&mut self, event: &mut Event) -> Result<(), SinkError> {
        let number = |key: &str| event.payload.get(key).and_then(Value::as_u64).unwrap_or(0);
        let rounds = number("rounds");
        let mut data = vec![b'a'; usize::try_from(number("bytes")).unwrap_or(0)];
        let mut acc = 0u8;
        for i in 0..rounds {
            // A different message each round, so no hash can be reused.
            if let Some(first) = data.first_mut() {
                *first = i as u8;
            }
            acc ^= match event.event_type.as_str() {
                "bench.wasm" => Hash::of(&data).0[0],
                "bench.host" => digest::sha256(&data).map_err(SinkError::Io)?[0],
                _ => 0,
            };
        }
        event.payload.insert("acc".into(), Value::from(acc));
        Ok(())
    }
}

chainsink_sdk::export_sink!(Bench);
