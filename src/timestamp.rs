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

/// [`format`]'s text, as bytes on the stack, written without `time`: a batch read writes a
/// time for each of its thousand presences, and `time`'s calendar and general formatter cost
/// several times what the arithmetic below does (BENCHMARKS.md). The property test below holds
/// the text to `time`'s own over the whole range.
pub fn digits(millis: i64) -> [u8; 24] {
    let clamped = millis.clamp(MIN_MILLIS, MAX_MILLIS);
    let (days, millisecond) = (
        clamped.div_euclid(DAY_MILLIS),
        clamped.rem_euclid(DAY_MILLIS),
    );
    let (year, month, day) = civil_from_days(days);
    let second_of_day = u32::try_from(millisecond / 1000).expect("below a day");
    let millisecond = u32::try_from(millisecond % 1000).expect("below 1000");
    let mut text = *b"0000-00-00T00:00:00.000Z";
    put_pair(&mut text, 0, year / 100);
    put_pair(&mut text, 2, year % 100);
    put_pair(&mut text, 5, month);
    put_pair(&mut text, 8, day);
    put_pair(&mut text, 11, second_of_day / 3600);
    put_pair(&mut text, 14, second_of_day / 60 % 60);
    put_pair(&mut text, 17, second_of_day % 60);
    text[20] = b'0' + (millisecond / 100) as u8;
    put_pair(&mut text, 21, millisecond % 100);
    text
}

const DAY_MILLIS: i64 = 86_400_000;

/// Writes `value` (below 100) as two digits at `at`, from a table rather than by dividing by
/// ten: half the work of a time's digits.
fn put_pair(text: &mut [u8; 24], at: usize, value: u32) {
    [text[at], text[at + 1]] = PAIRS[value as usize];
}

/// "00" to "99".
const PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut value = 0;
    while value < 100 {
        pairs[value] = [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
        value += 1;
    }
    pairs
};

/// The proleptic Gregorian date of a day counted from 1970-01-01, for the years 0 to 9999:
/// Howard Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms"), on
/// unsigned numbers, the days counted from 0000-03-01 so that none is negative.
fn civil_from_days(days: i64) -> (u32, u32, u32) {
    /// Days from 0000-03-01 to 1970-01-01.
    const EPOCH_FROM_MARCH_0000: i64 = 719_468;
    const ERA_DAYS: u32 = 146_097;
    let from_march = u32::try_from(days + EPOCH_FROM_MARCH_0000 + i64::from(ERA_DAYS))
        .expect("the years 0 to 9999, moved one era on, count positive days below 2^32");
    let (era, day_of_era) = (from_march / ERA_DAYS, from_march % ERA_DAYS);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    // The era added above taken off again, last, so that nothing is negative on the way;
    // January and February belong to the next year.
    let year = era * 400 + year_of_era + u32::from(month <= 2) - 400;
    (year, month, day)
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

    #[test]
    fn every_day_of_the_range_has_time_s_date() {
        let first = MIN_MILLIS.div_euclid(DAY_MILLIS);
        let last = MAX_MILLIS.div_euclid(DAY_MILLIS);
        for days in first..=last {
            let (year, month, day) = OffsetDateTime::from_unix_timestamp(days * 86_400)
                .unwrap()
                .to_calendar_date();
            let expected = (
                u32::try_from(year).unwrap(),
                u32::from(u8::from(month)),
                u32::from(day),
            );
            assert_eq!(civil_from_days(days), expected, "day {days}");
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
