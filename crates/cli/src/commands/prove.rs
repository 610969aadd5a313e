//! `chainsink prove`: an inclusion proof of one record (C2SP tlog-proof), or
//! a consistency proof from an older checkpoint, against a signed
//! checkpoint of the log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_format::verify::{Mode, check_line};
use chainsink_transparency::checkpoint;
use chainsink_transparency::checkpointer::{checkpoint_path, for_each_line, leaf_hashes};
use chainsink_transparency::merkle::{self, Hash};
use chainsink_transparency::proof::{ConsistencyProof, InclusionProof};

/// Arguments of `chainsink prove`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["seq", "index", "from"])))]
pub(crate) struct ProveArgs {
    /// The log.
    log: PathBuf,
    /// Prove the record with this `seq`.
    #[arg(long, value_name = "N")]
    seq: Option<u64>,
    /// Prove the line at this zero-based index (leaf index; line N+1).
    #[arg(long, value_name = "I")]
    index: Option<u64>,
    /// Prove that --checkpoint extends this older checkpoint (a consistency
    /// proof).
    #[arg(long, value_name = "OLD_CP")]
    from: Option<PathBuf>,
    /// The checkpoint to prove against (default: LOG.checkpoint).
    #[arg(long, value_name = "CP")]
    checkpoint: Option<PathBuf>,
}

/// Prints the proof on stdout.
pub(crate) fn prove(args: &ProveArgs) -> Result<ExitCode> {
    let cp_path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| checkpoint_path(&args.log));
    let cp_text = std::fs::read_to_string(&cp_path).with_context(|| {
        format!(
            "cannot read checkpoint {}; sign one with chainsink checkpoint {} --signing-key KEY",
            cp_path.display(),
            args.log.display()
        )
    })?;
    // Proofs carry the checkpoint; its signature is the verifier's to check.
    let signed = checkpoint::parse_unverified(&cp_text)
        .with_context(|| format!("checkpoint {}", cp_path.display()))?;
    let size = signed.checkpoint.size;
    let leaves = leaf_hashes(&args.log, Some(size))
        .with_context(|| format!("reading {}", args.log.display()))?;
    check_prefix(&args.log, &leaves, size, &signed.checkpoint.root, &cp_path)?;
    let text = if let Some(old) = &args.from {
        let old_text = std::fs::read_to_string(old)
            .with_context(|| format!("cannot read checkpoint {}", old.display()))?;
        let old_cp = checkpoint::parse_unverified(&old_text)
            .with_context(|| format!("checkpoint {}", old.display()))?;
        let old_size = old_cp.checkpoint.size;
        if old_size > size {
            bail!(
                "{} ({old_size} records) is newer than {} ({size} records): give the older one to --from",
                old.display(),
                cp_path.display()
            );
        }
        ConsistencyProof {
            old_size,
            hashes: merkle::consistency_proof(old_size, &leaves)?,
            checkpoint: cp_text,
        }
        .to_text()
    } else {
        let index = match (args.index, args.seq) {
            (Some(i), _) => i,
            (None, Some(seq)) => index_of_seq(&args.log, seq, size)?,
            (None, None) => unreachable!("clap requires one"),
        };
        if index >= size {
            bail!(
                "line {} is not in the checkpoint, which covers {size} records: sign a newer one \
                 (chainsink checkpoint) or pick an earlier record",
                index + 1
            );
        }
        InclusionProof {
            extra: None,
            index,
            hashes: merkle::inclusion_proof(index, &leaves)?,
            checkpoint: cp_text,
        }
        .to_text()
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Fails unless the log's first `size` lines give `root`.
fn check_prefix(log: &Path, leaves: &[Hash], size: u64, root: &Hash, cp: &Path) -> Result<()> {
    if (leaves.len() as u64) < size {
        bail!(
            "{}: log has {} records, checkpoint {} says {size}: the last {} records were cut; no \
             proof can be made",
            log.display(),
            leaves.len(),
            cp.display(),
            size - leaves.len() as u64
        );
    }
    if merkle::root(leaves) != *root {
        bail!(
            "{}: the first {size} records do not give the root of checkpoint {}: the log was \
             rewritten; no proof can be made (chainsink verify {} --checkpoint {} --key KEY.vkey \
             says more)",
            log.display(),
            cp.display(),
            log.display(),
            cp.display()
        );
    }
    Ok(())
}

/// The zero-based line index of the record with `seq` among the first
/// `size` lines.
fn index_of_seq(log: &Path, seq: u64, size: u64) -> Result<u64> {
    let mut index = 0u64;
    let mut found = None;
    for_each_line(log, 0, |line| {
        if index >= size {
            return false;
        }
        if check_line(line, Mode::Fast).is_ok_and(|info| info.seq == Some(seq)) {
            found = Some(index);
            return false;
        }
        index += 1;
        true
    })
    .with_context(|| format!("reading {}", log.display()))?;
    found.with_context(|| {
        format!(
            "no record with seq {seq} among the {size} records of the checkpoint of {}",
            log.display()
        )
    })
}
