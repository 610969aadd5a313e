//! Proofs as text, each carrying the signed checkpoint it proves against.
//!
//! - [`InclusionProof`]: C2SP tlog-proof (<https://c2sp.org/tlog-proof>):
//!   `c2sp.org/tlog-proof@v1`, optional `extra <base64>`, `index <N>`, the
//!   inclusion path (one base64 hash a line, the leaf's sibling first), a
//!   blank line, then the checkpoint verbatim.
//! - [`ConsistencyProof`]: no C2SP format exists for a bare one, so chainsink
//!   uses the body of a C2SP tlog-witness `add-checkpoint` request: `old
//!   <size>`, the consistency path (one base64 hash a line), a blank line,
//!   then the new checkpoint. The same bytes go to a witness.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checkpoint::{self, CheckpointError, SignedCheckpoint};
use crate::merkle::{self, Hash, MAX_PROOF_HASHES, ProofError};
use crate::note::VerifierKey;

/// The first line of a tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofTextError {
    /// The text is not a proof.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// Its checkpoint is malformed or not signed by the key.
    #[error("the proof's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The hashes do not prove it.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// An inclusion proof of one leaf against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// The leaf's zero-based index.
    pub index: u64,
    /// The inclusion path, the leaf's sibling first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint (note text, signatures included).
    pub checkpoint: String,
}

fn parse_hash(line: &str) -> Result<Hash, ProofTextError> {
    B64.decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProofTextError::Malformed(format!("{line:?} is not a base64 SHA-256 hash")))
}

fn parse_decimal(text: &str, what: &str) -> Result<u64, ProofTextError> {
    let canonical = text == "0"
        || (!text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()));
    text.parse().ok().filter(|_| canonical).ok_or_else(|| {
        ProofTextError::Malformed(format!("{what} {text:?} is not a decimal number"))
    })
}

/// Splits `text` at its first blank line: the lines before it and the rest.
fn split_blank(text: &str) -> Result<(Vec<&str>, &str), ProofTextError> {
    let at = text
        .find("\n\n")
        .ok_or_else(|| ProofTextError::Malformed("no blank line before the checkpoint".into()))?;
    Ok((text[..at].split('\n').collect(), &text[at + 2..]))
}

impl InclusionProof {
    /// Reads a tlog-proof.
    pub fn from_text(text: &str) -> Result<InclusionProof, ProofTextError> {
        let (head, checkpoint) = split_blank(text)?;
        let mut lines = head.into_iter().peekable();
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(ProofTextError::Malformed(format!(
                "the first line is not {TLOG_PROOF_HEADER}"
            )));
        }
        let mut extra = None;
        if let Some(e) = lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(
                B64.decode(e)
                    .map_err(|_| ProofTextError::Malformed("extra is not base64".into()))?,
            );
            lines.next();
        }
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .ok_or_else(|| ProofTextError::Malformed("no `index N` line".into()))?;
        let index = parse_decimal(index, "index")?;
        let hashes: Vec<Hash> = lines.map(parse_hash).collect::<Result<_, _>>()?;
        if hashes.len() > MAX_PROOF_HASHES {
            return Err(ProofTextError::Malformed("too many hashes".into()));
        }
        Ok(InclusionProof {
            extra,
            index,
            hashes,
            checkpoint: checkpoint.into(),
        })
    }

    /// The tlog-proof text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Checks offline that `line` (without its newline) is leaf
    /// [`index`](Self::index) of the log the checkpoint, signed by `key`,
    /// commits to. Returns the checkpoint.
    pub fn verify(
        &self,
        line: &[u8],
        key: &VerifierKey,
    ) -> Result<SignedCheckpoint, ProofTextError> {
        let signed = checkpoint::open(&self.checkpoint, key)?;
        let cp = &signed.checkpoint;
        merkle::verify_inclusion(
            &merkle::leaf_hash(line),
            self.index,
            cp.size,
            &self.hashes,
            &cp.root,
        )?;
        Ok(signed)
    }
}

/// A consistency proof from an older tree size to a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The consistency path (RFC 6962 section 2.1.2).
    pub hashes: Vec<Hash>,
    /// The new signed checkpoint (note text).
    pub checkpoint: String,
}

impl ConsistencyProof {
    /// Reads `old N`, the hashes, a blank line and the checkpoint.
    pub fn from_text(text: &str) -> Result<ConsistencyProof, ProofTextError> {
        let (head, checkpoint) = split_blank(text)?;
        let mut lines = head.into_iter();
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| ProofTextError::Malformed("the first line is not `old N`".into()))?;
        let old_size = parse_decimal(old, "old size")?;
        let hashes: Vec<Hash> = lines.map(parse_hash).collect::<Result<_, _>>()?;
        if hashes.len() > 63 {
            return Err(ProofTextError::Malformed(
                "more than 63 consistency proof lines".into(),
            ));
        }
        Ok(ConsistencyProof {
            old_size,
            hashes,
            checkpoint: checkpoint.into(),
        })
    }

    /// The text (a tlog-witness `add-checkpoint` request body).
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.hashes {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Checks offline that the proof's checkpoint, signed by `key`, extends
    /// `old` (a checkpoint of the same log, already verified). Returns the
    /// new checkpoint.
    pub fn verify(
        &self,
        old: &SignedCheckpoint,
        key: &VerifierKey,
    ) -> Result<SignedCheckpoint, ProofTextError> {
        let new = checkpoint::open(&self.checkpoint, key)?;
        if old.checkpoint.size != self.old_size {
            return Err(ProofTextError::Malformed(format!(
                "the proof starts at size {}, but the old checkpoint has {}",
                self.old_size, old.checkpoint.size
            )));
        }
        merkle::verify_consistency(
            self.old_size,
            new.checkpoint.size,
            &old.checkpoint.root,
            &new.checkpoint.root,
            &self.hashes,
        )?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::note::{KeyType, Note, SigningKey};

    fn signed(key: &SigningKey, leaves: &[Hash]) -> String {
        let cp = Checkpoint {
            origin: key.name().into(),
            size: leaves.len() as u64,
            root: merkle::root(leaves),
            extensions: vec![],
        };
        Note::sign(&cp.to_text(), key, 0).unwrap().to_string()
    }

    #[test]
    fn inclusion_proofs_round_trip_and_verify() {
        let key = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        let lines: Vec<String> = (0..11).map(|i| format!("{{\"seq\": {i}}}")).collect();
        let leaves: Vec<Hash> = lines
            .iter()
            .map(|l| merkle::leaf_hash(l.as_bytes()))
            .collect();
        let cp = signed(&key, &leaves);
        for (i, line) in lines.iter().enumerate() {
            let proof = InclusionProof {
                extra: (i == 3).then(|| b"ctx".to_vec()),
                index: i as u64,
                hashes: merkle::inclusion_proof(i as u64, &leaves).unwrap(),
                checkpoint: cp.clone(),
            };
            let text = proof.to_text();
            let back = InclusionProof::from_text(&text).unwrap();
            assert_eq!(back, proof);
            back.verify(line.as_bytes(), &key.verifier()).unwrap();
            assert!(back.verify(b"{\"seq\": 99}", &key.verifier()).is_err());
        }
    }

    #[test]
    fn consistency_proofs_round_trip_and_verify() {
        let key = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        let leaves: Vec<Hash> = (0..20).map(|i| merkle::leaf_hash(&[i])).collect();
        let old = checkpoint::open(&signed(&key, &leaves[..7]), &key.verifier()).unwrap();
        let proof = ConsistencyProof {
            old_size: 7,
            hashes: merkle::consistency_proof(7, &leaves).unwrap(),
            checkpoint: signed(&key, &leaves),
        };
        let back = ConsistencyProof::from_text(&proof.to_text()).unwrap();
        assert_eq!(back, proof);
        back.verify(&old, &key.verifier()).unwrap();
        let mut rewritten = leaves.clone();
        rewritten[3] = merkle::leaf_hash(b"x");
        let bad = ConsistencyProof {
            old_size: 7,
            hashes: merkle::consistency_proof(7, &rewritten).unwrap(),
            checkpoint: signed(&key, &rewritten),
        };
        assert!(bad.verify(&old, &key.verifier()).is_err());
    }
}
