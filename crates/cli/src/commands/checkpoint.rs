//! `chainsink checkpoint`: sign a checkpoint of a log on demand; and the
//! signing key and automatic checkpoints that `run` and `emit` share.
//!
//! The host holds the key, never the sink: it reads the log itself
//! (`chainsink_transparency::checkpointer`), so a sink, which could forge
//! anything it signs, never sees it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_host::{LockWait, LogFile};
use chainsink_transparency::checkpointer::{Checkpointer, checkpoint_path};
use chainsink_transparency::note::{KeyType, SigningKey};

use crate::args::parse_seconds;

/// The environment variable that may hold the signing key: its text
/// (`PRIVATE+KEY+…`) or the path of its file.
pub(crate) const KEY_ENV: &str = "AUDIT_SIGNING_KEY";

/// `AUDIT_SIGNING_KEY` as it was at start-up (then removed from the
/// environment, so no task of a workflow inherits it).
static ENV_KEY: OnceLock<Option<String>> = OnceLock::new();

/// Takes `AUDIT_SIGNING_KEY` out of this process's environment, keeping its
/// value for [`CheckpointArgs`]. Call first thing in `main`, before any
/// thread starts.
pub(crate) fn take_env_key() {
    let value = std::env::var(KEY_ENV).ok();
    if value.is_some() {
        // SAFETY: called at the start of main, before any other thread
        // exists, so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(KEY_ENV) };
    }
    let _ = ENV_KEY.set(value);
}

/// Reads a signing key from `--signing-key FILE`, else from
/// `AUDIT_SIGNING_KEY` (key text or a path); `None` when neither is given.
pub(crate) fn load_key(flag: Option<&Path>) -> Result<Option<SigningKey>> {
    let (text, from) = match flag {
        Some(path) => (
            read_key_file(path)?,
            format!("--signing-key {}", path.display()),
        ),
        None => match ENV_KEY.get().cloned().flatten() {
            None => return Ok(None),
            Some(v) if v.trim_start().starts_with("PRIVATE+KEY+") => {
                (zeroize::Zeroizing::new(v), format!("{KEY_ENV} (key text)"))
            }
            Some(v) => {
                let path = PathBuf::from(v.trim());
                (
                    read_key_file(&path)?,
                    format!("{KEY_ENV}={}", path.display()),
                )
            }
        },
    };
    let key = SigningKey::from_text(&text).with_context(|| format!("signing key from {from}"))?;
    if key.verifier().kind() != KeyType::Ed25519 {
        bail!(
            "the signing key from {from} is a witness (cosigner) key; give the log's key, made by \
             chainsink keygen --origin NAME"
        );
    }
    Ok(Some(key))
}

fn read_key_file(path: &Path) -> Result<zeroize::Zeroizing<String>> {
    Ok(zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read signing key {}; make one with chainsink keygen --origin NAME",
                path.display()
            )
        })?,
    ))
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Automatic checkpoints while `run` or `emit` writes.
#[derive(Args, Clone)]
pub(crate) struct CheckpointArgs {
    /// Sign checkpoints of the log with this key (chainsink keygen): every
    /// --checkpoint-every records, every --checkpoint-interval, and at
    /// close, into LOG.checkpoint. Else AUDIT_SIGNING_KEY (the key's text,
    /// or its path) is used; neither: no checkpoints.
    #[arg(long, value_name = "KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// Sign a checkpoint once this many records were written since the last.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Sign a checkpoint at least this often, in seconds, while records come.
    #[arg(long, default_value = "60", value_name = "SECONDS", value_parser = parse_seconds)]
    checkpoint_interval: Duration,
}

impl CheckpointArgs {
    /// Starts automatic checkpoints of `log`, if a key was given.
    pub(crate) fn start(&self, log: &Path) -> Result<Option<AutoCheckpoint>> {
        let Some(key) = load_key(self.signing_key.as_deref())? else {
            return Ok(None);
        };
        AutoCheckpoint::start(log, key, self.checkpoint_every, self.checkpoint_interval).map(Some)
    }

    /// Starts automatic checkpoints of each log (`None` entries: not
    /// audited), if a key was given.
    pub(crate) fn start_all(&self, logs: &[Option<PathBuf>]) -> Result<Vec<AutoCheckpoint>> {
        let Some(key) = load_key(self.signing_key.as_deref())? else {
            return Ok(Vec::new());
        };
        let text = key.to_text();
        logs.iter()
            .flatten()
            .map(|log| {
                let key = SigningKey::from_text(&text)?;
                AutoCheckpoint::start(log, key, self.checkpoint_every, self.checkpoint_interval)
            })
            .collect()
    }
}

/// A thread that signs checkpoints of one log while it is written.
pub(crate) struct AutoCheckpoint {
    log: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<(Checkpointer, Option<String>)>>,
}

impl AutoCheckpoint {
    /// Opens `log`'s checkpoints and starts the thread.
    fn start(
        log: &Path,
        key: SigningKey,
        every: u64,
        interval: Duration,
    ) -> Result<AutoCheckpoint> {
        let (checkpointer, notice) = Checkpointer::open(log, key)?;
        if let Some(notice) = notice {
            eprintln!("chainsink: {notice}");
        }
        let state = Arc::new(Mutex::new((checkpointer, None::<String>)));
        let (stop, stopped) = mpsc::channel::<()>();
        let tick = interval
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(10));
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    match stopped.recv_timeout(tick) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                    let (cp, error) = &mut *guard;
                    if error.is_some() {
                        continue;
                    }
                    let result = cp.advance().and_then(|_| {
                        let pending = cp.size() - cp.signed_size();
                        let due = pending >= every
                            || (pending > 0 && last.elapsed() >= interval)
                            || cp.last().is_none();
                        if due {
                            last = Instant::now();
                            cp.checkpoint(now())?;
                        }
                        Ok(())
                    });
                    if let Err(e) = result {
                        eprintln!("chainsink: AUDITING DEGRADED: signing a checkpoint failed: {e}");
                        *error = Some(e.to_string());
                    }
                }
            })
            .context("starting the checkpoint thread")?;
        Ok(AutoCheckpoint {
            log: log.into(),
            stop: Some(stop),
            thread: Some(thread),
            state,
        })
    }

    /// Stops the thread and signs the final checkpoint (call after the sink
    /// closed).
    pub(crate) fn finish(mut self) -> Result<()> {
        self.halt();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (cp, error) = &mut *guard;
        if let Some(e) = error {
            bail!("checkpoints of {}: {e}", self.log.display());
        }
        cp.checkpoint(now())
            .with_context(|| format!("signing the final checkpoint of {}", self.log.display()))?;
        Ok(())
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AutoCheckpoint {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Arguments of `chainsink checkpoint`.
#[derive(Args)]
pub(crate) struct CheckpointCmdArgs {
    /// The log.
    log: PathBuf,
    /// The log's signing key (chainsink keygen); else AUDIT_SIGNING_KEY.
    #[arg(long, value_name = "KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// Wait for the log's writer to finish instead of failing.
    #[arg(long)]
    wait_lock: bool,
}

/// Signs a checkpoint of the log now, holding its lock.
pub(crate) fn checkpoint(args: &CheckpointCmdArgs) -> Result<ExitCode> {
    let Some(key) = load_key(args.signing_key.as_deref())? else {
        bail!("no signing key: pass --signing-key KEY_FILE or set {KEY_ENV}");
    };
    if !args.log.is_file() {
        bail!(
            "audit log {} does not exist or is not a file; give the log to checkpoint",
            args.log.display()
        );
    }
    let wait = if args.wait_lock {
        LockWait::Yes
    } else {
        LockWait::No
    };
    // The writers' lock: no record is half-written while the tree is read.
    let _lock = LogFile::open_with(&args.log, wait)?;
    let (mut cp, notice) = Checkpointer::open(&args.log, key)?;
    if let Some(notice) = notice {
        eprintln!("chainsink: {notice}");
    }
    let path = checkpoint_path(&args.log);
    match cp.checkpoint(now())? {
        Some(signed) => println!(
            "signed {}: {} records, root {}",
            path.display(),
            signed.checkpoint.size,
            b64(&signed.checkpoint.root)
        ),
        None => println!(
            "{} is current: {} records (nothing new to sign)",
            path.display(),
            cp.size()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Base64 of a hash, as checkpoints write it.
pub(crate) fn b64(h: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// Reads a verifier key file (`chainsink keygen`'s PREFIX.vkey).
pub(crate) fn load_vkey(path: &Path) -> Result<chainsink_transparency::note::VerifierKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read verifier key {}", path.display()))?;
    chainsink_transparency::note::VerifierKey::from_text(&text)
        .with_context(|| format!("verifier key {}", path.display()))
}

/// Reads a signed checkpoint file and checks it is signed by `key`.
pub(crate) fn open_checkpoint(
    path: &Path,
    key: &chainsink_transparency::note::VerifierKey,
) -> Result<chainsink_transparency::checkpoint::SignedCheckpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    chainsink_transparency::checkpoint::open(&text, key)
        .with_context(|| format!("checkpoint {}", path.display()))
}

/// `chainsink verify --checkpoint CP --key VKEY`: adds the checkpoint's
/// verdict to the chain's (`code`, `text`, `json`); the worse status wins
/// (0 ok, 1 tampered, 2 unreadable).
pub(crate) fn verify_against(
    log: &Path,
    cp_path: &Path,
    key_path: &Path,
    code: u8,
    text: String,
    mut json: serde_json::Value,
) -> (u8, String, serde_json::Value) {
    use chainsink_transparency::checkpointer::{Mismatch, TreeState, check_log};
    let (verdict, status, detail) = (|| -> Result<(bool, u8, String, serde_json::Value)> {
        let key = load_vkey(key_path)?;
        let signed = match open_checkpoint(cp_path, &key) {
            Ok(s) => s,
            Err(e) if e.chain().any(|c| c.is::<std::io::Error>()) => return Err(e),
            Err(e) => {
                let msg = format!("TAMPERED CHECKPOINT {}: {}", cp_path.display(), crate::policy::one_line(&e));
                return Ok((false, 1, msg, serde_json::json!({"ok": false, "reason": "bad-checkpoint", "detail": e.to_string()})));
            }
        };
        let cp = &signed.checkpoint;
        let tree = TreeState::load(log);
        let result = check_log(log, cp, tree.as_ref())
            .with_context(|| format!("reading {}", log.display()))?;
        Ok(match result {
            Ok(lines) => (
                true,
                0,
                format!(
                    "checkpoint OK: the first {} records give the root signed by {} in {} ({} records now)",
                    cp.size,
                    cp.origin,
                    cp_path.display(),
                    lines
                ),
                serde_json::json!({"ok": true, "size": cp.size, "root": b64(&cp.root), "records": lines}),
            ),
            Err(m) => {
                let (reason, first) = match &m {
                    Mismatch::Truncated { .. } => ("truncated", None),
                    Mismatch::Rewritten { first_differing, .. } => ("rewritten", *first_differing),
                };
                (
                    false,
                    1,
                    format!("TAMPERED {}: {m} (checkpoint {})", log.display(), cp_path.display()),
                    serde_json::json!({
                        "ok": false, "size": cp.size, "reason": reason, "detail": m.to_string(),
                        "first_differing": first.map(|(a, b)| serde_json::json!({"from_line": a + 1, "to_line": b})),
                    }),
                )
            }
        })
    })()
    .map(|(ok, status, msg, j)| ((ok, j), status, msg))
    .unwrap_or_else(|e| {
        let msg = format!("chainsink: {}", crate::policy::one_line(&e));
        ((false, serde_json::json!({"ok": false, "reason": "unreadable", "detail": msg})), 2, msg)
    });
    let (ok, cp_json) = verdict;
    json["checkpoint"] = cp_json;
    if !ok {
        json["ok"] = false.into();
    }
    (code.max(status), format!("{text}\n{detail}"), json)
}
