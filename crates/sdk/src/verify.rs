//! The default `verifier` export: checks a telemachy-json log, read through
//! `log-file`, inside the sink's sandbox.
//!
//! Every line must be a valid record (`chainsink-format`'s `check_line`)
//! that links to the one before it (its `ChainVerifier`). Lines that are
//! not in the chain pass only in the two patterns the format crate defines,
//! judged by its own functions: a torn write closed off by the
//! `chain.recovered` record right after it (`recovery::judge_bad_run`), and
//! bytes the host refused, claimed by the `chain.rejected` record right
//! after them (`rejection::Region`). A last line without its `\n` fails, so
//! only a whole, valid log passes. `chainsink verify LOG` is the same check
//! done natively, with a report of every recovered and rejected region.

use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::judge_bad_run;
use chainsink_format::rejection::{Region, Rejected};
use chainsink_format::verify::{ChainVerifier, Mode, check_line};

use crate::writer::LogIo;
use crate::{VerifyFailure, VerifyReport};

/// Bytes read from the log at a time.
const CHUNK: u32 = 1 << 20;
/// Most lines a torn run may hold (a torn write and its cut-short recoveries).
const MAX_TORN_RUN: usize = 16;
/// Most bytes a refused region may hold: what one call may append (64 MiB).
const MAX_REGION: u64 = 64 << 20;

/// Lines held aside, not in the chain, until a record excuses them.
struct Suspect {
    /// The failure to report if nothing does.
    failure: VerifyFailure,
    /// Offset of the first line.
    offset: u64,
    /// The lines, while they can still be one torn run.
    torn: Option<Vec<Vec<u8>>>,
    /// All their bytes, hashed, for a `chain.rejected` claim.
    region: Region,
}

/// Checks the whole log behind `log`; the report or the first bad line.
pub fn verify_log(log: &mut impl LogIo) -> Result<VerifyReport, VerifyFailure> {
    let fail = |line: u64, offset: u64, reason: String| VerifyFailure {
        line,
        offset,
        reason,
    };
    let size = log
        .size()
        .map_err(|e| fail(0, 0, format!("cannot read the log's size: {e}")))?;
    let mut chain = ChainVerifier::new();
    let mut suspect: Option<Suspect> = None;
    let mut line_no = 0u64;
    let mut line_start = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    while offset < size {
        let chunk = log
            .read(offset, CHUNK)
            .map_err(|e| fail(line_no + 1, offset, format!("cannot read the log: {e}")))?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        let mut rest = &chunk[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            pending.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            line_no += 1;
            take(&mut chain, &mut suspect, line_no, line_start, &pending)?;
            line_start += pending.len() as u64 + 1;
            pending.clear();
        }
        pending.extend_from_slice(rest);
        if pending.len() > MAX_RECORD_BYTES {
            return Err(fail(
                line_no + 1,
                line_start,
                format!("the line is longer than the largest record ({MAX_RECORD_BYTES} bytes)"),
            ));
        }
    }
    if let Some(s) = suspect {
        return Err(s.failure);
    }
    if !pending.is_empty() {
        return Err(fail(
            line_no + 1,
            line_start,
            format!(
                "the last line ({} bytes) has no closing newline: a torn write that no writer \
                 has recovered yet (open the log with a sink to recover it)",
                pending.len()
            ),
        ));
    }
    Ok(VerifyReport {
        records: chain.records(),
        head: chain.head().map(|h| h.to_hex()),
        bytes: line_start,
    })
}

/// Takes one whole line (without `\n`) into the fold.
fn take(
    chain: &mut ChainVerifier,
    suspect: &mut Option<Suspect>,
    line_no: u64,
    offset: u64,
    line: &[u8],
) -> Result<(), VerifyFailure> {
    let failure = |reason: String| VerifyFailure {
        line: line_no,
        offset,
        reason,
    };
    let info = match check_line(line, Mode::Fast) {
        Ok(info) => info,
        Err(e) => return hold(suspect, offset, line, true, || failure(e.to_string())),
    };
    if let Some(s) = suspect.as_ref() {
        let torn = s.torn.as_ref().is_some_and(|lines| {
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            judge_bad_run(s.offset, &lines, Some(line)).is_ok()
        });
        let rejected = Rejected::from_record_line(line).is_some_and(|c| s.region.is_claimed_by(&c));
        if !(torn || rejected) {
            // A valid record inside a run that is not excused yet: only
            // refused bytes can hold one.
            return hold(suspect, offset, line, false, || {
                unreachable!("a run is open")
            });
        }
        *suspect = None;
    }
    let before = chain.clone();
    if let Err(e) = chain.push(&info) {
        *chain = before;
        return hold(suspect, offset, line, false, || failure(e.to_string()));
    }
    Ok(())
}

/// Holds a line that is not in the chain; `cut` says whether it may be part
/// of a torn run (it is not a record).
fn hold(
    suspect: &mut Option<Suspect>,
    offset: u64,
    line: &[u8],
    cut: bool,
    failure: impl FnOnce() -> VerifyFailure,
) -> Result<(), VerifyFailure> {
    let s = suspect.get_or_insert_with(|| Suspect {
        failure: failure(),
        offset,
        torn: Some(Vec::new()),
        region: Region::new(offset),
    });
    s.torn = match s.torn.take() {
        Some(mut lines) if cut && lines.len() < MAX_TORN_RUN => {
            lines.push(line.to_vec());
            Some(lines)
        }
        _ => None,
    };
    s.region.push(line);
    if s.region.len() > MAX_REGION {
        return Err(suspect.take().expect("held").failure);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem_log::MemLog;
    use crate::writer::ChainWriter;
    use crate::{Actor, Durability, Event, Options};

    fn event(i: u32) -> Event {
        Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00".into(),
            event_type: "test.event".into(),
            workflow_id: None,
            actor: Actor {
                host_id: "h".into(),
                user: "u".into(),
            },
            payload: chainsink_format::json::parse_object(&format!(r#"{{"i": {i}}}"#))
                .unwrap()
                .into(),
        }
    }

    fn written(n: u32) -> MemLog {
        let options = Options {
            hash_chain: true,
            durability: Durability::None,
        };
        let mut w = ChainWriter::open(MemLog::default(), options).unwrap();
        for i in 0..n {
            w.append(&[event(i)]).unwrap();
        }
        w.into_log()
    }

    #[test]
    fn a_written_log_verifies() {
        let mut log = written(5);
        let report = verify_log(&mut log).unwrap();
        assert_eq!(report.records, 5);
        assert_eq!(report.bytes, log.bytes.len() as u64);
        assert!(report.head.is_some());
    }

    #[test]
    fn one_changed_byte_is_found_on_its_line() {
        let mut log = written(3);
        let second = log.bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let digit = second + log.bytes[second..].iter().position(|&b| b == b'1').unwrap();
        log.bytes[digit] = b'7';
        let failure = verify_log(&mut log).unwrap_err();
        assert_eq!(
            (failure.line, failure.offset),
            (2, second as u64),
            "{failure:?}"
        );
    }

    #[test]
    fn a_torn_last_line_fails_until_a_writer_recovers_it() {
        let mut log = written(2);
        let cut = log.bytes.len() - 10;
        log.bytes.truncate(cut);
        let failure = verify_log(&mut log).unwrap_err();
        assert_eq!(failure.line, 2);
        assert!(failure.reason.contains("no closing newline"), "{failure:?}");
        let options = Options {
            hash_chain: true,
            durability: Durability::None,
        };
        let mut w = ChainWriter::open(log, options).unwrap();
        w.append(&[event(9)]).unwrap();
        let mut log = w.into_log();
        let report = verify_log(&mut log).unwrap();
        assert_eq!(
            report.records, 3,
            "record 1, the recovery record and event 9"
        );
    }
}
