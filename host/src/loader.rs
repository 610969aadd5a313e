//! Loading sink components: one `Engine`, one `Linker`, an `InstancePre` per
//! component, and a fresh `Store` per sink instance.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{AuditSink, AuditSinkPre};
use crate::capability::LogFile;
use crate::limits::SinkLimits;
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
const EPOCH_TICK: Duration = Duration::from_millis(10);

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
}

/// The state of one sink instance's `Store`: its log and nothing else.
pub(crate) struct SinkState {
    pub(crate) log: LogFile,
    pub(crate) limits: wasmtime::StoreLimits,
    /// An empty WASI context for components built for wasip2: no dirs, env,
    /// args, sockets or stdio.
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) name: Arc<str>,
    /// The last error-level diagnostic (a panic message, usually).
    pub(crate) last_error: Option<String>,
}

impl WasiView for SinkState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Wasmtime setup shared by every sink in the process.
///
/// Holds the engine, the linker with chainsink's imports (and an empty WASI
/// for wasip2 components), the limits each instance gets, and the thread that
/// advances the epoch for call deadlines. Construct one and pass it around.
pub struct SinkRuntime {
    engine: Engine,
    linker: Linker<SinkState>,
    limits: SinkLimits,
    /// Dropping this stops the epoch thread.
    _ticker: mpsc::Sender<()>,
}

/// A component checked against the `audit-sink` world and ready to
/// instantiate cheaply, any number of times.
#[derive(Clone)]
pub struct SinkComponent {
    name: Arc<str>,
    pre: AuditSinkPre<SinkState>,
    imports: Vec<String>,
}

impl std::fmt::Debug for SinkComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkComponent")
            .field("name", &self.name)
            .field("imports", &self.imports)
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
}

impl SinkRuntime {
    /// Builds an engine and linker for sinks with these limits.
    pub fn new(limits: SinkLimits) -> Result<SinkRuntime, LoadError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(limits.fuel.is_some());
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        AuditSink::add_to_linker::<SinkState, HasSelf<SinkState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let (tx, rx) = mpsc::channel::<()>();
        let ticking = engine.clone();
        thread::Builder::new()
            .name("chainsink-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(EPOCH_TICK) {
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(SinkRuntime {
            engine,
            linker,
            limits,
            _ticker: tx,
        })
    }

    /// The limits every sink instance of this runtime gets.
    pub fn limits(&self) -> &SinkLimits {
        &self.limits
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the embedded default sink.
    pub fn default_component(&self) -> Result<SinkComponent, LoadError> {
        self.load_bytes(DEFAULT_SINK_NAME, DEFAULT_SINK_WASM)
    }

    /// Loads a sink component from a `.wasm` file.
    pub fn load_file(&self, path: &Path) -> Result<SinkComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Compiles `bytes` and checks them against the `audit-sink` world.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<SinkComponent, LoadError> {
        let component =
            Component::from_binary(&self.engine, bytes).map_err(|e| LoadError::Compile {
                name: name.into(),
                message: format!("{e:#}"),
            })?;
        self.check(name, component)
    }

    fn check(&self, name: &str, component: Component) -> Result<SinkComponent, LoadError> {
        let ty = component.component_type();
        let mut problems = Vec::new();
        let mut imports = Vec::new();
        for (import, _) in ty.imports(&self.engine) {
            imports.push(import.to_string());
            if !PROVIDED_IMPORTS.contains(&import) && !import.starts_with("wasi:") {
                problems.push(format!(
                    "it imports `{import}`, which chainsink does not provide (a sink may import only {} and WASI, which it gets empty)",
                    PROVIDED_IMPORTS.join(", ")
                ));
            }
        }
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if !exports.iter().any(|e| e == REQUIRED_EXPORT) {
            problems.push(format!(
                "it does not export `{REQUIRED_EXPORT}` (it exports: {})",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            ));
        }
        if problems.is_empty() {
            match self.linker.instantiate_pre(&component) {
                Ok(pre) => match AuditSinkPre::new(pre) {
                    Ok(pre) => {
                        return Ok(SinkComponent {
                            name: name.into(),
                            pre,
                            imports,
                        });
                    }
                    Err(e) => problems.push(format!("its exports do not match: {e:#}")),
                },
                Err(e) => problems.push(format!("its imports do not match: {e:#}")),
            }
        }
        Err(LoadError::Mismatch {
            name: name.into(),
            problems,
        })
    }

    /// Instantiates `component` in a fresh store that holds only `log`, and
    /// opens it (resuming the chain from the log's tail).
    pub fn open(
        &self,
        component: &SinkComponent,
        log: LogFile,
        options: &SinkOptions,
    ) -> Result<Sink, SinkError> {
        let path = log.path().to_path_buf();
        let state = SinkState {
            log,
            limits: self.limits.store_limits(),
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            name: component.name.clone(),
            last_error: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        let ticks = self
            .limits
            .call_timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis()) as u64
            + 1;
        Sink::start(
            store,
            &component.pre,
            component.name.clone(),
            path,
            options,
            ticks,
            self.limits.fuel,
        )
    }
}

impl crate::bindings::chainsink::audit::types::Host for SinkState {}

impl crate::bindings::chainsink::audit::log_file::Host for SinkState {
    fn append(&mut self, data: Vec<u8>) -> Result<u64, String> {
        self.log
            .append(&data)
            .map_err(|e| format!("append to {}: {e}", self.log.path().display()))
    }

    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        self.log
            .read(offset, len)
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        self.log
            .read_tail(len)
            .map_err(|e| format!("read {}: {e}", self.log.path().display()))
    }

    fn size(&mut self) -> Result<u64, String> {
        self.log
            .size()
            .map_err(|e| format!("stat {}: {e}", self.log.path().display()))
    }

    fn sync(&mut self) -> Result<(), String> {
        self.log
            .sync()
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
        let sink = &*self.name;
        match level {
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
