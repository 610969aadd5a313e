//! What a sink instance may touch, one module per capability.
//!
//! Each capability keeps its own context in the store
//! (`crate::store::SinkState`) and implements its WIT `Host` trait on that
//! context alone (wasmtime-wasi's pattern), so the code for one interface
//! cannot reach another's state:
//!
//! - [`log_file`]: append to and read the one log file ([`LogFile`]);
//! - [`diagnostics`]: escaped, rate-limited lines for the operator;
//! - [`digest`]: SHA-256 computed natively, bounded per call (WIT 0.2),
//!   over the sink's memory in place (linked by hand: it keeps no state);
//! - `wasi`: an empty WASI for wasip2 components (frozen clock,
//!   deterministic random, no files, env, network or sleep).
//!
//! The linker serves every WIT version this host loads (see
//! [`crate::runtime::world`]): each capability implements each version's
//! `Host` trait over the same context.

pub mod diagnostics;
pub mod digest;
pub mod log_file;
pub(crate) mod wasi;

pub use log_file::{CapabilityError, LockWait, LogFile};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{v0_1, v0_2};
use crate::store::SinkState;

impl v0_1::chainsink::audit::types::Host for SinkState {}
impl v0_2::chainsink::audit::types::Host for SinkState {}

/// Adds chainsink's capabilities to `linker`: its interfaces of every WIT
/// version, each on its own context. The empty WASI is added apart
/// ([`wasi::add_to_linker`]), only for components that import it.
pub(crate) fn add_to_linker(linker: &mut Linker<SinkState>) -> wasmtime::Result<()> {
    {
        use v0_1::chainsink::audit as v;
        v::types::add_to_linker::<SinkState, HasSelf<SinkState>>(linker, |s| s)?;
        v::log_file::add_to_linker::<SinkState, HasSelf<log_file::LogFileCtx>>(linker, |s| {
            &mut s.log_file
        })?;
        v::diagnostics::add_to_linker::<SinkState, HasSelf<diagnostics::DiagnosticsCtx>>(
            linker,
            |s| &mut s.diagnostics,
        )?;
    }
    {
        use v0_2::chainsink::audit as v;
        v::types::add_to_linker::<SinkState, HasSelf<SinkState>>(linker, |s| s)?;
        v::log_file::add_to_linker::<SinkState, HasSelf<log_file::LogFileCtx>>(linker, |s| {
            &mut s.log_file
        })?;
        digest::add_to_linker(linker)?;
        v::diagnostics::add_to_linker::<SinkState, HasSelf<diagnostics::DiagnosticsCtx>>(
            linker,
            |s| &mut s.diagnostics,
        )?;
    }
    Ok(())
}
