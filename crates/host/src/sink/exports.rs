//! A sink's exports, whichever WIT version it was built against.
//!
//! [`AuditSinkPre`] finds, before any instance exists, which version's
//! `sink` a component exports (and, for 0.2, whether it exports a
//! `verifier` and a `packed-batch`); [`SinkExports`] calls them. The host works in the current
//! version's types ([`wit`]): a 0.1 sink's are converted here, field by
//! field (moved, not copied), and its missing `describe` is answered by the
//! host ([`SinkExports::describe`] returns `None`: the caller synthesises
//! `telemachy-json`).

use wasmtime::AsContextMut;
use wasmtime::component::InstancePre;

use crate::bindings::{v0_1, v0_2, wit};
use crate::runtime::world::{
    PACKED_INTERFACE, REQUIRED_INTERFACE, VERIFIER_INTERFACE, WIT_PACKAGE, WitVersion,
};

use v0_1::exports::chainsink::audit::sink as sink_v0_1;
use v0_2::exports::chainsink::audit::packed_batch as packed_v0_2;
use v0_2::exports::chainsink::audit::sink as sink_v0_2;
use v0_2::exports::chainsink::audit::verifier as verifier_v0_2;

/// Where a component's exports are, found once per component.
#[derive(Clone)]
enum Indices {
    V0_1(sink_v0_1::GuestIndices),
    V0_2 {
        sink: sink_v0_2::GuestIndices,
        verifier: Option<verifier_v0_2::GuestIndices>,
        packed: Option<packed_v0_2::GuestIndices>,
    },
}

/// A component ready to instantiate, with the version of the contract it
/// exports.
pub(crate) struct AuditSinkPre<T: 'static> {
    pre: InstancePre<T>,
    indices: Indices,
}

impl<T: 'static> Clone for AuditSinkPre<T> {
    fn clone(&self) -> Self {
        AuditSinkPre {
            pre: self.pre.clone(),
            indices: self.indices.clone(),
        }
    }
}

/// The WIT version of the `sink` a component exports, by name.
fn exported_version<T>(pre: &InstancePre<T>) -> wasmtime::Result<WitVersion> {
    let component = pre.component();
    let ty = component.component_type();
    let engine = component.engine();
    let prefix = format!("{WIT_PACKAGE}/{REQUIRED_INTERFACE}@");
    ty.exports(engine)
        .find_map(|(name, _)| name.strip_prefix(&prefix).and_then(WitVersion::of))
        .ok_or_else(|| wasmtime::format_err!("it exports no `{prefix}VERSION` this host loads"))
}

impl<T: 'static> AuditSinkPre<T> {
    /// Finds the exports of the version `pre`'s component was built against.
    pub(crate) fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
        let indices = match exported_version(&pre)? {
            WitVersion::V0_1 => Indices::V0_1(sink_v0_1::GuestIndices::new(&pre)?),
            WitVersion::V0_2 => {
                let exports = |interface: &str| {
                    pre.component()
                        .component_type()
                        .exports(pre.component().engine())
                        .any(|(name, _)| {
                            name.strip_prefix(&format!("{WIT_PACKAGE}/{interface}@"))
                                .and_then(WitVersion::of)
                                == Some(WitVersion::V0_2)
                        })
                };
                Indices::V0_2 {
                    sink: sink_v0_2::GuestIndices::new(&pre)?,
                    // Exported, they must have the right functions.
                    verifier: match exports(VERIFIER_INTERFACE) {
                        true => Some(verifier_v0_2::GuestIndices::new(&pre)?),
                        false => None,
                    },
                    packed: match exports(PACKED_INTERFACE) {
                        true => Some(packed_v0_2::GuestIndices::new(&pre)?),
                        false => None,
                    },
                }
            }
        };
        Ok(AuditSinkPre { pre, indices })
    }

    /// The pre-instantiated component.
    pub(crate) fn instance_pre(&self) -> &InstancePre<T> {
        &self.pre
    }

    /// Whether it exports a `verifier`.
    pub(crate) fn has_verifier(&self) -> bool {
        matches!(
            self.indices,
            Indices::V0_2 {
                verifier: Some(_),
                ..
            }
        )
    }

    /// Whether it exports a `packed-batch`.
    pub(crate) fn has_packed(&self) -> bool {
        matches!(
            self.indices,
            Indices::V0_2 {
                packed: Some(_),
                ..
            }
        )
    }

    /// A new instance in `store`, and its exports.
    pub(crate) fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
    ) -> wasmtime::Result<SinkExports> {
        let instance = self.pre.instantiate(&mut store)?;
        Ok(match &self.indices {
            Indices::V0_1(sink) => SinkExports::V0_1(sink.load(&mut store, &instance)?),
            Indices::V0_2 {
                sink,
                verifier,
                packed,
            } => SinkExports::V0_2 {
                sink: sink.load(&mut store, &instance)?,
                verifier: match verifier {
                    Some(v) => Some(v.load(&mut store, &instance)?),
                    None => None,
                },
                packed: match packed {
                    Some(p) => Some(p.load(&mut store, &instance)?),
                    None => None,
                },
            },
        })
    }
}

/// One instance's exports.
pub(crate) enum SinkExports {
    /// A 0.1 sink.
    V0_1(sink_v0_1::Guest),
    /// A 0.2 sink, maybe with a verifier.
    V0_2 {
        /// Its `sink`.
        sink: sink_v0_2::Guest,
        /// Its `verifier`, if it exports one.
        verifier: Option<verifier_v0_2::Guest>,
        /// Its `packed-batch`, if it exports one.
        packed: Option<packed_v0_2::Guest>,
    },
}

/// The result of a sink call, in the current version's types.
pub(crate) type Call<R> = wasmtime::Result<Result<R, wit::SinkError>>;

impl SinkExports {
    /// `describe`; `None` for a 0.1 sink, which has none.
    pub(crate) fn describe(
        &self,
        store: impl AsContextMut,
    ) -> wasmtime::Result<Option<wit::SinkInfo>> {
        match self {
            SinkExports::V0_1(_) => Ok(None),
            SinkExports::V0_2 { sink, .. } => sink.call_describe(store).map(Some),
        }
    }

    /// `verifier.verify`; `None` when it exports no verifier.
    pub(crate) fn verify(
        &self,
        store: impl AsContextMut,
    ) -> wasmtime::Result<Option<Result<wit::VerifyReport, wit::VerifyFailure>>> {
        match self {
            SinkExports::V0_2 {
                verifier: Some(v), ..
            } => v.call_verify(store).map(Some),
            _ => Ok(None),
        }
    }

    /// `open`.
    pub(crate) fn open(
        &self,
        store: impl AsContextMut,
        options: wit::Options,
    ) -> Call<wit::ChainHead> {
        match self {
            SinkExports::V0_1(s) => Ok(s
                .call_open(store, options_v0_1(options))?
                .map(head_v0_2)
                .map_err(error_v0_2)),
            SinkExports::V0_2 { sink, .. } => sink.call_open(store, options),
        }
    }

    /// `emit`.
    pub(crate) fn emit(&self, store: impl AsContextMut, event: wit::Event) -> Call<wit::Receipt> {
        match self {
            SinkExports::V0_1(s) => Ok(s
                .call_emit(store, &event_v0_1(event))?
                .map(receipt_v0_2)
                .map_err(error_v0_2)),
            SinkExports::V0_2 { sink, .. } => sink.call_emit(store, &event),
        }
    }

    /// `emit-batch`.
    pub(crate) fn emit_batch(
        &self,
        store: impl AsContextMut,
        events: &[wit::Event],
    ) -> Call<Vec<wit::Receipt>> {
        match self {
            SinkExports::V0_1(s) => {
                let events: Vec<_> = events.iter().cloned().map(event_v0_1).collect();
                Ok(s.call_emit_batch(store, &events)?
                    .map(|r| r.into_iter().map(receipt_v0_2).collect())
                    .map_err(error_v0_2))
            }
            SinkExports::V0_2 { sink, .. } => sink.call_emit_batch(store, events),
        }
    }

    /// `packed-batch.emit-packed`; `None` when it exports no `packed-batch`
    /// (call `emit-batch` instead).
    pub(crate) fn emit_packed(
        &self,
        store: impl AsContextMut,
        events: &[u8],
    ) -> wasmtime::Result<Option<Result<Vec<u8>, wit::SinkError>>> {
        match self {
            SinkExports::V0_2 {
                packed: Some(p), ..
            } => p.call_emit_packed(store, events).map(Some),
            _ => Ok(None),
        }
    }

    /// `flush`.
    pub(crate) fn flush(&self, store: impl AsContextMut) -> Call<()> {
        match self {
            SinkExports::V0_1(s) => Ok(s.call_flush(store)?.map_err(error_v0_2)),
            SinkExports::V0_2 { sink, .. } => sink.call_flush(store),
        }
    }

    /// `head`.
    pub(crate) fn head(&self, store: impl AsContextMut) -> Call<wit::ChainHead> {
        match self {
            SinkExports::V0_1(s) => Ok(s.call_head(store)?.map(head_v0_2).map_err(error_v0_2)),
            SinkExports::V0_2 { sink, .. } => sink.call_head(store),
        }
    }

    /// `close`.
    pub(crate) fn close(&self, store: impl AsContextMut) -> Call<wit::ChainHead> {
        match self {
            SinkExports::V0_1(s) => Ok(s.call_close(store)?.map(head_v0_2).map_err(error_v0_2)),
            SinkExports::V0_2 { sink, .. } => sink.call_close(store),
        }
    }
}

use v0_1::chainsink::audit::types as old;

fn options_v0_1(o: wit::Options) -> old::Options {
    old::Options {
        hash_chain: o.hash_chain,
        durability: match o.durability {
            wit::Durability::Always => old::Durability::Always,
            wit::Durability::Batch => old::Durability::Batch,
            wit::Durability::None => old::Durability::None,
        },
    }
}

fn event_v0_1(e: wit::Event) -> old::Event {
    old::Event {
        timestamp: e.timestamp,
        event_type: e.event_type,
        workflow_id: e.workflow_id,
        actor: old::Actor {
            host_id: e.actor.host_id,
            user: e.actor.user,
        },
        payload: e.payload,
    }
}

fn head_v0_2(h: old::ChainHead) -> wit::ChainHead {
    wit::ChainHead {
        records: h.records,
        hash: h.hash,
        bytes: h.bytes,
    }
}

fn receipt_v0_2(r: old::Receipt) -> wit::Receipt {
    wit::Receipt {
        seq: r.seq,
        hash: r.hash,
    }
}

fn error_v0_2(e: old::SinkError) -> wit::SinkError {
    match e {
        old::SinkError::InvalidEvent(m) => wit::SinkError::InvalidEvent(m),
        old::SinkError::CorruptLog(m) => wit::SinkError::CorruptLog(m),
        old::SinkError::Io(m) => wit::SinkError::Io(m),
        old::SinkError::NotOpen => wit::SinkError::NotOpen,
    }
}
