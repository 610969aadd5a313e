//! The C2SP tlog-checkpoint body (<https://c2sp.org/tlog-checkpoint>):
//! origin line, tree size, base64 root hash, then optional extension lines;
//! signed as a [`crate::note::Note`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::merkle::Hash;
use crate::note::{Note, NoteError, VerifierKey};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note around it is malformed or its signature fails.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The checkpoint is of another log than the key's.
    #[error(
        "the checkpoint is of log {origin:?}, but the key is {key:?}'s: give the key of that log"
    )]
    WrongOrigin {
        /// The checkpoint's origin line.
        origin: String,
        /// The key's name.
        key: String,
    },
}

/// A checkpoint body: which log, how many leaves, and their root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (the origin line).
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The RFC 6962 root of those leaves.
    pub root: Hash,
    /// Extension lines (opaque; chainsink writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Reads a note text as a checkpoint.
    pub fn from_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: String| CheckpointError::Malformed(why);
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end in a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line".into()))?;
        let size_line = lines
            .next()
            .ok_or_else(|| bad("no tree size line".into()))?;
        let canonical = size_line == "0"
            || (!size_line.starts_with('0') && size_line.bytes().all(|b| b.is_ascii_digit()));
        let size: u64 = size_line
            .parse()
            .ok()
            .filter(|_| canonical && !size_line.is_empty())
            .ok_or_else(|| bad(format!("tree size {size_line:?} is not a decimal number")))?;
        let root_line = lines
            .next()
            .ok_or_else(|| bad("no root hash line".into()))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(format!("root hash {root_line:?} is not 32 bytes of base64")))?;
        let extensions: Vec<String> = lines.map(String::from).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line".into()));
        }
        Ok(Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions,
        })
    }

    /// The note text of this checkpoint.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for ext in &self.extensions {
            text.push_str(ext);
            text.push('\n');
        }
        text
    }
}

/// A checkpoint whose log signature verified, with its note (every
/// signature kept, cosignatures included).
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The body.
    pub checkpoint: Checkpoint,
    /// The signed note it came in.
    pub note: Note,
}

/// Parses a signed checkpoint and checks it is signed by `key`, the log's
/// key, whose name must be the checkpoint's origin.
pub fn open(text: &str, key: &VerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
    let note = Note::parse(text)?;
    let checkpoint = Checkpoint::from_text(note.text())?;
    if checkpoint.origin != key.name() {
        return Err(CheckpointError::WrongOrigin {
            origin: checkpoint.origin,
            key: key.name().into(),
        });
    }
    note.verify(std::slice::from_ref(key))?;
    Ok(SignedCheckpoint { checkpoint, note })
}

/// Parses a signed checkpoint without checking any signature (to show or
/// forward it; never to trust it).
pub fn parse_unverified(text: &str) -> Result<SignedCheckpoint, CheckpointError> {
    let note = Note::parse(text)?;
    let checkpoint = Checkpoint::from_text(note.text())?;
    Ok(SignedCheckpoint { checkpoint, note })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyType, SigningKey};

    #[test]
    fn the_spec_example_body_round_trips() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::from_text(text).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(cp.to_text(), text);
    }

    #[test]
    fn bad_bodies_are_refused() {
        let root = B64.encode([0u8; 32]);
        for text in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("o\n1\n{root}\n\nx\n"),
        ] {
            assert!(Checkpoint::from_text(&text).is_err(), "{text:?}");
        }
        assert!(Checkpoint::from_text(&format!("o\n0\n{root}\next\n")).is_ok());
    }

    #[test]
    fn open_checks_origin_and_signature() {
        let key = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 3,
            root: [9; 32],
            extensions: vec![],
        };
        let note = Note::sign(&cp.to_text(), &key, 0).unwrap().to_string();
        assert_eq!(open(&note, &key.verifier()).unwrap().checkpoint, cp);
        let other = SigningKey::generate("example.com/other", KeyType::Ed25519).unwrap();
        assert!(matches!(
            open(&note, &other.verifier()),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let tampered = note.replace("\n3\n", "\n4\n");
        assert!(open(&tampered, &key.verifier()).is_err());
    }
}
