//! Timestamps as A2A writes them: ISO 8601, UTC, millisecond precision.

use std::time::{SystemTime, UNIX_EPOCH};

/// The last instant RFC 3339's four-digit years can write:
/// 9999-12-31T23:59:59.999Z.
const LAST_WRITABLE: std::time::Duration = std::time::Duration::from_millis(253_402_300_799_999);

/// Formats a time as ISO 8601 UTC with milliseconds and `Z`. A time past
/// the year 9999 (a session whose TTL is centuries) is written as the
/// last instant of that year.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .min(LAST_WRITABLE);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    // Every task update stamps a time: written digit by digit, without
    // the formatting machinery.
    let mut out = String::with_capacity(24);
    let mut digits = |n: u64, width: u32, then: char| {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u64.pow(place) % 10) as u8));
        }
        out.push(then);
    };
    digits(year as u64, 4, '-');
    digits(u64::from(month), 2, '-');
    digits(u64::from(day), 2, 'T');
    digits(rem / 3600, 2, ':');
    digits(rem % 3600 / 60, 2, ':');
    digits(rem % 60, 2, '.');
    digits(u64::from(since.subsec_millis()), 3, 'Z');
    out
}

/// Formats a time as an HTTP date (RFC 9110 IMF-fixdate):
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an HTTP date in the IMF-fixdate form into seconds since the
/// epoch; anything else (the obsolete forms included) is `None`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, rest) = s.trim().split_once(", ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days as u64 * 86_400 + h * 3600 + m * 60 + sec)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Parses an ISO 8601 / RFC 3339 timestamp with a `Z` or `±HH:MM` offset
/// and optional fraction (`2026-11-24T17:05:00Z`,
/// `2026-11-24T18:05:00.5+01:00`) into milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    // Byte-wise: the rest may hold any characters, and slicing a str
    // inside one panics.
    let offset_minutes = match s.get(i..)?.as_bytes() {
        b"Z" | b"z" => 0,
        rest if rest.len() == 6 && matches!(rest[0], b'+' | b'-') && rest[3] == b':' => {
            let sign = if rest[0] == b'-' { -1 } else { 1 };
            sign * (num(i + 1, 2)? * 60 + num(i + 4, 2)?)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// A proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// civil-from-days algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_999);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.999Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_764_680_707_042);
        assert_eq!(rfc3339(t), "2025-12-02T13:05:07.042Z");
        let t = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
        assert_eq!(rfc3339(t), "9999-12-31T23:59:59.999Z");
        // Past the year 9999: the last instant that can be written (only
        // the year was held at 9999 before, under another year's date).
        let t = UNIX_EPOCH + Duration::from_secs(100_000_000_000_000);
        assert_eq!(rfc3339(t), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_writes_and_common_variants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_999);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(1_709_251_199_999));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(500));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.123456Z"), Some(123));
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn any_text_is_refused_without_panicking() {
        assert_eq!(parse_rfc3339("2026-11-24T17:05:00+0\u{20ac}x"), None);
        assert_eq!(parse_rfc3339("2026-11-24T17:05:00\u{20ac}+00:00"), None);
        assert_eq!(parse_rfc3339("2026-11-24T17:05:0\u{e9}Z"), None);
        // Every multi-byte character at every position of a valid stamp.
        let valid = "2026-11-24T17:05:00.123+01:00";
        for at in 0..=valid.len() {
            for c in ['\u{e9}', '\u{20ac}', '\u{1f600}'] {
                let mut s = valid.to_string();
                s.insert(at, c);
                let _ = parse_rfc3339(&s);
                s.truncate(at + c.len_utf8());
                let _ = parse_rfc3339(&s);
            }
        }
    }

    #[test]
    fn http_dates_round_trip_and_junk_is_refused() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        for junk in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 99 Nov 1994 08:49:37 GMT",
            "\u{e9}, 1",
        ] {
            assert_eq!(parse_http_date(junk), None, "{junk}");
        }
    }
}
