//! Time: the canonical event times are microseconds since 1970-01-01 UTC, and the
//! one reading of the dates inputs write.

use chrono::format::StrftimeItems;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub const HOUR_MICROS: i64 = 3_600_000_000;
/// Microseconds in a minute.
pub const MINUTE_MICROS: i64 = 60_000_000;

/// The longest window any stage takes in days (a horizon, a churn window): ten
/// years, past which a day count in microseconds comes near overflowing.
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// Midnight (UTC) of `date`, in microseconds.
pub fn midnight_micros(year: i32, month: u32, day: u32) -> Option<i64> {
    let days = days_from_civil(year, month, day)?;
    days.checked_mul(DAY_MICROS)
}

/// Midnight after the day holding `micros`: every event before it counts.
pub fn next_midnight(micros: i64) -> i64 {
    (micros.div_euclid(DAY_MICROS) + 1) * DAY_MICROS
}

/// `days` days in microseconds, saturating (past `i64::MAX` for over 106 million
/// days: no time a log holds is that far off).
pub fn days(days: u32) -> i64 {
    i64::from(days).saturating_mul(DAY_MICROS)
}

/// `YYYY-MM-DD` of the UTC day holding `micros`.
pub fn date_string(micros: i64) -> String {
    let (y, m, d) = civil_from_days(micros.div_euclid(DAY_MICROS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar, `None`
/// for a month or day that does not exist (Howard Hinnant's `days_from_civil`:
/// dates without chrono, and cheaper than its checked constructor per row).
#[inline]
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Years from March: February's last day ends the year.
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * i64::from((month + 9) % 12) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The inverse of [`days_from_civil`] (Hinnant's `civil_from_days`): year, month
/// and day of the day `z` days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `text` read in the chrono `strftime` layout `layout`, in UTC microseconds: an offset
/// (`%z`) converted to UTC, a layout without a time of day at midnight.
pub fn parse_layout(text: &str, layout: &str) -> Option<i64> {
    let time = specs(layout).any(|c| "HIklMSfTRXcrspP+".contains(c));
    // Offset first: chrono's naive parser accepts `%z` but drops the offset.
    if specs(layout).any(|c| c == 'z' || c == '+') {
        if let Ok(t) = DateTime::parse_from_str(text, layout) {
            return Some(t.timestamp_micros());
        }
        if time {
            return hour_alone(text, layout);
        }
        // A date and an offset, no time of day: midnight there.
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, text, StrftimeItems::new(layout)).ok()?;
        let midnight = parsed.to_naive_date().ok()?.and_hms_opt(0, 0, 0)?;
        let offset = parsed.to_fixed_offset().ok()?;
        return Some(
            midnight
                .and_local_timezone(offset)
                .single()?
                .timestamp_micros(),
        );
    }
    // Numbers side by side (`%Y%m%d`) split only by their widths: chrono reads
    // `2026111` as 2026-11-1 where 2026-1-11 is as likely, so the text must be what
    // the layout writes back.
    let exact = |written: String| adjacent_numbers(layout).then_some(written == text);
    if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
        if exact(t.format(layout).to_string()) == Some(false) {
            return None;
        }
        return Some(t.and_utc().timestamp_micros());
    }
    // Midnight only for a layout without a time of day: its hour must not be dropped.
    if time {
        return hour_alone(text, layout);
    }
    let date = NaiveDate::parse_from_str(text, layout).ok()?;
    if exact(date.format(layout).to_string()) == Some(false) {
        return None;
    }
    date.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
}

/// `text` in a layout with an hour but no minutes (GA4's `dateHour`, `%Y%m%d%H`),
/// at the hour's first minute; `None` for a layout with minutes.
fn hour_alone(text: &str, layout: &str) -> Option<i64> {
    if specs(layout).any(|c| "MTRXcrs+".contains(c)) {
        return None;
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, text, StrftimeItems::new(layout)).ok()?;
    parsed.set_minute(0).ok()?;
    // Written back as the layout writes it: a naive time has no offset to write.
    let (micros, written) = if specs(layout).any(|c| c == 'z') {
        let t = parsed.to_datetime().ok()?;
        (t.timestamp_micros(), t.format(layout).to_string())
    } else {
        let t = parsed.to_naive_datetime_with_offset(0).ok()?;
        (t.and_utc().timestamp_micros(), t.format(layout).to_string())
    };
    (!adjacent_numbers(layout) || written == text).then_some(micros)
}

/// Whether two numeric conversions of `layout` follow each other with nothing
/// between them (`%Y%m%d`, `%H%M`).
fn adjacent_numbers(layout: &str) -> bool {
    const NUMERIC: &str = "YCymdeHIklMSjGgVUWu";
    let parts: Vec<&str> = layout.split('%').collect();
    parts.windows(2).skip(1).any(|pair| {
        let spec = |part: &str| {
            part.trim_start_matches(|c: char| "-_0^#".contains(c) || c.is_ascii_digit())
                .chars()
                .next()
        };
        // `pair[0]` is exactly a numeric conversion, and `pair[1]` starts with one.
        let first = spec(pair[0]).filter(|c| NUMERIC.contains(*c));
        let whole = first.is_some_and(|c| pair[0].ends_with(c) && pair[0].len() <= 3);
        whole && spec(pair[1]).is_some_and(|c| NUMERIC.contains(c))
    })
}

/// The conversion characters of a strftime layout, in order: `z` for `%z`, `%:z`,
/// `%::z` and `%#z`; `f` for `%.3f` or `%6f`; `%%`, a literal, left out.
pub fn specs(layout: &str) -> impl Iterator<Item = char> + '_ {
    layout
        .split('%')
        .skip(1)
        .scan(false, |literal, part| {
            // After `%%` the next part follows a literal percent sign, not a conversion.
            if std::mem::take(literal) {
                return Some(None);
            }
            if part.is_empty() {
                *literal = true;
                return Some(None);
            }
            let spec =
                part.trim_start_matches(|c: char| "-_0^#:.".contains(c) || c.is_ascii_digit());
            Some(spec.chars().next())
        })
        .flatten()
}

/// `text` in the first of the common layouts that reads it (`YYYY-MM-DD HH:MM:SS`, RFC
/// 3339, ISO with `T`, either without seconds, with an export's offset or ` UTC`,
/// `YYYY-MM-DD`, `YYYYMMDD`), in UTC microseconds: the one reading of dates of every
/// input.
pub fn parse_auto(text: &str) -> Option<i64> {
    if let Some(micros) = parse_fixed_datetime(text.as_bytes()) {
        return Some(micros);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    const LAYOUTS: [&str; 10] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
        "%Y%m%d",
        // Offsets as exports write them: Shopify's ` -0500`, PostgreSQL's `+00`,
        // ISO 8601's `-0500`; and BigQuery's ` UTC`.
        "%Y-%m-%d %H:%M:%S%.f %#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f UTC",
    ];
    // Eight digits or no `%Y%m%d`: chrono reads `2026111` as 2026-11-1 or 2026-1-11.
    let compact = text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit());
    LAYOUTS
        .iter()
        .filter(|layout| compact || **layout != "%Y%m%d")
        .find_map(|layout| parse_layout(text, layout))
}

/// Fast path for `YYYY-MM-DD HH:MM:SS`, the most common export layout. Written by
/// hand because chrono's general format parser is several times slower, and this
/// runs once per event on files of hundreds of millions of rows.
fn parse_fixed_datetime(b: &[u8]) -> Option<i64> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b' ' && b[10] != b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let days = days_from_civil(year, num(5..7)?, num(8..10)?)?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_layout_is_chronos() {
        // Every day from 1896 to 2104 at a time of day, and impossible dates and
        // times, against chrono's checked constructors. (A leap second, which those
        // refuse, is left to chrono's parser, as before.)
        let chrono_micros = |text: &str| {
            let num = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
            NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?
                .and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
                .map(|t| t.and_utc().timestamp_micros())
        };
        let mut day = NaiveDate::from_ymd_opt(1896, 1, 1).unwrap();
        while day < NaiveDate::from_ymd_opt(2105, 1, 1).unwrap() {
            let text = format!("{} 23:59:59", day.format("%Y-%m-%d"));
            assert_eq!(
                parse_fixed_datetime(text.as_bytes()),
                chrono_micros(&text),
                "{text}"
            );
            day = day.succ_opt().unwrap();
        }
        for text in [
            "0000-01-01 00:00:00",
            "9999-12-31 12:00:00",
            "2024-02-29 00:00:00",
            "2026-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2000-02-29 00:00:00",
            "2026-00-10 00:00:00",
            "2026-04-31 00:00:00",
            "2026-04-00 00:00:00",
            "2026-04-30 24:00:00",
            "2026-04-30 23:60:00",
            "2026-04-30 23:59:60",
        ] {
            assert_eq!(
                parse_fixed_datetime(text.as_bytes()),
                chrono_micros(text),
                "{text}"
            );
        }
        assert_eq!(
            parse_auto("2026-04-30 23:59:60"),
            DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
                .map(|t| t.timestamp_micros())
                .ok()
        );
    }
}
