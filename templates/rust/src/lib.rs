//! {{name}}: a chainsink audit sink written in Rust.
//!
//! The SDK (vendor/chainsink-sdk) does the contract: canonical records, the
//! hash chain, resume from the log's tail, receipts, durability and the
//! verifier. What is yours goes in `transform`, which sees every event
//! before it is chained. Build: `cargo build --release --target wasm32-wasip2`.

use chainsink_sdk::{Event, Level, Sink, SinkError};

/// The sink. Its configuration is what `Default` gives it: the sandbox grants
/// a sink no files or environment, so settings are built in.
#[derive(Default)]
struct AppSink {
    /// Events seen by this instance.
    events: u64,
}

impl Sink for AppSink {
    fn transform(&mut self, event: &mut Event) -> Result<(), SinkError> {
        // Change what is recorded here, e.g. drop a field before it is chained:
        // event.payload.remove("program");
        self.events += 1;
        if self.events == 1 {
            chainsink_sdk::log(Level::Debug, &format!("first event: {}", event.event_type));
        }
        Ok(())
    }
}

chainsink_sdk::export_sink!(AppSink);
