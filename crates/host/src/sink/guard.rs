//! The host's check of what a sink appends: receipts must match the bytes.
//!
//! A sink's receipts are its word; the bytes it appended through the
//! `log-file` capability are the facts. Every append passes through the host,
//! so the host keeps the bytes a call appended and, when the call returns its
//! receipts, checks them against each other:
//!
//! - the host reads the log's tail itself before the sink runs
//!   ([`KnownTail::read`]): the sink's first record must start where the log
//!   ends, link to its last record and carry the next `seq`, so a sink that
//!   ignores the log and starts a new chain (a fork) is caught at its first
//!   append;
//! - the bytes are whole lines, each a valid record (`chainsink-format`'s
//!   line check, hash included);
//! - one record per receipt, in order, with the receipt's `seq` and `hash`;
//! - with the chain on, each record's `prev_hash` is the hash of the record
//!   before it, and each `seq` the one after it (across calls too);
//! - the one exception is torn-write recovery, decided by the format crate's
//!   torn-write rule ([`chainsink_format::recovery`]): a sink may close a
//!   torn tail with `\n` and a `chain.recovered` record before its own.
//!
//! So a sink that appends garbage, forks the chain, or returns receipts for
//! records it did not write, is caught at that call and discarded, instead of
//! the executor acknowledging events that are not in the log. The bytes it
//! appended stay (the log is append-only), so the host marks them with a
//! `chain.rejected` record ([`chainsink_format::rejection`]) at once.
//!
//! # Custom record formats
//!
//! A sink whose `describe` names a custom format (`custom(tsv-chain/1)`)
//! writes records the host cannot read, so the host checks only what holds
//! for every format ([`AppendGuard::set_custom`]): each call's appends land
//! at the log's end, one after another, as whole lines ending in `\n`;
//! exactly one line per receipt; and the receipts' `seq` count up by one
//! from the log's line count (counted natively when the sink opens: that
//! read is the one cost that grows with the log, at memchr speed). No JSON
//! rule applies, no telemachy torn-write rule either: a log that ends in a
//! partial line is said to, and the sink's first append must end that line
//! with `\n` before its own records. The host writes nothing into a
//! custom-format log (it cannot mark refused bytes in a format it does not
//! know); `chainsink verify --sink` with the sink's verifier checks records.
//!
//! It runs for every sink but the embedded default
//! ([`AppendChecks`](crate::AppendChecks)): the default's records come from
//! `chainsink-format` itself, built into this binary.

use chainsink_format::Hash;
use chainsink_format::MAX_RECORD_BYTES;
use chainsink_format::recovery::{Tail, judge_bad_line, judge_closing_newline, judge_tail};
use chainsink_format::verify::{LineInfo, Mode, check_line};

use crate::bindings::wit;
use crate::capability::LogFile;

/// Where the log stood when the host last looked: the link, `seq` and end
/// offset the next appended record must continue from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KnownTail {
    /// The last record's hash (`None` with the chain off or unknown).
    pub(crate) hash: Option<Hash>,
    /// The last record's `seq` (`None` when it has none: a Python log).
    pub(crate) seq: Option<u64>,
    /// The log's size: where the next append must start.
    pub(crate) end: u64,
    /// The log ends in a torn write, or a record without its `\n`: the
    /// next append must start by ending that line.
    pub(crate) needs_newline: bool,
}

impl KnownTail {
    /// Reads the log's tail natively and judges it by the format crate's
    /// torn-write rule, or for a `custom` format counts its lines (see
    /// [`KnownTail::read_custom`]). `Err` when the log cannot be continued
    /// (its last line was changed), with the reason.
    pub(crate) fn read(log: &LogFile, chained: bool, custom: bool) -> Result<KnownTail, String> {
        if custom {
            return KnownTail::read_custom(log);
        }
        let size = log
            .size()
            .map_err(|e| format!("cannot read the log: {e}"))?;
        if size == 0 {
            return Ok(KnownTail {
                hash: chained.then_some(Hash::GENESIS),
                seq: Some(0),
                end: 0,
                needs_newline: false,
            });
        }
        // The last line and the one before it fit in two records' room.
        let window = u32::try_from(2 * (MAX_RECORD_BYTES as u64 + 1)).unwrap_or(u32::MAX);
        let (start, buf) = log
            .read_tail(window)
            .map_err(|e| format!("cannot read the log: {e}"))?;
        let terminated = buf.last() == Some(&b'\n');
        let body = if terminated {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let (last_at, last) = last_line(start, body).ok_or_else(|| {
            format!("its last line is longer than the largest record ({MAX_RECORD_BYTES} bytes)")
        })?;
        let known = |info: LineInfo, needs_newline| KnownTail {
            hash: info.hash,
            seq: info.seq,
            end: size,
            needs_newline,
        };
        match judge_tail(last_at, last, terminated) {
            Tail::Record(info) => Ok(known(info, false)),
            Tail::MissingNewline(info) => Ok(known(info, true)),
            Tail::Torn(_) => {
                let before_end = usize::try_from(last_at - start)
                    .unwrap_or(0)
                    .saturating_sub(1);
                if last_at == 0 {
                    return Ok(KnownTail {
                        hash: chained.then_some(Hash::GENESIS),
                        seq: Some(0),
                        end: size,
                        needs_newline: true,
                    });
                }
                let (at, line) = last_line(start, &body[..before_end]).ok_or_else(|| {
                    "the line before its torn tail is longer than the largest record".to_string()
                })?;
                let info = check_line(line, Mode::Fast).map_err(|e| {
                    format!("its last line is torn and the record before it (at byte {at}) is not valid: {e}")
                })?;
                Ok(known(info, true))
            }
            Tail::Tampered { error, why } => Err(format!(
                "its last line (at byte {last_at}) is not a valid record ({error}) and not a torn write ({why})"
            )),
        }
    }
}

impl KnownTail {
    /// Where a custom-format log stands: its whole lines (each a record, by
    /// the structural contract) and whether a partial line follows them. No
    /// record is parsed and nothing is judged torn: the format is the sink's.
    pub(crate) fn read_custom(log: &LogFile) -> Result<KnownTail, String> {
        const CHUNK: u32 = 1 << 20;
        let size = log
            .size()
            .map_err(|e| format!("cannot read the log: {e}"))?;
        let mut lines = 0u64;
        let mut offset = 0u64;
        let mut last = None;
        while offset < size {
            let buf = log
                .read(offset, CHUNK)
                .map_err(|e| format!("cannot read the log at byte {offset}: {e}"))?;
            if buf.is_empty() {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buf).count() as u64;
            last = buf.last().copied();
            offset += buf.len() as u64;
        }
        Ok(KnownTail {
            hash: None,
            seq: Some(lines),
            end: offset,
            needs_newline: last.is_some_and(|b| b != b'\n'),
        })
    }
}

/// The last line of `body` (the log's bytes from `start`, without a final
/// `\n`) and its offset; `None` when `body` does not reach back to its start.
fn last_line(start: u64, body: &[u8]) -> Option<(u64, &[u8])> {
    match body.iter().rposition(|&b| b == b'\n') {
        Some(p) => Some((start + p as u64 + 1, &body[p + 1..])),
        None if start == 0 => Some((0, body)),
        None => None,
    }
}

/// Bytes appended since the last check, and the chain as last seen.
#[derive(Debug, Default)]
pub(crate) struct AppendGuard {
    /// Whether to check at all.
    enabled: bool,
    /// The sink writes a custom format: structural checks only.
    custom: bool,
    /// Appended bytes not yet checked.
    pending: Vec<u8>,
    /// Log offset of `pending[0]`.
    start: Option<u64>,
    /// Offsets were not contiguous.
    gap: bool,
    /// Where the chain stands, as checked: the tail read at open, then
    /// each checked call's last record.
    known: Option<KnownTail>,
    /// The bytes of the last call that failed its check: (offset, bytes),
    /// for the host's `chain.rejected` record.
    rejected: Option<(u64, Vec<u8>)>,
}

impl AppendGuard {
    /// A guard that checks when `enabled`, and only counts otherwise.
    pub(crate) fn new(enabled: bool) -> AppendGuard {
        AppendGuard {
            enabled,
            ..AppendGuard::default()
        }
    }

    /// Whether it checks.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Checks only the structural contract from now on: the sink writes a
    /// custom record format (see the [module docs](self)).
    pub(crate) fn set_custom(&mut self, custom: bool) {
        self.custom = custom;
    }

    /// Takes what was appended and not yet checked, if anything: (offset,
    /// bytes). For calls that must append nothing (`describe`).
    pub(crate) fn take_pending(&mut self) -> Option<(u64, Vec<u8>)> {
        let pending = std::mem::take(&mut self.pending);
        self.gap = false;
        self.start
            .take()
            .filter(|_| !pending.is_empty())
            .map(|s| (s, pending))
    }

    /// Starts from `known`, the log's tail as the host read it.
    pub(crate) fn resume(&mut self, known: KnownTail) {
        self.known = Some(known);
    }

    /// Where the chain stands, as checked.
    pub(crate) fn known(&self) -> Option<KnownTail> {
        self.known
    }

    /// The bytes the last failed check refused, once.
    pub(crate) fn take_rejected(&mut self) -> Option<(u64, Vec<u8>)> {
        self.rejected.take()
    }

    /// Refuses whatever the current call appended, whatever its receipts
    /// say (the call failed: nothing of it is acknowledged), keeping the
    /// bytes for [`AppendGuard::take_rejected`].
    pub(crate) fn reject_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.gap = false;
        if let Some(start) = self.start.take()
            && !pending.is_empty()
        {
            self.rejected = Some((start, pending));
        }
    }

    /// Notes that the host itself appended a record (`chain.rejected`) at
    /// the end: the chain now continues from it.
    pub(crate) fn host_record(&mut self, hash: Option<Hash>, seq: u64, end: u64) {
        self.known = Some(KnownTail {
            hash,
            seq: Some(seq),
            end,
            needs_newline: false,
        });
    }

    /// Notes that `data` was appended at `offset`.
    pub(crate) fn appended(&mut self, offset: u64, data: &[u8]) {
        // What one call may append is bounded by the capability
        // (`SinkLimits::append_bytes`), so `pending` is too.
        if !self.enabled {
            return;
        }
        match self.start {
            None => self.start = Some(offset),
            Some(start) if start + self.pending.len() as u64 != offset => self.gap = true,
            Some(_) => {}
        }
        self.pending.extend_from_slice(data);
    }

    /// Checks the bytes appended since the last check against `receipts`,
    /// and starts afresh. `Err` says what is wrong, for a contract error;
    /// the refused bytes are then kept for [`AppendGuard::take_rejected`].
    pub(crate) fn check(&mut self, receipts: &[wit::Receipt], chained: bool) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let start = self.start.take();
        let gap = std::mem::take(&mut self.gap);
        let before = self.known;
        let result = if gap {
            Err("its appends did not land one after another".to_string())
        } else if self.custom {
            self.check_custom_lines(&pending, start.unwrap_or(0), receipts)
        } else {
            self.check_lines(&pending, start.unwrap_or(0), receipts, chained)
        };
        match result {
            Ok(()) => {
                if let (Some(start), Some(known)) = (start, &mut self.known) {
                    known.end = start + pending.len() as u64;
                }
                // Keep the buffer (and its capacity) for the next call.
                pending.clear();
                self.pending = pending;
                Ok(())
            }
            Err(e) => {
                self.known = before;
                if let Some(start) = start {
                    self.rejected = Some((start, pending));
                }
                Err(e)
            }
        }
    }

    /// The structural contract, for a custom format: whole lines, one per
    /// receipt, numbered on from the log's line count.
    fn check_custom_lines(
        &mut self,
        bytes: &[u8],
        start: u64,
        receipts: &[wit::Receipt],
    ) -> Result<(), String> {
        if bytes.is_empty() {
            return match receipts.len() {
                0 => Ok(()),
                n => Err(format!("it returned {n} receipt(s) but appended nothing")),
            };
        }
        let known = self.known.unwrap_or_default();
        if self.known.is_some() && start != known.end {
            return Err(format!(
                "its first append landed at log offset {start}, but the log ended at {}",
                known.end
            ));
        }
        if bytes.last() != Some(&b'\n') {
            let tail = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            return Err(format!(
                "its appended bytes end in the middle of a line ({tail} bytes after the last \
                 newline, at log offset {}); every record must be one whole line ending in a \
                 newline",
                start + (bytes.len() - tail) as u64
            ));
        }
        let mut body = bytes;
        let mut offset = start;
        let mut lines_before = known.seq.unwrap_or(0);
        if known.needs_newline {
            if body[0] != b'\n' {
                return Err(format!(
                    "the log ended in a partial line (no newline at byte {}), and its first \
                     append, at log offset {start}, did not end that line: a sink must start \
                     with a newline before its own records",
                    known.end.saturating_sub(1)
                ));
            }
            body = &body[1..];
            offset += 1;
            lines_before += 1;
        }
        let mut at = offset;
        let mut count = 0usize;
        for line in body[..body.len().saturating_sub(1)].split(|&b| b == b'\n') {
            if body.is_empty() {
                break;
            }
            let Some(receipt) = receipts.get(count) else {
                return Err(format!(
                    "it appended more lines than the {} receipt(s) it returned (the extra one at \
                     log offset {at}); a sink appends exactly one line per record",
                    receipts.len()
                ));
            };
            let expected = lines_before + count as u64 + 1;
            if receipt.seq != expected {
                return Err(format!(
                    "receipt {count} says seq {}, but the line it appended at log offset {at} \
                     is line {expected} of the log; a receipt's seq is its record's line number",
                    receipt.seq
                ));
            }
            at += line.len() as u64 + 1;
            count += 1;
        }
        if count != receipts.len() {
            return Err(format!(
                "it returned {} receipt(s) but appended {count} line(s); a sink appends exactly \
                 one line per record",
                receipts.len()
            ));
        }
        self.known = Some(KnownTail {
            hash: None,
            seq: Some(lines_before + count as u64),
            end: known.end,
            needs_newline: false,
        });
        Ok(())
    }

    fn check_lines(
        &mut self,
        bytes: &[u8],
        start: u64,
        receipts: &[wit::Receipt],
        chained: bool,
    ) -> Result<(), String> {
        if bytes.is_empty() {
            return match receipts.len() {
                0 => Ok(()),
                n => Err(format!("it returned {n} receipt(s) but appended nothing")),
            };
        }
        if let Some(known) = self.known
            && start != known.end
        {
            return Err(format!(
                "its first append landed at log offset {start}, but the log ended at {}",
                known.end
            ));
        }
        if bytes.last() != Some(&b'\n') {
            let tail = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            return Err(format!(
                "its appended bytes end in the middle of a line ({tail} bytes after the last \
                 newline, at log offset {}); every record must end with a newline",
                start + (bytes.len() - tail) as u64
            ));
        }
        // (offset, line without its newline)
        let mut lines = Vec::new();
        let mut at = 0;
        for line in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
            lines.push((start + at as u64, line));
            at += line.len() + 1;
        }
        let mut next = 0; // next receipt to match
        let mut i = 0;
        while i < lines.len() {
            let (offset, line) = lines[i];
            let info = match check_line(line, Mode::Fast) {
                Ok(info) => info,
                Err(e) => {
                    // Allowed only as a torn write the next line recovers,
                    // by the format crate's rule.
                    let following = lines.get(i + 1).map(|&(_, l)| l);
                    let recovered = if line.is_empty() && i == 0 {
                        // The `\n` that ends a torn tail already in the log.
                        let needs = self.known.is_none_or(|k| k.needs_newline);
                        needs && judge_closing_newline(offset, following).is_ok()
                    } else {
                        judge_bad_line(offset, line, following).is_ok()
                    };
                    if recovered {
                        i += 1;
                        continue;
                    }
                    return Err(format!(
                        "it appended bytes that are not a record at log offset {offset} ({}): {e}",
                        preview(line)
                    ));
                }
            };
            if chained && info.hash.is_none() {
                return Err(format!(
                    "the record at log offset {offset} has no hash although the chain is on"
                ));
            }
            if !chained && info.hash.is_some() {
                return Err(format!(
                    "the record at log offset {offset} is chained although the chain is off"
                ));
            }
            let known = self.known.unwrap_or_default();
            if let (Some(prev), Some(last)) = (info.prev_hash, known.hash)
                && prev != last
            {
                return Err(format!(
                    "the record at log offset {offset} has prev_hash {prev}, but the record \
                     before it has hash {last}: the chain is broken (a sink must continue the \
                     log it is given, from its last record)"
                ));
            }
            if let (Some(seq), Some(last)) = (info.seq, known.seq)
                && seq != last + 1
            {
                return Err(format!(
                    "the record at log offset {offset} has seq {seq}, but the record before it \
                     has seq {last}: seq must count up by one"
                ));
            }
            let receipt = receipts.get(next);
            let is_recovery = receipt.is_none_or(|r| info.seq != Some(r.seq))
                && chainsink_format::recovery::Torn::from_record_line(line).is_some();
            if !is_recovery {
                let Some(receipt) = receipt else {
                    return Err(format!(
                        "it appended more records than the {} it returned receipts for \
                         (the extra one at log offset {offset})",
                        receipts.len()
                    ));
                };
                if info.seq.is_some_and(|s| s != receipt.seq) {
                    return Err(format!(
                        "receipt {next} says seq {}, but the record it appended at log offset \
                         {offset} has seq {}",
                        receipt.seq,
                        info.seq.unwrap_or_default()
                    ));
                }
                let written = info.hash.map(|h| h.hex_bytes());
                let said = receipt.hash.as_ref().map(|h| h.as_bytes());
                if written.as_ref().map(|w| &w[..]) != said {
                    return Err(format!(
                        "receipt {next} says hash {}, but the record it appended at log offset \
                         {offset} has hash {}",
                        receipt.hash.as_deref().unwrap_or("(none)"),
                        info.hash.map_or("(none)".to_string(), |h| h.to_hex())
                    ));
                }
                next += 1;
            }
            self.known = Some(KnownTail {
                hash: info.hash.or(known.hash),
                seq: info.seq.or(known.seq.map(|s| s + 1)),
                end: known.end,
                needs_newline: false,
            });
            i += 1;
        }
        if next != receipts.len() {
            return Err(format!(
                "it returned {} receipt(s) but appended {next} record(s)",
                receipts.len()
            ));
        }
        Ok(())
    }
}

/// The start of `line`, printable, for messages.
fn preview(line: &[u8]) -> String {
    let head = &line[..line.len().min(40)];
    let mut s: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if line.len() > head.len() {
        s.push_str("...");
    }
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsink_format::chain::seal;
    use chainsink_format::json::parse_object;
    use chainsink_format::record::{Actor, Event};
    use chainsink_format::recovery::RECOVERED_EVENT;
    use chainsink_format::recovery::Torn;

    fn line(seq: u64, prev: Option<Hash>, out: &mut Vec<u8>) -> Option<Hash> {
        let payload = parse_object(r#"{"i": 1}"#).unwrap();
        let event = Event {
            timestamp: "2026-06-04T15:30:45.123456+00:00",
            event_type: "test.event",
            workflow_id: None,
            actor: Actor {
                host_id: "h",
                user: "u",
            },
            payload: (&payload).into(),
        };
        seal(&event, seq, prev.as_ref(), out).unwrap()
    }

    fn receipt(seq: u64, hash: Option<Hash>) -> wit::Receipt {
        wit::Receipt {
            seq,
            hash: hash.map(|h| h.to_hex()),
        }
    }

    #[test]
    fn honest_appends_pass_and_link_across_calls() {
        let mut g = AppendGuard::new(true);
        let mut out = Vec::new();
        let h1 = line(1, Some(Hash::GENESIS), &mut out);
        let h2 = line(2, h1, &mut out);
        g.appended(0, &out);
        g.check(&[receipt(1, h1), receipt(2, h2)], true).unwrap();
        let mut more = Vec::new();
        let h3 = line(3, h2, &mut more);
        g.appended(out.len() as u64, &more);
        g.check(&[receipt(3, h3)], true).unwrap();
        // A record that does not link to the last one is caught.
        let mut forked = Vec::new();
        let h4 = line(4, h1, &mut forked);
        g.appended((out.len() + more.len()) as u64, &forked);
        let err = g.check(&[receipt(4, h4)], true).unwrap_err();
        assert!(err.contains("chain is broken"), "{err}");
    }

    #[test]
    fn garbage_and_lies_are_caught() {
        let mut g = AppendGuard::new(true);
        g.appended(0, b"\x00garbage\n");
        let err = g
            .check(&[receipt(1, Some(Hash::GENESIS))], true)
            .unwrap_err();
        assert!(err.contains("not a record at log offset 0"), "{err}");
        assert!(err.contains("\\x00garbage"), "{err}");

        let mut out = Vec::new();
        let h1 = line(1, Some(Hash::GENESIS), &mut out);
        g.appended(0, &out);
        let err = g
            .check(&[receipt(1, Some(Hash::of(b"x")))], true)
            .unwrap_err();
        assert!(err.contains("receipt 0 says hash"), "{err}");
        g.appended(0, &out);
        let err = g
            .check(&[receipt(1, h1), receipt(2, h1)], true)
            .unwrap_err();
        assert!(err.contains("2 receipt(s) but appended 1"), "{err}");
        let err = g.check(&[receipt(1, h1)], true).unwrap_err();
        assert!(err.contains("appended nothing"), "{err}");
        g.appended(0, &out[..out.len() - 1]);
        let err = g.check(&[receipt(1, h1)], true).unwrap_err();
        assert!(err.contains("middle of a line"), "{err}");
    }

    /// A guard for a custom-format sink on a log of `lines` whole lines
    /// (`partial`: then a partial line) ending at byte `end`.
    fn custom_guard(lines: u64, end: u64, partial: bool) -> AppendGuard {
        let mut g = AppendGuard::new(true);
        g.set_custom(true);
        g.resume(KnownTail {
            hash: None,
            seq: Some(lines),
            end,
            needs_newline: partial,
        });
        g
    }

    fn custom_receipt(seq: u64) -> wit::Receipt {
        wit::Receipt {
            seq,
            hash: Some(format!("h{seq}")),
        }
    }

    /// No structural message may call a whole custom line torn or ask for JSON.
    fn no_json_talk(err: &str) {
        assert!(!err.contains("torn"), "{err}");
        assert!(!err.contains("JSON") && !err.contains("RFC 8259"), "{err}");
    }

    #[test]
    fn a_custom_format_is_checked_by_structure_only() {
        // Lines that are not JSON at all pass, numbered on from the log's lines.
        let mut g = custom_guard(3, 30, false);
        g.appended(30, b"4\tnot json\n5\t{\n");
        g.check(&[custom_receipt(4), custom_receipt(5)], true)
            .unwrap();
        g.appended(45, b"6\tx\n");
        g.check(&[custom_receipt(6)], true).unwrap();

        // A receipt whose seq is not its line number.
        let mut g = custom_guard(3, 30, false);
        g.appended(30, b"a\n");
        let err = g.check(&[custom_receipt(5)], true).unwrap_err();
        assert!(err.contains("is line 4 of the log"), "{err}");
        no_json_talk(&err);

        // Two lines for one receipt, and one line for two.
        let mut g = custom_guard(0, 0, false);
        g.appended(0, b"a\nb\n");
        let err = g.check(&[custom_receipt(1)], true).unwrap_err();
        assert!(err.contains("more lines than the 1 receipt"), "{err}");
        no_json_talk(&err);
        let mut g = custom_guard(0, 0, false);
        g.appended(0, b"a\n");
        let err = g
            .check(&[custom_receipt(1), custom_receipt(2)], true)
            .unwrap_err();
        assert!(err.contains("2 receipt(s) but appended 1 line(s)"), "{err}");

        // A line without its newline, and an append away from the end.
        let mut g = custom_guard(0, 0, false);
        g.appended(0, b"a\nb");
        let err = g.check(&[custom_receipt(1)], true).unwrap_err();
        assert!(err.contains("middle of a line"), "{err}");
        no_json_talk(&err);
        let mut g = custom_guard(2, 20, false);
        g.appended(25, b"c\n");
        let err = g.check(&[custom_receipt(3)], true).unwrap_err();
        assert!(err.contains("the log ended at 20"), "{err}");
    }

    #[test]
    fn a_custom_log_that_ends_in_a_partial_line_must_be_closed_first() {
        let mut g = custom_guard(2, 20, true);
        g.appended(20, b"3\tx\n");
        let err = g.check(&[custom_receipt(3)], true).unwrap_err();
        assert!(err.contains("partial line"), "{err}");
        no_json_talk(&err);
        // Closed with a newline, the partial line counts as line 3.
        let mut g = custom_guard(2, 20, true);
        g.appended(20, b"\n4\tx\n");
        g.check(&[custom_receipt(4)], true).unwrap();
    }

    #[test]
    fn the_line_count_of_a_custom_log_is_read_natively() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.tsv");
        std::fs::write(&path, b"1\ta\n2\tb\n3\tpart").unwrap();
        let log = LogFile::open(&path).unwrap();
        let known = KnownTail::read(&log, true, true).unwrap();
        assert_eq!(
            known,
            KnownTail {
                hash: None,
                seq: Some(2),
                end: 14,
                needs_newline: true
            }
        );
        // The telemachy rule would refuse this log; the custom one does not judge it.
        assert!(KnownTail::read(&log, true, false).is_err());
    }

    #[test]
    fn a_recovered_torn_write_is_accepted() {
        let mut g = AppendGuard::new(true);
        // Torn bytes from a failed append, then "\n", a recovery record and the record.
        let torn = b"{\"actor\": {\"host".to_vec();
        let t = Torn::of(100, &torn);
        let payload = t.payload();
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
        let mut out = torn.clone();
        out.push(b'\n');
        let hr = seal(&event, 5, Some(&Hash::GENESIS), &mut out).unwrap();
        let h = line(6, hr, &mut out);
        g.appended(100, &out);
        g.check(&[receipt(6, h)], true).unwrap();
    }
}
