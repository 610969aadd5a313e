//! `chainsink verify-proof`: check a proof offline, with only the record
//! line (or the older checkpoint), the proof, and the log's public key.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use chainsink_transparency::proof::{ConsistencyProof, InclusionProof, TLOG_PROOF_HEADER};

use super::checkpoint::{b64, load_vkey, open_checkpoint};

/// Arguments of `chainsink verify-proof`.
#[derive(Args)]
pub(crate) struct VerifyProofArgs {
    /// The proof (`chainsink prove`'s output).
    #[arg(long, value_name = "FILE")]
    proof: PathBuf,
    /// The log's verifier key (PREFIX.vkey from chainsink keygen).
    #[arg(long, value_name = "VKEY")]
    key: PathBuf,
    /// For an inclusion proof: the record's line (a file, or - for stdin),
    /// with or without its newline.
    #[arg(long, value_name = "FILE")]
    line: Option<PathBuf>,
    /// For a consistency proof: the older checkpoint it starts from.
    #[arg(long, value_name = "OLD_CP")]
    old_checkpoint: Option<PathBuf>,
    /// Also require the proof to be against this checkpoint (the same tree).
    #[arg(long, value_name = "CP")]
    checkpoint: Option<PathBuf>,
}

/// Exit 0 when the proof holds, 1 when it does not, 2 when it cannot be read.
pub(crate) fn verify_proof(args: &VerifyProofArgs) -> Result<ExitCode> {
    let key = load_vkey(&args.key)?;
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("cannot read proof {}", args.proof.display()))?;
    let outcome = if text.starts_with(TLOG_PROOF_HEADER) {
        let Some(line_path) = &args.line else {
            bail!(
                "{} is an inclusion proof: give the record with --line FILE (or - for stdin)",
                args.proof.display()
            );
        };
        let mut line = Vec::new();
        if line_path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_end(&mut line)
                .context("reading the line from stdin")?;
        } else {
            line = std::fs::read(line_path)
                .with_context(|| format!("cannot read line {}", line_path.display()))?;
        }
        if line.ends_with(b"\n") {
            line.pop();
        }
        if line.contains(&b'\n') {
            bail!(
                "{} holds more than one line: give the one record the proof is for",
                line_path.display()
            );
        }
        let proof = InclusionProof::from_text(&text)
            .with_context(|| format!("proof {}", args.proof.display()))?;
        proof
            .verify(&line, &key)
            .map(|signed| {
                format!(
                    "OK: the line is record {} (line {}) of {}'s log of {} records, root {}",
                    proof.index + 1,
                    proof.index + 1,
                    signed.checkpoint.origin,
                    signed.checkpoint.size,
                    b64(&signed.checkpoint.root)
                )
            })
            .map(|msg| (msg, signed_body(&proof.checkpoint)))
    } else {
        let Some(old_path) = &args.old_checkpoint else {
            bail!(
                "{} is a consistency proof: give the older checkpoint with --old-checkpoint OLD_CP",
                args.proof.display()
            );
        };
        let old = open_checkpoint(old_path, &key)?;
        let proof = ConsistencyProof::from_text(&text)
            .with_context(|| format!("proof {}", args.proof.display()))?;
        proof
            .verify(&old, &key)
            .map(|new| {
                format!(
                    "OK: {}'s log of {} records (root {}) extends the one of {} records (root {})",
                    new.checkpoint.origin,
                    new.checkpoint.size,
                    b64(&new.checkpoint.root),
                    old.checkpoint.size,
                    b64(&old.checkpoint.root)
                )
            })
            .map(|msg| (msg, signed_body(&proof.checkpoint)))
    };
    match outcome {
        Ok((msg, body)) => {
            if let Some(cp_path) = &args.checkpoint {
                let cp = open_checkpoint(cp_path, &key)?;
                if Some(cp.note.text().to_string()) != body {
                    println!(
                        "FAILED: the proof is against another tree than {} ({} records)",
                        cp_path.display(),
                        cp.checkpoint.size
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            println!("{msg}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The note text of the checkpoint a proof carries.
fn signed_body(note: &str) -> Option<String> {
    chainsink_transparency::checkpoint::parse_unverified(note)
        .ok()
        .map(|s| s.note.text().to_string())
}
