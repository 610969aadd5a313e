//! Rejected appends: bytes a sink appended that the host refused, marked in
//! the log itself.
//!
//! The host re-checks what a third-party sink appends (its append guard).
//! When it refuses a call's bytes (garbage, a forked chain, receipts that
//! lie), those bytes are already in the log, which is append-only. So the
//! host appends, right then, a `chain.rejected` record, linked from the last
//! valid record before the bytes, that names them: their offset, length and
//! SHA-256, the sink, and the breach. If the bytes did not end with `\n`,
//! the host first appends one; it is part of the region the claim covers.
//!
//! A verifier accepts bytes that are not part of the chain only in exactly
//! this pattern: a run of whole lines starting at the claim's offset, of
//! exactly its length and SHA-256, immediately followed by the
//! `chain.rejected` record that claims them, which links to the record
//! before the run. It reports each such region as a breach. Anything else is
//! tampering, as before. This is not torn-write recovery
//! ([`crate::recovery`]): a newline-terminated bad line without the host's
//! record after it stays tampering.
//!
//! The run may hold valid records that link, one after the other, to the
//! record before it: a sink that wrote its records right but lied in its
//! receipts. A verifier reading in order has taken those into the chain by
//! the time it meets the claim, so the claim does not link to its head. It
//! then goes back to a point before the run where it knew the chain's state
//! and judges the claim with [`LinkedStretches::judge_claim`]: the same pattern,
//! checked over the bytes from that point.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{Map, Value};
use sha2::Digest;

use crate::Hash;
use crate::verify::{ChainVerifier, LineInfo, Mode, check_line};

/// The event type of the host's record after rejected bytes.
pub const REJECTED_EVENT: &str = "chain.rejected";

/// The bytes a `chain.rejected` record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Log offset of the first rejected byte.
    pub offset: u64,
    /// How many bytes, including the `\n` that ends the last line.
    pub length: u64,
    /// SHA-256 of those bytes.
    pub sha256: Hash,
}

impl Rejected {
    /// Describes `bytes`, found at `offset` (they must end with `\n`).
    pub fn of(offset: u64, bytes: &[u8]) -> Rejected {
        Rejected {
            offset,
            length: bytes.len() as u64,
            sha256: Hash::of(bytes),
        }
    }

    /// The payload of the `chain.rejected` record: the claim, the sink that
    /// appended the bytes, and what was wrong with them.
    pub fn payload(&self, sink: &str, breach: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("rejected_offset".into(), Value::from(self.offset));
        m.insert("rejected_length".into(), Value::from(self.length));
        m.insert("rejected_sha256".into(), Value::from(self.sha256.to_hex()));
        m.insert("sink".into(), Value::from(sink));
        m.insert("breach".into(), Value::from(breach));
        m
    }

    /// The claim of a `chain.rejected` record, from its line (without `\n`);
    /// `None` if the line is not a valid record or not such a record.
    pub fn from_record_line(line: &[u8]) -> Option<Rejected> {
        let payload = crate::recovery::claim_payload(line, REJECTED_EVENT)?;
        Some(Rejected {
            offset: payload.get("rejected_offset")?.as_u64()?,
            length: payload.get("rejected_length")?.as_u64()?,
            sha256: Hash::from_hex(payload.get("rejected_sha256")?.as_str()?.as_bytes())?,
        })
    }
}

/// A run of lines a verifier holds aside while it looks for the
/// `chain.rejected` record that claims them.
#[derive(Debug, Clone)]
pub struct Region {
    offset: u64,
    length: u64,
    hasher: sha2::Sha256,
}

impl Region {
    /// A region starting at log offset `offset`.
    pub fn new(offset: u64) -> Region {
        Region {
            offset,
            length: 0,
            hasher: sha2::Sha256::new(),
        }
    }

    /// Adds one line of the region (without its `\n`, which is counted).
    pub fn push(&mut self, line: &[u8]) {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.length += line.len() as u64 + 1;
    }

    /// Adds part of a line (one too long to hold at once); end the line
    /// with [`Region::end_line`].
    pub fn push_part(&mut self, part: &[u8]) {
        self.hasher.update(part);
        self.length += part.len() as u64;
    }

    /// Ends a line added with [`Region::push_part`]: counts its `\n`.
    pub fn end_line(&mut self) {
        self.hasher.update(b"\n");
        self.length += 1;
    }

    /// Bytes in the region so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the region holds no bytes yet.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Whether `claim` covers exactly this region.
    pub fn is_claimed_by(&self, claim: &Rejected) -> bool {
        claim.offset == self.offset
            && claim.length == self.length
            && claim.sha256 == Hash(self.hasher.clone().finalize().into())
    }
}

/// A claim that [`judge_claim_over_records`] found good.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimOverRecords {
    /// Whole lines between the start of the bytes given and the claim's
    /// offset (all of them valid records that linked).
    pub lines_before: u64,
    /// The chain after the `chain.rejected` record: the state at the
    /// claim's offset, with the record taken in.
    pub chain: ChainVerifier,
}

/// Judges a `chain.rejected` record (`claim`, with `mark` its checked line)
/// whose run a verifier has already read as part of the chain.
///
/// `bytes` are the log from offset `base`, where the chain's state was
/// `clean`, up to the line of the record (exclusive). The claim is good when
/// it covers exactly the end of `bytes` from a line boundary (of the claim's
/// length and SHA-256), every line of `bytes` before that boundary is a
/// valid record that links, in order, from `clean` (so the state at the
/// boundary is known), and the record links to that state: the record before
/// the run. The run itself may hold anything: its bytes are not part of the
/// chain.
fn judge_claim_over_records(
    clean: &ChainVerifier,
    base: u64,
    bytes: &[u8],
    claim: &Rejected,
    mark: &LineInfo,
) -> Option<ClaimOverRecords> {
    let end = base.checked_add(bytes.len() as u64)?;
    if claim.offset < base || claim.offset.checked_add(claim.length) != Some(end) {
        return None;
    }
    let split = usize::try_from(claim.offset - base).ok()?;
    let (before, run) = bytes.split_at(split);
    if run.is_empty() || !run.ends_with(b"\n") || !(before.is_empty() || before.ends_with(b"\n")) {
        return None;
    }
    let mut chain = clean.clone();
    let mut lines_before = 0;
    if let Some(lines) = before.strip_suffix(b"\n") {
        for line in lines.split(|&b| b == b'\n') {
            chain.push(&check_line(line, Mode::Fast).ok()?).ok()?;
            lines_before += 1;
        }
    }
    if Hash::of(run) != claim.sha256 {
        return None;
    }
    chain.push(mark).ok()?;
    Some(ClaimOverRecords {
        lines_before,
        chain,
    })
}

/// Bytes between the lines where [`LinkedStretches`] keeps the chain's
/// state: at most this much more than a claim covers is re-read to judge it,
/// and at most `max_region` / this many states are kept.
pub const STATE_EVERY: u64 = 1 << 20;

/// A line where a verifier knew the chain's state, every line from it on
/// having linked up to `end` (or the next such line, or the line being read).
#[derive(Debug, Clone)]
struct Stretch {
    offset: u64,
    lines: u64,
    chain: ChainVerifier,
    end: Option<u64>,
}

/// What a verifier reading a log in order remembers so it can judge a
/// `chain.rejected` record over records it already took into the chain: the
/// chain's state at a line every [`STATE_EVERY`] bytes of the stretches where
/// every line linked, for the last `max_region` bytes (the most one claim
/// may cover). Memory stays bounded whatever the log's size.
#[derive(Debug, Clone)]
pub struct LinkedStretches {
    stretches: VecDeque<Stretch>,
    max_region: u64,
    /// Bytes re-read so far to judge claims.
    reread: u64,
}

/// Why [`LinkedStretches::judge_claim`] could not judge a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError<E> {
    /// Reading the log again failed, or the input cannot be read again.
    Read(E),
    /// Judging it would take the bytes re-read for claims past what an
    /// honest log needs (each claimed or replayed byte about once: three
    /// times the log read so far, and two claims more): the claims were
    /// written to make verification slow.
    TooCostly {
        /// Bytes re-read so far, with this claim.
        reread: u64,
        /// The most allowed at this point of the log.
        allowed: u64,
    },
}

/// Where to re-read from to judge a claim ([`LinkedStretches::start_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadFrom {
    /// The offset to read from, up to the `chain.rejected` record.
    pub offset: u64,
    /// Whole lines before that offset.
    pub lines: u64,
}

/// A claim over records that linked, found good ([`LinkedStretches::judge_claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The claim.
    pub claim: Rejected,
    /// Line number (1-based) of the first claimed line.
    pub first_line: u64,
    /// The chain after the `chain.rejected` record, to go on from.
    pub chain: ChainVerifier,
    /// The bytes read again to judge it: the log from offset `read_from` up
    /// to the record, the claimed run at its end (a reader that showed the
    /// claimed records takes them back from these, without a second read).
    pub bytes: Vec<u8>,
    /// The log offset of `bytes[0]`.
    pub read_from: u64,
}

impl LinkedStretches {
    /// Remembers nothing yet; claims may cover up to `max_region` bytes.
    pub fn new(max_region: u64) -> LinkedStretches {
        LinkedStretches {
            stretches: VecDeque::new(),
            max_region,
            reread: 0,
        }
    }

    /// The line at `offset`, after `lines` lines, linked from `before`
    /// (called for every line that links while no run of unlinked lines is
    /// open; it copies the state only every [`STATE_EVERY`] bytes).
    pub fn linked(&mut self, offset: u64, lines: u64, before: &ChainVerifier) {
        if self
            .stretches
            .back()
            .is_some_and(|s| s.end.is_none() && offset - s.offset < STATE_EVERY)
        {
            return;
        }
        // Forget what no claim ending here or later can reach.
        while self
            .stretches
            .get(1)
            .is_some_and(|next| next.offset.saturating_add(self.max_region) < offset)
        {
            self.stretches.pop_front();
        }
        self.stretches.push_back(Stretch {
            offset,
            lines,
            chain: before.clone(),
            end: None,
        });
    }

    /// The line at `offset` did not link (it opens a run of lines that are
    /// not in the chain): the stretch being read ends there.
    pub fn unlinked(&mut self, offset: u64) {
        if let Some(s) = self.stretches.back_mut() {
            s.end.get_or_insert(offset);
        }
    }

    /// Where to re-read from to judge the `chain.rejected` record at offset
    /// `end` claiming `claim`, when every line from the claim's offset up to
    /// `linked_until` (the first line after it that did not link, or `end`)
    /// linked. `None` when the claim cannot be over records that linked:
    /// then only the usual region rule can excuse it.
    fn start_for(&self, claim: &Rejected, end: u64, linked_until: u64) -> Option<ReadFrom> {
        if claim.length > self.max_region
            || claim.offset.checked_add(claim.length) != Some(end)
            || claim.offset >= linked_until
        {
            return None;
        }
        let s = self
            .stretches
            .iter()
            .rev()
            .find(|s| s.offset <= claim.offset)?;
        if s.end.is_some_and(|e| claim.offset >= e) {
            return None;
        }
        Some(ReadFrom {
            offset: s.offset,
            lines: s.lines,
        })
    }

    /// Judges the `chain.rejected` record at offset `end` (its checked line
    /// `mark`, its `claim`), reading the log again with `read` (fill the
    /// buffer from the offset); `linked_until` is the offset of the first
    /// line after the claim's start that did not link (or `end`). `Ok(None)`
    /// when the claim is not over records that linked, or not good.
    ///
    /// Work stays linear in the log whatever its claims: the first claimed
    /// line is read first (alone) and must be a record the mark could follow
    /// (same `prev_hash`, and `seq`), and the bytes re-read in all stay
    /// within three times the log read so far plus two claims, which an
    /// honest log never reaches (its claims are disjoint, and so are the
    /// stretches replayed before them).
    pub fn judge_claim<E>(
        &mut self,
        claim: &Rejected,
        mark: &LineInfo,
        end: u64,
        linked_until: u64,
        mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
    ) -> Result<Option<Claimed>, ClaimError<E>> {
        let Some(from) = self.start_for(claim, end, linked_until) else {
            return Ok(None);
        };
        // The first claimed line: small reads first, a record's worth at most.
        let available = end - claim.offset;
        let mut first = Vec::new();
        for want in [4096, crate::MAX_RECORD_BYTES as u64 + 1] {
            let want = want.min(available);
            self.spend(want, end)?;
            first = vec![0; want as usize];
            read(claim.offset, &mut first).map_err(ClaimError::Read)?;
            if first.contains(&b'\n') || want == available {
                break;
            }
        }
        let Some(nl) = first.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let Ok(info) = check_line(&first[..nl], Mode::Fast) else {
            return Ok(None);
        };
        let seq_fits = mark.seq.is_none() || info.seq.is_none() || mark.seq == info.seq;
        if info.prev_hash != mark.prev_hash || !seq_fits {
            return Ok(None);
        }
        let len = end - from.offset;
        self.spend(len, end)?;
        let mut bytes = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        read(from.offset, &mut bytes).map_err(ClaimError::Read)?;
        Ok(self.judge(claim, mark, from, bytes))
    }

    /// Counts `n` more bytes re-read at log offset `end`, within the bound.
    fn spend<E>(&mut self, n: u64, end: u64) -> Result<(), ClaimError<E>> {
        let reread = self.reread.saturating_add(n);
        let allowed = end
            .saturating_mul(3)
            .saturating_add(2 * (self.max_region + STATE_EVERY));
        if reread > allowed {
            return Err(ClaimError::TooCostly { reread, allowed });
        }
        self.reread = reread;
        Ok(())
    }

    /// Judges the `chain.rejected` record at offset `end` (its checked line
    /// `mark`, its `claim`), with `bytes` the log from
    /// [`start_for`](Self::start_for)'s offset up to it. If good, the claimed
    /// stretch is forgotten (its lines are not in the chain) and the caller
    /// goes on from the returned chain.
    fn judge(
        &mut self,
        claim: &Rejected,
        mark: &LineInfo,
        from: ReadFrom,
        bytes: Vec<u8>,
    ) -> Option<Claimed> {
        let i = self
            .stretches
            .iter()
            .rposition(|s| s.offset == from.offset)?;
        let good =
            judge_claim_over_records(&self.stretches[i].chain, from.offset, &bytes, claim, mark)?;
        self.stretches
            .truncate(if from.offset < claim.offset { i + 1 } else { i });
        if let Some(s) = self.stretches.back_mut() {
            s.end = Some(s.end.map_or(claim.offset, |e| e.min(claim.offset)));
        }
        Some(Claimed {
            claim: *claim,
            first_line: from.lines + good.lines_before + 1,
            chain: good.chain,
            bytes,
            read_from: from.offset,
        })
    }

    /// How many states are kept (for the test of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.stretches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::record::{Actor, Event};

    #[test]
    fn a_region_is_claimed_only_by_its_own_record() {
        let bytes = b"garbage\n{\"not\": \"chained\"}\n";
        let claim = Rejected::of(100, bytes);
        let payload = claim.payload("evil.wasm", "it appended bytes that are not a record");
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: REJECTED_EVENT,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        let mut line = Vec::new();
        seal(&event, 4, Some(&Hash::GENESIS), &mut line).unwrap();
        let read = Rejected::from_record_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(read, claim);

        let mut region = Region::new(100);
        region.push(b"garbage");
        assert!(!region.is_claimed_by(&read));
        region.push(b"{\"not\": \"chained\"}");
        assert!(region.is_claimed_by(&read));
        let mut elsewhere = Region::new(101);
        elsewhere.push(b"garbage");
        elsewhere.push(b"{\"not\": \"chained\"}");
        assert!(!elsewhere.is_claimed_by(&read));
    }

    /// Appends a record to `log`, linked to `prev` as record `seq`; returns its hash.
    fn append(
        log: &mut Vec<u8>,
        event_type: &str,
        payload: Map<String, Value>,
        seq: u64,
        prev: &Hash,
    ) -> Hash {
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type,
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        seal(&event, seq, Some(prev), log).unwrap().unwrap()
    }

    /// Two clean records, then a run of two valid records linked after them, then the mark
    /// that claims the run (linked to `mark_prev`, seq `mark_seq`). Returns the log, the
    /// run's offset, and the mark's offset.
    fn lying_call(claim_from: Option<u64>, mark_prev: usize, mark_seq: u64) -> (Vec<u8>, u64, u64) {
        let mut log = Vec::new();
        let mut hashes = vec![Hash::GENESIS];
        for seq in 1..=4 {
            let h = append(&mut log, "e", Map::new(), seq, hashes.last().unwrap());
            hashes.push(h);
        }
        let lines: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        let run = lines[1] as u64;
        let from = claim_from.unwrap_or(run);
        let end = log.len() as u64;
        let claim = Rejected::of(from, &log[from as usize..]);
        let payload = claim.payload("liar.wasm", "1 receipts for 2 events");
        append(
            &mut log,
            REJECTED_EVENT,
            payload,
            mark_seq,
            &hashes[mark_prev],
        );
        (log, run, end)
    }

    fn judge(log: &[u8], base: u64, mark_at: u64) -> Option<ClaimOverRecords> {
        let mark = &log[mark_at as usize..log.len() - 1];
        let claim = Rejected::from_record_line(mark).unwrap();
        let info = check_line(mark, Mode::Fast).unwrap();
        let mut clean = ChainVerifier::new();
        // The state at `base`: replay the whole lines before it.
        for line in log[..base as usize].split_inclusive(|&b| b == b'\n') {
            if let Some(line) = line.strip_suffix(b"\n") {
                clean.push(&check_line(line, Mode::Fast).unwrap()).unwrap();
            }
        }
        judge_claim_over_records(
            &clean,
            base,
            &log[base as usize..mark_at as usize],
            &claim,
            &info,
        )
    }

    #[test]
    fn a_claim_over_records_that_linked_is_judged_from_a_point_before_them() {
        // The mark links to record 2 (hashes[2]) as record 3: the record before the run.
        let (log, run, mark_at) = lying_call(None, 2, 3);
        let good = judge(&log, 0, mark_at).expect("the claim is good");
        assert_eq!(good.lines_before, 2);
        assert_eq!(good.chain.records(), 3);
        let mark = check_line(&log[mark_at as usize..log.len() - 1], Mode::Fast).unwrap();
        assert_eq!(good.chain.head(), mark.hash);
        // From any clean line boundary at or before the run, the same verdict.
        let second = log.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
        assert_eq!(judge(&log, second, mark_at).unwrap().lines_before, 1);
        assert_eq!(judge(&log, run, mark_at).unwrap().lines_before, 0);
        assert_eq!(judge(&log, run, mark_at).unwrap().chain, good.chain);
    }

    #[test]
    fn a_claim_over_records_is_refused_unless_it_is_exactly_the_pattern() {
        let (_, run, _) = lying_call(None, 2, 3);
        // Linked to the wrong record: the last of the run, or the first.
        let (log, _, mark_at) = lying_call(None, 4, 5);
        assert!(judge(&log, 0, mark_at).is_none());
        let (log, _, mark_at) = lying_call(None, 3, 4);
        assert!(judge(&log, 0, mark_at).is_none());
        // Right link, wrong seq.
        let (log, _, mark_at) = lying_call(None, 2, 5);
        assert!(judge(&log, 0, mark_at).is_none());
        // A claim that starts inside a line, or one line late (then it does not link to the
        // record before its run).
        let (log, _, mark_at) = lying_call(Some(run + 1), 2, 3);
        assert!(judge(&log, 0, mark_at).is_none());
        let third = run
            + log[run as usize..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap() as u64
            + 1;
        let (log, _, mark_at) = lying_call(Some(third), 2, 3);
        assert!(judge(&log, 0, mark_at).is_none());
        // The bytes given start after the claim: the state at its offset is not known.
        let (log, run, mark_at) = lying_call(None, 2, 3);
        assert!(judge(&log, run + 1, mark_at).is_none());
        // One byte of the run changed: its SHA-256 no longer matches.
        let mut changed = log.clone();
        changed[run as usize + 10] ^= 1;
        let mark = &changed[mark_at as usize..changed.len() - 1];
        let claim = Rejected::from_record_line(mark).unwrap();
        let info = check_line(mark, Mode::Fast).unwrap();
        let clean = ChainVerifier::new();
        assert!(
            judge_claim_over_records(&clean, 0, &changed[..mark_at as usize], &claim, &info)
                .is_none()
        );
        // A line before the run that does not link from the clean state: here, a chain
        // state that is not the one at the start of the bytes.
        let wrong = ChainVerifier::resume_from(Some(Hash([7; 32])), 9);
        let mark = &log[mark_at as usize..log.len() - 1];
        let claim = Rejected::from_record_line(mark).unwrap();
        let info = check_line(mark, Mode::Fast).unwrap();
        assert!(
            judge_claim_over_records(&clean, 0, &log[..mark_at as usize], &claim, &info).is_some()
        );
        assert!(
            judge_claim_over_records(&wrong, 0, &log[..mark_at as usize], &claim, &info).is_none()
        );
        // Bytes that do not end where the claim does.
        assert!(
            judge_claim_over_records(&clean, 0, &log[..mark_at as usize - 1], &claim, &info)
                .is_none()
        );
    }

    #[test]
    fn linked_stretches_keep_a_bounded_number_of_states() {
        let max = 64 << 20;
        let mut l = LinkedStretches::new(max);
        let chain = ChainVerifier::new();
        // A GiB of 500-byte lines that all linked.
        for k in 0..(1u64 << 30) / 500 {
            l.linked(k * 500, k, &chain);
        }
        assert!(l.len() as u64 <= max / STATE_EVERY + 2, "{}", l.len());
        // A claim from before what is kept cannot be judged; one inside can.
        let end = ((1u64 << 30) / 500) * 500;
        let claim = |offset| Rejected {
            offset,
            length: end - offset,
            sha256: Hash::GENESIS,
        };
        assert_eq!(
            l.start_for(&claim(end - max - 2 * STATE_EVERY), end, end),
            None
        );
        let from = l.start_for(&claim(end - 1000), end, end).unwrap();
        assert!(from.offset <= end - 1000 && end - 1000 - from.offset < STATE_EVERY + 500);
        assert_eq!(from.lines, from.offset / 500);
        // Nor from past a line that did not link, nor ending anywhere but at the record.
        l.unlinked(end - 500);
        assert_eq!(l.start_for(&claim(end - 500), end, end), None);
        assert!(l.start_for(&claim(end - 1000), end, end).is_some());
        assert_eq!(l.start_for(&claim(end - 1000), end + 1, end + 1), None);
        assert_eq!(l.start_for(&claim(end - 1000), end, end - 1000), None);
    }

    /// A reader of `log` for [`LinkedStretches::judge_claim`] that counts what it reads.
    fn reader<'a>(
        log: &'a [u8],
        read: &'a mut u64,
    ) -> impl FnMut(u64, &mut [u8]) -> Result<(), ()> + 'a {
        move |at, buf| {
            *read += buf.len() as u64;
            buf.copy_from_slice(&log[at as usize..at as usize + buf.len()]);
            Ok(())
        }
    }

    #[test]
    fn judging_a_claim_reads_the_whole_run_only_for_a_mark_that_could_follow() {
        let (log, run, mark_at) = lying_call(None, 2, 3);
        let mark_line = &log[mark_at as usize..log.len() - 1];
        let claim = Rejected::from_record_line(mark_line).unwrap();
        let mark = check_line(mark_line, Mode::Fast).unwrap();
        let remember = |max_region| {
            let mut l = LinkedStretches::new(max_region);
            l.linked(0, 0, &ChainVerifier::new());
            l
        };
        // Good: the first claimed line, then everything from the kept state.
        let mut read = 0;
        let good = remember(64 << 20).judge_claim(
            &claim,
            &mark,
            mark_at,
            mark_at,
            reader(&log, &mut read),
        );
        assert_eq!(good.unwrap().unwrap().first_line, 3);
        assert_eq!(read, (mark_at - run) + mark_at);
        // A mark linked elsewhere (to the last claimed record, as record 5): only the first
        // claimed line is read.
        let (log2, _, mark_at2) = lying_call(None, 4, 5);
        let mark2 = check_line(&log2[mark_at2 as usize..log2.len() - 1], Mode::Fast).unwrap();
        let mut read = 0;
        let refused = remember(64 << 20).judge_claim(
            &claim,
            &mark2,
            mark_at,
            mark_at,
            reader(&log, &mut read),
        );
        assert_eq!(refused, Ok(None));
        assert_eq!(read, mark_at - run);
        // A claim that passes that check but not the SHA-256, again and again: the reads in
        // all stop at three times the log plus two claims (and a state's spacing each).
        let wrong = Rejected {
            sha256: Hash([1; 32]),
            ..claim
        };
        let mut l = remember(4096);
        let mut total = 0;
        let err = loop {
            let mut read = 0;
            match l.judge_claim(&wrong, &mark, mark_at, mark_at, reader(&log, &mut read)) {
                Ok(None) => total += read,
                Err(e) => break e,
                Ok(Some(_)) => panic!("a wrong SHA-256 was accepted"),
            }
        };
        let allowed = 3 * mark_at + 2 * (4096 + STATE_EVERY);
        assert!(
            matches!(err, ClaimError::TooCostly { allowed: a, .. } if a == allowed),
            "{err:?}"
        );
        assert!(
            total <= allowed && total + mark_at + 4096 > allowed,
            "{total}"
        );
    }
}
