//! Times on the wire of the presence API: RFC 3339, in UTC with milliseconds
//! (`2026-12-02T14:00:00.000Z`) when written, any RFC 3339 offset when read; Unix milliseconds
//! inside.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a time in RFC 3339 form, such as 2026-12-02T14:00:00Z")]
pub struct BadTimestamp(pub String);

/// Writes Unix milliseconds as RFC 3339 in UTC with milliseconds. Times outside the years
/// 0000 to 9999 are written as the nearest of those.
pub fn format(millis: i64) -> String {
    String::from_utf8(digits(millis).to_vec()).expect("ASCII digits")
}

/// [`format`]'s text, as bytes on the stack. The calendar is `time`'s; the digits are written
/// here rather than by `time`'s general formatter, which reads a format description on every
/// call: a batch read writes a time for each of its thousand presences (BENCHMARKS.md). The
/// test below holds the text to `time`'s own over the whole range.
pub fn digits(millis: i64) -> [u8; 24] {
    let clamped = millis.clamp(MIN_MILLIS, MAX_MILLIS);
    // Seconds and milliseconds apart: from nanoseconds, `time` would divide 128-bit numbers.
    let at = OffsetDateTime::from_unix_timestamp(clamped.div_euclid(1000))
        .expect("clamped into the years time can write");
    let millisecond = u32::try_from(clamped.rem_euclid(1000)).expect("below 1000");
    let (year, month, day) = at.to_calendar_date();
    let mut digits = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for place in (at..at + width).rev() {
            digits[place] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(
        0,
        4,
        u32::try_from(year).expect("clamped to years 0 to 9999"),
    );
    put(5, 2, u32::from(u8::from(month)));
    put(8, 2, u32::from(day));
    put(11, 2, u32::from(at.hour()));
    put(14, 2, u32::from(at.minute()));
    put(17, 2, u32::from(at.second()));
    put(20, 3, millisecond);
    digits
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

    proptest::proptest! {
        #[test]
        fn every_time_in_range_is_written_as_time_writes_it(millis in MIN_MILLIS..=MAX_MILLIS) {
            let text = format(millis);
            let by_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            // `time` writes as many fraction digits as it needs, and none for a whole second.
            let (seconds, fraction) = by_time.trim_end_matches('Z').split_once('.')
                .unwrap_or((by_time.trim_end_matches('Z'), ""));
            let expected = format!("{seconds}.{:0<3}Z", fraction.trim_end_matches('0'));
            proptest::prop_assert_eq!(&text, &expected);
            proptest::prop_assert_eq!(parse(&text), Ok(millis));
        }
    }
}
