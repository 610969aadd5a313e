//! The state of one sink instance's `Store`: its capabilities and limits,
//! and nothing else.
//!
//! Each capability has its own context (see [`crate::capability`]); the
//! store only groups them with the instance's name and its [`Limiter`].

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, Store, UpdateDeadline};

use crate::capability::LogFile;
use crate::capability::diagnostics::DiagnosticsCtx;
use crate::capability::log_file::LogFileCtx;
use crate::capability::wasi::WasiState;
use crate::runtime::limits::{Limiter, SinkLimits};

/// Everything one sink instance's store holds.
pub(crate) struct SinkState {
    /// The sink's name, for messages.
    pub(crate) name: Arc<str>,
    /// Enforces this instance's limits.
    pub(crate) limiter: Limiter,
    /// The `log-file` capability.
    pub(crate) log_file: LogFileCtx,
    /// The `diagnostics` capability.
    pub(crate) diagnostics: DiagnosticsCtx,
    /// The empty WASI of wasip2 components, made at their first WASI call
    /// (most sinks import none: its context and random sources were 1% of
    /// a one-shot `chainsink emit`).
    pub(crate) wasi: Option<WasiState>,
    /// Whether the host checks what this instance appends.
    pub(crate) check_appends: bool,
}

impl SinkState {
    /// The state of a new instance of the sink `name` on `log`.
    pub(crate) fn new(
        log: Arc<LogFile>,
        name: Arc<str>,
        limits: SinkLimits,
        check_appends: bool,
    ) -> Self {
        SinkState {
            log_file: LogFileCtx::new(log, &limits, check_appends),
            diagnostics: DiagnosticsCtx::new(name.clone()),
            wasi: None,
            limiter: Limiter::new(limits),
            name,
            check_appends,
        }
    }

    /// The state of a fresh instance of the same sink on the same log.
    pub(crate) fn fresh(&self) -> SinkState {
        SinkState::new(
            self.log().clone(),
            self.name.clone(),
            self.limiter.limits().clone(),
            self.check_appends,
        )
    }

    /// The log this instance writes.
    pub(crate) fn log(&self) -> &Arc<LogFile> {
        &self.log_file.log
    }

    /// Resets the per-call state before a call into the sink.
    pub(crate) fn start_call(&mut self) {
        self.diagnostics.release();
        self.log_file.start_call();
        self.limiter.start_call();
    }

    /// The epoch deadline callback: extend the call's deadline by the host
    /// time spent for it since, or trap.
    pub(crate) fn deadline_reached(&mut self, tick: Duration) -> wasmtime::Result<UpdateDeadline> {
        let credit = std::mem::take(&mut self.log_file.host_time);
        self.limiter.deadline_reached(tick, credit)
    }
}

/// A store for a new instance, its limits enforced: memory, tables and
/// instances by its limiter, time by the epoch deadline (advanced by the
/// runtime's ticker every `tick`).
pub(crate) fn new_store(engine: &Engine, state: SinkState, tick: Duration) -> Store<SinkState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(move |mut ctx| ctx.data_mut().deadline_reached(tick));
    store
}

/// A store to stand in for a discarded instance's: the same log and name,
/// no instance, no memory. Swapping it in drops the poisoned instance (and
/// frees its pool slot) at once, while the `Sink` keeps reporting why.
pub(crate) fn discarded_store(old: &Store<SinkState>) -> Store<SinkState> {
    let data = old.data();
    let state = SinkState::new(
        data.log().clone(),
        data.name.clone(),
        data.limiter.limits().clone(),
        false,
    );
    Store::new(old.engine(), state)
}
