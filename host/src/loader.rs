//! Loading sink components: one `Engine` per process, one `Linker`, an
//! `InstancePre` per component, and a fresh `Store` per sink instance.
//!
//! # The engine
//!
//! A [`SinkRuntime`] owns the process's wasmtime [`Engine`], configured for
//! many small, untrusted instances:
//!
//! - **Pooling allocator**: memories, tables and instance metadata of up to
//!   [`RuntimeConfig::max_sinks`] live instances come from pools reserved
//!   once, so instantiating is a slot lookup, not a round of `mmap`s. If the
//!   reservation fails (an address-space limit such as `ulimit -v`), the
//!   runtime falls back to on-demand allocation, logs a warning, and
//!   [`SinkRuntime::allocator`] says so.
//! - **Copy-on-write memory images**: an instance's initial memory maps the
//!   compiled component's data segments; an idle instance costs only the
//!   pages it has written.
//! - **Epoch interruption**: a ticker thread advances the epoch every 10 ms;
//!   each call into a sink gets a deadline ([`SinkLimits::call_timeout`]).
//! - **Fuel** (optional, [`RuntimeConfig::fuel`]): a deterministic budget per
//!   call ([`SinkLimits::fuel`]).
//!
//! # Components
//!
//! A component is compiled once per runtime (an in-memory table keyed by its
//! SHA-256 shares the code among every sink that uses it) and, with a
//! [`RuntimeConfig::cache_dir`], once per machine: see [`crate::cache`].
//! Loading checks it against the `audit-sink` world and pre-instantiates it.
//!
//! # Instances
//!
//! Each sink instance gets its own `Store` holding its log (the one
//! capability), its limits, an empty WASI context for wasip2 components, and
//! the host's [`crate::guard`] on what it appends.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chainsink_format::Hash;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{AuditSink, AuditSinkPre};
use crate::cache::{CacheError, CacheOutcome, ComponentCache};
use crate::capability::LogFile;
use crate::guard::AppendGuard;
use crate::limits::{Limiter, SinkLimits};
use crate::sink::{Sink, SinkError, SinkOptions};

/// The default sink component, built from `guest-sink/` by `build.rs`.
pub const DEFAULT_SINK_WASM: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/chainsink_guest_sink.component.wasm"
));

/// Name the embedded default sink goes by in messages.
pub const DEFAULT_SINK_NAME: &str = "default sink (embedded)";

/// The interfaces chainsink provides to sinks.
pub const PROVIDED_IMPORTS: &[&str] = &[
    "chainsink:audit/types@0.1.0",
    "chainsink:audit/log-file@0.1.0",
    "chainsink:audit/diagnostics@0.1.0",
];

/// The interface a sink must export.
pub const REQUIRED_EXPORT: &str = "chainsink:audit/sink@0.1.0";

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The WASI monotonic clock interface as wasmtime-wasi defines it; its two
/// `subscribe-*` functions are replaced (see [`NoSleep`]).
const WASI_MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Core instances one sink may hold in the pool (a Rust component has 3).
const POOL_CORE_INSTANCES_PER_SINK: u32 = 8;
/// Linear memories one sink may hold in the pool. The pool itself holds one
/// memory slot per sink (each reserves 4 GiB of address space, so that
/// compiled code needs no bounds checks): sinks with two memories use two.
const POOL_MEMORIES_PER_SINK: u32 = 2;
/// Tables one sink may hold in the pool.
const POOL_TABLES_PER_SINK: u32 = 4;
/// Most WASI resources (streams, pollables...) one instance may hold.
const MAX_WASI_RESOURCES: usize = 1024;
/// Largest `wasi:random` request, in bytes.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Why a component could not be loaded as a sink.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file could not be read.
    #[error("cannot read sink component {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid component for this engine.
    #[error(
        "sink {name} is not a valid wasm component: {message}; build it with `cargo component` or `wasm-tools component new`"
    )]
    Compile {
        /// The sink's name (its path).
        name: String,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The component does not implement the `audit-sink` world.
    #[error(
        "sink {name} does not fit the chainsink:audit/audit-sink world (wit/audit.wit):\n{}",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Mismatch {
        /// The sink's name (its path).
        name: String,
        /// Each thing that is wrong.
        problems: Vec<String>,
    },
    /// The engine could not be configured.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// The component cache directory cannot be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// How the runtime allocates instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// The pooling allocator, with room for this many live sink instances.
    Pooling {
        /// Live sink instances the pool holds.
        max_sinks: u32,
    },
    /// On-demand allocation (`mmap` per instance).
    OnDemand {
        /// Why not pooling: it was turned off, or its reservation failed.
        reason: String,
    },
}

/// How to build a [`SinkRuntime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The limits each sink gets, unless opened with its own
    /// ([`SinkRuntime::open_with_limits`]).
    pub limits: SinkLimits,
    /// Live sink instances the pooling allocator reserves room for. Opening
    /// more at once fails (with a clear error) until some are dropped.
    /// Default 1000.
    pub max_sinks: u32,
    /// Use the pooling allocator (default); falls back to on-demand, with a
    /// warning, when the reservation fails.
    pub pooling: bool,
    /// Cache compiled components in this directory (see [`crate::cache`]);
    /// `None` (the default) compiles in every process.
    pub cache_dir: Option<PathBuf>,
    /// Meter fuel, so [`SinkLimits::fuel`] can be enforced. Costs some speed
    /// on every call, so it is on only when asked for, or when
    /// `limits.fuel` is set.
    pub fuel: bool,
    /// Which sinks get every call's appended bytes checked against its
    /// receipts (see [`crate::guard`]).
    pub check_appends: AppendChecks,
}

/// Which sinks the host re-checks at every call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppendChecks {
    /// Every sink.
    All,
    /// Every sink but the embedded default (the default): its records are
    /// `chainsink-format`'s own and its bytes are part of this binary, so
    /// checking it would only hash every record twice.
    #[default]
    ThirdParty,
    /// None: leave it to `chainsink verify`.
    Off,
}

impl Default for RuntimeConfig {
    /// Default limits, a pool of 1000 sinks, no disk cache, no fuel, append
    /// checks on every sink but the embedded default.
    fn default() -> Self {
        RuntimeConfig {
            limits: SinkLimits::default(),
            max_sinks: 1000,
            pooling: true,
            cache_dir: None,
            fuel: false,
            check_appends: AppendChecks::default(),
        }
    }
}

/// The state of one sink instance's `Store`: its log and nothing else.
pub(crate) struct SinkState {
    /// The log: shared only with the replacement store a discarded instance
    /// leaves behind (see [`discarded_store`]).
    pub(crate) log: Arc<LogFile>,
    /// Enforces this instance's limits.
    pub(crate) limiter: Limiter,
    /// What this instance appended, checked against its receipts.
    pub(crate) guard: AppendGuard,
    /// An empty WASI context for components built for wasip2: no dirs, env,
    /// args, sockets or stdio.
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) name: Arc<str>,
    /// The last error-level diagnostic (a panic message, usually).
    pub(crate) last_error: Option<String>,
    /// Rate limit on diagnostics written to the host's log.
    diagnostics: DiagnosticBudget,
}

/// Diagnostic lines one instance may write per second; more are counted and
/// dropped (a sink must not be able to flood the host's stderr).
const DIAGNOSTICS_PER_SECOND: u32 = 100;

/// The current one-second window of an instance's diagnostics.
struct DiagnosticBudget {
    window: Instant,
    used: u32,
    dropped: u64,
}

impl SinkState {
    fn new(log: Arc<LogFile>, name: Arc<str>, limits: SinkLimits, check_appends: bool) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        SinkState {
            log,
            limiter: Limiter::new(limits),
            guard: AppendGuard::new(check_appends),
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .max_random_size(MAX_RANDOM_BYTES)
                .build(),
            table,
            name,
            last_error: None,
            diagnostics: DiagnosticBudget {
                window: Instant::now(),
                used: 0,
                dropped: 0,
            },
        }
    }

    /// Checks what this instance appended since the last check against the
    /// receipts it returned (see [`crate::guard`]).
    pub(crate) fn check_appended(
        &mut self,
        receipts: &[crate::bindings::chainsink::audit::types::Receipt],
        chained: bool,
    ) -> Result<(), String> {
        self.guard.check(receipts, chained)
    }
}

impl WasiView for SinkState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A store to stand in for a discarded instance's: the same log and name,
/// no instance, no memory. Swapping it in drops the poisoned instance (and
/// frees its pool slot) at once, while the `Sink` keeps reporting why.
pub(crate) fn discarded_store(old: &Store<SinkState>) -> Store<SinkState> {
    let data = old.data();
    let state = SinkState::new(
        data.log.clone(),
        data.name.clone(),
        data.limiter.limits().clone(),
        false,
    );
    Store::new(old.engine(), state)
}

/// Wasmtime setup shared by every sink in the process.
///
/// Holds the engine, the linker with chainsink's imports (and an empty WASI
/// for wasip2 components), the compiled components, the limits each instance
/// gets, and the thread that advances the epoch for call deadlines. Construct
/// one per process and pass it around (it is `Send + Sync`); see the
/// [module docs](self) for how the engine is set up.
pub struct SinkRuntime {
    engine: Engine,
    engine_key: Hash,
    linker: Linker<SinkState>,
    limits: SinkLimits,
    allocator: Allocator,
    cache: Option<ComponentCache>,
    fuel: bool,
    check_appends: AppendChecks,
    /// SHA-256 of the embedded default sink.
    default_sha256: Hash,
    /// Components compiled by this runtime, by SHA-256 of their bytes.
    compiled: Mutex<HashMap<Hash, Component>>,
    /// The embedded default sink, once loaded.
    default: Mutex<Option<SinkComponent>>,
}

impl std::fmt::Debug for SinkRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkRuntime")
            .field("limits", &self.limits)
            .field("allocator", &self.allocator)
            .field("cache", &self.cache)
            .field("fuel", &self.fuel)
            .finish_non_exhaustive()
    }
}

/// Where a loaded component's machine code came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Already compiled by this runtime: the code is shared.
    Memory,
    /// Compiled from the wasm bytes (no disk cache configured).
    Compiled,
    /// Through the disk cache: a hit, or compiled (and stored).
    Cache(CacheOutcome),
}

/// A component checked against the `audit-sink` world and ready to
/// instantiate cheaply, any number of times.
#[derive(Clone)]
pub struct SinkComponent {
    name: Arc<str>,
    pre: AuditSinkPre<SinkState>,
    imports: Vec<String>,
    sha256: Hash,
    size: usize,
    origin: Origin,
}

impl std::fmt::Debug for SinkComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkComponent")
            .field("name", &self.name)
            .field("imports", &self.imports)
            .field("sha256", &self.sha256.to_hex())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl SinkComponent {
    /// The sink's name: its path, or the default sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of everything the component imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// SHA-256 of the component's bytes, as 64 hex digits.
    pub fn sha256(&self) -> String {
        self.sha256.to_hex()
    }

    /// Size of the component's bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Where its compiled code came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        self.pre.instance_pre().component()
    }
}

/// What a component imports and exports, and what keeps it from being a sink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldCheck {
    /// Every import's name.
    pub imports: Vec<String>,
    /// Every export's name.
    pub exports: Vec<String>,
    /// Each thing that keeps it from fitting `audit-sink`; empty when it fits.
    pub problems: Vec<String>,
}

impl SinkRuntime {
    /// A runtime with these limits and otherwise the defaults of
    /// [`RuntimeConfig`] (pooling for 1000 sinks, no disk cache).
    pub fn new(limits: SinkLimits) -> Result<SinkRuntime, LoadError> {
        SinkRuntime::with_config(RuntimeConfig {
            limits,
            ..RuntimeConfig::default()
        })
    }

    /// A runtime set up as `config` says.
    pub fn with_config(config: RuntimeConfig) -> Result<SinkRuntime, LoadError> {
        let fuel = config.fuel || config.limits.fuel.is_some();
        let (engine, allocator) = build_engine(&config, fuel)?;
        let engine_err = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut linker = Linker::new(&engine);
        AuditSink::add_to_linker::<SinkState, HasSelf<SinkState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        // Sleeping in a sink would block the host thread where no epoch
        // deadline can reach it: a sink's clock subscriptions are ready at
        // once (see `NoSleep`).
        linker.allow_shadowing(true);
        let mut clock = linker.instance(WASI_MONOTONIC_CLOCK).map_err(engine_err)?;
        clock
            .func_wrap("subscribe-duration", |mut store, (_,): (u64,)| {
                Ok((NoSleep::subscribe(store.data_mut())?,))
            })
            .map_err(engine_err)?;
        clock
            .func_wrap("subscribe-instant", |mut store, (_,): (u64,)| {
                Ok((NoSleep::subscribe(store.data_mut())?,))
            })
            .map_err(engine_err)?;
        linker.allow_shadowing(false);
        let cache = match &config.cache_dir {
            Some(dir) => Some(ComponentCache::new(dir)?),
            None => None,
        };
        // The ticker lives as long as the engine, not the runtime: a sink
        // (its store holds the engine) must keep its deadline after the
        // runtime that opened it is dropped. It stops within a tick of the
        // last engine handle going.
        let ticking = engine.weak();
        thread::Builder::new()
            .name("chainsink-epoch".into())
            .spawn(move || {
                loop {
                    thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(SinkRuntime {
            engine_key: ComponentCache::engine_key(&engine),
            engine,
            linker,
            limits: config.limits,
            allocator,
            cache,
            fuel,
            check_appends: config.check_appends,
            default_sha256: Hash::of(DEFAULT_SINK_WASM),
            compiled: Mutex::new(HashMap::new()),
            default: Mutex::new(None),
        })
    }

    /// The limits every sink instance of this runtime gets by default.
    pub fn limits(&self) -> &SinkLimits {
        &self.limits
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How instances are allocated: pooling, or on-demand and why.
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// The disk cache of compiled components, if any.
    pub fn cache(&self) -> Option<&ComponentCache> {
        self.cache.as_ref()
    }

    /// Whether fuel is metered (so [`SinkLimits::fuel`] can be enforced).
    pub fn meters_fuel(&self) -> bool {
        self.fuel
    }

    /// Loads the embedded default sink (compiled once per runtime, and
    /// precompiled into the disk cache at first use when there is one).
    pub fn default_component(&self) -> Result<SinkComponent, LoadError> {
        let mut default = self.default.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*default {
            let mut c = c.clone();
            c.origin = Origin::Memory;
            return Ok(c);
        }
        let c = self.load_bytes(DEFAULT_SINK_NAME, DEFAULT_SINK_WASM)?;
        *default = Some(c.clone());
        Ok(c)
    }

    /// Loads a sink component from a `.wasm` file.
    pub fn load_file(&self, path: &Path) -> Result<SinkComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Compiles `bytes` (or finds them compiled) and checks them against the
    /// `audit-sink` world.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<SinkComponent, LoadError> {
        let (component, sha256, origin) = self.compile(name, bytes)?;
        self.check(name, component, sha256, bytes.len(), origin)
    }

    /// The compiled form of `bytes`: from this runtime's table, the disk
    /// cache, or Cranelift, in that order.
    pub(crate) fn compile(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Component, Hash, Origin), LoadError> {
        let sha256 = Hash::of(bytes);
        if let Some(c) = self.lock_compiled().get(&sha256) {
            return Ok((c.clone(), sha256, Origin::Memory));
        }
        let compiled = match &self.cache {
            Some(cache) => cache
                .load(&self.engine, &self.engine_key, bytes, &sha256)
                .map(|(c, outcome)| (c, Origin::Cache(outcome))),
            None => Component::from_binary(&self.engine, bytes).map(|c| (c, Origin::Compiled)),
        };
        let (component, origin) = compiled.map_err(|e| LoadError::Compile {
            name: name.into(),
            message: format!("{e:#}"),
        })?;
        self.lock_compiled().insert(sha256, component.clone());
        Ok((component, sha256, origin))
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, Component>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `component` imports and exports, and every way it does not fit
    /// the `audit-sink` world as this runtime provides it.
    pub fn check_world(&self, component: &Component) -> WorldCheck {
        self.world(component).0
    }

    fn world(&self, component: &Component) -> (WorldCheck, Option<AuditSinkPre<SinkState>>) {
        let ty = component.component_type();
        let mut check = WorldCheck::default();
        for (import, _) in ty.imports(&self.engine) {
            check.imports.push(import.to_string());
            if !PROVIDED_IMPORTS.contains(&import) && !import.starts_with("wasi:") {
                check.problems.push(format!(
                    "it imports `{import}`, which chainsink does not provide (a sink may import only {} and WASI, which it gets empty)",
                    PROVIDED_IMPORTS.join(", ")
                ));
            }
        }
        check.exports = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if !check.exports.iter().any(|e| e == REQUIRED_EXPORT) {
            check.problems.push(format!(
                "it does not export `{REQUIRED_EXPORT}` (it exports: {})",
                if check.exports.is_empty() {
                    "nothing".to_string()
                } else {
                    check.exports.join(", ")
                }
            ));
        }
        if !check.problems.is_empty() {
            return (check, None);
        }
        match self.linker.instantiate_pre(component) {
            Ok(pre) => match AuditSinkPre::new(pre) {
                Ok(pre) => return (check, Some(pre)),
                Err(e) => check
                    .problems
                    .push(format!("its exports do not match: {e:#}")),
            },
            Err(e) => check
                .problems
                .push(format!("its imports do not match: {e:#}")),
        }
        (check, None)
    }

    fn check(
        &self,
        name: &str,
        component: Component,
        sha256: Hash,
        size: usize,
        origin: Origin,
    ) -> Result<SinkComponent, LoadError> {
        match self.world(&component) {
            (check, Some(pre)) => Ok(SinkComponent {
                name: name.into(),
                pre,
                imports: check.imports,
                sha256,
                size,
                origin,
            }),
            (check, None) => Err(LoadError::Mismatch {
                name: name.into(),
                problems: check.problems,
            }),
        }
    }

    /// Instantiates `component` in a fresh store that holds only `log`, and
    /// opens it (resuming the chain from the log's tail), with this
    /// runtime's limits.
    pub fn open(
        &self,
        component: &SinkComponent,
        log: LogFile,
        options: &SinkOptions,
    ) -> Result<Sink, SinkError> {
        self.open_with_limits(component, log, options, &self.limits)
    }

    /// Like [`open`](Self::open), with limits of its own for this instance.
    ///
    /// A fuel limit needs a runtime that meters fuel ([`RuntimeConfig::fuel`]);
    /// without one, opening fails with an error that says so. Memory, table
    /// and time limits may be anything; the pool's per-slot maximum (4 GiB of
    /// memory, the runtime's table limit) still applies.
    pub fn open_with_limits(
        &self,
        component: &SinkComponent,
        log: LogFile,
        options: &SinkOptions,
        limits: &SinkLimits,
    ) -> Result<Sink, SinkError> {
        if !Engine::same(component.component().engine(), &self.engine) {
            return Err(SinkError::Trap {
                sink: component.name.to_string(),
                call: "instantiate",
                reason: "the component was loaded by another SinkRuntime; load it with the \
                         runtime that opens it"
                    .into(),
            });
        }
        if limits.fuel.is_some() && !self.fuel {
            return Err(SinkError::Trap {
                sink: component.name.to_string(),
                call: "instantiate",
                reason: "a fuel limit was set for this sink, but its runtime does not meter \
                         fuel; build the runtime with RuntimeConfig::fuel (or --sink-fuel)"
                    .into(),
            });
        }
        let path = log.path().to_path_buf();
        let state = SinkState::new(
            Arc::new(log),
            component.name.clone(),
            limits.clone(),
            match self.check_appends {
                AppendChecks::All => true,
                AppendChecks::ThirdParty => component.sha256 != self.default_sha256,
                AppendChecks::Off => false,
            },
        );
        let ticks = state.limiter.deadline_ticks(EPOCH_TICK);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .epoch_deadline_callback(|mut ctx| ctx.data_mut().limiter.deadline_reached(EPOCH_TICK));
        let fuel = self.fuel.then(|| limits.fuel.unwrap_or(u64::MAX));
        Sink::start(
            store,
            &component.pre,
            component.name.clone(),
            path,
            options,
            ticks,
            fuel,
        )
    }
}

/// Builds the engine: pooling if asked and possible, else on-demand.
fn build_engine(config: &RuntimeConfig, fuel: bool) -> Result<(Engine, Allocator), LoadError> {
    let base = || {
        let mut c = Config::new();
        c.epoch_interruption(true)
            .consume_fuel(fuel)
            .memory_init_cow(true)
            .parallel_compilation(true);
        c
    };
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
            .table_elements(
                config
                    .limits
                    .table_elements
                    .max(SinkLimits::default().table_elements),
            )
            // Freed slots keep no pages: an idle pool costs address space only.
            .linear_memory_keep_resident(0)
            .table_keep_resident(0);
        let mut c = base();
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
    let engine = Engine::new(&base()).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    Ok((engine, Allocator::OnDemand { reason }))
}

/// A clock subscription that is ready at once.
///
/// wasmtime-wasi's own would sleep the host thread for as long as the sink
/// asks, out of reach of the epoch deadline (which only interrupts wasm
/// code): a sink calling `sleep(1 hour)` would hang the executor. With this,
/// sleeping returns at once and a sink that waits in a loop spins in wasm,
/// where its deadline stops it.
struct NoSleep;

impl NoSleep {
    fn subscribe(state: &mut SinkState) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = state.table.push(NoSleep)?;
        subscribe(&mut state.table, ready)
    }
}

impl Pollable for NoSleep {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async {})
    }
}

impl crate::bindings::chainsink::audit::types::Host for SinkState {}

impl SinkState {
    /// Refuses reads larger than the instance's memory limit: the bytes
    /// could not fit in the sink anyway, and the host must not allocate
    /// gigabytes on a sink's say-so.
    fn check_read(&self, len: u32) -> Result<(), String> {
        let limit = self.limiter.limits().memory_bytes;
        if len as usize > limit {
            return Err(format!(
                "a read of {len} bytes is refused: it is larger than this sink's memory limit \
                 ({limit} bytes); read in smaller pieces"
            ));
        }
        Ok(())
    }

    /// Whether another diagnostic line may be written now; reports lines
    /// dropped in the last window.
    fn diagnostic_allowed(&mut self) -> bool {
        let budget = &mut self.diagnostics;
        if budget.window.elapsed() >= Duration::from_secs(1) {
            if budget.dropped > 0 {
                tracing::warn!(
                    sink = &*self.name,
                    "{} diagnostic line(s) dropped: more than {DIAGNOSTICS_PER_SECOND} a second",
                    budget.dropped
                );
            }
            budget.window = Instant::now();
            budget.used = 0;
            budget.dropped = 0;
        }
        if budget.used < DIAGNOSTICS_PER_SECOND {
            budget.used += 1;
            true
        } else {
            budget.dropped += 1;
            false
        }
    }

    /// Runs one log operation, crediting its time back to the call's
    /// deadline (host I/O is not the sink's time).
    fn timed<R>(&mut self, op: impl FnOnce(&LogFile) -> R) -> R {
        let start = Instant::now();
        let result = op(&self.log);
        self.limiter.credit_host_time(start.elapsed());
        result
    }
}

impl crate::bindings::chainsink::audit::log_file::Host for SinkState {
    fn append(&mut self, data: Vec<u8>) -> Result<u64, String> {
        let offset = self
            .timed(|log| log.append(&data))
            .map_err(|e| format!("append to {}: {e}", self.log.path().display()))?;
        self.guard.appended(offset, &data);
        Ok(offset)
    }

    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        self.check_read(len)?;
        self.timed(|log| log.read(offset, len))
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        self.check_read(len)?;
        self.timed(|log| log.read_tail(len))
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    fn size(&mut self) -> Result<u64, String> {
        self.timed(|log| log.size())
            .map_err(|e| format!("stat {}: {e}", self.log.path().display()))
    }

    fn sync(&mut self) -> Result<(), String> {
        self.timed(|log| log.sync())
            .map_err(|e| format!("sync {}: {e}", self.log.path().display()))
    }
}

/// Longest diagnostic line kept; longer ones are cut.
const MAX_DIAGNOSTIC: usize = 4096;

impl crate::bindings::chainsink::audit::diagnostics::Host for SinkState {
    fn log(
        &mut self,
        level: crate::bindings::chainsink::audit::diagnostics::Level,
        message: String,
    ) {
        use crate::bindings::chainsink::audit::diagnostics::Level;
        let mut message = message;
        if message.len() > MAX_DIAGNOSTIC {
            let mut cut = MAX_DIAGNOSTIC;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        let shown = self.diagnostic_allowed();
        let sink = &*self.name;
        match level {
            Level::Error if !shown => self.last_error = Some(message),
            _ if !shown => {}
            Level::Debug => tracing::debug!(sink, "{message}"),
            Level::Info => tracing::info!(sink, "{message}"),
            Level::Warn => tracing::warn!(sink, "{message}"),
            Level::Error => {
                tracing::error!(sink, "{message}");
                self.last_error = Some(message);
            }
        }
    }
}
