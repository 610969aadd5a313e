//! Flags shared by several commands: where records go and how, the sink's
//! limits, and the component cache. Flags override the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_host::runtime::cache::ComponentCache;
use chainsink_host::{
    Actor, Durability, LoadError, LockWait, LogFile, RuntimeConfig, Sink, SinkLimits, SinkOptions,
    SinkRuntime,
};

/// Where records go and how.
#[derive(Args, Clone)]
pub(crate) struct AuditArgs {
    /// The audit log (JSON lines). Unset means no audit.
    #[arg(long = "log", env = "AUDIT_LOG_PATH", value_name = "PATH")]
    pub(crate) log: Option<PathBuf>,
    /// Link records with the SHA-256 hash chain.
    #[arg(long, env = "AUDIT_HASH_CHAIN", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub(crate) hash_chain: bool,
    /// A sink component (.wasm) to use instead of the embedded default.
    #[arg(long, env = "AUDIT_SINK", value_name = "WASM")]
    pub(crate) sink: Option<PathBuf>,
    /// When records are durable: always (sync before each acknowledgement),
    /// batch (group commit), or none.
    #[arg(
        long,
        env = "AUDIT_DURABILITY",
        default_value = "always",
        value_name = "MODE"
    )]
    pub(crate) durability: Durability,
    /// The host identity in each record (default: this machine's host name).
    #[arg(long, env = "HOST_ID")]
    pub(crate) host_id: Option<String>,
    /// The user in each record (default: $USER, else $USERNAME).
    #[arg(long)]
    pub(crate) user: Option<String>,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) cache: CacheArgs,
    /// Wait for another writer to release the log instead of failing.
    #[arg(long)]
    pub(crate) wait_lock: bool,
}

/// What one sink instance may use.
#[derive(Args, Clone)]
pub(crate) struct LimitArgs {
    /// Largest linear memory of the sink, in MiB (1 to 4096).
    #[arg(long, default_value_t = 64, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) sink_memory: u64,
    /// Longest one call into the sink may run, in milliseconds (at least 1).
    #[arg(long, default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) sink_timeout: u64,
    /// Fuel (instruction budget) per call into the sink, at least 1; unset:
    /// unmetered.
    #[arg(long, value_name = "UNITS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) sink_fuel: Option<u64>,
    /// Largest table of the sink, in elements.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub(crate) sink_table_elements: usize,
    /// Most core wasm instances the sink component may create.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub(crate) sink_instances: usize,
    /// Most bytes one call into the sink may append, in MiB (1 to 1024).
    #[arg(long, default_value_t = 64, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub(crate) sink_append_limit: u64,
}

impl LimitArgs {
    /// The limits these flags set.
    pub(crate) fn limits(&self) -> SinkLimits {
        SinkLimits {
            // The parser bounds the MiB to 1..=4096, so this cannot wrap.
            memory_bytes: usize::try_from(self.sink_memory << 20).unwrap_or(usize::MAX),
            call_timeout: Duration::from_millis(self.sink_timeout),
            fuel: self.sink_fuel,
            table_elements: self.sink_table_elements,
            instances: self.sink_instances,
            append_bytes: self.sink_append_limit << 20,
        }
    }
}

/// Where compiled sink components are cached.
#[derive(Args, Clone, Debug)]
pub(crate) struct CacheArgs {
    /// Cache compiled sink components here (default: $XDG_CACHE_HOME/chainsink,
    /// else ~/.cache/chainsink).
    #[arg(long, env = "CHAINSINK_CACHE_DIR", value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Compile sink components in this process only; read and write no cache
    /// (wins over --cache-dir and CHAINSINK_CACHE_DIR).
    #[arg(long)]
    pub(crate) no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, if any.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(ComponentCache::default_dir)
    }

    /// A runtime from `config` with this cache; if the cache cannot be used,
    /// says why on stderr and goes on without it (a cache is never worth
    /// failing an audit for).
    pub(crate) fn runtime(&self, config: RuntimeConfig) -> Result<SinkRuntime> {
        let config = RuntimeConfig {
            cache_dir: self.dir(),
            ..config
        };
        match SinkRuntime::with_config(config.clone()) {
            Err(LoadError::Cache(e)) => {
                eprintln!("chainsink: warning: {e}; going on without a cache");
                Ok(SinkRuntime::with_config(RuntimeConfig {
                    cache_dir: None,
                    ..config
                })?)
            }
            other => Ok(other?),
        }
    }
}

impl AuditArgs {
    /// How the sink is opened: chain, durability, actor.
    pub(crate) fn options(&self) -> SinkOptions {
        SinkOptions {
            hash_chain: self.hash_chain,
            durability: self.durability,
            actor: Actor {
                host_id: self
                    .host_id
                    .clone()
                    .unwrap_or_else(crate::config::default_host_id),
                user: self
                    .user
                    .clone()
                    .unwrap_or_else(crate::config::user_from_env),
            },
        }
    }

    /// Whether to wait for the log's lock.
    pub(crate) fn lock_wait(&self) -> LockWait {
        if self.wait_lock {
            LockWait::Yes
        } else {
            LockWait::No
        }
    }

    /// The runtime for up to `sinks` live sink instances, with these limits
    /// and the component cache. One sink allocates on demand: a pool pays
    /// for itself only when instances come and go.
    pub(crate) fn runtime(&self, sinks: usize) -> Result<SinkRuntime> {
        self.cache.runtime(RuntimeConfig {
            limits: self.limits.limits(),
            max_sinks: u32::try_from(sinks.max(1)).unwrap_or(u32::MAX),
            pooling: sinks > 1,
            ..RuntimeConfig::default()
        })
    }

    /// Builds the runtime, loads the sink and opens it on `log`.
    pub(crate) fn open(&self, log: &Path) -> Result<Sink> {
        check_log_dir(log)?;
        let runtime = self.runtime(1)?;
        let component = match &self.sink {
            Some(path) => runtime.load_file(path)?,
            None => runtime.default_component()?,
        };
        let file = LogFile::open_with(log, self.lock_wait())?;
        let sink = runtime
            .open(&component, file, &self.options())
            .with_context(|| format!("opening sink {} on {}", component.name(), log.display()))?;
        Ok(sink)
    }
}

/// A log named with `--log` must be in a directory that exists: a typo in
/// the path must not quietly start a new log somewhere else. (`--log-dir`
/// names the directory itself and creates it.)
pub(crate) fn check_log_dir(log: &Path) -> Result<()> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        anyhow::bail!(
            "the directory {} of audit log {} does not exist; create it (mkdir -p {}) or \
             choose another --log",
            dir.display(),
            log.display(),
            dir.display()
        );
    }
    Ok(())
}

/// A number of seconds: finite, not negative (`1`, `0.5`).
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (such as 30 or 0.5)"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} seconds is not a duration: give a finite number, 0 or more"))
}
