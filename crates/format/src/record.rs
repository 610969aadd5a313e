//! The record model: what one audit event holds, and the checks a record must pass before sealing.

use alloc::string::String;
use serde_json::{Map, Value};

use crate::json::JsonError;

/// Longest `event_type` accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Deepest nesting inside a payload (the payload object counts as one level): the record around
/// it adds one, and a line must stay within [`crate::json::MAX_WRITE_DEPTH`].
pub const MAX_PAYLOAD_DEPTH: usize = crate::json::MAX_WRITE_DEPTH - 1;

/// Who caused the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// The machine the executor runs on.
    pub host_id: &'a str,
    /// The user the executor runs as.
    pub user: &'a str,
}

/// One audit event, before it is sealed into a line by [`crate::chain::seal`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event<'a> {
    /// UTC time, `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (Python `isoformat(timespec="microseconds")`).
    pub timestamp: &'a str,
    /// What happened, e.g. `step.finished`: non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no
    /// control characters.
    pub event_type: &'a str,
    /// The workflow run the event belongs to (`null` in the log when `None`).
    pub workflow_id: Option<&'a str>,
    /// Who caused the event.
    pub actor: Actor<'a>,
    /// Event-specific fields (any JSON object): a parsed tree, or its JSON text.
    pub payload: Payload<'a>,
}

/// An event's payload, as the caller holds it.
///
/// Either form seals to the same bytes ([`crate::chain::seal`]). Text that is already canonical
/// (checked by the verifier's scanner, [`crate::verify::is_canonical_object`]) is copied as it is,
/// with no tree built; other text is parsed and encoded canonically, which is what a tree costs
/// every time. So a sink that does not change payloads should hand over their text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    /// A parsed JSON object.
    Object(&'a Map<String, Value>),
    /// The JSON text of one object (RFC 8259; any spacing and key order).
    Text(&'a str),
}

impl<'a> From<&'a Map<String, Value>> for Payload<'a> {
    fn from(m: &'a Map<String, Value>) -> Self {
        Payload::Object(m)
    }
}

/// Why an event cannot be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The timestamp is not in the one accepted form.
    #[error(
        "timestamp {timestamp:?} is not UTC ISO-8601 with microseconds: {reason}; expected \
         `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, e.g. `2026-06-04T15:30:45.123456+00:00` (Python: \
         datetime.now(timezone.utc).isoformat(timespec=\"microseconds\"))"
    )]
    BadTimestamp {
        /// The timestamp given (shortened when long).
        timestamp: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `event_type` is the empty string.
    #[error("event_type is empty; name the event, e.g. `step.finished`")]
    EmptyEventType,
    /// `event_type` is longer than [`MAX_EVENT_TYPE_LEN`] bytes.
    #[error(
        "event_type is {len} bytes long, more than the limit of {MAX_EVENT_TYPE_LEN}; \
         use a short name and put details in the payload"
    )]
    EventTypeTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// `event_type` contains a control character.
    #[error(
        "event_type contains control character U+{code:04X} at byte {offset}; \
         remove it (event types are single-line names)"
    )]
    EventTypeControlChar {
        /// Byte offset of the character in `event_type`.
        offset: usize,
        /// Its code point.
        code: u32,
    },
    /// `seq` was 0; records are numbered from 1.
    #[error("seq must be at least 1 (records are numbered from 1 in the log)")]
    ZeroSeq,
    /// The sealed line would be longer than [`crate::MAX_RECORD_BYTES`].
    #[error(
        "record is {size} bytes long once encoded, more than the limit of {limit} bytes a line; \
         store large data elsewhere and put a reference (e.g. a path and its SHA-256) in the payload"
    )]
    TooLarge {
        /// Length of the encoded line, without its `\n`.
        size: usize,
        /// [`crate::MAX_RECORD_BYTES`].
        limit: usize,
    },
    /// The payload cannot be encoded canonically.
    #[error("payload cannot be stored: {0}")]
    Payload(#[from] JsonError),
}

/// Checks the timestamp is `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (a real calendar date and time)
/// and the event type is non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, without control chars.
pub fn validate(event: &Event) -> Result<(), RecordError> {
    validate_timestamp(event.timestamp)?;
    validate_event_type(event.event_type)
}

/// Checks an event type: non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no control characters.
pub fn validate_event_type(et: &str) -> Result<(), RecordError> {
    if et.is_empty() {
        return Err(RecordError::EmptyEventType);
    }
    if et.len() > MAX_EVENT_TYPE_LEN {
        return Err(RecordError::EventTypeTooLong { len: et.len() });
    }
    // Printable ASCII (nearly every event type) has no control character; only other text needs
    // the walk over its chars.
    if et.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if let Some((offset, c)) = et.char_indices().find(|(_, c)| c.is_control()) {
        return Err(RecordError::EventTypeControlChar {
            offset,
            code: u32::from(c),
        });
    }
    Ok(())
}

/// Whether the 32 bytes `b` have the shape `dddd-dd-ddTdd:dd:dd.dddddd+00:00` (`d` a digit),
/// eight bytes at a time; `false` for any other length.
fn has_shape(b: &[u8]) -> bool {
    /// Per word of the shape: 0xff at digit places, the separator byte elsewhere.
    const fn words() -> [(u64, u64); 4] {
        const SHAPE: &[u8; 32] = b"dddd-dd-ddTdd:dd:dd.dddddd+00:00";
        let mut out = [(0u64, 0u64); 4];
        let mut i = 0;
        while i < 32 {
            let shift = 8 * (i % 8);
            if SHAPE[i] == b'd' {
                out[i / 8].0 |= 0xff << shift;
            } else {
                out[i / 8].1 |= (SHAPE[i] as u64) << shift;
            }
            i += 1;
        }
        out
    }
    const WORDS: [(u64, u64); 4] = words();
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    if b.len() != 32 {
        return false;
    }
    b.chunks_exact(8)
        .zip(WORDS)
        .all(|(w, (digits, separators))| {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            // Separators exactly; digits 0x30..=0x39: high nibble 3, low nibble + 6 no carry.
            (w & !digits) == separators
                && (w & digits & HIGH_NIBBLES) == (0x3030_3030_3030_3030 & digits)
                && (((w & digits & LOW_NIBBLES) + (0x0606_0606_0606_0606 & digits)) & HIGH_NIBBLES)
                    == 0
        })
}

/// Checks a timestamp is `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` with a valid date and time.
pub fn validate_timestamp(ts: &str) -> Result<(), RecordError> {
    let bad = |reason| RecordError::BadTimestamp {
        timestamp: crate::json::snippet(ts),
        reason,
    };
    let b = ts.as_bytes();
    const SHAPE: &[u8; 32] = b"dddd-dd-ddTdd:dd:dd.dddddd+00:00";
    if b.len() != SHAPE.len() {
        return Err(bad("wrong length (must be exactly 32 characters)"));
    }
    // The shape a word at a time (it was a tenth of the default sink's own time in wasm, byte
    // by byte: issue 15); the walk only runs to say what is wrong.
    if !has_shape(b) {
        for (i, (&c, &s)) in b.iter().zip(SHAPE).enumerate() {
            let ok = if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            };
            if !ok {
                return Err(bad(if i >= 26 {
                    "the offset must be +00:00 (UTC)"
                } else {
                    "a digit or separator is out of place"
                }));
            }
        }
    }
    let num = |r: core::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    if !(1..=12).contains(&month) {
        return Err(bad("month must be 01-12"));
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days {
        return Err(bad("day is not in that month"));
    }
    if year == 0 {
        return Err(bad("year must be 0001-9999"));
    }
    if num(11..13) > 23 {
        return Err(bad("hour must be 00-23"));
    }
    if num(14..16) > 59 {
        return Err(bad("minute must be 00-59"));
    }
    if num(17..19) > 59 {
        return Err(bad("second must be 00-59"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for good in [
            "2026-06-04T15:30:45.123456+00:00",
            "2024-02-29T23:59:59.999999+00:00",
            "0001-01-01T00:00:00.000000+00:00",
        ] {
            validate_timestamp(good).unwrap();
        }
        for (bad, why) in [
            ("2026-06-04T15:30:45+00:00", "length"),
            ("2026-06-04T15:30:45.123456Z", "length"),
            ("2026-06-04 15:30:45.123456+00:00", "out of place"),
            ("2026-06-04T15:30:45.123456+01:00", "UTC"),
            ("2026-13-04T15:30:45.123456+00:00", "month"),
            ("2025-02-29T15:30:45.123456+00:00", "day"),
            ("2026-06-04T24:30:45.123456+00:00", "hour"),
            ("2026-06-04T15:60:45.123456+00:00", "minute"),
            ("2026-06-04T15:30:60.123456+00:00", "second"),
            ("0000-06-04T15:30:45.123456+00:00", "year"),
            ("2026-06-04T15:30:45.12345x+00:00", "out of place"),
        ] {
            let e = validate_timestamp(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn the_shape_check_word_by_word_agrees_with_the_walk() {
        let good = *b"2026-06-04T15:30:45.123456+00:00";
        let walk = |b: &[u8]| {
            const SHAPE: &[u8; 32] = b"dddd-dd-ddTdd:dd:dd.dddddd+00:00";
            b.len() == 32
                && b.iter().zip(SHAPE).all(|(&c, &s)| {
                    if s == b'd' {
                        c.is_ascii_digit()
                    } else {
                        c == s
                    }
                })
        };
        assert!(has_shape(&good));
        for at in 0..32 {
            for v in 0..=255u8 {
                let mut b = good;
                b[at] = v;
                assert_eq!(has_shape(&b), walk(&b), "{at} {v:#x}");
            }
        }
        assert!(!has_shape(&good[..31]));
    }

    #[test]
    fn event_types() {
        validate_event_type("step.finished").unwrap();
        validate_event_type(&"x".repeat(MAX_EVENT_TYPE_LEN)).unwrap();
        assert_eq!(validate_event_type(""), Err(RecordError::EmptyEventType));
        assert_eq!(
            validate_event_type(&"x".repeat(MAX_EVENT_TYPE_LEN + 1)),
            Err(RecordError::EventTypeTooLong { len: 129 })
        );
        assert_eq!(
            validate_event_type("a\nb"),
            Err(RecordError::EventTypeControlChar {
                offset: 1,
                code: 10
            })
        );
        assert!(validate_event_type("a\u{7f}").is_err());
        assert!(validate_event_type("a\u{85}").is_err());
        validate_event_type("é.ok").unwrap();
    }
}
