//! Many independent sinks in one process: one per tenant.
//!
//! A platform that audits many customers' workflows runs one [`SinkRuntime`]
//! (one engine, one pool, one epoch thread, one compiled copy of each
//! component) and, in it, one sink instance per tenant. [`Tenants`] keeps
//! them apart:
//!
//! - each tenant has its **own component** (or shares one: the code is
//!   compiled once), its **own log file**, its **own limits** and therefore
//!   its **own chain**; no two tenants may share a name or a log file, so no
//!   two chains ever interleave in one file;
//! - each instance has its own store: a tenant that traps (deadline, memory,
//!   panic) or breaks the contract is discarded alone, and every later call
//!   on it repeats why; the others never notice;
//! - tenants are opened and closed independently, from any thread.
//!
//! ```no_run
//! use std::sync::Arc;
//! use chainsink_host::tenants::{TenantSpec, Tenants};
//! use chainsink_host::{Actor, Durability, Event, RuntimeConfig, SinkOptions, SinkRuntime};
//! # fn main() -> anyhow::Result<()> {
//! let runtime = Arc::new(SinkRuntime::with_config(RuntimeConfig::default())?);
//! let tenants = Tenants::new(runtime);
//! let options = SinkOptions {
//!     hash_chain: true,
//!     durability: Durability::Always,
//!     actor: Actor { host_id: "build-1".into(), user: "platform".into() },
//! };
//! for name in ["acme", "globex"] {
//!     tenants.open(TenantSpec::new(name, format!("logs/{name}.jsonl"), options.clone()))?;
//! }
//! let acme = tenants.get("acme").unwrap();
//! acme.sink().emit(&Event { event_type: "deploy.started".into(), payload: "{}".into(), ..Event::default() })?;
//! for (name, head) in tenants.close_all() {
//!     println!("{name}: {:?}", head?.hash);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::capability::{CapabilityError, LockWait, LogFile};
use crate::runtime::limits::SinkLimits;
use crate::runtime::{LoadError, SinkComponent, SinkRuntime};
use crate::sink::{Head, Sink, SinkError, SinkOptions};

/// Which component a tenant's sink runs.
#[derive(Clone, Debug, Default)]
pub enum SinkSource {
    /// The embedded default sink.
    #[default]
    Default,
    /// A component file: read once per [`Tenants`] (later tenants naming the
    /// same path share it), compiled once per runtime, cached on disk when
    /// the runtime has a cache.
    File(PathBuf),
    /// A component already loaded by the same runtime (one loaded by
    /// another runtime is refused when the tenant opens).
    Loaded(Box<SinkComponent>),
}

/// Everything that makes up one tenant.
#[derive(Clone, Debug)]
pub struct TenantSpec {
    /// The tenant's name: unique in a [`Tenants`].
    pub name: String,
    /// The sink component it runs.
    pub sink: SinkSource,
    /// Its log file: unique in a [`Tenants`].
    pub log: PathBuf,
    /// How its sink is opened (chain, durability, actor).
    pub options: SinkOptions,
    /// Its limits; `None` takes the runtime's.
    pub limits: Option<SinkLimits>,
    /// Whether to wait when another writer holds its log.
    pub wait: LockWait,
}

impl TenantSpec {
    /// A tenant `name` writing `log` with the default sink and the runtime's
    /// limits.
    pub fn new(name: impl Into<String>, log: impl Into<PathBuf>, options: SinkOptions) -> Self {
        TenantSpec {
            name: name.into(),
            sink: SinkSource::Default,
            log: log.into(),
            options,
            limits: None,
            wait: LockWait::No,
        }
    }

    /// The same tenant running `sink`.
    pub fn with_sink(mut self, sink: SinkSource) -> Self {
        self.sink = sink;
        self
    }

    /// The same tenant, waiting for another writer to release its log
    /// instead of failing at once.
    pub fn with_lock_wait(mut self, wait: LockWait) -> Self {
        self.wait = wait;
        self
    }
}

/// Why a tenant could not be opened or closed.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// A tenant of that name is already open.
    #[error("tenant {name:?} is already open; tenant names must be unique (close it first)")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Another tenant already writes that log.
    #[error(
        "tenant {name:?} cannot use log {log}: tenant {owner:?} already writes it; two chains \
         in one file would break both, so give each tenant its own log"
    )]
    SharedLog {
        /// The tenant being opened.
        name: String,
        /// The log.
        log: PathBuf,
        /// The tenant that has it.
        owner: String,
    },
    /// No tenant of that name is open.
    #[error("no tenant {name:?} is open")]
    Unknown {
        /// The name.
        name: String,
    },
    /// The tenant's component could not be loaded.
    #[error("tenant {name:?}: {source}")]
    Load {
        /// The tenant.
        name: String,
        /// Why.
        source: LoadError,
    },
    /// The tenant's log could not be opened.
    #[error("tenant {name:?}: {source}")]
    Log {
        /// The tenant.
        name: String,
        /// Why.
        source: CapabilityError,
    },
    /// The tenant's sink failed to open or close.
    #[error("tenant {name:?}: {source}")]
    Sink {
        /// The tenant.
        name: String,
        /// Why.
        source: SinkError,
    },
}

/// One open tenant: a name, a live sink and the limits it runs under.
#[derive(Debug)]
pub struct Tenant {
    name: String,
    sink: Sink,
    limits: SinkLimits,
    log_key: PathBuf,
}

impl Tenant {
    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its sink: emit, flush, head (closing goes through [`Tenants::close`]).
    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        self.sink.path()
    }

    /// The limits its instance runs under.
    pub fn limits(&self) -> &SinkLimits {
        &self.limits
    }
}

/// The open tenants of one runtime; see the [module docs](self).
#[derive(Debug)]
pub struct Tenants {
    runtime: Arc<SinkRuntime>,
    state: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    by_name: BTreeMap<String, Arc<Tenant>>,
    /// Names of tenants being opened right now.
    opening: HashSet<String>,
    /// Canonical log path → tenant name.
    logs: HashMap<PathBuf, String>,
    /// Components loaded from files, by path, so each is read once.
    files: HashMap<PathBuf, SinkComponent>,
}

impl Tenants {
    /// No tenants yet, on `runtime`.
    pub fn new(runtime: Arc<SinkRuntime>) -> Tenants {
        Tenants {
            runtime,
            state: Mutex::new(Registry::default()),
        }
    }

    /// The runtime the tenants run on.
    pub fn runtime(&self) -> &SinkRuntime {
        &self.runtime
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a tenant: loads its component (once per file), opens its log,
    /// instantiates its sink with its limits and resumes its chain.
    ///
    /// Fails, leaving the other tenants as they were, when the name or the
    /// log is taken, or when any step fails.
    pub fn open(&self, spec: TenantSpec) -> Result<Arc<Tenant>, TenantError> {
        let name = spec.name;
        if self.lock().by_name.contains_key(&name) {
            return Err(TenantError::DuplicateName { name });
        }
        let component = match spec.sink {
            SinkSource::Default => self.runtime.default_component(),
            SinkSource::Loaded(c) => Ok(*c),
            SinkSource::File(path) => {
                let known = self.lock().files.get(&path).cloned();
                match known {
                    Some(c) => Ok(c),
                    None => self.runtime.load_file(&path).inspect(|c| {
                        self.lock().files.insert(path, c.clone());
                    }),
                }
            }
        }
        .map_err(|source| TenantError::Load {
            name: name.clone(),
            source,
        })?;
        let log_key = canonical(&spec.log);
        {
            let mut registry = self.lock();
            if registry.by_name.contains_key(&name) || registry.opening.contains(&name) {
                return Err(TenantError::DuplicateName { name });
            }
            if let Some(owner) = registry.logs.get(&log_key) {
                return Err(TenantError::SharedLog {
                    name,
                    log: spec.log,
                    owner: owner.clone(),
                });
            }
            // Reserve the name and the log while the sink opens.
            registry.opening.insert(name.clone());
            registry.logs.insert(log_key.clone(), name.clone());
        }
        let log = match LogFile::open_with(&spec.log, spec.wait) {
            Ok(log) => log,
            Err(source) => {
                let mut registry = self.lock();
                registry.opening.remove(&name);
                registry.logs.remove(&log_key);
                return Err(TenantError::Log { name, source });
            }
        };
        let limits = spec.limits.unwrap_or_else(|| self.runtime.limits().clone());
        let opened = self
            .runtime
            .open_with_limits(&component, log, &spec.options, &limits);
        let mut registry = self.lock();
        registry.opening.remove(&name);
        match opened {
            Ok(sink) => {
                let tenant = Arc::new(Tenant {
                    name: name.clone(),
                    sink,
                    limits,
                    log_key,
                });
                registry.by_name.insert(name, tenant.clone());
                Ok(tenant)
            }
            Err(source) => {
                registry.logs.remove(&log_key);
                Err(TenantError::Sink { name, source })
            }
        }
    }

    /// The open tenant called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Tenant>> {
        self.lock().by_name.get(name).cloned()
    }

    /// The names of the open tenants, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().by_name.keys().cloned().collect()
    }

    /// How many tenants are open.
    pub fn len(&self) -> usize {
        self.lock().by_name.len()
    }

    /// Whether no tenant is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the tenant `name` (flushes its sink) and forgets it, freeing
    /// its name and log. The instance itself goes when the last `Arc<Tenant>`
    /// handed out is dropped.
    pub fn close(&self, name: &str) -> Result<Head, TenantError> {
        let tenant = {
            let mut registry = self.lock();
            let tenant = registry
                .by_name
                .remove(name)
                .ok_or_else(|| TenantError::Unknown {
                    name: name.to_string(),
                })?;
            registry.logs.remove(&tenant.log_key);
            tenant
        };
        tenant.sink.close().map_err(|source| TenantError::Sink {
            name: name.to_string(),
            source,
        })
    }

    /// Closes every tenant; returns each one's final head or error, by name.
    pub fn close_all(&self) -> Vec<(String, Result<Head, SinkError>)> {
        let tenants: Vec<Arc<Tenant>> = {
            let mut registry = self.lock();
            registry.logs.clear();
            std::mem::take(&mut registry.by_name)
                .into_values()
                .collect()
        };
        tenants
            .into_iter()
            .map(|t| (t.name.clone(), t.sink.close()))
            .collect()
    }
}

/// `path` made absolute with symlinks and `.`/`..` resolved, as far as it
/// exists (the log file itself may not exist yet), so one file has one key.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            canonical(parent).join(name)
        }
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}
