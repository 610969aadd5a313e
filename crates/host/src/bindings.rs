//! Host bindings generated from `wit/`, one module per WIT version this host
//! loads:
//!
//! - [`v0_1`]: the frozen 0.1.0 contract (`wit/since_v0.1.0/`, world
//!   `audit-sink`);
//! - [`v0_2`]: the current contract (`wit/audit.wit`, world `packed-sink`,
//!   which includes `verifying-sink` and so `audit-sink`; a sink's
//!   `verifier` and `packed-batch` exports are optional and looked up on
//!   their own).
//!
//! The host works in the current version's types ([`wit`]); the 0.1 ones
//! are converted at the edge (`crate::sink::exports`).

/// The frozen 0.1.0 bindings.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        world: "audit-sink",
        path: "../../wit/since_v0.1.0",
        // An append past the call's byte budget or deadline traps the sink at
        // that append (see `capability::log_file`).
        imports: { "chainsink:audit/log-file.append": trappable },
    });
}

/// The current (0.2) bindings.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        world: "packed-sink",
        path: "../../wit",
        // As in 0.1: an append past the call's budget traps the sink.
        imports: { "chainsink:audit/log-file.append": trappable },
    });
}

/// The current version's data types, the ones the host works in.
pub(crate) use v0_2::chainsink::audit::types as wit;

/// A component ready to instantiate, whichever version it exports.
pub(crate) use crate::sink::exports::AuditSinkPre;
