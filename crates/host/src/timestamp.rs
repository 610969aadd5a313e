//! Timestamps in the log's form.

use time::OffsetDateTime;
use time::macros::format_description;

/// The length of [`now`] in bytes, every time: the `time` crate's years run from 1
/// to 9999 (four digits), and the clock never reads before 1970.
pub const LEN: usize = "2026-06-04T15:30:45.123456+00:00".len();

/// Now, UTC, as Python's `datetime.now(UTC).isoformat(timespec="microseconds")`:
/// `2026-06-04T15:30:45.123456+00:00`.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Formats `t` (converted to UTC) in the log's form.
pub fn format(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC date always formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_isoformat() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_780_587_045_123_456_789).unwrap();
        assert_eq!(format(t), "2026-06-04T15:30:45.123456+00:00");
        let whole = OffsetDateTime::from_unix_timestamp(1_780_587_045).unwrap();
        assert_eq!(format(whole), "2026-06-04T15:30:45.000000+00:00");
        // Every representable time from the epoch on has the same length.
        for t in [
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc(),
            time::PrimitiveDateTime::MAX.assume_utc(),
        ] {
            assert_eq!(format(t).len(), LEN, "{t}");
        }
    }
}
