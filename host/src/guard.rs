//! The host's check of what a sink appends: receipts must match the bytes.
//!
//! A sink's receipts are its word; the bytes it appended through the
//! `log-file` capability are the facts. Every append passes through the host,
//! so the host keeps the bytes a call appended and, when the call returns its
//! receipts, checks them against each other:
//!
//! - the bytes are whole lines, each a valid record (one pass of
//!   `chainsink-format`'s fast line check, hash included);
//! - one record per receipt, in order, with the receipt's `seq` and `hash`;
//! - with the chain on, each record's `prev_hash` is the hash of the record
//!   before it (from the previous call too);
//! - the one exception is torn-write recovery, exactly as the verifier
//!   allows it: bytes that are not a record are accepted only when the next
//!   line is a `chain.recovered` record describing them, and a sink may write
//!   such records before the event's own.
//!
//! So a sink that appends garbage, or returns receipts for records it did not
//! write, is caught at that call and discarded, instead of the executor
//! acknowledging events that are not in the log. What this does not catch is
//! left to `chainsink verify`: anything the sink wrote before the first
//! check (the link into the existing log) is not re-read.
//!
//! It runs for every sink but the embedded default
//! ([`AppendChecks`](crate::AppendChecks)): the default's records come from
//! `chainsink-format` itself, built into this binary.

use chainsink_format::Hash;
use chainsink_format::recovery::Torn;
use chainsink_format::verify::{Mode, check_line};

use crate::bindings::chainsink::audit::types as wit;

/// Most bytes kept between two checks; beyond this the call fails the check.
const MAX_PENDING: usize = 256 << 20;

/// Bytes appended since the last check, and the chain as last seen.
#[derive(Debug, Default)]
pub(crate) struct AppendGuard {
    /// Whether to check at all.
    enabled: bool,
    /// Appended bytes not yet checked.
    pending: Vec<u8>,
    /// Log offset of `pending[0]`.
    start: Option<u64>,
    /// More than [`MAX_PENDING`] bytes were appended.
    overflow: bool,
    /// Offsets were not contiguous (another writer appended in between).
    gap: bool,
    /// Hash of the last record checked, when the chain is on.
    last_hash: Option<Hash>,
}

impl AppendGuard {
    /// A guard that checks when `enabled`, and only counts otherwise.
    pub(crate) fn new(enabled: bool) -> AppendGuard {
        AppendGuard {
            enabled,
            ..AppendGuard::default()
        }
    }

    /// Notes that `data` was appended at `offset`.
    pub(crate) fn appended(&mut self, offset: u64, data: &[u8]) {
        if !self.enabled || self.overflow {
            return;
        }
        match self.start {
            None => self.start = Some(offset),
            Some(start) if start + self.pending.len() as u64 != offset => self.gap = true,
            Some(_) => {}
        }
        if self.pending.len() + data.len() > MAX_PENDING {
            self.overflow = true;
            self.pending = Vec::new();
            return;
        }
        self.pending.extend_from_slice(data);
    }

    /// Checks the bytes appended since the last check against `receipts`,
    /// and starts afresh. `Err` says what is wrong, for a contract error.
    pub(crate) fn check(&mut self, receipts: &[wit::Receipt], chained: bool) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let start = self.start.take().unwrap_or(0);
        let (overflow, gap) = (self.overflow, self.gap);
        self.overflow = false;
        self.gap = false;
        if overflow {
            return Err(format!(
                "it appended more than {} MiB in one call",
                MAX_PENDING >> 20
            ));
        }
        if gap {
            // Someone else wrote to the log between this sink's appends: the
            // offsets say nothing about this sink; the sink's own resume
            // logic deals with it. Only the count of lines is meaningful.
            self.last_hash = None;
            return Ok(());
        }
        let result = self.check_lines(&pending, start, receipts, chained);
        if result.is_err() {
            self.last_hash = None;
        }
        // Keep the buffer (and its capacity) for the next call.
        pending.clear();
        self.pending = pending;
        result
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
                    // Allowed only as a torn write the next line recovers.
                    let recovered = lines.get(i + 1).is_some_and(|&(_, l)| {
                        Torn::from_record_line(l).is_some_and(|t| {
                            t.covers(offset, line)
                                || (line.is_empty() && i == 0 && t.offset + t.length == offset)
                        })
                    });
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
            if let (Some(prev), Some(last)) = (info.prev_hash, self.last_hash)
                && prev != last
            {
                return Err(format!(
                    "the record at log offset {offset} has prev_hash {prev}, but the record \
                     before it has hash {last}: the chain is broken"
                ));
            }
            let receipt = receipts.get(next);
            let is_recovery = receipt.is_none_or(|r| info.seq != Some(r.seq))
                && Torn::from_record_line(line).is_some();
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
            if info.hash.is_some() {
                self.last_hash = info.hash;
            }
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
            payload: &payload,
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
            payload: &payload,
        };
        let mut out = torn.clone();
        out.push(b'\n');
        let hr = seal(&event, 5, Some(&Hash::GENESIS), &mut out).unwrap();
        let h = line(6, hr, &mut out);
        g.appended(100, &out);
        g.check(&[receipt(6, h)], true).unwrap();
    }
}
