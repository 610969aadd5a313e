//! Resource limits for one sink instance, and how they are enforced.
//!
//! Every sink instance gets its own [`SinkLimits`]; exceeding one traps that
//! instance only, with a [`LimitExceeded`] reason naming the limit and how to
//! raise it:
//!
//! | limit | enforced by | when exceeded |
//! |---|---|---|
//! | [`memory_bytes`](SinkLimits::memory_bytes) | the store's [`ResourceLimiter`]: total linear memory over all the instance's memories | `memory.grow` traps: "out of memory" |
//! | [`table_elements`](SinkLimits::table_elements) | the limiter, per table | `table.grow` traps |
//! | [`instances`](SinkLimits::instances) | the limiter: core instances (a component holds several) | instantiation fails |
//! | [`call_timeout`](SinkLimits::call_timeout) | epoch interruption: a deadline per call | the call traps: "deadline exceeded" |
//! | [`fuel`](SinkLimits::fuel) | fuel metering, refilled before each call | the call traps: "out of fuel" |
//! | [`append_bytes`](SinkLimits::append_bytes) | the `log-file` capability, at each append | the append that would pass it traps; nothing of it is written |
//!
//! Time spent in the host on the sink's behalf (appending, fsync) does not
//! count against `call_timeout`: a slow disk must not make a good sink look
//! hung. That credit is capped at one `call_timeout` per call, so a call never
//! runs longer than about twice its limit. Every append also checks the
//! deadline (with the same credit) before it writes: a sink that spends its
//! time in the host cannot write past its deadline.

use std::time::Duration;

use wasmtime::{ResourceLimiter, UpdateDeadline};

/// The most [`SinkLimits::append_bytes`] may be: 1 GiB. `chainsink verify`
/// accepts a run of refused bytes up to this long (marked by the host), so
/// the bound also bounds how far it reads past bytes that are not records.
pub const MAX_APPEND_BYTES: u64 = 1 << 30;

/// What one sink instance may use. Exceeding a limit traps that instance only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkLimits {
    /// Largest linear memory, in bytes (the sum over the instance's memories).
    pub memory_bytes: usize,
    /// Largest table, in elements.
    pub table_elements: usize,
    /// Most core instances the component may create.
    pub instances: usize,
    /// Longest a single call into the sink may run.
    pub call_timeout: Duration,
    /// Fuel per call, when set (deterministic instruction budget).
    pub fuel: Option<u64>,
    /// Most bytes one call may append to the log (at most
    /// [`MAX_APPEND_BYTES`]; more counts as that). An honest sink appends
    /// about six times the event text at most (every non-ASCII character
    /// becomes a `\uXXXX` escape) plus a few hundred bytes a record.
    pub append_bytes: u64,
}

impl Default for SinkLimits {
    /// 64 MiB of memory, 20,000 table elements, 64 core instances, 1 s per
    /// call, no fuel limit, 64 MiB of appends per call.
    fn default() -> Self {
        SinkLimits {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 64,
            call_timeout: Duration::from_secs(1),
            fuel: None,
            append_bytes: 64 << 20,
        }
    }
}

/// Which limit a sink instance ran into: the reason its call trapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Growing linear memory past [`SinkLimits::memory_bytes`].
    #[error(
        "out of memory: the sink tried to grow its linear memory to {}, over its limit of {} \
         (raise it with --sink-memory, or SinkLimits::memory_bytes)",
        mib(*requested), mib(*limit)
    )]
    Memory {
        /// Total bytes the growth asked for.
        requested: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Growing a table past [`SinkLimits::table_elements`].
    #[error(
        "table limit reached: the sink tried to grow a table to {requested} elements, over its \
         limit of {limit} (raise it with --sink-table-elements, or SinkLimits::table_elements)"
    )]
    Table {
        /// Elements the growth asked for.
        requested: usize,
        /// The limit.
        limit: usize,
    },
    /// The call ran past [`SinkLimits::call_timeout`].
    #[error(
        "deadline exceeded: the call ran longer than its limit of {} ms and was interrupted \
         (raise it with --sink-timeout, or SinkLimits::call_timeout)",
        limit.as_millis()
    )]
    Deadline {
        /// The time limit per call.
        limit: Duration,
    },
    /// An append would pass [`SinkLimits::append_bytes`] in one call.
    #[error(
        "append limit reached: the sink tried to append {tried} bytes in one call, over its \
         limit of {} (nothing of that append was written; raise it with --sink-append-limit, \
         or SinkLimits::append_bytes)",
        mib(usize::try_from(*limit).unwrap_or(usize::MAX))
    )]
    AppendBytes {
        /// Bytes the call would have appended with this append.
        tried: u64,
        /// The limit, in bytes.
        limit: u64,
    },
}

/// `n` bytes as MiB with one decimal (`64.0 MiB`), for messages.
fn mib(n: usize) -> String {
    format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
}

/// Enforces [`SinkLimits`] on one store: a [`ResourceLimiter`] for memory,
/// tables and instances, and the epoch deadline for time.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: SinkLimits,
    /// Linear memory granted so far, over all the store's memories.
    memory: usize,
    /// Host time credited to the current call so far (capped at one
    /// `call_timeout`).
    credited: Duration,
}

impl Limiter {
    /// A limiter for `limits`.
    pub(crate) fn new(limits: SinkLimits) -> Limiter {
        Limiter {
            limits,
            memory: 0,
            credited: Duration::ZERO,
        }
    }

    /// The limits this limiter enforces.
    pub(crate) fn limits(&self) -> &SinkLimits {
        &self.limits
    }

    /// Starts a call: nothing credited yet.
    pub(crate) fn start_call(&mut self) {
        self.credited = Duration::ZERO;
    }

    /// Called when a call reaches its epoch deadline, with the host time
    /// spent on the sink's behalf since the last time (a slow disk must not
    /// make a good sink look hung): extend the deadline by it, up to one
    /// `call_timeout` per call in all, or trap with
    /// [`LimitExceeded::Deadline`].
    pub(crate) fn deadline_reached(
        &mut self,
        tick: Duration,
        host_time: Duration,
    ) -> wasmtime::Result<UpdateDeadline> {
        let credit = host_time.min(self.limits.call_timeout.saturating_sub(self.credited));
        if credit >= tick {
            self.credited += credit;
            let ticks = credit.as_nanos().div_ceil(tick.as_nanos().max(1)) as u64;
            return Ok(UpdateDeadline::Continue(ticks));
        }
        Err(LimitExceeded::Deadline {
            limit: self.limits.call_timeout,
        }
        .into())
    }

    /// Epoch ticks for one call's deadline: the timeout rounded up, plus one
    /// tick because the first may come at once.
    pub(crate) fn deadline_ticks(&self, tick: Duration) -> u64 {
        let tick = tick.as_nanos().max(1);
        (self.limits.call_timeout.as_nanos().div_ceil(tick) as u64).saturating_add(1)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = self.memory.saturating_sub(current).saturating_add(desired);
        if requested > self.limits.memory_bytes {
            return Err(LimitExceeded::Memory {
                requested,
                limit: self.limits.memory_bytes,
            }
            .into());
        }
        self.memory = requested;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // Granted by us but refused by the engine (a pool slot, or the OS):
        // a trap with the engine's reason beats a silent -1 from memory.grow.
        Err(error.context("growing linear memory failed in the host"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            return Err(LimitExceeded::Table {
                requested: desired,
                limit: self.limits.table_elements,
            }
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.instances.saturating_mul(4)
    }

    fn memories(&self) -> usize {
        self.limits.instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_counted_over_all_memories() {
        let mut l = Limiter::new(SinkLimits {
            memory_bytes: 10 << 20,
            ..SinkLimits::default()
        });
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        let err = l.memory_growing(4 << 20, 7 << 20, None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("out of memory"), "{text}");
        assert!(text.contains("11.0 MiB"), "{text}");
        assert!(text.contains("10.0 MiB"), "{text}");
        assert!(text.contains("--sink-memory"), "{text}");
        assert!(l.memory_growing(4 << 20, 6 << 20, None).unwrap());
    }

    #[test]
    fn host_time_extends_the_deadline_once() {
        let tick = Duration::from_millis(10);
        let mut l = Limiter::new(SinkLimits {
            call_timeout: Duration::from_millis(200),
            ..SinkLimits::default()
        });
        assert_eq!(l.deadline_ticks(tick), 21);
        assert!(matches!(
            l.deadline_reached(tick, Duration::from_millis(35)),
            Ok(UpdateDeadline::Continue(4))
        ));
        let Err(err) = l.deadline_reached(tick, Duration::ZERO) else {
            panic!("the deadline must trap once the credit is used")
        };
        assert!(err.to_string().contains("200 ms"), "{err}");
        // The credit is capped at one call timeout per call.
        assert!(matches!(
            l.deadline_reached(tick, Duration::from_secs(60)),
            Ok(UpdateDeadline::Continue(17))
        ));
        assert!(l.deadline_reached(tick, Duration::from_secs(60)).is_err());
        l.start_call();
        assert!(matches!(
            l.deadline_reached(tick, Duration::from_secs(60)),
            Ok(UpdateDeadline::Continue(20))
        ));
    }
}
