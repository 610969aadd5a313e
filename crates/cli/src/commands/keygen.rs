//! `chainsink keygen`: make a log's Ed25519 signing key and its verifier key
//! in the C2SP signed-note text forms.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_transparency::note::{KeyType, SigningKey};

/// Arguments of `chainsink keygen`.
#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// The log's name, the origin line of its checkpoints and the key's
    /// name: a schema-less URL such as example.com/audit (no spaces, no '+').
    #[arg(long, value_name = "NAME")]
    origin: String,
    /// Write PREFIX.key (the secret, mode 0600) and PREFIX.vkey (default:
    /// the origin's last path segment).
    #[arg(long, value_name = "PREFIX")]
    out: Option<PathBuf>,
    /// Make a witness's cosigning key (C2SP tlog-cosignature, type 0x04)
    /// instead of a log's key.
    #[arg(long)]
    witness: bool,
}

/// Writes the key pair; refuses to overwrite either file.
pub(crate) fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let kind = if args.witness {
        KeyType::Cosignature
    } else {
        KeyType::Ed25519
    };
    let key = SigningKey::generate(&args.origin, kind)?;
    let prefix = match &args.out {
        Some(p) => p.clone(),
        None => PathBuf::from(default_prefix(&args.origin)),
    };
    let secret = suffixed(&prefix, ".key");
    let public = suffixed(&prefix, ".vkey");
    for path in [&secret, &public] {
        if path.exists() {
            bail!(
                "{} exists; keygen never overwrites a key: remove it or choose another --out",
                path.display()
            );
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| format!("cannot create {}", secret.display()))?;
    file.write_all(format!("{}\n", key.to_text().as_str()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", secret.display()))?;
    let vkey = key.verifier().to_text();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .and_then(|mut f| f.write_all(format!("{vkey}\n").as_bytes()))
        .with_context(|| format!("cannot write {}", public.display()))?;
    eprintln!(
        "chainsink: wrote {} (secret: keep it from sinks, tasks and backups) and {}",
        secret.display(),
        public.display()
    );
    println!("{vkey}");
    Ok(ExitCode::SUCCESS)
}

/// The origin's last path segment, made safe as a file name.
fn default_prefix(origin: &str) -> String {
    let last = origin.rsplit('/').find(|s| !s.is_empty()).unwrap_or("log");
    let safe: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if safe.starts_with('.') || safe.is_empty() {
        format!("key{safe}")
    } else {
        safe
    }
}

fn suffixed(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prefixes_are_plain_file_names() {
        assert_eq!(default_prefix("example.com/audit"), "audit");
        assert_eq!(default_prefix("example.com/a b"), "a-b");
        assert_eq!(default_prefix("host"), "host");
        assert_eq!(default_prefix("x/.."), "key..");
    }
}
