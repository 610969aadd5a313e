//! The sink runtime: one `Engine` per process, one `Linker`, an
//! `InstancePre` per component, and a fresh `Store` per sink instance.
//!
//! - `engine`: how the engine is configured;
//! - [`world`]: the `audit-sink` world and its version check;
//! - [`limits`]: memory, time and fuel per instance;
//! - [`cache`]: compiled components cached on disk.
//!
//! # The engine
//!
//! A [`SinkRuntime`] owns the process's wasmtime [`Engine`], configured for
//! many small, untrusted instances:
//!
//! - **Pooling allocator**: memories, tables and instance metadata of up to
//!   [`RuntimeConfig::max_sinks`] live instances come from pools reserved
//!   once, so instantiating is a slot lookup, not a round of `mmap`s. Every
//!   total of the pool is sized from `max_sinks` (a pool for one sink costs
//!   a few `mmap`s; a process that opens one sink may as well turn pooling
//!   off, as the CLI does). If the reservation fails (an address-space limit
//!   such as `ulimit -v`), the runtime falls back to on-demand allocation,
//!   logs a warning, and [`SinkRuntime::allocator`] says so.
//! - **Components the pool cannot hold** (more core instances, memories or
//!   tables than a pool slot has room for, as componentize-py and
//!   componentize-js make) are loaded into a second, on-demand engine with
//!   the same settings, built at first need; their limits (memory, tables,
//!   instances, time, fuel) are enforced per store exactly as for pooled
//!   sinks. [`SinkComponent::pooled`] says which a component got.
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
//! [`RuntimeConfig::cache_dir`], once per machine: see [`cache`]. The
//! embedded default sink is compiled once per build: `build.rs` precompiles
//! it with this engine's settings ([`DEFAULT_SINK_PRECOMPILED`]), and a
//! runtime whose engine accepts that code loads it without compiling
//! ([`Origin::Embedded`]: on x86-64 its code runs where it lies in the
//! binary, see `code_memory`; elsewhere it is copied out); any other
//! engine (fuel on, another CPU) compiles it as any other component.
//! Loading checks it against the `audit-sink` world and pre-instantiates it.
//!
//! # Instances
//!
//! Each sink instance gets its own `Store` holding its log (the one
//! capability), its limits, an empty WASI context for wasip2 components, and
//! the host's `crate::sink::guard` on what it appends.

pub mod cache;
mod code_memory;
mod engine;
pub mod limits;
pub mod world;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use chainsink_format::Hash;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::AuditSinkPre;
use crate::capability::LogFile;
use crate::sink::{Sink, SinkError, SinkOptions};
use crate::store::SinkState;
use cache::{CacheError, CacheOutcome, ComponentCache};
use limits::SinkLimits;
pub use world::WorldCheck;

/// The default sink component, built from `guests/sink/` by `build.rs`.
pub const DEFAULT_SINK_WASM: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/chainsink_guest_sink.component.wasm"
));

/// The default sink precompiled at build time (`build.rs`) by an engine with
/// this runtime's default settings (`runtime/engine_base.rs`, fuel off), on
/// the build machine: loaded without compiling when the runtime's engine is
/// compatible (see [`SinkRuntime::default_component`]). Empty when the build
/// did not precompile it (cross-compiling, or `CHAINSINK_PRECOMPILE=0`).
/// The bytes start on a page boundary, so that they can run in place
/// (`code_memory`).
pub static DEFAULT_SINK_PRECOMPILED: &[u8] = &PRECOMPILED.0;

/// A page-aligned home for [`DEFAULT_SINK_PRECOMPILED`].
#[repr(C, align(4096))]
struct PageAligned<B: ?Sized>(B);

static PRECOMPILED: &PageAligned<[u8]> = &PageAligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/default_sink.cwasm"
)));

/// SHA-256 of [`DEFAULT_SINK_WASM`], computed by `build.rs` from the same
/// bytes, so a process need not hash its own embedded sink.
pub const DEFAULT_SINK_SHA256: Hash = Hash(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/default_sink.sha256"
)));

/// Name the embedded default sink goes by in messages.
pub const DEFAULT_SINK_NAME: &str = "default sink (embedded)";

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    #[error("sink {name} {message}")]
    Compile {
        /// The sink's name (its path).
        name: String,
        /// What is wrong and what to do, on one line.
        message: String,
    },
    /// The component does not implement the `audit-sink` world.
    #[error(
        "sink {name} does not fit the chainsink:audit/audit-sink world (wit/audit.wit):\n{}\n  \
         to fix it ({} sink): {advice}",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"),
        language.as_str()
    )]
    Mismatch {
        /// The sink's name (its path).
        name: String,
        /// Each thing that is wrong.
        problems: Vec<String>,
        /// The language it was written in, as its bytes tell.
        language: crate::inspect::SinkLanguage,
        /// How to fix it with that language's toolchain.
        advice: &'static str,
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
    /// Cache compiled components in this directory (see [`cache`]);
    /// `None` (the default) compiles in every process.
    pub cache_dir: Option<PathBuf>,
    /// Meter fuel, so [`SinkLimits::fuel`] can be enforced. Costs some speed
    /// on every call, so it is on only when asked for, or when
    /// `limits.fuel` is set.
    pub fuel: bool,
    /// Which sinks get every call's appended bytes checked against its
    /// receipts (see `crate::sink::guard`).
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
    linkers: Linkers,
    /// The on-demand engine for components the pool cannot hold (pooling
    /// runtimes only), built at first need.
    fallback: OnceLock<Backend>,
    /// Held while the fallback engine is built, so it is built once.
    fallback_init: Mutex<()>,
    limits: SinkLimits,
    allocator: Allocator,
    cache: Option<ComponentCache>,
    fuel: bool,
    check_appends: AppendChecks,
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

/// The linkers of one engine: chainsink's own imports, and those plus the
/// empty WASI ([`crate::capability::wasi`]) for components that import WASI.
/// The second is built at the first such component: defining WASI's
/// hundreds of functions was 3.5% of a one-shot `chainsink emit`, whose
/// built-in sink imports none of them.
struct Linkers {
    chainsink: Linker<SinkState>,
    with_wasi: OnceLock<Result<Linker<SinkState>, String>>,
}

impl Linkers {
    fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut chainsink = Linker::new(engine);
        crate::capability::add_to_linker(&mut chainsink)?;
        Ok(Linkers {
            chainsink,
            with_wasi: OnceLock::new(),
        })
    }

    /// The linker for `component`: with WASI when it imports any of it.
    fn for_component(&self, component: &Component) -> Result<&Linker<SinkState>, String> {
        let imports_wasi = component
            .component_type()
            .imports(component.engine())
            .any(|(name, _)| name.starts_with("wasi:"));
        if !imports_wasi {
            return Ok(&self.chainsink);
        }
        self.with_wasi
            .get_or_init(|| {
                let mut linker = self.chainsink.clone();
                crate::capability::wasi::add_to_linker(&mut linker)
                    .map(|()| linker)
                    .map_err(|e| format!("cannot provide WASI: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// An engine and its linkers, with its epoch ticker running.
struct Backend {
    engine: Engine,
    key: Hash,
    linkers: Linkers,
}

impl Backend {
    fn new(engine: Engine) -> Result<Backend, LoadError> {
        let engine_err = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let linkers = Linkers::new(&engine).map_err(engine_err)?;
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
        Ok(Backend {
            key: ComponentCache::engine_key(&engine),
            engine,
            linkers,
        })
    }
}

/// Where a loaded component's machine code came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Already compiled by this runtime: the code is shared.
    Memory,
    /// Compiled from the wasm bytes (no disk cache configured).
    Compiled,
    /// The embedded default sink, precompiled at build time
    /// ([`DEFAULT_SINK_PRECOMPILED`]) and accepted by this runtime's engine:
    /// nothing was compiled, and nothing was read from the disk cache. On
    /// x86-64 the code runs where it lies in the binary.
    Embedded,
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
    pooled: bool,
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

    /// The component pre-instantiated with its runtime's linker.
    pub(crate) fn pre(&self) -> &AuditSinkPre<SinkState> {
        &self.pre
    }

    /// Whether its instances come from its runtime's pool: false when the
    /// runtime allocates on demand, or when the component needs more than a
    /// pool slot holds (then it was loaded into the runtime's on-demand
    /// engine; its limits hold all the same).
    pub fn pooled(&self) -> bool {
        self.pooled
    }
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
        let (engine, allocator) = engine::build(&config, fuel)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(ComponentCache::new(dir)?),
            None => None,
        };
        let Backend {
            engine,
            key: engine_key,
            linkers,
        } = Backend::new(engine)?;
        Ok(SinkRuntime {
            engine_key,
            engine,
            linkers,
            fallback: OnceLock::new(),
            fallback_init: Mutex::new(()),
            limits: config.limits,
            allocator,
            cache,
            fuel,
            check_appends: config.check_appends,
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

    /// Loads the embedded default sink, once per runtime: the code
    /// precompiled at build time ([`DEFAULT_SINK_PRECOMPILED`],
    /// [`Origin::Embedded`]) when this runtime's engine accepts it, without
    /// compiling or reading the disk cache; otherwise (another engine configuration, such
    /// as fuel metering, another CPU than the build machine's, or a build
    /// without it) like any other component: the disk cache, when there is
    /// one, then Cranelift.
    pub fn default_component(&self) -> Result<SinkComponent, LoadError> {
        let mut default = self.default.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*default {
            let mut c = c.clone();
            c.origin = Origin::Memory;
            return Ok(c);
        }
        let (component, sha256, origin) = match self.embedded_default() {
            Some(component) => {
                self.lock_compiled()
                    .insert(DEFAULT_SINK_SHA256, component.clone());
                (component, DEFAULT_SINK_SHA256, Origin::Embedded)
            }
            None => {
                self.compile_hashed(DEFAULT_SINK_NAME, DEFAULT_SINK_WASM, DEFAULT_SINK_SHA256)?
            }
        };
        let c = self.check(
            DEFAULT_SINK_NAME,
            component,
            sha256,
            DEFAULT_SINK_WASM.len(),
            origin,
        )?;
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
            .map_err(|e| match e {
                // The advice fits the toolchain that built it.
                LoadError::Mismatch { name, problems, .. } => {
                    let language = crate::inspect::SinkLanguage::of(bytes);
                    LoadError::Mismatch {
                        name,
                        problems,
                        language,
                        advice: language.rebuild_advice(),
                    }
                }
                other => other,
            })
    }

    /// The compiled form of `bytes`: from this runtime's table, the disk
    /// cache, or Cranelift, in that order.
    pub(crate) fn compile(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Component, Hash, Origin), LoadError> {
        self.compile_hashed(name, bytes, Hash::of(bytes))
    }

    /// [`compile`](Self::compile), given the SHA-256 of `bytes`.
    fn compile_hashed(
        &self,
        name: &str,
        bytes: &[u8],
        sha256: Hash,
    ) -> Result<(Component, Hash, Origin), LoadError> {
        if let Some(c) = self.lock_compiled().get(&sha256) {
            return Ok((c.clone(), sha256, Origin::Memory));
        }
        let load = |code: &[u8]| self.load_code(name, bytes, code);
        let compiled = match &self.cache {
            Some(cache) => cache
                .load(&self.engine, &self.engine_key, bytes, &sha256, load)
                .map(|(c, outcome)| (c, Origin::Cache(outcome))),
            None => self
                .engine
                .precompile_component(bytes)
                .and_then(|code| load(&code))
                .map(|c| (c, Origin::Compiled)),
        };
        let (component, origin) = compiled.map_err(|e| LoadError::Compile {
            name: name.into(),
            message: compile_problem(bytes, &e, self.pooling()),
        })?;
        self.lock_compiled().insert(sha256, component.clone());
        Ok((component, sha256, origin))
    }

    /// Turns `code`, which this runtime's engine compiled from `bytes` (now,
    /// or earlier into a checked cache entry), into a component: in the
    /// pool's engine, or in the on-demand engine when the pool cannot hold
    /// it.
    fn load_code(&self, name: &str, bytes: &[u8], code: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: `code` is what `self.engine` produced from `bytes`, just
        // now or into a cache entry that passed every check of
        // `cache::read_entry` (see the trust argument there); wasmtime
        // checks its own header and the engine's settings again.
        let pooled = unsafe { Component::deserialize(&self.engine, code) };
        let pool_error = match pooled {
            Ok(component) => return Ok(component),
            Err(e) if self.pooling() => e,
            Err(e) => return Err(e),
        };
        // The pool's engine refused it: the only thing that differs in the
        // on-demand engine is the allocator, so the pool's per-component
        // limits (core instances, memories, tables, slot size) are why.
        let fallback = self.fallback().map_err(wasmtime::Error::msg)?;
        let loaded = if fallback.key == self.engine_key {
            // SAFETY: as above; the engines' code is compatible (same key).
            unsafe { Component::deserialize(&fallback.engine, code) }
        } else {
            Component::from_binary(&fallback.engine, bytes)
        };
        match loaded {
            Ok(component) => {
                tracing::info!(
                    "sink {name} needs more than a pool slot holds ({}); its instances are \
                     allocated on demand, with the same limits",
                    format!("{pool_error:#}").lines().next().unwrap_or_default()
                );
                Ok(component)
            }
            Err(e) => Err(e.context(format!("{pool_error:#}"))),
        }
    }

    /// The embedded default sink from its build-time artifact, if this
    /// runtime's (main) engine accepts it; `None` sends the caller to the
    /// cache and Cranelift.
    fn embedded_default(&self) -> Option<Component> {
        if DEFAULT_SINK_PRECOMPILED.is_empty() {
            return None;
        }
        // Why deserializing is sound here (the SAFETY of both calls below):
        // it runs the bytes as machine code and trusts them to be what
        // wasmtime's compiler made. These bytes are:
        // `build.rs` wrote them with `Engine::precompile_component` from
        // `DEFAULT_SINK_WASM`, in the same build, and they are part of this
        // binary's read-only data, so they are exactly as trusted as the
        // host code running this line (whoever can change them can change
        // that code too). Nothing outside the binary is read. Whether they
        // fit *this* engine (wasmtime's version, the target, the Cranelift
        // flags and the CPU features they were compiled with, every tunable
        // and wasm feature, fuel) is checked by wasmtime before anything is
        // made executable; a mismatch is an error, and the caller compiles
        // instead.
        if code_memory::claim_in_place(DEFAULT_SINK_PRECOMPILED) {
            let image = NonNull::from(DEFAULT_SINK_PRECOMPILED);
            // SAFETY: as above; in place, wasmtime never writes the bytes,
            // and they live as long as the process.
            match unsafe { Component::deserialize_raw(&self.engine, image) } {
                Ok(component) => {
                    tracing::debug!("the precompiled default sink runs in place from the binary");
                    return Some(component);
                }
                // Not fitting this engine fails the copy below the same way;
                // anything else (the pages cannot be made executable) is
                // what the copy is for.
                Err(e) => {
                    code_memory::release();
                    tracing::debug!(
                        "the precompiled default sink cannot run in place ({}); copying it",
                        format!("{e:#}").lines().next().unwrap_or_default()
                    );
                }
            }
        }
        // SAFETY: as above; wasmtime copies the bytes first.
        match unsafe { Component::deserialize(&self.engine, DEFAULT_SINK_PRECOMPILED) } {
            Ok(component) => {
                tracing::debug!("the precompiled default sink is copied out of the binary");
                Some(component)
            }
            Err(e) => {
                tracing::debug!(
                    "the precompiled default sink does not fit this engine ({}); compiling it",
                    format!("{e:#}").lines().next().unwrap_or_default()
                );
                None
            }
        }
    }

    /// Whether this runtime's engine uses the pooling allocator.
    fn pooling(&self) -> bool {
        matches!(self.allocator, Allocator::Pooling { .. })
    }

    /// The on-demand engine for components the pool cannot hold.
    fn fallback(&self) -> Result<&Backend, LoadError> {
        if let Some(b) = self.fallback.get() {
            return Ok(b);
        }
        let _building = self.fallback_init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = self.fallback.get() {
            return Ok(b);
        }
        let backend = Backend::new(engine::on_demand(self.fuel)?)?;
        Ok(self.fallback.get_or_init(|| backend))
    }

    /// The linkers of the engine `component` was compiled for, if it is one
    /// of this runtime's.
    fn linkers_for(&self, component: &Component) -> Option<&Linkers> {
        let engine = component.engine();
        if Engine::same(engine, &self.engine) {
            return Some(&self.linkers);
        }
        self.fallback
            .get()
            .filter(|b| Engine::same(engine, &b.engine))
            .map(|b| &b.linkers)
    }

    /// The linker to instantiate `component` with: its engine's, with WASI
    /// when it imports WASI.
    fn linker(&self, component: &Component) -> Result<&Linker<SinkState>, String> {
        self.linkers_for(component)
            .ok_or_else(|| {
                "it was compiled by another SinkRuntime; load it with the runtime that opens it"
                    .to_string()
            })?
            .for_component(component)
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
        let mut check = world::check_names(component.engine(), component);
        if !check.problems.is_empty() {
            return (check, None);
        }
        let linker = match self.linker(component) {
            Ok(linker) => linker,
            Err(e) => {
                check.problems.push(e);
                return (check, None);
            }
        };
        match linker.instantiate_pre(component) {
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
                pooled: self.pooling() && Engine::same(component.engine(), &self.engine),
            }),
            (check, None) => Err(LoadError::Mismatch {
                name: name.into(),
                problems: check.problems,
                language: crate::inspect::SinkLanguage::Unknown,
                advice: crate::inspect::SinkLanguage::Unknown.rebuild_advice(),
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
        if self.linkers_for(component.component()).is_none() {
            return Err(SinkError::Config {
                sink: component.name.to_string(),
                message: "the component was loaded by another SinkRuntime; load it with the \
                          runtime that opens it"
                    .into(),
            });
        }
        if limits.fuel.is_some() && !self.fuel {
            return Err(SinkError::Config {
                sink: component.name.to_string(),
                message: "a fuel limit was set for this sink, but its runtime does not meter \
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
                AppendChecks::ThirdParty => component.sha256 != DEFAULT_SINK_SHA256,
                AppendChecks::Off => false,
            },
        );
        let ticks = state.limiter.deadline_ticks(EPOCH_TICK);
        let store = crate::store::new_store(component.component().engine(), state, EPOCH_TICK);
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
        .map_err(|e| instance_limit_advice(e, limits))
    }
}

/// Wasmtime's refusal of an instance over [`SinkLimits::instances`] says
/// only "instance count too high"; add the limit and how to raise it.
fn instance_limit_advice(e: SinkError, limits: &SinkLimits) -> SinkError {
    match e {
        SinkError::Trap { sink, call, reason }
            if call == "instantiate" && reason.contains("instance count too high") =>
        {
            SinkError::Trap {
                sink,
                call,
                reason: format!(
                    "{reason}: the component creates more core instances than its limit of {} \
                     (raise it with --sink-instances, or SinkLimits::instances)",
                    limits.instances
                ),
            }
        }
        other => other,
    }
}

/// Why `bytes` did not compile, on one line, with advice that fits what the
/// bytes are.
fn compile_problem(bytes: &[u8], e: &wasmtime::Error, pooling: bool) -> String {
    use crate::inspect::WasmKind;
    match WasmKind::of(bytes) {
        WasmKind::NotWasm => "is not WebAssembly (it does not start with the `\\0asm` magic \
                              bytes): give the path of a sink component (.wasm)"
            .into(),
        WasmKind::CoreModule => format!(
            "is a core wasm module, not a component: {}",
            crate::inspect::SinkLanguage::of(bytes).componentize_advice()
        ),
        WasmKind::Component => {
            let reason = format!("{e:#}");
            let first = reason.lines().next().unwrap_or_default();
            let tried = if pooling {
                " (with the pooling allocator and again with on-demand allocation)"
            } else {
                ""
            };
            format!(
                "is a wasm component this engine cannot load{tried}: {first}; rebuild it with a \
                 toolchain for the component model, for wasmtime 48's component model \
                 (`chainsink inspect` shows what it holds)"
            )
        }
    }
}
