//! Timestamp parsing into UTC microseconds.

use chrono::format::StrftimeItems;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// How `event_time` is written in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// Try the common layouts in turn (`YYYY-MM-DD HH:MM:SS`, RFC 3339, ISO with `T`,
    /// either without seconds, `YYYY-MM-DD`, `YYYYMMDD`).
    Auto,
    /// RFC 3339 with an offset, converted to UTC.
    Rfc3339,
    /// Seconds since the Unix epoch.
    UnixSeconds,
    /// Milliseconds since the Unix epoch.
    UnixMillis,
    /// Microseconds since the Unix epoch (GA4's `event_timestamp`).
    UnixMicros,
    /// Nanoseconds since the Unix epoch.
    UnixNanos,
    /// A chrono `strftime` layout; a layout without time fields means midnight UTC,
    /// one with an offset (`%z`) is converted to UTC.
    Strftime(String),
}

impl TimeFormat {
    /// Reads the pipeline-file spelling: `auto`, `rfc3339`, `unix`, `unix_ms`,
    /// `unix_us`, `unix_ns`, `date` (`%Y-%m-%d`) or a `strftime` layout.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        Ok(match text {
            "auto" => TimeFormat::Auto,
            "rfc3339" => TimeFormat::Rfc3339,
            "unix" => TimeFormat::UnixSeconds,
            "unix_ms" => TimeFormat::UnixMillis,
            "unix_us" => TimeFormat::UnixMicros,
            "unix_ns" => TimeFormat::UnixNanos,
            "date" => TimeFormat::Strftime("%Y-%m-%d".into()),
            layout if layout.contains('%') => {
                // chrono reports a bad layout only when parsing; check it once here.
                let probe = StrftimeItems::new(layout);
                if probe
                    .into_iter()
                    .any(|item| matches!(item, chrono::format::Item::Error))
                {
                    return Err(format!(
                        "`time_format` {layout:?} is not a valid strftime layout"
                    ));
                }
                if specs(layout).any(|c| c == 'Z') {
                    return Err(format!(
                        "`time_format` {layout:?} has `%Z`, a time zone's name, which gives no offset: use `%z` (such as +01:00) or times in UTC"
                    ));
                }
                TimeFormat::Strftime(layout.to_string())
            }
            other => {
                return Err(format!(
                    "`time_format` {other:?} is not known: use auto, rfc3339, unix, unix_ms, unix_us, unix_ns, date or a strftime layout such as \"%Y%m%d\""
                ));
            }
        })
    }

    /// Words for error messages.
    pub fn describe(&self) -> String {
        match self {
            TimeFormat::Auto => "a date or date-time".into(),
            TimeFormat::Rfc3339 => "an RFC 3339 date-time".into(),
            TimeFormat::UnixSeconds => "Unix seconds".into(),
            TimeFormat::UnixMillis => "Unix milliseconds".into(),
            TimeFormat::UnixMicros => "Unix microseconds".into(),
            TimeFormat::UnixNanos => "Unix nanoseconds".into(),
            TimeFormat::Strftime(layout) => format!("a date in the form {layout}"),
        }
    }

    /// Parses `text` into microseconds since the epoch, UTC.
    pub fn parse_micros(&self, text: &str) -> Option<i64> {
        let text = crate::read::trim(text);
        match self {
            TimeFormat::Auto => parse_auto(text),
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_micros()),
            TimeFormat::UnixSeconds => {
                let secs: f64 = text.parse().ok()?;
                finite_micros(secs * 1e6)
            }
            TimeFormat::UnixMillis => {
                let millis: f64 = text.parse().ok()?;
                finite_micros(millis * 1e3)
            }
            // Whole numbers exactly (past 2^53 an f64 would round them), else as decimals.
            TimeFormat::UnixMicros => match text.parse::<i64>() {
                Ok(micros) => Some(micros),
                Err(_) => finite_micros(text.parse().ok()?),
            },
            TimeFormat::UnixNanos => match text.parse::<i64>() {
                Ok(nanos) => Some(nanos.div_euclid(1000)),
                Err(_) => finite_micros(text.parse::<f64>().ok()? / 1e3),
            },
            TimeFormat::Strftime(layout) => parse_layout(text, layout),
        }
    }
}

/// The `time_format` a number of the years 1900-2099 in some Unix unit is written
/// in, for a refusal's hint: by its magnitude, seconds (about 1e9) to nanoseconds
/// (about 1e18).
pub fn unix_unit_of(text: &str) -> Option<&'static str> {
    let value: f64 = crate::read::trim(text).parse().ok()?;
    let seconds_in = |scale: f64| {
        let seconds = value / scale;
        // 1900-01-01 to 2100-01-01.
        (-2_208_988_800.0..4_102_444_800.0).contains(&seconds)
    };
    [
        (1.0, "unix"),
        (1e3, "unix_ms"),
        (1e6, "unix_us"),
        (1e9, "unix_ns"),
    ]
    .into_iter()
    .rev()
    .find(|(scale, _)| seconds_in(*scale) && value.abs() >= scale * 1e8)
    .map(|(_, name)| name)
}

/// ` (it reads as `time_format = "unix_us"`)` for a number in another Unix unit than
/// the source's (GA4 writes microseconds), for a refusal's reason.
pub(crate) fn unit_hint(text: &str) -> Option<String> {
    unix_unit_of(text).map(|unit| format!(" (it reads as `time_format = \"{unit}\"`)"))
}

fn finite_micros(micros: f64) -> Option<i64> {
    // Keep within chrono's representable range (about +-262,000 years).
    (micros.is_finite() && micros.abs() < 8.0e18).then_some(micros.round() as i64)
}

fn parse_layout(text: &str, layout: &str) -> Option<i64> {
    let time = specs(layout).any(|c| "HIklMSfTRXcrspP+".contains(c));
    // Offset first: chrono's naive parser accepts `%z` but drops the offset.
    if specs(layout).any(|c| c == 'z' || c == '+') {
        if let Ok(t) = DateTime::parse_from_str(text, layout) {
            return Some(t.timestamp_micros());
        }
        if time {
            return None;
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
    // Midnight only for a layout without a time of day: one with an hour but no
    // minutes does not make a date-time, and its hour must not be dropped.
    if time {
        return None;
    }
    let date = NaiveDate::parse_from_str(text, layout).ok()?;
    if exact(date.format(layout).to_string()) == Some(false) {
        return None;
    }
    date.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
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
fn specs(layout: &str) -> impl Iterator<Item = char> + '_ {
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

fn parse_auto(text: &str) -> Option<i64> {
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
    let days = userlens_model::time::days_from_civil(year, num(5..7)?, num(8..10)?)?;
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

    fn micros(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn auto_reads_common_layouts() {
        let auto = TimeFormat::Auto;
        let t = micros("2026-03-04T05:06:07Z");
        assert_eq!(auto.parse_micros("2026-03-04 05:06:07"), Some(t));
        assert_eq!(auto.parse_micros("2026-03-04T05:06:07"), Some(t));
        assert_eq!(auto.parse_micros("2026-03-04T07:06:07+02:00"), Some(t));
        let minute = micros("2026-03-04T05:06:00Z");
        assert_eq!(auto.parse_micros("2026-03-04 05:06"), Some(minute));
        assert_eq!(auto.parse_micros("2026-03-04T05:06"), Some(minute));
        assert_eq!(
            auto.parse_micros("2026-03-04"),
            Some(micros("2026-03-04T00:00:00Z"))
        );
        assert_eq!(
            auto.parse_micros("20260304"),
            Some(micros("2026-03-04T00:00:00Z"))
        );
        // Offsets and zones as exports write them.
        for text in [
            "2026-03-04 00:06:07 -0500",
            "2026-03-04 00:06:07 -05:00",
            "2026-03-04 05:06:07+00",
            "2026-03-04 10:36:07+05:30",
            "2026-03-04T00:06:07-0500",
            "2026-03-04 05:06:07 UTC",
        ] {
            assert_eq!(auto.parse_micros(text), Some(t), "{text}");
        }
        let fraction = micros("2026-03-04T05:06:07.25Z");
        assert_eq!(
            auto.parse_micros("2026-03-04 05:06:07.25 UTC"),
            Some(fraction)
        );
        assert_eq!(
            auto.parse_micros("2026-03-04 05:06:07.25+00"),
            Some(fraction)
        );
        // A zone by another name is no offset.
        assert_eq!(auto.parse_micros("2026-03-04 05:06:07 EST"), None);
    }

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
            TimeFormat::Auto.parse_micros("2026-04-30 23:59:60"),
            Some(micros("2026-05-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_zone_name_is_refused_and_compact_dates_need_eight_digits() {
        let err = TimeFormat::parse("%Y-%m-%d %H:%M:%S %Z").unwrap_err();
        assert!(err.contains("`%Z`"), "{err}");
        let auto = TimeFormat::Auto;
        assert_eq!(
            auto.parse_micros("20261101"),
            Some(micros("2026-11-01T00:00:00Z"))
        );
        for ambiguous in ["2026111", "2026011", "2026 1 1", "202611 1"] {
            assert_eq!(auto.parse_micros(ambiguous), None, "{ambiguous}");
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        let auto = TimeFormat::Auto;
        assert_eq!(auto.parse_micros("2026-13-01 00:00:00"), None);
        assert_eq!(auto.parse_micros("2026-02-30"), None);
        assert_eq!(auto.parse_micros("yesterday"), None);
        assert_eq!(auto.parse_micros(""), None);
    }

    #[test]
    fn explicit_layouts_and_epochs() {
        let ymd = TimeFormat::parse("%Y%m%d").unwrap();
        assert_eq!(
            ymd.parse_micros("19970101"),
            Some(micros("1997-01-01T00:00:00Z"))
        );
        assert_eq!(ymd.parse_micros("1997-01-01"), None);
        // Seven digits are two dates at once.
        assert_eq!(ymd.parse_micros("2026111"), None);
        assert_eq!(ymd.parse_micros("2026011"), None);
        let hm = TimeFormat::parse("%Y-%m-%d %H%M").unwrap();
        assert_eq!(
            hm.parse_micros("2026-01-02 0930"),
            Some(micros("2026-01-02T09:30:00Z"))
        );
        assert_eq!(hm.parse_micros("2026-01-02 930"), None);
        // Separated numbers may go without their zeros.
        let dashed = TimeFormat::parse("%Y-%m-%d").unwrap();
        assert_eq!(
            dashed.parse_micros("2026-1-2"),
            Some(micros("2026-01-02T00:00:00Z"))
        );
        let unix = TimeFormat::parse("unix").unwrap();
        assert_eq!(unix.parse_micros("0"), Some(0));
        assert_eq!(unix.parse_micros("1e300"), None);
        let us = TimeFormat::parse("unix_us").unwrap();
        assert_eq!(
            us.parse_micros("1767225600123456"),
            Some(1_767_225_600_123_456)
        );
        assert_eq!(us.parse_micros("1.5"), Some(2));
        let ns = TimeFormat::parse("unix_ns").unwrap();
        // Exact past 2^53 nanoseconds; before the epoch, down to the microsecond.
        assert_eq!(
            ns.parse_micros("1767225600123456789"),
            Some(1_767_225_600_123_456)
        );
        assert_eq!(ns.parse_micros("-1500"), Some(-2));
        assert_eq!(unix_unit_of("1767225600123456"), Some("unix_us"));
        assert_eq!(unix_unit_of("1767225600123"), Some("unix_ms"));
        assert_eq!(unix_unit_of(" 1767225600 "), Some("unix"));
        assert_eq!(unix_unit_of("1767225600123456789"), Some("unix_ns"));
        assert_eq!(unix_unit_of("2026"), None);
        assert_eq!(unix_unit_of("2026-01-01"), None);
        let ms = TimeFormat::parse("unix_ms").unwrap();
        assert_eq!(ms.parse_micros("1500"), Some(1_500_000));
    }

    #[test]
    fn a_layout_with_an_offset_converts_to_utc() {
        let t = micros("2026-03-04T05:06:07Z");
        let z = TimeFormat::parse("%Y-%m-%dT%H:%M:%S%z").unwrap();
        assert_eq!(z.parse_micros("2026-03-04T07:06:07+0200"), Some(t));
        assert_eq!(z.parse_micros("2026-03-03T23:36:07-0530"), Some(t));
        assert_eq!(z.parse_micros("2026-03-04T05:06:07+00:00"), Some(t));
        // An offset the layout asks for must be there.
        assert_eq!(z.parse_micros("2026-03-04T05:06:07"), None);
        let colon = TimeFormat::parse("%d/%m/%Y %H:%M %:z").unwrap();
        assert_eq!(
            colon.parse_micros("04/03/2026 06:06 +01:00"),
            Some(t - 7_000_000)
        );
        let iso = TimeFormat::parse("%+").unwrap();
        assert_eq!(iso.parse_micros("2026-03-04T10:36:07+05:30"), Some(t));
        let day = TimeFormat::parse("%Y-%m-%d%z").unwrap();
        assert_eq!(
            day.parse_micros("2026-03-04+0100"),
            Some(micros("2026-03-03T23:00:00Z"))
        );
        let has = |layout, c| specs(layout).any(|s| s == c);
        assert!(has("%#z", 'z') && has("x %::z", 'z') && has("%+", '+') && has("%.3f", 'f'));
        assert!(!has("%Y-%m-%d", 'z') && !has("100%%z", 'z') && !has("%%%%z", 'z'));
        assert!(has("%%%z", 'z'));
        // A layout with a time of day never drops it to midnight.
        let hour = TimeFormat::parse("%Y-%m-%d %H%z").unwrap();
        assert_eq!(hour.parse_micros("2026-03-04 10+0100"), None);
        let hour = TimeFormat::parse("%Y-%m-%d %H").unwrap();
        assert_eq!(hour.parse_micros("2026-03-04 10"), None);
    }

    #[test]
    fn unknown_format_names_are_refused() {
        let err = TimeFormat::parse("iso").unwrap_err();
        assert!(err.contains("`time_format` \"iso\" is not known"), "{err}");
        assert!(TimeFormat::parse("%Q").is_err());
    }
}
