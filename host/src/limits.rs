//! Resource limits for one sink instance.

use std::time::Duration;

/// What one sink instance may use. Exceeding a limit traps that instance only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkLimits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Largest table, in elements.
    pub table_elements: usize,
    /// Most core instances the component may create.
    pub instances: usize,
    /// Longest a single call into the sink may run.
    pub call_timeout: Duration,
    /// Fuel per call, when set (deterministic instruction budget).
    pub fuel: Option<u64>,
}

impl Default for SinkLimits {
    fn default() -> Self {
        SinkLimits {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 64,
            call_timeout: Duration::from_secs(1),
            fuel: None,
        }
    }
}

impl SinkLimits {
    /// The `wasmtime` store limiter for these limits.
    pub(crate) fn store_limits(&self) -> wasmtime::StoreLimits {
        wasmtime::StoreLimitsBuilder::new()
            .memory_size(self.memory_bytes)
            .table_elements(self.table_elements)
            .instances(self.instances)
            .trap_on_grow_failure(true)
            .build()
    }
}
