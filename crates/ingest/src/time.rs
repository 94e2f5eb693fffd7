//! Timestamp parsing into UTC microseconds.

use chrono::DateTime;
use chrono::format::StrftimeItems;
use userlens_model::time::{parse_auto, parse_layout, specs};

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

/// Date-times written as one number (GA4's `dateHour` and `dateHourMinute`).
const COMPACT_GUESSES: [&str; 3] = ["%Y%m%d%H", "%Y%m%d%H%M", "%Y%m%d%H%M%S"];

/// Layouts spreadsheets and exports write dates in, each day-first one before its
/// month-first twin, for a refusal's hint.
const LAYOUT_GUESSES: [&str; 16] = [
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d/%m/%y %H:%M",
    "%m/%d/%y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
];

/// The `time_format`s that read `text` within the years 1900-2099, for a refusal's
/// hint: a date-time written as one number or a Unix time (`2026030807` could be
/// either), else the layouts of [`LAYOUT_GUESSES`]: ` (it reads as `time_format =
/// "%d/%m/%Y %H:%M"`)`, or both where day and month could be either.
pub(crate) fn time_hint(text: &str) -> Option<String> {
    let text = crate::read::trim(text);
    let reads_in = |layouts: &[&'static str]| -> Vec<&'static str> {
        let years = crate::read::EARLIEST_MICROS..crate::read::LATEST_MICROS;
        (layouts.iter().copied())
            .filter(|layout| parse_layout(text, layout).is_some_and(|t| years.contains(&t)))
            .collect()
    };
    // Digits that are a date and hour side by side are that before a Unix time.
    let mut reads = reads_in(&COMPACT_GUESSES);
    reads.extend(unix_unit_of(text));
    if reads.is_empty() {
        reads = reads_in(&LAYOUT_GUESSES);
    }
    match reads.as_slice() {
        [] => None,
        [layout] => Some(format!(" (it reads as `time_format = \"{layout}\"`)")),
        [first, second, ..] => Some(format!(
            " (it reads as `time_format = \"{first}\"` or `\"{second}\"`: set the one \
             your export writes)"
        )),
    }
}

fn finite_micros(micros: f64) -> Option<i64> {
    // Keep within chrono's representable range (about +-262,000 years).
    (micros.is_finite() && micros.abs() < 8.0e18).then_some(micros.round() as i64)
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
    fn a_date_auto_does_not_read_is_told_the_layouts_that_do() {
        assert_eq!(
            time_hint("31/12/2026 14:05").as_deref(),
            Some(" (it reads as `time_format = \"%d/%m/%Y %H:%M\"`)")
        );
        assert_eq!(
            time_hint("08/02/2026 20:31").as_deref(),
            Some(
                " (it reads as `time_format = \"%d/%m/%Y %H:%M\"` or `\"%m/%d/%Y %H:%M\"`: \
                 set the one your export writes)"
            )
        );
        assert_eq!(
            time_hint("12/31/2026 2:05 PM").as_deref(),
            Some(" (it reads as `time_format = \"%m/%d/%Y %I:%M %p\"`)")
        );
        assert_eq!(
            time_hint("1767225600000").as_deref(),
            Some(" (it reads as `time_format = \"unix_ms\"`)")
        );
        assert_eq!(time_hint("noon"), None);
        // GA4's `dateHour` and `dateHourMinute`, which Unix units could read too.
        assert_eq!(
            time_hint("2026030807").as_deref(),
            Some(
                " (it reads as `time_format = \"%Y%m%d%H\"` or `\"unix\"`: set the one \
                 your export writes)"
            )
        );
        assert_eq!(
            time_hint("202603080730").as_deref(),
            Some(
                " (it reads as `time_format = \"%Y%m%d%H%M\"` or `\"unix_ms\"`: set the \
                 one your export writes)"
            )
        );
        let date_hour = TimeFormat::parse("%Y%m%d%H").unwrap();
        assert_eq!(
            date_hour.parse_micros("2026030807"),
            Some(micros("2026-03-08T07:00:00Z"))
        );
        // Digits the layout would not write back are no date-hour.
        assert_eq!(date_hour.parse_micros("202631807"), None);
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
        // A layout with an hour and no minutes reads the hour's first minute, never
        // midnight.
        let hour = TimeFormat::parse("%Y-%m-%d %H%z").unwrap();
        assert_eq!(
            hour.parse_micros("2026-03-04 10+0100"),
            Some(micros("2026-03-04T09:00:00Z"))
        );
        let hour = TimeFormat::parse("%Y-%m-%d %H").unwrap();
        assert_eq!(
            hour.parse_micros("2026-03-04 10"),
            Some(micros("2026-03-04T10:00:00Z"))
        );
    }

    #[test]
    fn unknown_format_names_are_refused() {
        let err = TimeFormat::parse("iso").unwrap_err();
        assert!(err.contains("`time_format` \"iso\" is not known"), "{err}");
        assert!(TimeFormat::parse("%Q").is_err());
    }
}
