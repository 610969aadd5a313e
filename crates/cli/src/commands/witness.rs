//! `chainsink witness`: send the log's newest checkpoint to a C2SP
//! tlog-witness and keep its cosignature in `LOG.checkpoint`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_transparency::checkpoint;
use chainsink_transparency::checkpointer::{checkpoint_path, leaf_hashes, write_atomic};
use chainsink_transparency::merkle;
use chainsink_transparency::proof::ConsistencyProof;
use chainsink_transparency::witness::{Answer, accept_cosignatures, add_checkpoint};

use super::checkpoint::load_vkey;

/// Arguments of `chainsink witness`.
#[derive(Args)]
pub(crate) struct WitnessArgs {
    /// The log whose LOG.checkpoint to have witnessed.
    log: PathBuf,
    /// The witness's submission prefix: http://HOST:PORT[/PREFIX]
    /// (requests go to PREFIX/add-checkpoint).
    #[arg(long, value_name = "URL")]
    url: String,
    /// The witness's verifier key (a cosigner vkey, type 0x04).
    #[arg(long, value_name = "VKEY")]
    witness_key: PathBuf,
}

/// Sends the checkpoint with a consistency proof from the size the witness
/// last cosigned, and adds the cosignature to LOG.checkpoint.
pub(crate) fn witness(args: &WitnessArgs) -> Result<ExitCode> {
    let wkey = load_vkey(&args.witness_key)?;
    let cp_path = checkpoint_path(&args.log);
    let text = std::fs::read_to_string(&cp_path).with_context(|| {
        format!(
            "cannot read {}; sign one first with chainsink checkpoint {} --signing-key KEY",
            cp_path.display(),
            args.log.display()
        )
    })?;
    let mut signed = checkpoint::parse_unverified(&text)
        .with_context(|| format!("checkpoint {}", cp_path.display()))?;
    let size = signed.checkpoint.size;
    let leaves = leaf_hashes(&args.log, Some(size))
        .with_context(|| format!("reading {}", args.log.display()))?;
    if leaves.len() as u64 != size || merkle::root(&leaves) != signed.checkpoint.root {
        bail!(
            "{} does not hold the tree of {} (run chainsink verify {} --checkpoint {} --key KEY.vkey)",
            args.log.display(),
            cp_path.display(),
            args.log.display(),
            cp_path.display()
        );
    }
    // Start from 0; a witness that knows the log says which size it has
    // (409) and the request is made again with a proof from there.
    let mut old = 0;
    let lines = loop {
        let proof = ConsistencyProof {
            old_size: old,
            hashes: merkle::consistency_proof(old, &leaves)?,
            checkpoint: text.clone(),
        };
        match add_checkpoint(&args.url, &proof)? {
            Answer::Cosigned(lines) => break lines,
            Answer::Conflict(theirs) if theirs != old && theirs <= size => old = theirs,
            Answer::Conflict(theirs) => bail!(
                "witness {} has cosigned {theirs} records of this log, more than this checkpoint's {size}: \
                 the log may have been cut or forked",
                args.url
            ),
        }
    };
    let added = accept_cosignatures(&mut signed.note, &lines, &wkey, &args.url)?;
    // Keep the cosignature only if the checkpoint is still the one sent.
    let current = std::fs::read_to_string(&cp_path).unwrap_or_default();
    if current != text {
        bail!(
            "{} changed while the witness answered; run chainsink witness again",
            cp_path.display()
        );
    }
    write_atomic(&cp_path, signed.note.to_string().as_bytes())
        .with_context(|| format!("writing {}", cp_path.display()))?;
    println!(
        "cosigned by {} ({added} signature(s)) from size {old} to {size}; {} now has {} signatures",
        wkey.name(),
        cp_path.display(),
        signed.note.signatures().len()
    );
    Ok(ExitCode::SUCCESS)
}
