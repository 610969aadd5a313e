//! A running sink instance, safe to share between threads.
//!
//! Every call goes through one mutex, so many threads get one linear chain.
//! Timestamps are taken inside the lock, so they never run backwards along
//! the chain. A sink that traps is discarded (wasmtime poisons it) and every
//! later call reports the original trap.
//!
//! A sink of any WIT version the host loads is driven the same way
//! (`exports`); what it says about itself ([`SinkInfo`]: its `describe`,
//! or for a 0.1 sink the host's `telemachy-json` default) decides how the
//! host checks what it appends (`guard`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::Store;

use crate::bindings::{AuditSinkPre, wit};
use crate::runtime::world::WitVersion;
use crate::store::SinkState;
use crate::timestamp;
use chainsink_format::Hash;
use chainsink_format::chain::seal;
use chainsink_format::json;
use chainsink_format::packed;
use chainsink_format::record::{Actor as FormatActor, Event as FormatEvent, MAX_PAYLOAD_DEPTH};
use chainsink_format::rejection::{REJECTED_EVENT, Rejected};
use exports::SinkExports as Bindings;
use group_commit::GroupCommit;
use guard::KnownTail;

pub(crate) mod exports;
pub mod group_commit;
pub(crate) mod guard;

/// How a sink writes its records (`sink-info.format` in `wit/audit.wit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordFormat {
    /// telemachy's JSON records and SHA-256 chain: `chainsink verify`
    /// checks them natively, and the host checks every append as records.
    TelemachyJson,
    /// The sink's own format, named with a version (`tsv-chain/1`): the
    /// host checks only that appends are whole lines, one per receipt;
    /// `chainsink verify --sink` checks the records with the sink's verifier.
    Custom(String),
}

impl RecordFormat {
    /// Whether it is a custom format.
    pub fn is_custom(&self) -> bool {
        matches!(self, RecordFormat::Custom(_))
    }
}

impl std::fmt::Display for RecordFormat {
    /// `telemachy-json`, or `custom(NAME)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordFormat::TelemachyJson => f.write_str("telemachy-json"),
            RecordFormat::Custom(name) => write!(f, "custom({name})"),
        }
    }
}

/// What a sink is: what its `describe` says (WIT 0.2), or what the host
/// takes a 0.1 sink to be (`telemachy-json`; it cannot say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkInfo {
    /// Its name, as it says; for a 0.1 sink, its file's name.
    pub name: String,
    /// Its own version, as it says; `unknown` for a 0.1 sink.
    pub version: String,
    /// The format of the records it writes.
    pub format: RecordFormat,
    /// The WIT version it was built against.
    pub wit: WitVersion,
    /// Whether the sink said this itself (`describe`); false when the host
    /// synthesised it for a 0.1 sink.
    pub described: bool,
    /// Whether it exports a `verifier` (`chainsink verify --sink`).
    pub verifier: bool,
}

/// Longest `name`, `version` or custom format name a sink may give.
pub const MAX_INFO_FIELD: usize = 128;

impl SinkInfo {
    /// What the host takes a 0.1 sink called `sink` (its path) to be.
    pub(crate) fn synthesised(sink: &str) -> SinkInfo {
        let name = Path::new(sink)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(sink)
            .to_string();
        SinkInfo {
            name,
            version: "unknown".into(),
            format: RecordFormat::TelemachyJson,
            wit: WitVersion::V0_1,
            described: false,
            verifier: false,
        }
    }

    /// Checks what a 0.2 sink's `describe` returned.
    pub(crate) fn from_wit(info: wit::SinkInfo, verifier: bool) -> Result<SinkInfo, String> {
        let field = |what: &str, v: &str| -> Result<(), String> {
            if v.is_empty() || v.len() > MAX_INFO_FIELD || v.chars().any(char::is_control) {
                Err(format!(
                    "describe() gave {what} {:?}: it must be 1 to {MAX_INFO_FIELD} bytes with                      no control characters",
                    v.chars().take(MAX_INFO_FIELD).collect::<String>()
                ))
            } else {
                Ok(())
            }
        };
        field("the name", &info.name)?;
        field("the version", &info.version)?;
        let format = match info.format {
            wit::RecordFormat::TelemachyJson => RecordFormat::TelemachyJson,
            wit::RecordFormat::Custom(name) => {
                field("the custom format name", &name)?;
                RecordFormat::Custom(name)
            }
        };
        Ok(SinkInfo {
            name: info.name,
            version: info.version,
            format,
            wit: WitVersion::V0_2,
            described: true,
            verifier,
        })
    }
}

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
    /// The sink cannot be opened as configured (nothing ran).
    #[error("audit sink {sink} cannot be opened as configured: {message}")]
    Config {
        /// The sink's name.
        sink: String,
        /// What is wrong and what to do.
        message: String,
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

impl SinkError {
    /// Whether the instance is gone (it trapped or broke the contract): a
    /// new one, [`Sink::reopen`], is the only way on.
    pub fn instance_gone(&self) -> bool {
        matches!(self, SinkError::Trap { .. } | SinkError::Contract { .. })
    }
}

/// Events made ready for the sink's call by [`Sink::prepare`].
#[derive(Debug)]
pub(crate) struct Prepared {
    form: Form,
    /// Per event: whether it came with its own time (else it is stamped when written).
    own_time: Vec<bool>,
}

/// The form a sink is called with.
#[derive(Debug)]
enum Form {
    /// For `emit-batch`: WIT events, the time stamps to be written empty.
    Wit(Vec<wit::Event>),
    /// For `packed-batch.emit-packed` (a sink that exports it): the events packed back to
    /// back (`chainsink_format::packed`), a time stamp to be written held by a placeholder of
    /// [`timestamp::LEN`] bytes. Event `i` is `bytes[starts[i]..starts[i + 1]]`.
    Packed { bytes: Vec<u8>, starts: Vec<usize> },
}

impl Prepared {
    /// The events in it.
    pub(crate) fn len(&self) -> usize {
        self.own_time.len()
    }
}

/// A live sink instance: one store, one log, one chain.
pub struct Sink {
    inner: Mutex<Live>,
    /// The component, ready to instantiate again ([`Sink::reopen`]).
    pre: AuditSinkPre<SinkState>,
    /// How the sink is opened.
    wit_options: wit::Options,
    /// Shared syncs, for `Durability::Batch`.
    commit: Option<GroupCommit>,
    name: Arc<str>,
    path: PathBuf,
    actor: Actor,
    chained: bool,
    /// What the sink is (its `describe`, asked once per instance).
    info: SinkInfo,
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

impl Live {
    /// Sets the next call's deadline and fuel, and resets its budget.
    fn prepare_call(&mut self) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(fuel) = self.fuel {
            self.store.set_fuel(fuel).ok();
        }
        self.store.data_mut().start_call();
    }
}

/// Asks a new instance what it is (`describe`, WIT 0.2), or synthesises the
/// answer for a 0.1 sink. A trap, an answer that breaks the contract, or
/// bytes appended during the call fail the start.
fn describe(
    live: &mut Live,
    pre: &AuditSinkPre<SinkState>,
    name: &str,
) -> Result<SinkInfo, SinkError> {
    if live.bindings.is_none() {
        return Err(SinkError::NotOpen { sink: name.into() });
    }
    live.prepare_call();
    let Some(bindings) = live.bindings.as_ref() else {
        return Err(SinkError::NotOpen { sink: name.into() });
    };
    let contract = |message: String| SinkError::Contract {
        sink: name.into(),
        call: "describe",
        message,
    };
    let info = match bindings.describe(&mut live.store) {
        Ok(None) => SinkInfo::synthesised(name),
        Ok(Some(info)) => SinkInfo::from_wit(info, pre.has_verifier()).map_err(contract)?,
        Err(trap) => {
            let mut reason = describe_trap(&trap);
            if let Some(msg) = live.store.data_mut().diagnostics.last_error.take() {
                reason.push_str(&format!(" ({msg})"));
            }
            return Err(SinkError::Trap {
                sink: name.into(),
                call: "describe",
                reason,
            });
        }
    };
    if let Some((offset, bytes)) = live.store.data_mut().log_file.guard.take_pending() {
        return Err(contract(format!(
            "it appended {} byte(s) at log offset {offset} from describe(), which must not \
             touch the log; they are not acknowledged",
            bytes.len()
        )));
    }
    Ok(info)
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
        let bindings = instantiate(pre, &mut store, &name)?;
        let mut live = Live {
            store,
            bindings: Some(bindings),
            gone: None,
            records: 0,
            deadline_ticks,
            fuel,
        };
        let info = describe(&mut live, pre, &name)?;
        live.store
            .data_mut()
            .log_file
            .guard
            .set_custom(info.format.is_custom());
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
                let file = live
                    .store
                    .data()
                    .log()
                    .sync_handle()
                    .map_err(|e| SinkError::Io {
                        path: path.clone(),
                        message: format!("cannot get a handle to sync the log: {e}"),
                    })?;
                Some(GroupCommit::new(file, 0))
            }
            _ => None,
        };
        let sink = Sink {
            commit,
            pre: pre.clone(),
            wit_options: sink_options,
            inner: Mutex::new(live),
            name,
            path,
            actor: options.actor.clone(),
            chained: options.hash_chain,
            info,
        };
        sink.open_instance(&mut sink.lock())?;
        Ok(sink)
    }

    /// Replaces a discarded (trapped or breaching) instance with a fresh one
    /// on the same log, which resumes the chain from the log's tail, as
    /// `Sink::start` did. For fail-open auditing that goes on after a
    /// trap. Fails, leaving the sink discarded, if the new instance cannot
    /// start.
    pub fn reopen(&self) -> Result<Head, SinkError> {
        let mut live = self.lock();
        let fresh = live.store.data().fresh();
        let mut store =
            crate::store::new_store(live.store.engine(), fresh, crate::runtime::EPOCH_TICK);
        store.set_epoch_deadline(live.deadline_ticks);
        if let Some(fuel) = live.fuel {
            store.set_fuel(fuel).ok();
        }
        let bindings = instantiate(&self.pre, &mut store, &self.name)?;
        live.store = store;
        live.bindings = Some(bindings);
        live.gone = None;
        let info = describe(&mut live, &self.pre, &self.name)?;
        if info != self.info {
            let err = SinkError::Contract {
                sink: self.name.to_string(),
                call: "describe",
                message: format!(
                    "its new instance describes itself as {} {} ({}), but it was {} {} ({}); a                      sink's description must not change",
                    info.name,
                    info.version,
                    info.format,
                    self.info.name,
                    self.info.version,
                    self.info.format
                ),
            };
            self.discard(&mut live, err.clone());
            return Err(err);
        }
        let custom = self.custom();
        live.store.data_mut().log_file.guard.set_custom(custom);
        self.open_instance(&mut live)
    }

    /// What the sink is: its `describe`, or the host's default for a 0.1 sink.
    pub fn info(&self) -> &SinkInfo {
        &self.info
    }

    /// Whether it writes a custom record format.
    fn custom(&self) -> bool {
        self.info.format.is_custom()
    }

    /// Opens the current instance on its log.
    fn open_instance(&self, live: &mut Live) -> Result<Head, SinkError> {
        self.read_known_tail(live)?;
        let options = self.wit_options;
        let head = self.call_locked(live, "open", |b, s| b.open(s, options))?;
        let head = self.check_head_locked(live, "open", head)?;
        live.records = head.records;
        Ok(head)
    }

    /// For a checked sink, reads the log's tail natively before the sink
    /// runs, so the guard knows what its first record must continue.
    fn read_known_tail(&self, live: &mut Live) -> Result<(), SinkError> {
        let state = live.store.data_mut();
        if !state.log_file.guard.enabled() {
            return Ok(());
        }
        let custom = self.custom();
        let known = KnownTail::read(state.log(), self.chained, custom).map_err(|message| {
            SinkError::CorruptLog {
                path: self.path.clone(),
                message: format!(
                    "{message}; nothing was written: run `{}` on the log",
                    if custom {
                        format!("chainsink verify --sink {}", self.name)
                    } else {
                        "chainsink verify".to_string()
                    }
                ),
            }
        })?;
        state.log_file.guard.resume(known);
        Ok(())
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
        let receipt = self.call_locked(&mut live, "emit", |b, s| b.emit(s, wit_event))?;
        let mut receipts = self.check_receipts(&mut live, "emit", 1, vec![receipt])?;
        drop(live);
        self.wait_durable(&receipts)?;
        Ok(receipts.remove(0))
    }

    /// Records several events, in order, with one write (all or nothing).
    pub fn emit_batch(&self, events: &[Event]) -> Result<Vec<Receipt>, SinkError> {
        let mut prepared = self.prepare(Cow::Borrowed(events));
        self.emit_prepared(&mut prepared, 0..events.len())
    }

    /// `events` in the form the sink is called with: the work of [`Sink::emit_batch`] that
    /// needs no lock (the payloads' canonical text above all, and packing them for a sink that
    /// takes them packed), so that a caller can do it for one batch while the sink writes the
    /// one before ([`Sink::emit_prepared`]; the `emit --stdin` stream). The time stamp is left
    /// to [`Sink::emit_prepared`], inside the lock.
    ///
    /// Packing only reads the events; only the WIT form needs them owned (`Cow::Owned` moves
    /// their strings, `Cow::Borrowed` copies them).
    pub(crate) fn prepare(&self, events: Cow<'_, [Event]>) -> Prepared {
        let own_time: Vec<bool> = events.iter().map(|e| e.timestamp.is_some()).collect();
        if self.pre.has_packed()
            && let Some(form) = self.pack(&events)
        {
            return Prepared { form, own_time };
        }
        let events = events
            .into_owned()
            .into_iter()
            .map(|e| self.to_wit_unstamped(e))
            .collect();
        Prepared {
            form: Form::Wit(events),
            own_time,
        }
    }

    /// `events` packed for `emit-packed`, their payloads made canonical straight into the
    /// packed bytes; `None` if one holds a string too long to pack (over 4 GiB).
    fn pack(&self, events: &[Event]) -> Option<Form> {
        // Written over when stamped (ASCII, so the packed string stays UTF-8).
        const PLACEHOLDER: &str = match std::str::from_utf8(&[b'0'; timestamp::LEN]) {
            Ok(s) => s,
            Err(_) => "",
        };
        let size: usize = events.iter().map(|e| 96 + e.payload.len()).sum();
        let mut bytes = Vec::with_capacity(size);
        let mut starts = Vec::with_capacity(events.len() + 1);
        for e in events {
            starts.push(bytes.len());
            let actor = e.actor.as_ref().unwrap_or(&self.actor);
            let head = packed::Fields {
                timestamp: e.timestamp.as_deref().unwrap_or(PLACEHOLDER),
                event_type: &e.event_type,
                workflow_id: e.workflow_id.as_deref(),
                host_id: &actor.host_id,
                user: &actor.user,
                payload: "",
            };
            let packed = packed::pack_event_with(&mut bytes, &head, |out| {
                write_canonical_payload(out, &e.payload)
            });
            if !packed {
                return None;
            }
        }
        starts.push(bytes.len());
        Some(Form::Packed { bytes, starts })
    }

    /// [`Sink::emit_batch`] of the events at `range` of a batch made ready by
    /// [`Sink::prepare`], stamped now (inside the lock, as `emit_batch` stamps) unless they
    /// have their own time.
    pub(crate) fn emit_prepared(
        &self,
        prepared: &mut Prepared,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Receipt>, SinkError> {
        let live = self.lock();
        let now = timestamp::now();
        let own_time = &prepared.own_time[range.clone()];
        match &mut prepared.form {
            Form::Wit(events) => {
                for (e, own) in events[range.clone()].iter_mut().zip(own_time) {
                    if !own {
                        e.timestamp.clear();
                        e.timestamp.push_str(&now);
                    }
                }
                self.emit_wit(live, &events[range])
            }
            Form::Packed { bytes, starts } => {
                for (&start, own) in starts[range.clone()].iter().zip(own_time) {
                    if !own {
                        let at = start + packed::TIMESTAMP_AT;
                        bytes[at..at + timestamp::LEN].copy_from_slice(now.as_bytes());
                    }
                }
                let events = &bytes[starts[range.start]..starts[range.end]];
                self.emit_packed(live, events, range.len())
            }
        }
    }

    /// Calls `packed-batch.emit-packed` with `n` packed events and checks and waits for what it
    /// answers, as [`Sink::emit_wit`] does for `emit-batch`.
    fn emit_packed(
        &self,
        mut live: MutexGuard<'_, Live>,
        events: &[u8],
        n: usize,
    ) -> Result<Vec<Receipt>, SinkError> {
        const CALL: &str = "emit-packed";
        let answer = self.call_locked(&mut live, CALL, |b, s| {
            b.emit_packed(s, events)?
                .ok_or_else(|| wasmtime::format_err!("the instance does not export `packed-batch`"))
        })?;
        let receipts = match packed::unpack_receipts(&answer) {
            Ok(receipts) => receipts
                .into_iter()
                .map(|(seq, hash)| wit::Receipt {
                    seq,
                    hash: hash.map(str::to_string),
                })
                .collect(),
            Err(e) => return Err(self.breach(&mut live, CALL, e.to_string())),
        };
        let receipts = self.check_receipts(&mut live, CALL, n, receipts)?;
        drop(live);
        self.wait_durable(&receipts)?;
        Ok(receipts)
    }

    /// Calls `emit-batch` and checks and waits for what it answers.
    fn emit_wit(
        &self,
        mut live: MutexGuard<'_, Live>,
        events: &[wit::Event],
    ) -> Result<Vec<Receipt>, SinkError> {
        let n = events.len();
        let receipts = self.call_locked(&mut live, "emit-batch", |b, s| b.emit_batch(s, events))?;
        let receipts = self.check_receipts(&mut live, "emit-batch", n, receipts)?;
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
        let mut wit = self.to_wit_unstamped(e.clone());
        if e.timestamp.is_none() {
            wit.timestamp = now.to_string();
        }
        wit
    }

    /// The WIT form of `e`, moving its strings, with an empty time stamp unless it has its own
    /// ([`Sink::to_wit`] and [`Sink::emit_prepared`] stamp it).
    fn to_wit_unstamped(&self, e: Event) -> wit::Event {
        let payload = canonical_payload(&e.payload);
        let actor = e.actor.unwrap_or_else(|| self.actor.clone());
        wit::Event {
            timestamp: e.timestamp.unwrap_or_default(),
            event_type: e.event_type,
            workflow_id: e.workflow_id,
            actor: wit::Actor {
                host_id: actor.host_id,
                user: actor.user,
            },
            payload,
        }
    }

    /// Makes every record so far durable.
    pub fn flush(&self) -> Result<(), SinkError> {
        self.call("flush", |b, s| b.flush(s))
    }

    /// Where the chain stands.
    pub fn head(&self) -> Result<Head, SinkError> {
        let head = self.call("head", |b, s| b.head(s))?;
        self.check_head("head", head)
    }

    /// Flushes and closes the sink; later calls fail with `NotOpen`.
    pub fn close(&self) -> Result<Head, SinkError> {
        let head = self.call("close", |b, s| b.close(s))?;
        let mut live = self.lock();
        live.store.data_mut().diagnostics.finish();
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
        if live.bindings.is_none() {
            return Err(SinkError::NotOpen {
                sink: self.name.to_string(),
            });
        }
        live.prepare_call();
        let Some(bindings) = live.bindings.as_ref() else {
            return Err(SinkError::NotOpen {
                sink: self.name.to_string(),
            });
        };
        let result = f(bindings, &mut live.store);
        if result.is_ok() {
            // No trap report will carry an error the sink logged: print it.
            live.store.data_mut().diagnostics.release();
        }
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let err = self.guest_error(e);
                live.store.data_mut().log_file.guard.reject_pending();
                let mut notes: Vec<String> = self
                    .mark_rejected(live, &err.to_string())
                    .into_iter()
                    .collect();
                if matches!(err, SinkError::Io { .. }) {
                    notes.push(self.what_is_in_the_log(live));
                }
                match notes.is_empty() {
                    false => Err(self.with_note(err, &notes.join("; "))),
                    true => Err(err),
                }
            }
            Err(trap) => {
                let mut reason = describe_trap(&trap);
                if let Some(msg) = live.store.data_mut().diagnostics.last_error.take() {
                    reason.push_str(&format!(" ({msg})"));
                }
                Err(self.give_up(live, reason, |sink, reason| SinkError::Trap {
                    sink,
                    call,
                    reason,
                }))
            }
        }
    }

    /// After an I/O error: what the log holds now, read natively, against
    /// what was acknowledged, so a client resumes without duplicating.
    fn what_is_in_the_log(&self, live: &mut Live) -> String {
        let acknowledged = live.records;
        let known = KnownTail::read(live.store.data().log(), self.chained, self.custom());
        if self.custom() {
            // Lines, not records: the host cannot read a custom format, and
            // a partial line is only that (no torn-write rule applies).
            return match known {
                Ok(KnownTail {
                    seq: Some(lines),
                    needs_newline,
                    ..
                }) => {
                    let partial = if needs_newline {
                        ", then a partial line"
                    } else {
                        ""
                    };
                    if lines > acknowledged {
                        format!(
                            "the last acknowledged record is line {acknowledged}; the log has \
                             {lines} whole line(s){partial}: lines {} to {lines} are in the log \
                             without a receipt, so do not send them again",
                            acknowledged + 1
                        )
                    } else {
                        format!(
                            "the last acknowledged record is line {acknowledged}, and the log \
                             has {lines} whole line(s){partial}"
                        )
                    }
                }
                Ok(_) => format!("the last acknowledged record is line {acknowledged}"),
                Err(e) => format!(
                    "the last acknowledged record is line {acknowledged}; the log cannot be \
                     read back: {e}"
                ),
            };
        }
        match known {
            Ok(KnownTail {
                seq: Some(last),
                needs_newline,
                ..
            }) => {
                let torn = if needs_newline {
                    ", then a torn write that the next write recovers"
                } else {
                    ""
                };
                if last > acknowledged {
                    format!(
                        "the last acknowledged record is seq {acknowledged}; the log ends with \
                         record seq {last}{torn}: records {} to {last} are in the log without a \
                         receipt, so do not send them again",
                        acknowledged + 1
                    )
                } else {
                    format!(
                        "the last acknowledged record is seq {acknowledged}, and the log ends \
                         with it{torn}"
                    )
                }
            }
            Ok(_) => format!("the last acknowledged record is seq {acknowledged}"),
            Err(e) => format!(
                "the last acknowledged record is seq {acknowledged}; the log's end cannot be \
                 read back: {e}"
            ),
        }
    }

    /// `err` with `note` (what the host did about rejected bytes) added.
    fn with_note(&self, err: SinkError, note: &str) -> SinkError {
        match err {
            SinkError::InvalidEvent(m) => SinkError::InvalidEvent(format!("{m}; {note}")),
            SinkError::CorruptLog { path, message } => SinkError::CorruptLog {
                path,
                message: format!("{message}; {note}"),
            },
            SinkError::Io { path, message } => SinkError::Io {
                path,
                message: format!("{message}; {note}"),
            },
            other => other,
        }
    }

    /// If the guard refused bytes this call appended, marks them in the log
    /// at once with a `chain.rejected` record (see
    /// [`chainsink_format::rejection`]), linked from the last valid record.
    /// Returns what was done, for the error message.
    fn mark_rejected(&self, live: &mut Live, breach: &str) -> Option<String> {
        let state = live.store.data_mut();
        let (offset, mut bytes) = state.log_file.guard.take_rejected()?;
        if self.custom() {
            // The host cannot write a record in a format it does not know:
            // the bytes stay unmarked, and the guard goes on from the log's
            // real end (its lines counted again).
            let note = match KnownTail::read_custom(state.log()) {
                Ok(known) => {
                    state.log_file.guard.resume(known);
                    String::new()
                }
                Err(e) => format!(" (and the log's end cannot be read back: {e})"),
            };
            return Some(format!(
                "the {} byte(s) it appended at log offset {offset} are not acknowledged; they \
                 stay in the log unmarked, as the host writes nothing in a custom format ({}): \
                 `chainsink verify --sink` will report them{note}",
                bytes.len(),
                self.info.format
            ));
        }
        let known = state.log_file.guard.known().unwrap_or_default();
        let mut out = Vec::new();
        if bytes.last() != Some(&b'\n') {
            out.push(b'\n');
            bytes.push(b'\n');
        }
        let claim = Rejected::of(offset, &bytes);
        let payload = claim.payload(&self.name, breach);
        let seq = known.seq.unwrap_or(live.records) + 1;
        let now = timestamp::now();
        let record = FormatEvent {
            timestamp: &now,
            event_type: REJECTED_EVENT,
            workflow_id: None,
            actor: FormatActor {
                host_id: &self.actor.host_id,
                user: &self.actor.user,
            },
            payload: (&payload).into(),
        };
        let prev = self.chained.then(|| known.hash.unwrap_or(Hash::GENESIS));
        let written = seal(&record, seq, prev.as_ref(), &mut out)
            .map_err(|e| e.to_string())
            .and_then(|hash| {
                let log = state.log();
                let at = log.append(&out).map_err(|e| e.to_string())?;
                log.sync().map_err(|e| e.to_string())?;
                Ok((hash, at))
            });
        match written {
            Ok((hash, at)) => {
                let end = at + out.len() as u64;
                state.log_file.guard.host_record(hash, seq, end);
                live.records = seq;
                Some(format!(
                    "the {} byte(s) it appended at log offset {offset} are not acknowledged; \
                     the host marked them with a `{REJECTED_EVENT}` record (seq {seq})",
                    claim.length
                ))
            }
            Err(e) => {
                tracing::error!(
                    "AUDITING DEGRADED: sink {} appended {} byte(s) at log offset {offset} that \
                     were refused, and the host could not mark them in the log: {e}; \
                     `chainsink verify` will report them as tampering",
                    self.name,
                    claim.length
                );
                Some(format!(
                    "the {} byte(s) it appended at log offset {offset} are not acknowledged, \
                     and marking them failed: {e}",
                    claim.length
                ))
            }
        }
    }

    fn discard(&self, live: &mut Live, why: SinkError) {
        // The caller reports `why`; this is for the operator's debug log.
        tracing::debug!(sink = &*self.name, "discarding sink instance: {why}");
        live.bindings = None;
        live.gone = Some(why);
        // Drop the poisoned instance now (its memory and pool slot), not when the Sink goes.
        live.store = crate::store::discarded_store(&live.store);
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
        self.check_head_locked(&mut self.lock(), call, head)
    }

    fn check_head_locked(
        &self,
        live: &mut Live,
        call: &'static str,
        head: wit::ChainHead,
    ) -> Result<Head, SinkError> {
        if let Err(message) = check_hash_field(head.hash.as_deref(), self.chained, self.custom()) {
            let err = SinkError::Contract {
                sink: self.name.to_string(),
                call,
                message: format!("head hash: {message}"),
            };
            self.discard(live, err.clone());
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
            } else if let Err(m) = check_hash_field(r.hash.as_deref(), self.chained, self.custom())
            {
                problem = Some(format!("receipt {i}: {m}"));
            }
            last = r.seq;
        }
        if problem.is_none() {
            // The receipts must match the bytes the sink appended (guard).
            problem = live
                .store
                .data_mut()
                .log_file
                .guard
                .check(&receipts, self.chained)
                .err();
        }
        if let Some(message) = problem {
            return Err(self.breach(live, call, message));
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

impl Sink {
    /// The sink broke the contract in `call`: [`Sink::give_up`] on it.
    fn breach(&self, live: &mut Live, call: &'static str, message: String) -> SinkError {
        self.give_up(live, message, |sink, message| SinkError::Contract {
            sink,
            call,
            message,
        })
    }

    /// The instance is done for (a trap, a breach of the contract): marks what it appended in
    /// this call as rejected, adds what was marked to `reason`, discards the instance and
    /// returns the error, made by `error` from the sink's name and the reason.
    fn give_up(
        &self,
        live: &mut Live,
        mut reason: String,
        error: impl FnOnce(String, String) -> SinkError,
    ) -> SinkError {
        live.store.data_mut().log_file.guard.reject_pending();
        if let Some(note) = self.mark_rejected(live, &reason) {
            reason.push_str("; ");
            reason.push_str(&note);
        }
        let err = error(self.name.to_string(), reason);
        self.discard(live, err.clone());
        err
    }
}

/// A hash a sink returned: there exactly when the chain is on; for
/// `telemachy-json` 64 lowercase hex digits, for a custom format its own
/// spelling (at most [`MAX_INFO_FIELD`] bytes, no control characters).
fn check_hash_field(hash: Option<&str>, chained: bool, custom: bool) -> Result<(), String> {
    match (hash, chained) {
        (Some(h), true) if custom => {
            if !h.is_empty() && h.len() <= MAX_INFO_FIELD && !h.chars().any(char::is_control) {
                Ok(())
            } else {
                Err(format!(
                    "{:?} is not a hash (1 to {MAX_INFO_FIELD} bytes, no control characters)",
                    h.chars().take(MAX_INFO_FIELD).collect::<String>()
                ))
            }
        }
        (Some(h), true) => {
            // A fold, not `all`: no branch a byte, so it vectorizes (this check was 3% of the
            // sink's thread in `emit --stdin`, issue 15).
            if h.len() == 64
                && h.bytes().fold(true, |ok, b| {
                    ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b))
                })
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

/// Instantiates `pre` in `store`; a failure is reported as a trap in
/// `instantiate`.
fn instantiate(
    pre: &AuditSinkPre<SinkState>,
    store: &mut Store<SinkState>,
    name: &str,
) -> Result<Bindings, SinkError> {
    pre.instantiate(store).map_err(|e| SinkError::Trap {
        sink: name.to_string(),
        call: "instantiate",
        reason: format!("{e:#}"),
    })
}

/// Names the trap: deadline, memory, or the wasm trap code.
pub(crate) fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(limit) = e.downcast_ref::<crate::runtime::limits::LimitExceeded>() {
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
            "unreachable executed (the sink panicked, aborted or raised an uncaught exception)".into()
        }
        Some(wasmtime::Trap::AllocationTooLarge) => "out of memory (memory limit reached)".into(),
        Some(trap) => format!("wasm trap: {trap}"),
        None => format!("{e:#}"),
    }
}

/// A payload's text as the sink is handed it: canonical JSON when it can be
/// encoded (the format crate's encoder, natively; text that is canonical
/// already is only scanned), else as it came, for the sink to refuse with
/// its own error. The sink would write the same bytes from either (it
/// encodes what is not canonical), but it checks canonical text with a scan
/// and copies it instead of building a tree in wasm (issue 15).
fn canonical_payload(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    write_canonical_payload(&mut out, text);
    // Canonical JSON is ASCII, and the text as it came is a `str`.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Appends [`canonical_payload`] of `text` to `out`.
fn write_canonical_payload(out: &mut Vec<u8>, text: &str) {
    if json::write_object_text_within(out, text, MAX_PAYLOAD_DEPTH).is_err() {
        // `out` is as it was: the text as it came, for the sink to refuse.
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::LogFile;
    use crate::runtime::{RuntimeConfig, SinkRuntime};
    use chainsink_format::verify::{Mode, check_line};

    impl Sink {
        /// `emit-packed` of `events` as they are: no payload made canonical first, so the
        /// sink's own check of payload text is what decides (the host always hands over
        /// canonical text; other hosts need not).
        fn emit_packed_raw(
            &self,
            events: &[packed::Fields<'_>],
        ) -> Result<Vec<Receipt>, SinkError> {
            let mut bytes = Vec::new();
            for e in events {
                assert!(packed::pack_event(&mut bytes, e));
            }
            self.emit_packed(self.lock(), &bytes, events.len())
        }
    }

    /// The embedded default sink (in wasm) on a new log, chain on, no syncs; the log's path,
    /// and its directory (kept while the caller holds it).
    fn default_sink_on_a_new_log() -> (Sink, PathBuf, tempfile::TempDir) {
        let runtime = SinkRuntime::with_config(RuntimeConfig {
            max_sinks: 1,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let component = runtime.default_component().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let options = SinkOptions {
            hash_chain: true,
            durability: Durability::None,
            actor: Actor {
                host_id: "h".into(),
                user: "u".into(),
            },
        };
        let sink = runtime
            .open(&component, LogFile::open(&path).unwrap(), &options)
            .unwrap();
        (sink, path, dir)
    }

    /// A receipt's hash passes exactly when the format crate reads it as a hash.
    #[test]
    fn a_receipt_hash_is_64_lowercase_hex_digits_exactly() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(check_hash_field(Some(&good), true, false), Ok(()));
        for at in 0..64 {
            for v in 0..=127u8 {
                let mut b = good.clone().into_bytes();
                b[at] = v;
                let h = String::from_utf8(b).unwrap();
                assert_eq!(
                    check_hash_field(Some(&h), true, false).is_ok(),
                    Hash::from_hex(h.as_bytes()).is_some(),
                    "{h:?}"
                );
            }
        }
        assert!(check_hash_field(Some(&good[1..]), true, false).is_err());
        assert!(check_hash_field(Some("é"), true, false).is_err());
    }

    /// The default sink (in wasm) keeps a payload's text only when its check proves it
    /// canonical, and otherwise writes what the native encoder writes, or refuses what the
    /// native encoder refuses: for every kind of byte that needs the slow path, at every place
    /// around the 64-byte blocks its classifier works in.
    #[test]
    fn the_default_sinks_payload_check_agrees_with_the_native_encoder() {
        let (sink, path, _dir) = default_sink_on_a_new_log();
        let specials = [
            "\u{7f}",
            "\u{1}",
            "\u{1f}",
            "é",
            "\u{10000}",
            "\\n",
            "\\/",
            "\\u0041",
            "\\\"",
            "\\\\",
            "\u{80}",
        ];
        let mut payloads = Vec::new();
        for special in specials {
            for at in 0..140 {
                let pad = "a".repeat(at);
                payloads.push(format!(r#"{{"k": "{pad}{special}z"}}"#));
                payloads.push(format!(r#"{{"a{pad}{special}": 1}}"#));
            }
        }
        let mut written = 0;
        for payload in &payloads {
            let fields = packed::Fields {
                timestamp: "2026-06-04T15:30:45.123456+00:00",
                event_type: "payload.check",
                workflow_id: None,
                host_id: "h",
                user: "u",
                payload,
            };
            let mut native = Vec::new();
            let want = json::write_object_text_within(&mut native, payload, MAX_PAYLOAD_DEPTH);
            let got = sink.emit_packed_raw(&[fields]);
            match (want, got) {
                (Ok(()), Ok(_)) => {
                    written += 1;
                    let text = std::fs::read(&path).unwrap();
                    let line = text[..text.len() - 1]
                        .rsplit(|&b| b == b'\n')
                        .next()
                        .unwrap();
                    check_line(line, Mode::Strict).unwrap();
                    let at = line
                        .windows(12)
                        .position(|w| w == b"\"payload\": {")
                        .unwrap();
                    assert!(
                        line[at + 11..].starts_with(&native),
                        "{payload:?}: the sink wrote {:?}, the native encoder {:?}",
                        String::from_utf8_lossy(&line[at + 11..]),
                        String::from_utf8_lossy(&native)
                    );
                }
                (Err(_), Err(SinkError::InvalidEvent(_))) => {}
                (want, got) => panic!("{payload:?}: native {want:?}, the sink {got:?}"),
            }
        }
        assert!(
            written > payloads.len() / 2,
            "{written} of {}",
            payloads.len()
        );
    }

    /// The default sink (in wasm) reads a packed string as UTF-8 only when it is: a byte that
    /// is not ASCII at any place of strings of every length around its 8- and 16-byte steps is
    /// refused when it makes bad UTF-8, and written when it is part of a character.
    #[test]
    fn the_default_sink_refuses_packed_strings_that_are_not_utf8() {
        let (sink, path, _dir) = default_sink_on_a_new_log();
        let mut written = 0;
        for n in 2..=40 {
            for at in 0..n - 1 {
                // The event type's bytes, found by a marker of its length.
                let marker = "q".repeat(n);
                let fields = packed::Fields {
                    timestamp: "2026-06-04T15:30:45.123456+00:00",
                    event_type: &marker,
                    workflow_id: None,
                    host_id: "h",
                    user: "u",
                    payload: "{}",
                };
                let mut bytes = Vec::new();
                assert!(packed::pack_event(&mut bytes, &fields));
                let start = bytes
                    .windows(n)
                    .position(|w| w == marker.as_bytes())
                    .unwrap();
                // A lone continuation byte: not UTF-8.
                let mut bad = bytes.clone();
                bad[start + at] = 0x80;
                match sink.emit_packed(sink.lock(), &bad, 1) {
                    Err(SinkError::InvalidEvent(m)) => {
                        assert!(m.contains("not UTF-8"), "{n} at {at}: {m}")
                    }
                    other => panic!("{n} at {at}: {other:?}"),
                }
                // "é" in its place: UTF-8, written.
                let mut good = bytes.clone();
                good[start + at..start + at + 2].copy_from_slice("é".as_bytes());
                sink.emit_packed(sink.lock(), &good, 1)
                    .unwrap_or_else(|e| panic!("{n} at {at}: {e}"));
                written += 1;
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), written);
        assert!(
            text.lines()
                .all(|l| check_line(l.as_bytes(), Mode::Strict).is_ok())
        );
    }
}
