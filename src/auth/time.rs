//! SigV4's timestamps: the ISO-8601 basic format (`20150830T123600Z`) that `X-Amz-Date` and
//! the string to sign carry, and the HTTP `Date` a client may send instead.
//!
//! The calendar arithmetic is written out (Howard Hinnant's days-from-civil) rather than
//! borrowed: the crates at hand (`humantime`, `httpdate`) panic when asked to print a time
//! before 1970 or after 9999, and a timestamp here comes from the network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// `YYYYMMDDTHHMMSSZ`, and nothing else: no offsets, no fractions, no leap second.
pub(super) fn parse_basic(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        bytes.get(from..to)?.iter().try_fold(0u32, |acc, digit| {
            digit
                .is_ascii_digit()
                .then(|| acc * 10 + u32::from(digit - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(4, 6)?, number(6, 8)?);
    let (hour, minute, second) = (number(9, 11)?, number(11, 13)?, number(13, 15)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    from_unix(days * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second))
}

/// An HTTP `Date` (IMF-fixdate, or the two obsolete forms RFC 9110 still accepts).
pub(super) fn parse_http(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text).ok()
}

/// `time` as `YYYYMMDDTHHMMSSZ`, whole seconds rounded down; never panics, whatever the year.
pub(crate) fn format_basic(time: SystemTime) -> String {
    let seconds = to_unix(time);
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    if !(0..=9999).contains(&year) {
        return format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z");
    }
    // Every signed request carries one: digits written in place, without `fmt`'s machinery
    // (about 2,000 instructions a call).
    let mut text = String::with_capacity(16);
    for (value, width) in [(year, 4), (month, 2), (day, 2)] {
        push_digits(&mut text, value, width);
    }
    text.push('T');
    for value in [hour, minute, second] {
        push_digits(&mut text, value, 2);
    }
    text.push('Z');
    text
}

/// `value` (not negative, below `10^width`) as exactly `width` decimal digits.
fn push_digits(text: &mut String, value: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10_i64.pow(place) % 10;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

/// The UTC day `time` falls on, counted from 1970-01-01: what the signing-key cache keys on.
pub(crate) fn day_number(time: SystemTime) -> i64 {
    to_unix(time).div_euclid(SECONDS_PER_DAY)
}

fn to_unix(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            // Rounds down: half a second before the epoch is in 1969's last second.
            -whole - i64::from(before.subsec_nanos() > 0)
        }
    }
}

fn from_unix(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March, so the leap day is the last day of the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_format_round_trips() {
        for text in [
            "19700101T000000Z",
            "20150830T123600Z",
            "20240229T235959Z",
            "20991231T000001Z",
            "00010101T000000Z",
            "99991231T235959Z",
        ] {
            let time = parse_basic(text).unwrap();
            assert_eq!(format_basic(time), text);
        }
        let time = parse_basic("20150830T123600Z").unwrap();
        assert_eq!(
            time.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
    }

    #[test]
    fn basic_format_writes_what_fmt_would() {
        let step = 86_400 * 37 + 3_671;
        for seconds in (-62_135_596_800_i64..253_402_300_799).step_by(step) {
            let days = seconds.div_euclid(SECONDS_PER_DAY);
            let (year, month, day) = civil_from_days(days);
            let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
            let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
            let expected = format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z");
            assert_eq!(format_basic(from_unix(seconds).unwrap()), expected);
        }
    }

    #[test]
    fn basic_format_refuses_what_is_not_one() {
        for text in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015-08-30T12:36:00Z",
            "20150230T000000Z",
            "20230229T000000Z",
            "20151301T000000Z",
            "20150830T246000Z",
            "20150830T123660Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "２０1508T123600Z",
        ] {
            assert_eq!(parse_basic(text), None, "{text}");
        }
    }

    #[test]
    fn http_dates_are_read() {
        let time = parse_http("Sun, 30 Aug 2015 12:36:00 GMT").unwrap();
        assert_eq!(format_basic(time), "20150830T123600Z");
        assert_eq!(parse_http("yesterday"), None);
    }

    #[test]
    fn printing_never_panics_far_from_now() {
        assert_eq!(
            format_basic(UNIX_EPOCH - Duration::from_millis(500)),
            "19691231T235959Z"
        );
        let _ = format_basic(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4));
        assert_eq!(day_number(UNIX_EPOCH - Duration::from_secs(1)), -1);
    }
}
