//! `chainsink verify-consistency`: prove from the log that a later signed
//! checkpoint extends an earlier one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_transparency::checkpointer::{TreeState, check_log, leaf_hashes};
use chainsink_transparency::merkle;

use super::checkpoint::{b64, load_vkey, open_checkpoint};

/// Arguments of `chainsink verify-consistency`.
#[derive(Args)]
pub(crate) struct VerifyConsistencyArgs {
    /// The earlier checkpoint.
    old_checkpoint: PathBuf,
    /// The later checkpoint.
    new_checkpoint: PathBuf,
    /// The log both are of.
    log: PathBuf,
    /// The log's verifier key (PREFIX.vkey from chainsink keygen).
    #[arg(long, value_name = "VKEY")]
    key: PathBuf,
}

/// Exit 0 consistent, 1 not (or the log does not hold the new tree), 2
/// unreadable.
pub(crate) fn verify_consistency(args: &VerifyConsistencyArgs) -> Result<ExitCode> {
    let key = load_vkey(&args.key)?;
    let old = open_checkpoint(&args.old_checkpoint, &key)?;
    let new = open_checkpoint(&args.new_checkpoint, &key)?;
    let (old_cp, new_cp) = (&old.checkpoint, &new.checkpoint);
    if old_cp.size > new_cp.size {
        println!(
            "FAILED: {} ({} records) is not earlier than {} ({} records): give the older first",
            args.old_checkpoint.display(),
            old_cp.size,
            args.new_checkpoint.display(),
            new_cp.size
        );
        return Ok(ExitCode::from(1));
    }
    let tree = TreeState::load(&args.log);
    let read = |e| anyhow::Error::new(e).context(format!("reading {}", args.log.display()));
    if let Err(m) = check_log(&args.log, new_cp, tree.as_ref()).map_err(read)? {
        println!(
            "FAILED: {}: {m} (checkpoint {})",
            args.log.display(),
            args.new_checkpoint.display()
        );
        return Ok(ExitCode::from(1));
    }
    let leaves = leaf_hashes(&args.log, Some(new_cp.size)).map_err(read)?;
    let proof = merkle::consistency_proof(old_cp.size, &leaves).context("making the proof")?;
    match merkle::verify_consistency(old_cp.size, new_cp.size, &old_cp.root, &new_cp.root, &proof) {
        Ok(()) => {
            println!(
                "OK: {} ({} records, root {}) extends {} ({} records, root {}); consistency proof of {} hashes",
                args.new_checkpoint.display(),
                new_cp.size,
                b64(&new_cp.root),
                args.old_checkpoint.display(),
                old_cp.size,
                b64(&old_cp.root),
                proof.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "FAILED: {} does not extend {}: {e}: the first {} records of the log are not those the earlier checkpoint signed",
                args.new_checkpoint.display(),
                args.old_checkpoint.display(),
                old_cp.size
            );
            Ok(ExitCode::from(1))
        }
    }
}
