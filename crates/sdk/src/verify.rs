//! The default `verifier` export: checks a telemachy-json log, read through
//! `log-file`, inside the sink's sandbox.
//!
//! Every line must be a valid record (`chainsink-format`'s `check_line`)
//! that links to the one before it (its `ChainVerifier`). Lines that are
//! not in the chain pass only in the two patterns the format crate defines,
//! judged by its own functions: a torn write closed off by the
//! `chain.recovered` record right after it (`recovery::judge_bad_run`), and
//! bytes the host refused, claimed by the `chain.rejected` record right
//! after them (`rejection::Region`; when those bytes are records that linked,
//! re-read and judged by `rejection::LinkedStretches`). A last line without
//! its `\n` fails, so
//! only a whole, valid log passes. `chainsink verify LOG` is the same check
//! done natively, with a report of every recovered and rejected region.

use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::judge_bad_run;
use chainsink_format::rejection::{ClaimError, LinkedStretches, Region, Rejected};
use chainsink_format::verify::{ChainVerifier, LineInfo, Mode, check_line};

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
    let mut fold = Fold {
        chain: ChainVerifier::new(),
        suspect: None,
        linked: LinkedStretches::new(MAX_REGION),
    };
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
            fold.take(log, line_no, line_start, &pending)?;
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
    if let Some(s) = fold.suspect {
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
        records: fold.chain.records(),
        head: fold.chain.head().map(|h| h.to_hex()),
        bytes: line_start,
    })
}

/// The verifier's state between lines.
struct Fold {
    chain: ChainVerifier,
    suspect: Option<Suspect>,
    /// Where the chain's state was known, for a `chain.rejected` record over
    /// records that linked.
    linked: LinkedStretches,
}

impl Fold {
    /// Takes one whole line (without `\n`) into the fold.
    fn take(
        &mut self,
        log: &mut impl LogIo,
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
            Err(e) => return self.hold(offset, line, true, || failure(e.to_string())),
        };
        if let Some(s) = self.suspect.as_ref() {
            let torn = s.torn.as_ref().is_some_and(|lines| {
                let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
                judge_bad_run(s.offset, &lines, Some(line)).is_ok()
            });
            let rejected =
                Rejected::from_record_line(line).is_some_and(|c| s.region.is_claimed_by(&c));
            if !(torn || rejected) {
                if self.claims_linked_records(log, line, offset, &info, line_no)? {
                    return Ok(());
                }
                // A valid record inside a run that is not excused yet: only
                // refused bytes can hold one.
                return self.hold(offset, line, false, || unreachable!("a run is open"));
            }
            self.suspect = None;
        }
        let before = self.chain.clone();
        if let Err(e) = self.chain.push(&info) {
            self.chain = before;
            if self.claims_linked_records(log, line, offset, &info, line_no)? {
                return Ok(());
            }
            return self.hold(offset, line, false, || failure(e.to_string()));
        }
        if self.suspect.is_none() {
            self.linked.linked(offset, line_no - 1, &before);
        }
        Ok(())
    }

    /// Whether `line` (at `offset`, checked: `info`) is a `chain.rejected`
    /// record over records that linked, judged over the bytes re-read from
    /// the last known state before its claim; if so the chain goes on from it.
    fn claims_linked_records(
        &mut self,
        log: &mut impl LogIo,
        line: &[u8],
        offset: u64,
        info: &LineInfo,
        line_no: u64,
    ) -> Result<bool, VerifyFailure> {
        let Some(claim) = Rejected::from_record_line(line) else {
            return Ok(false);
        };
        let linked_until = self.suspect.as_ref().map_or(offset, |s| s.offset);
        let judged =
            self.linked
                .judge_claim(&claim, info, offset, linked_until, |at, buf: &mut [u8]| {
                    let mut filled = 0;
                    while filled < buf.len() {
                        let want = u32::try_from(buf.len() - filled)
                            .unwrap_or(u32::MAX)
                            .min(CHUNK);
                        let part = log.read(at + filled as u64, want)?;
                        if part.is_empty() {
                            return Err(format!("the log ends at byte {}", at + filled as u64));
                        }
                        let n = part.len().min(buf.len() - filled);
                        buf[filled..filled + n].copy_from_slice(&part[..n]);
                        filled += n;
                    }
                    Ok(())
                });
        let fail = |reason: String| VerifyFailure {
            line: line_no,
            offset,
            reason,
        };
        let good = match judged {
            Ok(Some(good)) => good,
            Ok(None) => return Ok(false),
            Err(ClaimError::Read(e)) => {
                return Err(fail(format!(
                    "cannot read the log again to check this `chain.rejected` record's claim: {e}"
                )));
            }
            Err(ClaimError::TooCostly { reread, allowed }) => {
                return Err(fail(format!(
                    "a `chain.rejected` record whose claim cannot be checked in time linear in \
                     the log: judging it means re-reading {reread} bytes in all, past the \
                     {allowed} that any log written by an honest host needs"
                )));
            }
        };
        self.chain = good.chain;
        self.suspect = None;
        Ok(true)
    }

    /// Holds a line that is not in the chain; `cut` says whether it may be
    /// part of a torn run (it is not a record).
    fn hold(
        &mut self,
        offset: u64,
        line: &[u8],
        cut: bool,
        failure: impl FnOnce() -> VerifyFailure,
    ) -> Result<(), VerifyFailure> {
        if self.suspect.is_none() {
            self.linked.unlinked(offset);
        }
        let s = self.suspect.get_or_insert_with(|| Suspect {
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
            return Err(self.suspect.take().expect("held").failure);
        }
        Ok(())
    }
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

    /// Five records, the last two of which a sink appended (they link) but the host refused:
    /// its `chain.rejected` record claims them, linked to record 3, then one record after.
    /// `tweak` may change the log before the last record is appended.
    fn lied_in(tweak: impl FnOnce(&mut Vec<u8>)) -> MemLog {
        use chainsink_format::record::{Actor as A, Event as E};
        use chainsink_format::rejection::REJECTED_EVENT;
        let mut log = written(5);
        let starts: Vec<usize> = log
            .bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        let third = &log.bytes[starts[1]..starts[2] - 1];
        let prev = check_line(third, Mode::Fast).unwrap().hash.unwrap();
        let claim = Rejected::of(starts[2] as u64, &log.bytes[starts[2]..]);
        let payload = claim.payload("liar.wasm", "1 receipts for 2 events");
        let mark = E {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: REJECTED_EVENT,
            workflow_id: None,
            actor: A {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        chainsink_format::chain::seal(&mark, 4, Some(&prev), &mut log.bytes).unwrap();
        tweak(&mut log.bytes);
        let options = Options {
            hash_chain: true,
            durability: Durability::None,
        };
        let mut w = ChainWriter::open(log, options).unwrap();
        w.append(&[event(9)]).unwrap();
        w.into_log()
    }

    #[test]
    fn a_claim_over_records_that_linked_is_excused() {
        let mut log = lied_in(|_| {});
        let report = verify_log(&mut log).unwrap();
        assert_eq!(report.records, 5, "records 1-3, the host's record, event 9");
    }

    #[test]
    fn a_claim_over_records_that_do_not_match_it_fails() {
        // A claimed record changed after the host marked it.
        let mut log = lied_in(|bytes| {
            let fourth = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(2)
                .unwrap()
                .0
                + 1;
            let digit = fourth + bytes[fourth..].iter().position(|&b| b == b'3').unwrap();
            bytes[digit] = b'7';
        });
        let failure = verify_log(&mut log).unwrap_err();
        assert_eq!(failure.line, 4, "{failure:?}");
    }
}
