//! Write a chainsink audit sink in Rust, and keep only your own logic.
//!
//! A sink is a wasm component that implements the `packed-sink` world of
//! `wit/audit.wit` (the `chainsink:audit` WIT package: `verifying-sink`, and
//! `packed-batch`, the cheaper form of `emit-batch`). This crate does the
//! contract for you:
//!
//! - [`bindings`]: the world's bindings, generated once by `wit-bindgen`;
//! - [`writer::ChainWriter`]: turns events into canonical, hash-chained
//!   records (telemachy's JSON lines) with `chainsink-format` behind it:
//!   the canonical encoder, the chain rule and the torn-write rule are that
//!   crate's, never a copy. It resumes from the log's tail, returns one
//!   receipt per record, writes a batch all or nothing, and syncs as the
//!   durability option asks;
//! - [`verify::verify_log`]: the default `verifier` export, which checks a
//!   telemachy-json log through `log-file`;
//! - [`Sink`], the trait you implement, and [`export_sink!`], which exports
//!   your type as the component.
//!
//! A sink that only changes events before they are chained is a type with a
//! [`Sink::transform`]:
//!
//! ```ignore
//! #[derive(Default)]
//! struct Upper;
//!
//! impl chainsink_sdk::Sink for Upper {
//!     fn transform(&mut self, event: &mut chainsink_sdk::Event) -> Result<(), chainsink_sdk::SinkError> {
//!         event.event_type = event.event_type.to_uppercase();
//!         Ok(())
//!     }
//! }
//!
//! chainsink_sdk::export_sink!(Upper);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate
//! type is `cdylib`); the `.wasm` in `target/wasm32-wasip2/release/` is the
//! component. `docs/writing-a-sink.md` in the chainsink repository is the
//! guide. This crate is not on crates.io yet: `chainsink new-sink` vendors
//! it, pinned to the chainsink version that wrote the project.

use std::cell::RefCell;

pub use serde_json::{Map, Value};

/// The `packed-sink` world's bindings, generated from `wit/`.
///
/// Use them directly for what the SDK does not cover (for example a sink
/// that writes its own record format). The export macro is
/// [`export_sink!`]; the bindings' own is `__export_packed_sink`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "packed-sink",
        path: "../../wit",
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "__export_packed_sink",
        default_bindings_module: "chainsink_sdk::bindings",
    });
}

pub mod payload;
pub mod verify;
pub mod writer;

pub use payload::Payload;

#[cfg(test)]
mod mem_log;

pub use bindings::chainsink::audit::diagnostics::Level;
pub use bindings::chainsink::audit::types::{
    ChainHead, Durability, Options, Receipt, RecordFormat, SinkError, SinkInfo, VerifyFailure,
    VerifyReport,
};

#[cfg(feature = "host-digest")]
use bindings::chainsink::audit::digest;
use bindings::chainsink::audit::types::Event as WitEvent;
use bindings::chainsink::audit::{diagnostics, log_file};
#[cfg(feature = "host-digest")]
use chainsink_format::Hash;
use chainsink_format::packed;
use writer::{ChainWriter, LogIo};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The executor's host identity.
    pub host_id: String,
    /// The account the executor runs as.
    pub user: String,
}

/// One audit event, with its payload parsed: what [`Sink::transform`] sees
/// and may change before the event is sealed into a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// UTC, `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, stamped by the host.
    pub timestamp: String,
    /// What happened, dotted: `workflow.started`, `task.failed`.
    pub event_type: String,
    /// The workflow the event belongs to, if any.
    pub workflow_id: Option<String>,
    /// Who caused it.
    pub actor: Actor,
    /// The event's fields: one JSON object, used as a [`Map`]. It is parsed
    /// (by `chainsink-format`: numbers keep their exact text, NaN and
    /// Infinity are refused) only if the sink reads or changes it; one
    /// nobody changed is sealed from the text it came as.
    pub payload: Payload,
}

impl Event {
    /// The event as it came over WIT (its payload not parsed yet: a payload
    /// that is not a JSON object refuses the event when it is sealed).
    pub fn from_wit(event: WitEvent) -> Event {
        Event {
            timestamp: event.timestamp,
            event_type: event.event_type,
            workflow_id: event.workflow_id,
            actor: Actor {
                host_id: event.actor.host_id,
                user: event.actor.user,
            },
            payload: Payload::from_text(event.payload),
        }
    }
}

/// What a sink author writes: the hooks the SDK calls around its chain
/// writer. Every method has a default, so `impl Sink for T {}` is the
/// default sink.
///
/// The sandbox grants a sink no files, environment or clock, so
/// configuration is whatever the type holds when [`Default::default`] makes
/// it: constants, or a file the crate reads at build time
/// (`include_str!`).
pub trait Sink: Default + 'static {
    /// Whether [`Sink::transform`] is overridden. `false` lets the SDK seal
    /// the events of `emit-packed` straight from the bytes the host sent,
    /// without building an [`Event`] (six strings) for each, and skips
    /// `transform` there: set it only in a sink that keeps the default
    /// `transform`, as the default sink does.
    const TRANSFORMS: bool = true;

    /// Changes `event` before it is sealed: redact, rename, add fields.
    /// An error refuses the event (for `emit-batch`, the whole batch) and
    /// nothing is written; return `SinkError::InvalidEvent` with what is
    /// wrong.
    fn transform(&mut self, event: &mut Event) -> Result<(), SinkError> {
        let _ = event;
        Ok(())
    }

    /// Called once the log is open, with where it resumed: a good place
    /// for a diagnostic line ([`log`]).
    fn opened(&mut self, head: &ChainHead) {
        let _ = head;
    }
}

/// Writes one diagnostic line to the host (its stderr or tracing log; see
/// `CHAINSINK_LOG`). Never an audit record.
pub fn log(level: Level, message: &str) {
    diagnostics::log(level, message);
}

/// The WIT `log-file` and `diagnostics` imports, as the writer's [`LogIo`].
#[derive(Debug, Default, Clone, Copy)]
pub struct WitLog;

impl LogIo for WitLog {
    fn append(&mut self, data: &[u8]) -> Result<u64, String> {
        log_file::append(data)
    }
    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        log_file::read(offset, len)
    }
    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        log_file::read_tail(len)
    }
    fn size(&mut self) -> Result<u64, String> {
        log_file::size()
    }
    fn sync(&mut self) -> Result<(), String> {
        log_file::sync()
    }
    fn diagnose(&mut self, level: Level, message: &str) {
        diagnostics::log(level, message)
    }
    /// The host's `digest.sha256`: about 1 µs a record against about 3 µs
    /// for SHA-256 compiled to wasm (400-byte records; `bench-sink/run.sh`).
    /// Computed here if the host refuses (it hashes at most 1 MiB a call).
    /// Only with the `host-digest` feature (the default).
    #[cfg(feature = "host-digest")]
    fn sha256(&mut self, data: &[u8]) -> Hash {
        digest::sha256(data)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .map_or_else(|| Hash::of(data), Hash)
    }
}

/// One sink instance's state: the author's [`Sink`] and the open writer.
/// [`export_sink!`] keeps one per instance and forwards every export to it.
#[derive(Debug)]
pub struct Runtime<S> {
    sink: S,
    writer: Option<ChainWriter<WitLog>>,
}

impl<S: Sink> Default for Runtime<S> {
    fn default() -> Self {
        Runtime {
            sink: S::default(),
            writer: None,
        }
    }
}

impl<S: Sink> Runtime<S> {
    /// `sink.open`: installs a panic hook that reports panics through
    /// diagnostics, then opens the log and resumes its chain from the tail.
    pub fn open(&mut self, options: Options) -> Result<ChainHead, SinkError> {
        std::panic::set_hook(Box::new(|info| {
            diagnostics::log(Level::Error, &format!("sink panicked: {info}"));
        }));
        let writer = ChainWriter::open(WitLog, options)?;
        let head = writer.head();
        self.writer = Some(writer);
        self.sink.opened(&head);
        Ok(head)
    }

    /// `sink.emit`: one event, one record.
    pub fn emit(&mut self, event: WitEvent) -> Result<Receipt, SinkError> {
        let mut receipts = self.emit_batch(vec![event])?;
        Ok(receipts.remove(0))
    }

    /// `sink.emit-batch`: every event transformed, then all sealed and
    /// appended in one write, or none (the error names the event's index).
    pub fn emit_batch(&mut self, events: Vec<WitEvent>) -> Result<Vec<Receipt>, SinkError> {
        let writer = self.writer.as_mut().ok_or(SinkError::NotOpen)?;
        let batch = events.len() > 1;
        let label = |i: usize, msg: String| {
            if batch {
                format!("event {i} of the batch: {msg}")
            } else {
                msg
            }
        };
        let mut parsed = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let mut event = Event::from_wit(event);
            self.sink.transform(&mut event).map_err(|e| match e {
                SinkError::InvalidEvent(m) => SinkError::InvalidEvent(label(i, m)),
                other => other,
            })?;
            parsed.push(event);
        }
        writer.append(&parsed)
    }

    /// `packed-batch.emit-packed`: [`Runtime::emit_batch`] of the events
    /// packed in `events` (`chainsink_format::packed`), its receipts packed.
    /// Bytes that do not unpack are an `invalid-event`: nothing is written.
    pub fn emit_packed(&mut self, events: &[u8]) -> Result<Vec<u8>, SinkError> {
        let unpacked = packed::unpack_events(events);
        let mut out = Vec::new();
        if S::TRANSFORMS {
            let events = unpacked
                .map(|f| {
                    let f = f.map_err(|e| SinkError::InvalidEvent(e.to_string()))?;
                    Ok(WitEvent {
                        timestamp: f.timestamp.to_string(),
                        event_type: f.event_type.to_string(),
                        workflow_id: f.workflow_id.map(str::to_string),
                        actor: bindings::chainsink::audit::types::Actor {
                            host_id: f.host_id.to_string(),
                            user: f.user.to_string(),
                        },
                        payload: f.payload.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, SinkError>>()?;
            let receipts = self.emit_batch(events)?;
            out.reserve(receipts.len() * 77);
            for r in &receipts {
                packed::pack_receipt(&mut out, r.seq, r.hash.as_deref());
            }
        } else {
            let writer = self.writer.as_mut().ok_or(SinkError::NotOpen)?;
            let events = unpacked
                .map(|f| f.map(|f| f.event()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SinkError::InvalidEvent(e.to_string()))?;
            out.reserve(events.len() * 77);
            writer.append_formatted(&events, &mut out)?;
        }
        Ok(out)
    }

    /// `sink.flush`.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.as_mut().ok_or(SinkError::NotOpen)?.flush()
    }

    /// `sink.head`.
    pub fn head(&self) -> Result<ChainHead, SinkError> {
        Ok(self.writer.as_ref().ok_or(SinkError::NotOpen)?.head())
    }

    /// `sink.close`: flushes and forgets the writer; later calls fail with
    /// `not-open`.
    pub fn close(&mut self) -> Result<ChainHead, SinkError> {
        let mut writer = self.writer.take().ok_or(SinkError::NotOpen)?;
        writer.flush()?;
        Ok(writer.head())
    }
}

/// Runs `f` on the instance's runtime, kept in `cell`.
#[doc(hidden)]
pub fn with_runtime<S: Sink, R>(
    cell: &'static std::thread::LocalKey<RefCell<Option<Runtime<S>>>>,
    f: impl FnOnce(&mut Runtime<S>) -> R,
) -> R {
    cell.with_borrow_mut(|slot| f(slot.get_or_insert_with(Runtime::default)))
}

/// Exports a [`Sink`] type as the component's `sink` and `verifier`.
///
/// `describe` reports the crate's name and version (`CARGO_PKG_NAME`,
/// `CARGO_PKG_VERSION`) and the `telemachy-json` format; `verify` is
/// [`verify::verify_log`]. Use it once, in the crate's `lib.rs`, whose
/// crate type is `cdylib`.
#[macro_export]
macro_rules! export_sink {
    ($sink:ty) => {
        const _: () = {
            struct __ChainsinkSdkExport;

            ::std::thread_local! {
                static __CHAINSINK_SDK_RUNTIME: ::core::cell::RefCell<
                    ::core::option::Option<$crate::Runtime<$sink>>,
                > = const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            fn __run<R>(f: impl FnOnce(&mut $crate::Runtime<$sink>) -> R) -> R {
                $crate::with_runtime(&__CHAINSINK_SDK_RUNTIME, f)
            }

            impl $crate::bindings::exports::chainsink::audit::sink::Guest for __ChainsinkSdkExport {
                fn describe() -> $crate::SinkInfo {
                    $crate::SinkInfo {
                        name: ::std::string::String::from(env!("CARGO_PKG_NAME")),
                        version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
                        format: $crate::RecordFormat::TelemachyJson,
                    }
                }
                fn open(
                    options: $crate::Options,
                ) -> ::core::result::Result<$crate::ChainHead, $crate::SinkError> {
                    __run(|r| r.open(options))
                }
                fn emit(
                    event: $crate::bindings::chainsink::audit::types::Event,
                ) -> ::core::result::Result<$crate::Receipt, $crate::SinkError> {
                    __run(|r| r.emit(event))
                }
                fn emit_batch(
                    events: ::std::vec::Vec<$crate::bindings::chainsink::audit::types::Event>,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Receipt>, $crate::SinkError>
                {
                    __run(|r| r.emit_batch(events))
                }
                fn flush() -> ::core::result::Result<(), $crate::SinkError> {
                    __run(|r| r.flush())
                }
                fn head() -> ::core::result::Result<$crate::ChainHead, $crate::SinkError> {
                    __run(|r| r.head())
                }
                fn close() -> ::core::result::Result<$crate::ChainHead, $crate::SinkError> {
                    __run(|r| r.close())
                }
            }

            impl $crate::bindings::exports::chainsink::audit::verifier::Guest
                for __ChainsinkSdkExport
            {
                fn verify()
                -> ::core::result::Result<$crate::VerifyReport, $crate::VerifyFailure> {
                    $crate::verify::verify_log(&mut $crate::WitLog)
                }
            }

            impl $crate::bindings::exports::chainsink::audit::packed_batch::Guest
                for __ChainsinkSdkExport
            {
                fn emit_packed(
                    events: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::SinkError> {
                    __run(|r| r.emit_packed(&events))
                }
            }

            $crate::bindings::__export_packed_sink!(
                __ChainsinkSdkExport with_types_in $crate::bindings
            );
        };
    };
}
