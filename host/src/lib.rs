//! chainsink: a workflow executor whose audit trail is a sandboxed plugin.
//!
//! The audit sink is a wasm component implementing the WIT world
//! `chainsink:audit/audit-sink` (`wit/audit.wit`). This crate hosts it:
//!
//! - [`loader`]: one [`SinkRuntime`] (engine, linker, limits) per process;
//!   a [`SinkComponent`] per component; the embedded default sink.
//! - [`capability`]: the one thing a sink may touch, its [`LogFile`].
//! - [`sink`]: a live, thread-safe [`Sink`] instance.
//! - [`limits`]: memory, time and fuel per instance.
//! - [`verify`]: the native verifier, over the same format crate the sink uses.
//! - [`stream`]: the `emit --stdin` JSON-lines protocol.
//! - [`tenants`]: many independent sinks (component, log, limits, chain
//!   each) in one runtime.
//! - [`cache`]: compiled components cached on disk, checked before use.
//! - [`guard`]: the host's check that receipts match the appended bytes.
//! - [`inspect`]: what a component imports and exports, and whether it fits.
//!
//! ```no_run
//! use chainsink::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};
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

pub mod audit;
mod bindings;
pub mod cache;
pub mod capability;
pub mod config;
pub mod durability;
pub mod guard;
pub mod inspect;
pub mod limits;
pub mod loader;
pub mod sink;
pub mod stream;
pub mod tenants;
pub mod timestamp;
pub mod verify;

pub use capability::{CapabilityError, LogFile};
pub use limits::SinkLimits;
pub use loader::{
    Allocator, AppendChecks, LoadError, Origin, RuntimeConfig, SinkComponent, SinkRuntime,
};
pub use sink::{Actor, Durability, Event, Head, Receipt, Sink, SinkError, SinkOptions};

/// Paths of the guest components built by `build.rs` (for tests and tools).
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
