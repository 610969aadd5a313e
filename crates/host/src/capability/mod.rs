//! What a sink instance may touch, one module per capability.
//!
//! Each capability keeps its own context in the store
//! ([`crate::store::SinkState`]) and implements its WIT `Host` trait on that
//! context alone (wasmtime-wasi's pattern), so the code for one interface
//! cannot reach another's state:
//!
//! - [`log_file`]: append to and read the one log file ([`LogFile`]);
//! - [`diagnostics`]: escaped, rate-limited lines for the operator;
//! - [`wasi`]: an empty WASI for wasip2 components (frozen clock,
//!   deterministic random, no files, env, network or sleep).

pub mod diagnostics;
pub mod log_file;
pub(crate) mod wasi;

pub use log_file::{CapabilityError, LockWait, LogFile};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::chainsink::audit;
use crate::store::SinkState;

impl audit::types::Host for SinkState {}

/// Adds every capability to `linker`: chainsink's interfaces, each on its own
/// context, and the empty WASI.
pub(crate) fn add_to_linker(linker: &mut Linker<SinkState>) -> wasmtime::Result<()> {
    audit::types::add_to_linker::<SinkState, HasSelf<SinkState>>(linker, |s| s)?;
    audit::log_file::add_to_linker::<SinkState, HasSelf<log_file::LogFileCtx>>(linker, |s| {
        &mut s.log_file
    })?;
    audit::diagnostics::add_to_linker::<SinkState, HasSelf<diagnostics::DiagnosticsCtx>>(
        linker,
        |s| &mut s.diagnostics,
    )?;
    wasi::add_to_linker(linker)
}
