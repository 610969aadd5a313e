//! The chainsink host: loads audit-sink components (wasm), confines each to
//! its one log file, and verifies logs. A library with no CLI in it; the
//! `chainsink` binary (crate `chainsink`) is a thin layer over it.
//!
//! The audit sink is a wasm component implementing the WIT world
//! `chainsink:audit/audit-sink` (`wit/audit.wit`). This crate hosts it:
//!
//! - [`runtime`]: one [`SinkRuntime`] (engine, linker, limits, cache) per
//!   process; a [`SinkComponent`] per component; the world check; the
//!   embedded default sink.
//! - `store` (private): what one instance's store holds.
//! - [`capability`]: what a sink may touch, one module each: its
//!   [`LogFile`], diagnostics, and an empty WASI.
//! - [`sink`]: a live, thread-safe [`Sink`] instance, the host's guard on
//!   what it appends, and group commit.
//! - [`verify`]: the native verifier, over the same format crate the sink uses.
//! - [`sink_verify`]: `verify --sink`, a sink's own verifier over its
//!   (custom-format) log, read-only, in its sandbox.
//! - [`stream`]: the `emit --stdin` JSON-lines protocol.
//! - [`tenants`]: many independent sinks (component, log, limits, chain
//!   each) in one runtime.
//! - [`trail`]: reading a log record by record, verified as it goes, with
//!   filters and follow (`chainsink show`, `tail`, `stats`).
//! - [`inspect`]: what a component imports and exports, and whether it fits.
//!
//! ```no_run
//! use chainsink_host::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};
//! # fn main() -> anyhow::Result<()> {
//! let runtime = SinkRuntime::new(SinkLimits::default())?;
//! let component = runtime.default_component()?;
//! let options = SinkOptions {
//!     hash_chain: true,
//!     durability: Durability::Always,
//!     actor: Actor { host_id: "build-1".into(), user: "alice".into() },
//! };
//! let sink = runtime.open(&component, LogFile::open("audit.jsonl".as_ref())?, &options)?;
//! let receipt = sink.emit(&Event {
//!     event_type: "deploy.started".into(),
//!     payload: r#"{"service": "api"}"#.into(),
//!     ..Event::default()
//! })?;
//! println!("record {} hash {:?}", receipt.seq, receipt.hash);
//! sink.close()?;
//! # Ok(()) }
//! ```

mod bindings;
pub mod capability;
pub mod inspect;
pub mod runtime;
pub mod sink;
pub mod sink_verify;
mod store;
pub mod stream;
pub mod tenants;
pub mod timestamp;
pub mod trail;
pub mod verify;

pub use capability::{CapabilityError, LockWait, LogFile};
pub use runtime::limits::SinkLimits;
pub use runtime::{
    Allocator, AppendChecks, LoadError, Origin, RuntimeConfig, SinkComponent, SinkRuntime,
};
pub use sink::{
    Actor, Durability, Event, Head, Receipt, RecordFormat, Sink, SinkError, SinkInfo, SinkOptions,
};
