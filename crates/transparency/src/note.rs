//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and
//! the Ed25519 cosignatures of <https://c2sp.org/tlog-cosignature>.
//!
//! A note is a text ending in a newline, a blank line, and one or more
//! signature lines `— <key name> base64(key ID || signature)`. A key is
//! known by its name and 32-bit ID, `SHA-256(name || "\n" || type || public
//! key)[:4]`, with type `0x01` for a note signature (over the text) and
//! `0x04` for a timestamped cosignature (over `cosignature/v1\ntime
//! <T>\n` and the text).
//!
//! Text forms of keys, as Go's `golang.org/x/mod/sumdb/note` writes them:
//! verifier key (*vkey*) `<name>+<hex key ID>+base64(type || public key)`,
//! signing key `PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Most signature lines a note may carry (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The em dash and space that start a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// What a key signs: a note, or a witness's timestamped cosignature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Ed25519 over the note text (signature type `0x01`): a log's key.
    Ed25519,
    /// Ed25519 over `cosignature/v1`, a time and the note text (type
    /// `0x04`): a witness's key.
    Cosignature,
}

impl KeyType {
    /// The signature type identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<KeyType> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }
}

/// Why a key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key name with a space or a plus, or none.
    #[error(
        "key name {0:?} is not valid: it must be non-empty, without spaces or '+' (such as example.com/audit)"
    )]
    BadName(String),
    /// The text is not a key of the expected form.
    #[error("not a {what}: expected {form}")]
    Malformed {
        /// What was expected ("verifier key", "signing key").
        what: &'static str,
        /// Its form.
        form: &'static str,
    },
    /// A signature type this crate does not support.
    #[error(
        "key type 0x{0:02x} is not supported (only Ed25519: 0x01 note keys, 0x04 cosigner keys)"
    )]
    UnsupportedType(u8),
    /// The key ID in the text is not the one the key and name give.
    #[error(
        "key ID {given:08x} does not match the key and name (expected {computed:08x}): the key text was altered"
    )]
    IdMismatch {
        /// The ID in the text.
        given: u32,
        /// The ID of the key and name.
        computed: u32,
    },
    /// The system gave no random bytes.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// Why a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a signed note.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// A signature by a known key does not verify.
    #[error(
        "the signature by {name} (key {key_id:08x}) does not verify: the note was altered or signed by another key"
    )]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's ID.
        key_id: u32,
    },
    /// No signature is by a key given to check it.
    #[error("the note has no signature by {expected}: it is signed only by {found}")]
    NoKnownSignature {
        /// The keys that were given.
        expected: String,
        /// The keys that signed it.
        found: String,
    },
}

/// `SHA-256(name || "\n" || type || public key)[:4]`, big-endian.
pub fn key_id(name: &str, kind: KeyType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind.byte()]);
    h.update(public_key);
    let sum: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Whether `name` can name a key: non-empty, no Unicode space, no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// A public key that checks signatures: its name, ID, type and Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    kind: KeyType,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Reads a vkey, `<name>+<hex ID>+base64(type || public key)`.
    pub fn from_text(text: &str) -> Result<VerifierKey, KeyError> {
        let malformed = KeyError::Malformed {
            what: "verifier key",
            form: "<name>+<8 hex digits>+<base64>, as chainsink keygen writes to PREFIX.vkey",
        };
        // The base64 part may hold '+' itself: split off the first two only.
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed);
        };
        if !valid_name(name) {
            return Err(KeyError::BadName(name.into()));
        }
        let given = parse_id(id).ok_or(malformed.clone())?;
        let bytes = B64.decode(key).map_err(|_| malformed.clone())?;
        let (&kind, public) = bytes.split_first().ok_or(malformed.clone())?;
        let kind = KeyType::from_byte(kind).ok_or(KeyError::UnsupportedType(kind))?;
        let public: [u8; 32] = public.try_into().map_err(|_| malformed.clone())?;
        let computed = key_id(name, kind, &public);
        if computed != given {
            return Err(KeyError::IdMismatch { given, computed });
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| malformed)?;
        Ok(VerifierKey {
            name: name.into(),
            id: given,
            kind,
            key,
        })
    }

    /// The vkey text.
    pub fn to_text(&self) -> String {
        let mut bytes = vec![self.kind.byte()];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(bytes))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// What it checks.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// Whether `sig` is this key's valid signature on the note text `text`.
    pub fn verifies(&self, text: &str, sig: &Signature) -> bool {
        if sig.name != self.name || sig.key_id != self.id {
            return false;
        }
        match self.kind {
            KeyType::Ed25519 => {
                let Ok(s) = ed25519_dalek::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                self.key.verify(text.as_bytes(), &s).is_ok()
            }
            KeyType::Cosignature => {
                let Some((time, s)) = split_cosignature(&sig.bytes) else {
                    return false;
                };
                let Ok(s) = ed25519_dalek::Signature::from_slice(s) else {
                    return false;
                };
                self.key
                    .verify(cosigned_message(text, time).as_bytes(), &s)
                    .is_ok()
            }
        }
    }
}

/// The time and Ed25519 signature of a cosignature's bytes (after the ID).
pub fn split_cosignature(bytes: &[u8]) -> Option<(u64, &[u8])> {
    if bytes.len() != 8 + 64 {
        return None;
    }
    let time = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    (time < 1 << 63).then_some((time, &bytes[8..]))
}

/// What an Ed25519 cosignature signs: `cosignature/v1\ntime <T>\n` and the
/// note text.
pub fn cosigned_message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

fn parse_id(hex: &str) -> Option<u32> {
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A private key: signs notes (a log) or cosigns checkpoints (a witness).
pub struct SigningKey {
    name: String,
    id: u32,
    kind: KeyType,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "SigningKey({}+{:08x})", self.name, self.id)
    }
}

impl SigningKey {
    /// A new random key named `name` (the log's origin, such as
    /// `example.com/audit`).
    pub fn generate(name: &str, kind: KeyType) -> Result<SigningKey, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        SigningKey::from_seed(name, kind, &seed)
    }

    /// The key with this Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, kind: KeyType, seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        if !valid_name(name) {
            return Err(KeyError::BadName(name.into()));
        }
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let id = key_id(name, kind, key.verifying_key().as_bytes());
        Ok(SigningKey {
            name: name.into(),
            id,
            kind,
            key,
        })
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+base64(type || seed)`.
    pub fn from_text(text: &str) -> Result<SigningKey, KeyError> {
        let malformed = KeyError::Malformed {
            what: "signing key",
            form: "PRIVATE+KEY+<name>+<8 hex digits>+<base64>, as chainsink keygen writes to PREFIX.key",
        };
        let mut parts = text.trim().splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id), Some(key)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed);
        };
        let given = parse_id(id).ok_or(malformed.clone())?;
        let bytes = Zeroizing::new(B64.decode(key).map_err(|_| malformed.clone())?);
        let (&kind, seed) = bytes.split_first().ok_or(malformed.clone())?;
        let kind = KeyType::from_byte(kind).ok_or(KeyError::UnsupportedType(kind))?;
        let seed: &[u8; 32] = seed.try_into().map_err(|_| malformed)?;
        let key = SigningKey::from_seed(name, kind, seed)?;
        if key.id != given {
            return Err(KeyError::IdMismatch {
                given,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The private key text. Keep it secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(vec![self.kind.byte()]);
        bytes.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            B64.encode(&*bytes)
        ))
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            kind: self.kind,
            key: self.key.verifying_key(),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs the note text `text` (for a cosigner key, at `time`, seconds
    /// since the Unix epoch; a note key ignores it).
    pub fn sign(&self, text: &str, time: u64) -> Signature {
        let bytes = match self.kind {
            KeyType::Ed25519 => self.key.sign(text.as_bytes()).to_bytes().to_vec(),
            KeyType::Cosignature => {
                let time = time.min((1 << 63) - 1);
                let mut b = time.to_be_bytes().to_vec();
                b.extend_from_slice(
                    &self
                        .key
                        .sign(cosigned_message(text, time).as_bytes())
                        .to_bytes(),
                );
                b
            }
        };
        Signature {
            name: self.name.clone(),
            key_id: self.id,
            bytes,
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key's name.
    pub name: String,
    /// The key's ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub bytes: Vec<u8>,
}

impl Signature {
    /// Reads `— <name> <base64>` (without the newline).
    pub fn from_line(line: &str) -> Result<Signature, NoteError> {
        let bad = |why: &str| NoteError::Malformed(format!("signature line {line:?}: {why}"));
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between key name and signature"))?;
        if !valid_name(name) {
            return Err(bad("the key name is not valid"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("the signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("the signature is too short"));
        }
        Ok(Signature {
            name: name.into(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            bytes: raw[4..].to_vec(),
        })
    }

    /// The signature line, with its newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A signed note: its text and every signature on it, known or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<Signature>,
}

impl Note {
    /// Signs `text` (which must end in a newline) with `key`.
    pub fn sign(text: &str, key: &SigningKey, time: u64) -> Result<Note, NoteError> {
        check_text(text)?;
        Ok(Note {
            text: text.into(),
            signatures: vec![key.sign(text, time)],
        })
    }

    /// Parses a signed note; checks no signature (see [`Note::verify`]).
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note
            .chars()
            .any(|c| c.is_control() && c != '\n' && (c as u32) < 0x20)
        {
            return Err(NoteError::Malformed(
                "it holds a control character other than newline".into(),
            ));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let text = &note[..=split];
        let sigs = &note[split + 2..];
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line does not end in a newline".into(),
            ));
        }
        let signatures: Vec<Signature> = sigs
            .lines()
            .map(Signature::from_line)
            .collect::<Result<_, _>>()?;
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines".into()));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::Malformed(format!(
                "{} signatures, more than the {MAX_SIGNATURES} accepted",
                signatures.len()
            )));
        }
        Ok(Note {
            text: text.into(),
            signatures,
        })
    }

    /// The note text (with its final newline).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every signature, in order, known or not.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Adds a signature (a witness's cosignature), replacing one by the same
    /// key.
    pub fn add_signature(&mut self, sig: Signature) {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }

    /// Checks the signatures by `keys`, as the spec says: a signature by an
    /// unknown key (name and ID) is ignored; one by a known key must verify;
    /// and at least one must be by a known key. Returns the verified ones.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<Vec<&Signature>, NoteError> {
        let mut verified = Vec::new();
        for sig in &self.signatures {
            let Some(key) = keys
                .iter()
                .find(|k| k.name == sig.name && k.id == sig.key_id)
            else {
                continue;
            };
            if !key.verifies(&self.text, sig) {
                return Err(NoteError::BadSignature {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            verified.push(sig);
        }
        if verified.is_empty() {
            let list = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(", ");
            return Err(NoteError::NoKnownSignature {
                expected: list(&mut keys.iter().map(|k| format!("{}+{:08x}", k.name, k.id))),
                found: list(
                    &mut self
                        .signatures
                        .iter()
                        .map(|s| format!("{}+{:08x}", s.name, s.key_id)),
                ),
            });
        }
        Ok(verified)
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for sig in &self.signatures {
            f.write_str(&sig.to_line())?;
        }
        Ok(())
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the text does not end in a newline".into(),
        ));
    }
    if text.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed(
            "the text holds a control character other than newline".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note's documentation.
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n\
                          \n\
                          \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_published_example_signs_and_verifies_byte_for_byte() {
        let key = SigningKey::from_text(SKEY).unwrap();
        assert_eq!(key.verifier().to_text(), VKEY);
        assert_eq!(&*key.to_text(), SKEY);
        let note = Note::sign(TEXT, &key, 0).unwrap();
        assert_eq!(note.to_string(), SIGNED);
        let vkey = VerifierKey::from_text(VKEY).unwrap();
        let parsed = Note::parse(SIGNED).unwrap();
        assert_eq!(parsed.verify(&[vkey]).unwrap().len(), 1);
    }

    #[test]
    fn the_c2sp_vkey_example_verifies_its_note() {
        let vkey = VerifierKey::from_text(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = Note::parse(
            "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n",
        )
        .unwrap();
        note.verify(&[vkey]).unwrap();
    }

    #[test]
    fn unknown_signatures_are_ignored_and_kept_a_bad_known_one_fails() {
        let log = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        let other = SigningKey::generate("example.com/other", KeyType::Ed25519).unwrap();
        let mut note = Note::sign("hello\n", &log, 0).unwrap();
        note.add_signature(other.sign("hello\n", 0));
        // Same name as the log key, another ID: unknown, ignored.
        let impostor = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        note.add_signature(impostor.sign("tampered\n", 0));
        let text = note.to_string();
        let back = Note::parse(&text).unwrap();
        assert_eq!(back.signatures().len(), 3);
        assert_eq!(back.to_string(), text);
        assert_eq!(back.verify(&[log.verifier()]).unwrap().len(), 1);
        // Only unknown keys: refused.
        let stranger = SigningKey::generate("x.example/y", KeyType::Ed25519).unwrap();
        assert!(matches!(
            back.verify(&[stranger.verifier()]),
            Err(NoteError::NoKnownSignature { .. })
        ));
        // A known key whose signature fails: refused.
        let forged = text.replace("hello\n\n", "hellO\n\n");
        let forged = Note::parse(&forged).unwrap();
        assert!(matches!(
            forged.verify(&[log.verifier()]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn cosignatures_sign_the_time_and_the_text() {
        let witness = SigningKey::generate("witness.example/w1", KeyType::Cosignature).unwrap();
        let sig = witness.sign("origin\n1\nAAAA\n", 1_679_315_147);
        assert_eq!(sig.bytes.len(), 72);
        assert_eq!(split_cosignature(&sig.bytes).unwrap().0, 1_679_315_147);
        let v = VerifierKey::from_text(&witness.verifier().to_text()).unwrap();
        assert_eq!(v.kind(), KeyType::Cosignature);
        assert!(v.verifies("origin\n1\nAAAA\n", &sig));
        assert!(!v.verifies("origin\n2\nAAAA\n", &sig));
        // A cosigner key's ID differs from a note key's on the same key.
        assert_ne!(
            key_id("n", KeyType::Ed25519, &[7; 32]),
            key_id("n", KeyType::Cosignature, &[7; 32])
        );
    }

    #[test]
    fn malformed_keys_and_notes_are_refused() {
        assert!(
            VerifierKey::from_text(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        assert!(VerifierKey::from_text("a b+c74f20a3+AA==").is_err());
        assert!(SigningKey::from_text(VKEY).is_err());
        assert!(SigningKey::generate("has space", KeyType::Ed25519).is_err());
        assert!(Note::parse("no signatures\n").is_err());
        assert!(Note::parse("text\n\n\u{2014} name AAAA\n").is_err());
        assert!(Note::parse("te\u{7}xt\n\n\u{2014} name AAAAAAA=\n").is_err());
    }
}
