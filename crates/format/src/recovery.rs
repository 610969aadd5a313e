//! Torn-write recovery: the one pattern a verifier accepts in place of a record.
//!
//! This module is the ONLY place the torn-write rule is decided; the verifier, the append guard
//! and the sink's writer call it instead of deciding themselves.
//!
//! # The rule
//!
//! A crash in the middle of an append can leave the log ending in a partial line. A crash cannot
//! leave a newline-terminated broken line (the `\n` is the last byte of every append), so:
//!
//! 1. **Only an UNTERMINATED LAST line can be torn.** The writer, on opening a log, judges its tail
//!    with [`judge_tail`]: a newline-terminated line that is not a valid record is tampering
//!    ([`Tail::Tampered`]), never torn. An unterminated last line that is a complete valid record
//!    only lost its `\n` ([`Tail::MissingNewline`]): end it with `\n` and chain from it. An
//!    unterminated line that is not a record is torn ([`Tail::Torn`]) only if its bytes look like a
//!    write cut short (below); otherwise it is tampering.
//! 2. **Recovery.** The sink never deletes a byte: at its next write it ends the torn line with
//!    `\n` and appends a `chain.recovered` record, chained from the last valid record (the torn
//!    line is not in the chain), whose payload names the torn bytes by offset, length (without the
//!    `\n`) and SHA-256.
//! 3. **Verification.** After recovery the torn line IS newline-terminated, so a verifier cannot
//!    see that it once was the last line. It accepts a line that fails
//!    [`check_line`](crate::verify::check_line) only through [`judge_bad_line`]: the very
//!    next line must be a valid `chain.recovered` record whose claim covers exactly that
//!    line's offset, length and SHA-256, AND the bad line's bytes must have the shape of a
//!    write cut short. Anything else is tampering. The recovery record is then checked and
//!    linked like any record (its `prev_hash` is the hash of the last valid record before the
//!    torn line).
//!
//! # Evidence a torn line must show
//!
//! An append writes `canon(record) + "\n"` (or several such lines); a crash keeps a prefix. So the
//! torn bytes, after removing trailing NUL bytes (some file systems expose a crashed file's
//! unwritten tail as zeros), must be empty, or a PROPER PREFIX of a canonical JSON object (the
//! bytes run out inside it, and nothing before that point is non-canonical), or a complete valid
//! record (only the `\n` was lost). This refuses the attack "edit the last record, then let the
//! writer link a recovery record around it": an edited complete record is neither a prefix nor
//! valid. What no rule can distinguish: an attacker who edits AND cuts the last record (leaving a
//! canonical prefix) and lets a writer recover it; that erases the record, which the plain chain
//! cannot detect either (an attacker can cut the tail and recompute the chain; closing that needs
//! signed checkpoints held elsewhere). The recovery record at least says in the log that bytes
//! there were lost.

use alloc::string::String;
use serde_json::{Map, Value};

use crate::Hash;
use crate::json;
use crate::verify::{self, LineError, LineInfo, Mode};

/// The event type of a recovery record.
pub const RECOVERED_EVENT: &str = "chain.recovered";

/// The torn bytes a recovery record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// Byte offset of the torn line in the log.
    pub offset: u64,
    /// Length of the torn line, without the `\n` that ends it.
    pub length: u64,
    /// SHA-256 of those bytes.
    pub sha256: Hash,
}

impl Torn {
    /// Describes the torn line `bytes` (without its `\n`) found at `offset`.
    pub fn of(offset: u64, bytes: &[u8]) -> Torn {
        Torn {
            offset,
            length: bytes.len() as u64,
            sha256: Hash::of(bytes),
        }
    }

    /// Whether this describes exactly the line `bytes` at `offset`.
    pub fn covers(&self, offset: u64, bytes: &[u8]) -> bool {
        *self == Torn::of(offset, bytes)
    }

    /// The payload of the `chain.recovered` record for these bytes.
    pub fn payload(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("torn_offset".into(), Value::from(self.offset));
        m.insert("torn_length".into(), Value::from(self.length));
        m.insert("torn_sha256".into(), Value::from(self.sha256.to_hex()));
        m.insert(
            "reason".into(),
            Value::from("the previous write was torn (the writer stopped mid-append); its bytes are kept and ended with a newline"),
        );
        m
    }

    /// Whether these torn bytes end exactly at `offset` (where a `\n` closing them was written).
    pub fn ends_at(&self, offset: u64) -> bool {
        self.offset.checked_add(self.length) == Some(offset)
    }

    /// The claim of a `chain.recovered` record, from its line (without `\n`); `None` if the line
    /// is not a valid record (by [`verify::check_line`]) or not a recovery record.
    pub fn from_record_line(line: &[u8]) -> Option<Torn> {
        let payload = claim_payload(line, RECOVERED_EVENT)?;
        Some(Torn {
            offset: payload.get("torn_offset")?.as_u64()?,
            length: payload.get("torn_length")?.as_u64()?,
            sha256: Hash::from_hex(payload.get("torn_sha256")?.as_str()?.as_bytes())?,
        })
    }
}

/// The payload of `line` (without `\n`) when it is a valid record of type `event_type`: the
/// claim of a record that excuses bytes outside the chain (`chain.recovered`,
/// `chain.rejected`).
pub(crate) fn claim_payload(line: &[u8], event_type: &str) -> Option<Value> {
    verify::check_line(line, Mode::Fast).ok()?;
    let mut record = json::parse_bytes(line).ok()?;
    if record.get("event_type")?.as_str()? != event_type {
        return None;
    }
    Some(record.get_mut("payload")?.take())
}

/// Whether `bytes` (a line without `\n`) look like a write cut short: after trailing NUL bytes
/// are removed, empty, a proper prefix of a canonical JSON object, or a complete valid record.
/// See the [module docs](self).
pub fn is_torn_shape(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let kept = &bytes[..end];
    verify::is_canonical_prefix(kept) || verify::check_line(kept, Mode::Fast).is_ok()
}

/// Why a line that is not a valid record is not a recovered torn write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotTorn {
    /// The log ends after the bad line: nothing recovers it.
    #[error(
        "it is newline-terminated and no `chain.recovered` record follows it; a crash cannot \
         leave a newline-terminated broken line, so the line was changed"
    )]
    NoRecoveryRecord,
    /// The next line is not a valid `chain.recovered` record.
    #[error(
        "the next line is not a valid `chain.recovered` record, and only such a record can excuse \
         a broken line (a torn write)"
    )]
    NextIsNotRecovery,
    /// The recovery record names other bytes.
    #[error(
        "the `chain.recovered` record after it covers {} bytes at offset {} (sha256 {}), but the \
         line is {} bytes at offset {} (sha256 {})",
        claim.length, claim.offset, claim.sha256, actual.length, actual.offset, actual.sha256
    )]
    ClaimMismatch {
        /// What the recovery record says.
        claim: Torn,
        /// What the line is.
        actual: Torn,
    },
    /// The bytes are not what a write cut short leaves.
    #[error(
        "its bytes are not what a crash leaves (a prefix of a canonical record, optionally \
         followed by NUL bytes): a complete line that is not a valid record was edited"
    )]
    NotTornShape,
}

/// THE torn-write rule for a verifier (or guard) reading a log: judges a newline-terminated line
/// that failed [`check_line`](verify::check_line).
///
/// `offset` and `bad` are the bad line's offset in the log and its bytes without `\n`; `next` is
/// the following newline-terminated line (without `\n`), `None` when the log ends after the bad
/// line. `Ok(torn)` means the bad line is a recovered torn write: skip it (it is not a record) and
/// check and link `next` as the next record as usual. `Err` means tampering, with the reason.
pub fn judge_bad_line(offset: u64, bad: &[u8], next: Option<&[u8]>) -> Result<Torn, NotTorn> {
    let next = next.ok_or(NotTorn::NoRecoveryRecord)?;
    let claim = Torn::from_record_line(next).ok_or(NotTorn::NextIsNotRecovery)?;
    let actual = Torn::of(offset, bad);
    if claim != actual {
        return Err(NotTorn::ClaimMismatch { claim, actual });
    }
    if !is_torn_shape(bad) {
        return Err(NotTorn::NotTornShape);
    }
    Ok(actual)
}

/// [`judge_bad_line`] for a run of bad lines, `lines` (each without its `\n`, consecutive, the
/// first at `offset`), followed by `next`.
///
/// A run longer than one line is what a torn write leaves when the write that recovers it is cut
/// short too (the disk filled up between the recovery's `\n` and the end of its record): the
/// torn bytes, then a prefix of the recovery. The next writer recovers the whole run with one
/// `chain.recovered` record whose claim covers it from the first line's offset to the end of the
/// last, inner newlines included. Every line of such a run must be a write cut short that is not
/// a record (a proper canonical prefix, optionally followed by NUL bytes); complete records never
/// belong to a run.
pub fn judge_bad_run(offset: u64, lines: &[&[u8]], next: Option<&[u8]>) -> Result<Torn, NotTorn> {
    match lines {
        [] => Err(NotTorn::NoRecoveryRecord),
        [one] => judge_bad_line(offset, one, next),
        _ => {
            let next = next.ok_or(NotTorn::NoRecoveryRecord)?;
            let claim = Torn::from_record_line(next).ok_or(NotTorn::NextIsNotRecovery)?;
            let actual = Torn::of(offset, &lines.join(&b'\n'));
            if claim != actual {
                return Err(NotTorn::ClaimMismatch { claim, actual });
            }
            if !lines.iter().all(|l| is_cut_write(l)) {
                return Err(NotTorn::NotTornShape);
            }
            Ok(actual)
        }
    }
}

/// A line that a cut write left and that is not a record: a proper canonical prefix, optionally
/// followed by NUL bytes (one line of a run in [`judge_bad_run`]).
pub fn is_cut_write(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    verify::check_line(bytes, Mode::Fast).is_err() && verify::is_canonical_prefix(&bytes[..end])
}

/// For a guard that sees only the bytes a writer appends: the append starts with the `\n` (at log
/// offset `newline_offset`) that closes a torn tail already in the log, and `next` is the line after
/// it. `Ok` when `next` is a valid `chain.recovered` record whose claim ends exactly at that `\n`.
/// The torn bytes themselves were judged by the writer ([`judge_tail`]) and are judged again by
/// the verifier ([`judge_bad_line`]).
pub fn judge_closing_newline(newline_offset: u64, next: Option<&[u8]>) -> Result<Torn, NotTorn> {
    let next = next.ok_or(NotTorn::NoRecoveryRecord)?;
    let claim = Torn::from_record_line(next).ok_or(NotTorn::NextIsNotRecovery)?;
    if !claim.ends_at(newline_offset) {
        return Err(NotTorn::ClaimMismatch {
            claim,
            actual: Torn {
                offset: newline_offset.saturating_sub(claim.length),
                length: claim.length,
                sha256: claim.sha256,
            },
        });
    }
    Ok(claim)
}

/// What the last line of a log is, for a writer about to append (see [`judge_tail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// A newline-terminated valid record: chain from it.
    Record(LineInfo),
    /// A complete valid record without its `\n`: write the `\n`, then chain from it.
    MissingNewline(LineInfo),
    /// A torn write: keep its bytes, chain from the record before it, and at the next write
    /// append `\n` and a `chain.recovered` record with [`Torn::payload`].
    Torn(Torn),
    /// Not a torn write: the log was changed. Refuse to append.
    Tampered {
        /// Why the line is not a record.
        error: LineError,
        /// Why it is not a torn write either.
        why: NotTorn,
    },
}

/// THE torn-write rule for a writer opening a log: judges its last line (`bytes` without any
/// `\n`, at `offset`), `terminated` telling whether a `\n` follows it. Only an unterminated last
/// line can be torn.
pub fn judge_tail(offset: u64, bytes: &[u8], terminated: bool) -> Tail {
    let error = match verify::check_line(bytes, Mode::Fast) {
        Ok(info) if terminated => return Tail::Record(info),
        Ok(info) => return Tail::MissingNewline(info),
        Err(e) => e,
    };
    if terminated {
        return Tail::Tampered {
            error,
            why: NotTorn::NoRecoveryRecord,
        };
    }
    if is_torn_shape(bytes) {
        Tail::Torn(Torn::of(offset, bytes))
    } else {
        Tail::Tampered {
            error,
            why: NotTorn::NotTornShape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::record::{Actor, Event};

    fn recovery_line(torn: &Torn) -> Vec<u8> {
        let payload = torn.payload();
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: RECOVERED_EVENT,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        let mut line = Vec::new();
        seal(&event, 3, Some(&Hash::GENESIS), &mut line).unwrap();
        line.pop();
        line
    }

    #[test]
    fn a_torn_write_and_its_cut_recovery_are_recovered_as_one_run() {
        let torn: &[u8] = b"{\"actor\": {\"ho";
        let cut_recovery: &[u8] = b"{\"actor\": {\"host_id\": \"h\", \"us";
        let claim = Torn::of(
            500,
            b"{\"actor\": {\"ho\n{\"actor\": {\"host_id\": \"h\", \"us",
        );
        let next = recovery_line(&claim);
        assert_eq!(
            judge_bad_run(500, &[torn, cut_recovery], Some(&next)),
            Ok(claim)
        );
        // The claim must cover the whole run, from its first line.
        let short = recovery_line(&Torn::of(500, torn));
        assert!(judge_bad_run(500, &[torn, cut_recovery], Some(&short)).is_err());
        // An edited complete line never belongs to a run.
        let edited: &[u8] = b"{\"actor\": 1}";
        let claim = Torn::of(
            500,
            b"{\"actor\": 1}\n{\"actor\": {\"host_id\": \"h\", \"us",
        );
        let next = recovery_line(&claim);
        assert_eq!(
            judge_bad_run(500, &[edited, cut_recovery], Some(&next)),
            Err(NotTorn::NotTornShape)
        );
    }

    #[test]
    fn a_sealed_recovery_record_reads_back() {
        let torn = Torn::of(1234, b"{\"actor\": {\"host");
        let line = recovery_line(&torn);
        let back = Torn::from_record_line(&line).unwrap();
        assert_eq!(back, torn);
        assert!(back.covers(1234, b"{\"actor\": {\"host"));
        assert!(!back.covers(1235, b"{\"actor\": {\"host"));
        assert!(!back.covers(1234, b"{\"actor\": {\"hosT"));
    }

    #[test]
    fn other_records_are_not_recoveries() {
        assert_eq!(
            Torn::from_record_line(br#"{"event_type": "task.started", "payload": {}}"#),
            None
        );
        assert_eq!(Torn::from_record_line(b"garbage"), None);
    }

    /// A chained log of `n` records, a torn write of the record after them, and what the writer
    /// appends to recover it: (log bytes, offset of the torn line, torn bytes).
    fn recovered_log(cut: usize) -> (Vec<u8>, u64, Vec<u8>) {
        let payload = json::parse_object(r#"{"amount": 10}"#).unwrap();
        fn event(p: &Map<String, Value>) -> Event<'_> {
            Event {
                timestamp: "2026-06-04T15:30:45.123456+00:00",
                event_type: "pay",
                workflow_id: None,
                actor: Actor {
                    host_id: "h",
                    user: "u",
                },
                payload: p.into(),
            }
        }
        let mut log = Vec::new();
        let h1 = seal(&event(&payload), 1, Some(&Hash::GENESIS), &mut log)
            .unwrap()
            .unwrap();
        let mut second = Vec::new();
        seal(&event(&payload), 2, Some(&h1), &mut second).unwrap();
        let at = log.len() as u64;
        let torn = second[..cut].to_vec();
        log.extend_from_slice(&torn);
        log.push(b'\n');
        let rec = Torn::of(at, &torn).payload();
        let mut ev = event(&rec);
        ev.event_type = RECOVERED_EVENT;
        seal(&ev, 2, Some(&h1), &mut log).unwrap();
        (log, at, torn)
    }

    fn lines(log: &[u8]) -> Vec<&[u8]> {
        log.strip_suffix(b"\n")
            .unwrap()
            .split(|&b| b == b'\n')
            .collect()
    }

    #[test]
    fn a_recovered_torn_write_is_accepted_once_and_exactly() {
        let (log, at, torn) = recovered_log(40);
        let l = lines(&log);
        assert_eq!(l[1], &torn[..]);
        assert_eq!(
            judge_bad_line(at, l[1], Some(l[2])),
            Ok(Torn::of(at, &torn))
        );
        // Other offsets, other bytes, no recovery record, a non-recovery next line: tampering.
        assert!(matches!(
            judge_bad_line(at + 1, l[1], Some(l[2])),
            Err(NotTorn::ClaimMismatch { .. })
        ));
        let mut other = torn.clone();
        other[5] ^= 1;
        assert!(matches!(
            judge_bad_line(at, &other, Some(l[2])),
            Err(NotTorn::ClaimMismatch { .. })
        ));
        assert_eq!(
            judge_bad_line(at, l[1], None),
            Err(NotTorn::NoRecoveryRecord)
        );
        assert_eq!(
            judge_bad_line(at, l[1], Some(l[0])),
            Err(NotTorn::NextIsNotRecovery)
        );
        // A recovery record that was edited is not a record at all.
        let mut edited = l[2].to_vec();
        let p = edited.len() - 5;
        edited[p] ^= 1;
        assert_eq!(
            judge_bad_line(at, l[1], Some(&edited)),
            Err(NotTorn::NextIsNotRecovery)
        );
        // The guard's view: the append starts with the `\n` closing the torn tail.
        let nl = at + torn.len() as u64;
        assert_eq!(
            judge_closing_newline(nl, Some(l[2])),
            Ok(Torn::of(at, &torn))
        );
        assert!(judge_closing_newline(nl + 1, Some(l[2])).is_err());
        assert!(judge_closing_newline(nl, None).is_err());
    }

    #[test]
    fn an_edited_complete_record_is_never_torn() {
        // The attack: edit the last record, and let a recovery record be linked around it.
        let (log, _, _) = recovered_log(10);
        let first = lines(&log)[0].to_vec();
        let edited = String::from_utf8(first).unwrap().replace("10", "99");
        let line = edited.as_bytes();
        let payload = Torn::of(0, line).payload();
        let ev = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: RECOVERED_EVENT,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        let mut rec = Vec::new();
        seal(&ev, 1, Some(&Hash::GENESIS), &mut rec).unwrap();
        rec.pop();
        assert_eq!(
            judge_bad_line(0, line, Some(&rec)),
            Err(NotTorn::NotTornShape)
        );
        // And a writer never recovers it: a complete line that is not a record is tampering.
        assert!(matches!(
            judge_tail(0, line, false),
            Tail::Tampered {
                why: NotTorn::NotTornShape,
                ..
            }
        ));
    }

    #[test]
    fn only_an_unterminated_last_line_can_be_torn() {
        let (log, at, torn) = recovered_log(40);
        let l = lines(&log);
        // Terminated and broken: tampering, whatever its shape.
        assert!(matches!(
            judge_tail(at, &torn, true),
            Tail::Tampered {
                why: NotTorn::NoRecoveryRecord,
                ..
            }
        ));
        assert_eq!(
            judge_tail(at, &torn, false),
            Tail::Torn(Torn::of(at, &torn))
        );
        // NUL bytes a crashed file system left after the prefix are part of a torn write.
        let mut padded = torn.clone();
        padded.extend_from_slice(&[0; 7]);
        assert_eq!(
            judge_tail(at, &padded, false),
            Tail::Torn(Torn::of(at, &padded))
        );
        // A valid record: a record, or one that lost only its newline.
        assert!(matches!(judge_tail(0, l[0], true), Tail::Record(_)));
        assert!(matches!(
            judge_tail(0, l[0], false),
            Tail::MissingNewline(_)
        ));
        // Garbage that is no prefix of a record is not torn.
        assert!(matches!(
            judge_tail(at, b"{\"amount\":1", false),
            Tail::Tampered { .. }
        ));
        assert!(matches!(
            judge_tail(at, b"garbage", false),
            Tail::Tampered { .. }
        ));
        // Every cut of a record is a torn write.
        let full = l[0];
        for n in 0..full.len() {
            assert!(is_torn_shape(&full[..n]), "{n}");
        }
    }
}
