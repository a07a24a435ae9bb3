//! Times on the wire of the presence API: RFC 3339, in UTC with milliseconds
//! (`2026-12-02T14:00:00.000Z`) when written, any RFC 3339 offset when read; Unix milliseconds
//! inside.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// The one form every time is written in.
const WRITTEN: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a time in RFC 3339 form, such as 2026-12-02T14:00:00Z")]
pub struct BadTimestamp(pub String);

/// Writes Unix milliseconds as RFC 3339 in UTC with milliseconds. Times outside the years
/// 0000 to 9999 are written as the nearest of those.
pub fn format(millis: i64) -> String {
    let mut text = String::with_capacity(24);
    push(&mut text, millis);
    text
}

/// [`format`], appended to `out`.
pub fn push(out: &mut String, millis: i64) {
    let clamped = millis.clamp(MIN_MILLIS, MAX_MILLIS);
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(clamped) * 1_000_000)
        .expect("clamped into the years time can write");
    out.push_str(
        &at.format(WRITTEN)
            .expect("a UTC time in four-digit years formats"),
    );
}

/// Reads an RFC 3339 time, with any offset, as Unix milliseconds (finer digits dropped).
pub fn parse(text: &str) -> Result<i64, BadTimestamp> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| BadTimestamp(text.to_owned()))?;
    let millis = at.to_offset(UtcOffset::UTC).unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).map_err(|_| BadTimestamp(text.to_owned()))
}

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
const MIN_MILLIS: i64 = -62_167_219_200_000;
const MAX_MILLIS: i64 = 253_402_300_799_999;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_with_milliseconds_and_reads_any_offset() {
        assert_eq!(format(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(1_796_220_000_123), "2026-12-02T14:00:00.123Z");
        assert_eq!(parse("2026-12-02T14:00:00.123Z"), Ok(1_796_220_000_123));
        assert_eq!(
            parse("2026-12-02T15:00:00.123+01:00"),
            Ok(1_796_220_000_123)
        );
        assert_eq!(parse("2026-12-02T14:00:00Z"), Ok(1_796_220_000_000));
        assert!(parse("2026-12-02 14:00").is_err());
        assert!(parse("tomorrow").is_err());
        assert_eq!(format(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format(i64::MIN), "0000-01-01T00:00:00.000Z");
        for millis in [0, 1, 999, 1_796_220_000_123, MAX_MILLIS, MIN_MILLIS] {
            assert_eq!(parse(&format(millis)), Ok(millis));
        }
    }
}
