//! The wasmtime engine for sinks: pooling (or on-demand) allocation,
//! copy-on-write memory images, epoch interruption, optional fuel.
//!
//! # Sized to the process
//!
//! Every total of the pool (component instances, core instances, memories,
//! tables, and the async stacks wasmtime reserves beside them) is derived
//! from [`RuntimeConfig::max_sinks`]: a runtime for one sink reserves one
//! slot of each, not wasmtime's default of 1000 (whose stack pool alone was
//! 40% of a one-shot `chainsink emit`'s CPU: 1,002 `mprotect` calls).
//!
//! # Components the pool cannot hold
//!
//! The pool's per-component limits (core instances, memories, tables, each
//! slot's size) are fixed when the engine is built. A component over them
//! (componentize-py makes components with 14 core instances) is loaded into
//! a second engine with on-demand allocation, built at first need with the
//! same settings otherwise ([`base`]): the per-sink memory, table, instance,
//! time and fuel limits live in each store and hold under either allocator.

use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::SinkLimits;
use super::{Allocator, LoadError, RuntimeConfig};

/// Core instances one sink may hold in the pool (a Rust component has 3).
pub(super) const POOL_CORE_INSTANCES_PER_SINK: u32 = 8;
/// Linear memories one sink may hold in the pool. The pool itself holds one
/// memory slot per sink (each reserves 4 GiB of address space, so that
/// compiled code needs no bounds checks): sinks with two memories use two.
const POOL_MEMORIES_PER_SINK: u32 = 2;
/// Tables one sink may hold in the pool.
const POOL_TABLES_PER_SINK: u32 = 4;

// `fn base(fuel) -> Config`: the settings every sink engine shares, in the
// one file `build.rs` also compiles, to precompile the embedded default sink
// for exactly this configuration.
include!("engine_base.rs");

/// The shared settings ([`base`]) and what only the running host adds: the
/// code memory that lets the embedded default sink run in place
/// ([`super::code_memory`]).
fn runtime_base(fuel: bool) -> wasmtime::Config {
    let mut c = base(fuel);
    c.with_custom_code_memory(super::code_memory::for_engine(
        super::DEFAULT_SINK_PRECOMPILED,
    ));
    c
}

/// An engine with on-demand allocation and the shared settings.
pub(super) fn on_demand(fuel: bool) -> Result<Engine, LoadError> {
    Engine::new(&runtime_base(fuel)).map_err(|e| LoadError::Engine(format!("{e:#}")))
}

/// Builds the engine: pooling if asked and possible, else on-demand.
pub(super) fn build(config: &RuntimeConfig, fuel: bool) -> Result<(Engine, Allocator), LoadError> {
    let reason = if config.pooling {
        let mut pool = PoolingAllocationConfig::new();
        let n = config.max_sinks.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES_PER_SINK))
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_SINK)
            .total_memories(n)
            .max_memories_per_component(POOL_MEMORIES_PER_SINK)
            .total_tables(n.saturating_mul(POOL_TABLES_PER_SINK))
            .max_tables_per_component(POOL_TABLES_PER_SINK)
            // Sinks never run on async stacks, but wasmtime reserves (and
            // guard-pages) a pool of them whenever its `async` feature is
            // compiled in (wasmtime-wasi turns it on): its default is 1000.
            .total_stacks(n)
            .table_elements(
                config
                    .limits
                    .table_elements
                    .max(SinkLimits::default().table_elements),
            )
            // Freed slots keep no pages: an idle pool costs address space only.
            .linear_memory_keep_resident(0)
            .table_keep_resident(0);
        let mut c = runtime_base(fuel);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&c) {
            Ok(engine) => return Ok((engine, Allocator::Pooling { max_sinks: n })),
            Err(e) => {
                let reason =
                    format!("the pooling allocator's reservation for {n} sinks failed: {e:#}");
                tracing::warn!(
                    "{reason}; falling back to on-demand allocation (slower instantiation; \
                     lower RuntimeConfig::max_sinks or raise the address-space limit, `ulimit -v`)"
                );
                reason
            }
        }
    } else {
        "pooling was turned off".to_string()
    };
    Ok((on_demand(fuel)?, Allocator::OnDemand { reason }))
}
