//! The client side of C2SP tlog-witness (<https://c2sp.org/tlog-witness>).
//!
//! The log sends `POST <prefix>/add-checkpoint` with `old <size>`, a
//! consistency proof from that size, a blank line and the new checkpoint
//! (a [`ConsistencyProof`]'s text). The witness checks the log's signature
//! and the proof against the last size it cosigned, and answers with its
//! cosignature lines, which the log adds to its checkpoint. A `409
//! Conflict` says which size the witness has; the client retries from it.
//!
//! Plain `http://` only (a loopback or a trusted network; put a TLS
//! terminating proxy in front for anything else).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::note::{KeyType, Note, Signature, VerifierKey};
use crate::proof::ConsistencyProof;

/// Why witnessing failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The URL is not `http://host:port[/prefix]`.
    #[error("witness URL {0:?} is not http://HOST:PORT[/PREFIX] (only plain http is supported)")]
    BadUrl(String),
    /// The witness could not be reached or spoke no HTTP.
    #[error("witness {url}: {error}")]
    Io {
        /// The URL.
        url: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The witness answered with a status that is not a cosignature.
    #[error("witness {url} answered {status}: {body}")]
    Refused {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body (trimmed).
        body: String,
    },
    /// The answer held no valid cosignature by the witness's key.
    #[error("witness {url} answered without a valid cosignature by {key}: {why}")]
    NoCosignature {
        /// The URL.
        url: String,
        /// The witness key expected.
        key: String,
        /// Why.
        why: String,
    },
    /// The key given is not a cosigner key.
    #[error("{0} is not a witness (cosigner, type 0x04) key")]
    NotACosigner(String),
}

/// What a witness answered to `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `200`: its signature lines.
    Cosigned(String),
    /// `409` with `text/x.tlog.size`: the size it last cosigned.
    Conflict(u64),
}

/// Sends `proof` (old size, consistency path, new checkpoint) to the
/// witness at `url` and returns its answer.
pub fn add_checkpoint(url: &str, proof: &ConsistencyProof) -> Result<Answer, WitnessError> {
    let (host, path) = split_url(url)?;
    let io = |error| WitnessError::Io {
        url: url.into(),
        error,
    };
    let body = proof.to_text();
    let mut stream = TcpStream::connect(&host).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let request = format!(
        "POST {path}/add-checkpoint HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let (status, headers, body) = parse_response(&raw).ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an HTTP/1.1 response",
        ))
    })?;
    match status {
        200 => Ok(Answer::Cosigned(body)),
        409 if headers.contains("text/x.tlog.size") => body
            .trim()
            .parse()
            .map(Answer::Conflict)
            .map_err(|_| WitnessError::Refused {
                url: url.into(),
                status,
                body: body.trim().into(),
            }),
        _ => Err(WitnessError::Refused {
            url: url.into(),
            status,
            body: body.trim().into(),
        }),
    }
}

/// `host:port` and the path prefix (without a trailing slash).
fn split_url(url: &str) -> Result<(String, String), WitnessError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| WitnessError::BadUrl(url.into()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() || !host.contains(':') {
        return Err(WitnessError::BadUrl(url.into()));
    }
    Ok((host.into(), path.into()))
}

/// Status, the headers (lower-cased, as one string), and the body.
fn parse_response(raw: &[u8]) -> Option<(u16, String, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers = lines.collect::<Vec<_>>().join("\n").to_ascii_lowercase();
    Some((status, headers, body.to_string()))
}

/// Adds the cosignatures in a witness's answer `lines` to `note`, keeping
/// only those by `witness` and checking each: unknown keys are ignored; a
/// bad one by the witness's key, or none at all, is an error.
pub fn accept_cosignatures(
    note: &mut Note,
    lines: &str,
    witness: &VerifierKey,
    url: &str,
) -> Result<usize, WitnessError> {
    if witness.kind() != KeyType::Cosignature {
        return Err(WitnessError::NotACosigner(witness.to_text()));
    }
    let fail = |why: String| WitnessError::NoCosignature {
        url: url.into(),
        key: format!("{}+{:08x}", witness.name(), witness.id()),
        why,
    };
    let mut added = 0;
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let sig = Signature::from_line(line).map_err(|e| fail(e.to_string()))?;
        if sig.name != witness.name() || sig.key_id != witness.id() {
            continue;
        }
        if !witness.verifies(note.text(), &sig) {
            return Err(fail(
                "its cosignature does not verify on this checkpoint".into(),
            ));
        }
        note.add_signature(sig);
        added += 1;
    }
    if added == 0 {
        return Err(fail("no signature line by that key".into()));
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::SigningKey;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), String::new())
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080/w/").unwrap(),
            ("127.0.0.1:8080".into(), "/w".into())
        );
        assert!(split_url("https://x:1").is_err());
        assert!(split_url("http://nohost").is_err());
    }

    #[test]
    fn only_the_witness_cosignatures_are_taken_and_each_is_checked() {
        let log = SigningKey::generate("example.com/log", KeyType::Ed25519).unwrap();
        let w = SigningKey::generate("witness.example/w", KeyType::Cosignature).unwrap();
        let other = SigningKey::generate("witness.example/x", KeyType::Cosignature).unwrap();
        let mut note = Note::sign(
            "example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            &log,
            0,
        )
        .unwrap();
        let answer = format!(
            "{}{}",
            other.sign(note.text(), 5).to_line(),
            w.sign(note.text(), 7).to_line()
        );
        assert_eq!(
            accept_cosignatures(&mut note, &answer, &w.verifier(), "u").unwrap(),
            1
        );
        assert_eq!(note.signatures().len(), 2);
        let wrong = w.sign("another text\n", 7).to_line();
        assert!(accept_cosignatures(&mut note, &wrong, &w.verifier(), "u").is_err());
        assert!(accept_cosignatures(&mut note, "", &w.verifier(), "u").is_err());
        assert!(accept_cosignatures(&mut note, &answer, &log.verifier(), "u").is_err());
    }

    #[test]
    fn responses() {
        let (s, h, b) =
            parse_response(b"HTTP/1.1 409 Conflict\r\nContent-Type: text/x.tlog.size\r\n\r\n12\n")
                .unwrap();
        assert_eq!((s, b.as_str()), (409, "12\n"));
        assert!(h.contains("text/x.tlog.size"));
        assert!(parse_response(b"garbage").is_none());
    }
}
