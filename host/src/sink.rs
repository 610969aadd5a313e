//! A running sink instance, safe to share between threads.
//!
//! Every call goes through one mutex, so many threads get one linear chain.
//! Timestamps are taken inside the lock, so they never run backwards along
//! the chain. A sink that traps is discarded (wasmtime poisons it) and every
//! later call reports the original trap.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::Store;

use crate::bindings::AuditSink as Bindings;
use crate::bindings::AuditSinkPre;
use crate::bindings::chainsink::audit::types as wit;
use crate::durability::GroupCommit;
use crate::loader::SinkState;
use crate::timestamp;

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The executor's host identity.
    pub host_id: String,
    /// The account it runs as.
    pub user: String,
}

/// When appended records must be durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync before every emit returns (the reference's behaviour).
    #[default]
    Always,
    /// Group commit: emitters share syncs (the sink itself does not sync).
    Batch,
    /// Sync only on flush and close.
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Durability::Always),
            "batch" => Ok(Durability::Batch),
            "none" => Ok(Durability::None),
            other => Err(format!(
                "unknown durability {other:?}: use always, batch or none"
            )),
        }
    }
}

/// How a sink is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// Link records with the SHA-256 chain.
    pub hash_chain: bool,
    /// When records must be durable.
    pub durability: Durability,
    /// The actor stamped on events that carry none.
    pub actor: Actor,
}

/// One event to record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// Dotted event type, such as `task.completed`.
    pub event_type: String,
    /// The workflow it belongs to.
    pub workflow_id: Option<String>,
    /// The event's fields: the text of one JSON object.
    pub payload: String,
    /// A fixed timestamp (`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`); now when None.
    pub timestamp: Option<String>,
    /// Overrides the sink's actor.
    pub actor: Option<Actor>,
}

/// Proof that a record was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The record's 1-based position in the log.
    pub seq: u64,
    /// The record's hash; None with the chain off.
    pub hash: Option<String>,
}

/// Where the log stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Records in the log.
    pub records: u64,
    /// The last record's hash (64 zeros when empty); None with the chain off.
    pub hash: Option<String>,
    /// Log size in bytes.
    pub bytes: u64,
}

/// Why a sink call failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SinkError {
    /// The event is malformed; nothing was written.
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// The existing log cannot be continued; nothing was written.
    #[error("audit log {path} cannot be continued: {message}")]
    CorruptLog {
        /// The log.
        path: PathBuf,
        /// The sink's explanation.
        message: String,
    },
    /// Reading or writing the log failed.
    #[error("audit log {path}: I/O failed: {message}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The sink's explanation.
        message: String,
    },
    /// The sink was used before open or after close.
    #[error("audit sink {sink} is not open")]
    NotOpen {
        /// The sink's name.
        sink: String,
    },
    /// The sink trapped; its instance was discarded.
    #[error("audit sink {sink} trapped in `{call}`: {reason}; the instance was discarded")]
    Trap {
        /// The sink's name.
        sink: String,
        /// The sink function that trapped.
        call: &'static str,
        /// Trap reason, with the sink's panic message when it sent one.
        reason: String,
    },
    /// The sink returned data that breaks the contract.
    #[error(
        "audit sink {sink} broke the contract in `{call}`: {message}; the instance was discarded"
    )]
    Contract {
        /// The sink's name.
        sink: String,
        /// The sink function.
        call: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// A live sink instance: one store, one log, one chain.
pub struct Sink {
    inner: Mutex<Live>,
    /// Shared syncs, for `Durability::Batch`.
    commit: Option<GroupCommit>,
    name: Arc<str>,
    path: PathBuf,
    actor: Actor,
    chained: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Live {
    store: Store<SinkState>,
    /// None once the instance is discarded (trap, contract breach) or closed.
    bindings: Option<Bindings>,
    /// Why the instance is gone, repeated to later callers.
    gone: Option<SinkError>,
    /// Records in the log, as the host has counted receipts.
    records: u64,
    deadline_ticks: u64,
    fuel: Option<u64>,
}

impl Sink {
    pub(crate) fn start(
        mut store: Store<SinkState>,
        pre: &AuditSinkPre<SinkState>,
        name: Arc<str>,
        path: PathBuf,
        options: &SinkOptions,
        deadline_ticks: u64,
        fuel: Option<u64>,
    ) -> Result<Sink, SinkError> {
        store.set_epoch_deadline(deadline_ticks);
        if let Some(fuel) = fuel {
            store.set_fuel(fuel).ok();
        }
        let bindings = pre.instantiate(&mut store).map_err(|e| SinkError::Trap {
            sink: name.to_string(),
            call: "instantiate",
            reason: format!("{e:#}"),
        })?;
        let sink_options = wit::Options {
            hash_chain: options.hash_chain,
            durability: match options.durability {
                Durability::Always => wit::Durability::Always,
                Durability::Batch => wit::Durability::Batch,
                Durability::None => wit::Durability::None,
            },
        };
        let commit = match options.durability {
            Durability::Batch => {
                let file = store.data().log.sync_handle().map_err(|e| SinkError::Io {
                    path: path.clone(),
                    message: format!("cannot get a handle to sync the log: {e}"),
                })?;
                Some(GroupCommit::new(file, 0))
            }
            _ => None,
        };
        let sink = Sink {
            commit,
            inner: Mutex::new(Live {
                store,
                bindings: Some(bindings),
                gone: None,
                records: 0,
                deadline_ticks,
                fuel,
            }),
            name,
            path,
            actor: options.actor.clone(),
            chained: options.hash_chain,
        };
        let head = sink.call("open", |b, s| {
            b.chainsink_audit_sink().call_open(s, sink_options)
        })?;
        let head = sink.check_head("open", head)?;
        sink.lock().records = head.records;
        Ok(sink)
    }

    /// The sink's name (component path or the default's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one event.
    pub fn emit(&self, event: &Event) -> Result<Receipt, SinkError> {
        let mut live = self.lock();
        let wit_event = self.to_wit(event, &timestamp::now());
        let receipt = self.call_locked(&mut live, "emit", |b, s| {
            b.chainsink_audit_sink().call_emit(s, &wit_event)
        })?;
        let mut receipts = self.check_receipts(&mut live, "emit", 1, vec![receipt])?;
        drop(live);
        self.wait_durable(&receipts)?;
        Ok(receipts.remove(0))
    }

    /// Records several events, in order, with one write (all or nothing).
    pub fn emit_batch(&self, events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
        let mut live = self.lock();
        let now = timestamp::now();
        let wit_events: Vec<wit::Event> = events.iter().map(|e| self.to_wit(e, &now)).collect();
        let receipts = self.call_locked(&mut live, "emit-batch", |b, s| {
            b.chainsink_audit_sink().call_emit_batch(s, &wit_events)
        })?;
        let receipts = self.check_receipts(&mut live, "emit-batch", events.len(), receipts)?;
        drop(live);
        self.wait_durable(&receipts)?;
        Ok(receipts)
    }

    /// With `Durability::Batch`, waits for a (shared) sync covering `receipts`.
    fn wait_durable(&self, receipts: &[Receipt]) -> Result<(), SinkError> {
        match (&self.commit, receipts.last()) {
            (Some(commit), Some(last)) => {
                commit.wait_durable(last.seq).map_err(|e| SinkError::Io {
                    path: self.path.clone(),
                    message: format!(
                        "sync failed: {e}; records up to seq {} may not be durable",
                        last.seq
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// The WIT form of `e`, stamped `now` unless it has its own time.
    fn to_wit(&self, e: &Event, now: &str) -> wit::Event {
        let actor = e.actor.as_ref().unwrap_or(&self.actor);
        wit::Event {
            timestamp: e.timestamp.clone().unwrap_or_else(|| now.to_string()),
            event_type: e.event_type.clone(),
            workflow_id: e.workflow_id.clone(),
            actor: wit::Actor {
                host_id: actor.host_id.clone(),
                user: actor.user.clone(),
            },
            payload: e.payload.clone(),
        }
    }

    /// Makes every record so far durable.
    pub fn flush(&self) -> Result<(), SinkError> {
        self.call("flush", |b, s| b.chainsink_audit_sink().call_flush(s))
    }

    /// Where the chain stands.
    pub fn head(&self) -> Result<Head, SinkError> {
        let head = self.call("head", |b, s| b.chainsink_audit_sink().call_head(s))?;
        self.check_head("head", head)
    }

    /// Flushes and closes the sink; later calls fail with `NotOpen`.
    pub fn close(&self) -> Result<Head, SinkError> {
        let head = self.call("close", |b, s| b.chainsink_audit_sink().call_close(s))?;
        let mut live = self.lock();
        live.bindings = None;
        live.gone = Some(SinkError::NotOpen {
            sink: self.name.to_string(),
        });
        drop(live);
        self.check_head("close", head)
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic while holding the lock leaves nothing half-done on the host
        // side: the guest state is discarded on a trap anyway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call<R>(
        &self,
        call: &'static str,
        f: impl FnOnce(&Bindings, &mut Store<SinkState>) -> wasmtime::Result<Result<R, wit::SinkError>>,
    ) -> Result<R, SinkError> {
        let mut live = self.lock();
        self.call_locked(&mut live, call, f)
    }

    fn call_locked<R>(
        &self,
        live: &mut Live,
        call: &'static str,
        f: impl FnOnce(&Bindings, &mut Store<SinkState>) -> wasmtime::Result<Result<R, wit::SinkError>>,
    ) -> Result<R, SinkError> {
        if let Some(gone) = &live.gone {
            return Err(gone.clone());
        }
        let Some(bindings) = live.bindings.as_ref() else {
            return Err(SinkError::NotOpen {
                sink: self.name.to_string(),
            });
        };
        live.store.set_epoch_deadline(live.deadline_ticks);
        if let Some(fuel) = live.fuel {
            live.store.set_fuel(fuel).ok();
        }
        live.store.data_mut().last_error = None;
        match f(bindings, &mut live.store) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.guest_error(e)),
            Err(trap) => {
                let mut reason = describe_trap(&trap);
                if let Some(msg) = live.store.data_mut().last_error.take() {
                    reason.push_str(&format!(" ({msg})"));
                }
                let err = SinkError::Trap {
                    sink: self.name.to_string(),
                    call,
                    reason,
                };
                self.discard(live, err.clone());
                Err(err)
            }
        }
    }

    fn discard(&self, live: &mut Live, why: SinkError) {
        tracing::error!(sink = &*self.name, "discarding sink instance: {why}");
        live.bindings = None;
        live.gone = Some(why);
        // Drop the poisoned instance now (its memory and pool slot), not when the Sink goes.
        live.store = crate::loader::discarded_store(&live.store);
    }

    fn guest_error(&self, e: wit::SinkError) -> SinkError {
        match e {
            wit::SinkError::InvalidEvent(m) => SinkError::InvalidEvent(m),
            wit::SinkError::CorruptLog(message) => SinkError::CorruptLog {
                path: self.path.clone(),
                message,
            },
            wit::SinkError::Io(message) => SinkError::Io {
                path: self.path.clone(),
                message,
            },
            wit::SinkError::NotOpen => SinkError::NotOpen {
                sink: self.name.to_string(),
            },
        }
    }

    fn check_head(&self, call: &'static str, head: wit::ChainHead) -> Result<Head, SinkError> {
        if let Err(message) = check_hash_field(head.hash.as_deref(), self.chained) {
            let err = SinkError::Contract {
                sink: self.name.to_string(),
                call,
                message: format!("head hash: {message}"),
            };
            self.discard(&mut self.lock(), err.clone());
            return Err(err);
        }
        Ok(Head {
            records: head.records,
            hash: head.hash,
            bytes: head.bytes,
        })
    }

    /// Receipts must count up, one per event, past the records we know of
    /// (a sink may write records of its own first, such as `chain.recovered`),
    /// each with a well-formed hash exactly when the chain is on.
    fn check_receipts(
        &self,
        live: &mut Live,
        call: &'static str,
        sent: usize,
        receipts: Vec<wit::Receipt>,
    ) -> Result<Vec<Receipt>, SinkError> {
        let mut problem = None;
        if receipts.len() != sent {
            problem = Some(format!("{} receipts for {sent} events", receipts.len()));
        }
        let mut last = live.records;
        for (i, r) in receipts.iter().enumerate() {
            if problem.is_some() {
                break;
            }
            let ok_seq = if i == 0 {
                r.seq > last
            } else {
                r.seq == last + 1
            };
            if !ok_seq {
                problem = Some(format!(
                    "receipt {i} has seq {}, after seq {last}; receipts must count up one by one",
                    r.seq
                ));
            } else if let Err(m) = check_hash_field(r.hash.as_deref(), self.chained) {
                problem = Some(format!("receipt {i}: {m}"));
            }
            last = r.seq;
        }
        if problem.is_none() {
            // The receipts must match the bytes the sink appended (crate::guard).
            problem = live
                .store
                .data_mut()
                .check_appended(&receipts, self.chained)
                .err();
        }
        if let Some(message) = problem {
            let err = SinkError::Contract {
                sink: self.name.to_string(),
                call,
                message,
            };
            self.discard(live, err.clone());
            return Err(err);
        }
        live.records = last;
        Ok(receipts
            .into_iter()
            .map(|r| Receipt {
                seq: r.seq,
                hash: r.hash,
            })
            .collect())
    }
}

fn check_hash_field(hash: Option<&str>, chained: bool) -> Result<(), String> {
    match (hash, chained) {
        (Some(h), true) => {
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                Ok(())
            } else {
                Err(format!("{h:?} is not 64 lowercase hex digits"))
            }
        }
        (None, false) => Ok(()),
        (None, true) => Err("missing although the chain is on".into()),
        (Some(_), false) => Err("present although the chain is off".into()),
    }
}

/// Names the trap: deadline, memory, or the wasm trap code.
fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(limit) = e.downcast_ref::<crate::limits::LimitExceeded>() {
        return limit.to_string();
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "deadline exceeded (the call ran past its time limit)".into()
        }
        Some(wasmtime::Trap::OutOfFuel) => {
            "out of fuel: the call used up its fuel budget (raise it with --sink-fuel, or SinkLimits::fuel)".into()
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "unreachable executed (a panic or abort in the sink)".into()
        }
        Some(wasmtime::Trap::AllocationTooLarge) => "out of memory (memory limit reached)".into(),
        Some(trap) => format!("wasm trap: {trap}"),
        None => format!("{e:#}"),
    }
}
