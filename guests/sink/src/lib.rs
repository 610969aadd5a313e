//! The default chainsink sink, built as a wasm component.
//!
//! It is `chainsink-sdk` with nothing added (it only says that it keeps the
//! default `transform`, `TRANSFORMS = false`): the SDK's [`ChainWriter`]
//! (canonical JSON records, the SHA-256 hash chain, resume from the log's
//! tail, torn-write recovery, receipts, durability), the one copy every
//! Rust sink shares, with every format rule from `chainsink-format`, and
//! the SDK's default verifier. So the default sink is built exactly as a
//! user's sink is, on the current WIT world (`verifying-sink`, 0.2).
//!
//! Records are hashed by the host's `digest.sha256` import (SHA-NI where
//! the CPU has it): SHA-256 compiled to wasm was the largest single cost of
//! an emit (issue 15). The sink still decides what is hashed and how
//! records link; the host only computes the digest it is asked for.
//!
//! [`ChainWriter`]: chainsink_sdk::writer::ChainWriter

use chainsink_sdk::{ChainHead, Level, Sink};

/// The default sink: the SDK's chain writer, no transform.
#[derive(Default)]
pub struct DefaultSink;

impl Sink for DefaultSink {
    // It keeps the default `transform`: events from `emit-packed` are sealed
    // as they come, with no `Event` built for each.
    const TRANSFORMS: bool = false;

    fn opened(&mut self, head: &ChainHead) {
        chainsink_sdk::log(
            Level::Info,
            &format!(
                "opened log: {} records, {} bytes, head {}",
                head.records,
                head.bytes,
                head.hash.as_deref().unwrap_or("(chain off)")
            ),
        );
    }
}

chainsink_sdk::export_sink!(DefaultSink);
