//! Calendar periods: days, weeks from Monday and months (UTC), numbered from the
//! first period that holds an event.

use serde::{Deserialize, Serialize};
use userlens_model::time::{DAY_MICROS, civil_from_days, date_string, days_from_civil};

/// Most periods a calendar holds, the last before the as-of date: a cohort triangle
/// holds about half their square per group.
pub const MAX_PERIODS: usize = 1000;

/// 1970-01-05, the first Monday after the epoch, is day 4.
const FIRST_MONDAY: i64 = 4;

/// The calendar unit of cohorts and periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// UTC days.
    Day,
    /// Weeks starting on Monday (UTC).
    Week,
    /// Calendar months (UTC).
    #[default]
    Month,
}

impl Unit {
    /// The unit's name in the pipeline file.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }

    /// The period holding day `day` (days since 1970-01-01).
    pub fn period_of_day(self, day: i64) -> i64 {
        match self {
            Unit::Day => day,
            Unit::Week => (day - FIRST_MONDAY).div_euclid(7),
            Unit::Month => {
                let (y, m, _) = civil_from_days(day);
                y * 12 + i64::from(m) - 1
            }
        }
    }

    /// The start (microseconds) of the last period that ended by `as_of`: `retained`
    /// is being active in it, among users active in the period before, so the
    /// drivers of staying are read from the features at this time.
    pub fn last_complete_start(self, as_of: i64) -> i64 {
        // The period of as-of's day has begun by as-of and not ended: the one before.
        let current = self.period_of_day(as_of.div_euclid(DAY_MICROS));
        self.start_day(current - 1) * DAY_MICROS
    }

    /// The first day of period `period`.
    pub fn start_day(self, period: i64) -> i64 {
        match self {
            Unit::Day => period,
            Unit::Week => period * 7 + FIRST_MONDAY,
            Unit::Month => {
                let (y, m) = (period.div_euclid(12), period.rem_euclid(12) + 1);
                (i32::try_from(y).ok())
                    .and_then(|y| days_from_civil(y, m as u32, 1))
                    .unwrap_or(0)
            }
        }
    }

    /// The period's name: `YYYY-MM` for a month, the first day's date otherwise.
    pub fn label(self, period: i64) -> String {
        let day = self.start_day(period);
        let date = date_string(day * DAY_MICROS);
        match self {
            Unit::Month => date[..7.min(date.len())].to_string(),
            _ => date,
        }
    }
}

/// The days and periods of one run: from the first event's day to the as-of time,
/// or from the first day of the last [`MAX_PERIODS`] periods when they are more.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The unit.
    pub unit: Unit,
    /// Day of the first event, or of the first period held when earlier ones are left
    /// out.
    pub first_day: i64,
    /// Days observed: `first_day + days` is the day holding the last instant
    /// before the as-of time, plus one.
    pub days: usize,
    /// The first period held.
    pub first_period: i64,
    /// Periods from the first held to the one holding the last instant before as-of.
    pub periods: usize,
    /// Periods of events left out before the first held.
    pub earlier_periods: usize,
    /// The as-of time (microseconds, exclusive).
    pub as_of: i64,
    /// Period offset of every observed day.
    day_period: Vec<u32>,
}

impl Calendar {
    /// The calendar of events from `first_time` up to `as_of` (exclusive).
    pub fn new(unit: Unit, first_time: i64, as_of: i64) -> Calendar {
        let mut first_day = first_time.div_euclid(DAY_MICROS);
        let last_day = (as_of - 1).div_euclid(DAY_MICROS).max(first_day);
        let mut first_period = unit.period_of_day(first_day);
        let last_period = unit.period_of_day(last_day);
        let all = (last_period - first_period + 1) as usize;
        if all > MAX_PERIODS {
            first_period = last_period + 1 - MAX_PERIODS as i64;
            first_day = unit.start_day(first_period);
        }
        let day_period = (first_day..=last_day)
            .map(|d| (unit.period_of_day(d) - first_period) as u32)
            .collect::<Vec<_>>();
        Calendar {
            unit,
            first_day,
            days: day_period.len(),
            first_period,
            periods: all.min(MAX_PERIODS),
            earlier_periods: all.saturating_sub(MAX_PERIODS),
            as_of,
            day_period,
        }
    }

    /// The first instant held (microseconds).
    pub fn start(&self) -> i64 {
        self.first_day * DAY_MICROS
    }

    /// The start (microseconds) of the period before the first held.
    pub fn previous_start(&self) -> i64 {
        self.unit.start_day(self.first_period - 1) * DAY_MICROS
    }

    /// Day offset (from `first_day`) of an event time, if observed.
    pub fn day(&self, micros: i64) -> Option<u32> {
        let d = micros.div_euclid(DAY_MICROS) - self.first_day;
        (0..self.days as i64).contains(&d).then_some(d as u32)
    }

    /// Period offset of a day offset.
    pub fn period(&self, day: u32) -> u32 {
        self.day_period.get(day as usize).copied().unwrap_or(0)
    }

    /// Whether period offset `p` ended by the as-of time.
    pub fn complete(&self, p: usize) -> bool {
        let next = self.first_period + p as i64 + 1;
        self.unit.start_day(next) * DAY_MICROS <= self.as_of
    }

    /// Name of period offset `p`.
    pub fn label(&self, p: usize) -> String {
        self.unit.label(self.first_period + p as i64)
    }

    /// Date of day offset `d`.
    pub fn date(&self, d: usize) -> String {
        date_string((self.first_day + d as i64) * DAY_MICROS)
    }

    /// The end (exclusive, microseconds) of period offset `p`.
    pub fn period_end(&self, p: usize) -> i64 {
        self.unit.start_day(self.first_period + p as i64 + 1) * DAY_MICROS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use userlens_model::time::midnight_micros;

    fn day(y: i32, m: u32, d: u32) -> i64 {
        midnight_micros(y, m, d).unwrap() / DAY_MICROS
    }

    #[test]
    fn the_last_complete_period_starts_where_the_calendar_says() {
        let first = day(2025, 11, 20) * DAY_MICROS;
        for unit in [Unit::Day, Unit::Week, Unit::Month] {
            for as_of in [
                day(2026, 3, 1) * DAY_MICROS,
                day(2026, 3, 2) * DAY_MICROS + 1,
                day(2026, 3, 31) * DAY_MICROS + DAY_MICROS - 1,
                day(2026, 2, 9) * DAY_MICROS,
            ] {
                let cal = Calendar::new(unit, first, as_of);
                let last = (0..cal.periods).rev().find(|&p| cal.complete(p)).unwrap();
                assert_eq!(
                    unit.last_complete_start(as_of),
                    cal.period_end(last - 1),
                    "{unit:?}"
                );
            }
        }
        // A month ending at midnight of the 1st: February is the last complete one.
        let march = day(2026, 3, 1) * DAY_MICROS;
        assert_eq!(
            Unit::Month.last_complete_start(march),
            day(2026, 2, 1) * DAY_MICROS
        );
    }

    #[test]
    fn weeks_start_on_monday_across_a_year_boundary() {
        // 2025-12-29 is a Monday; 2026-01-04 the Sunday of the same week.
        let monday = Unit::Week.period_of_day(day(2025, 12, 29));
        assert_eq!(Unit::Week.period_of_day(day(2026, 1, 4)), monday);
        assert_eq!(Unit::Week.period_of_day(day(2026, 1, 5)), monday + 1);
        assert_eq!(Unit::Week.period_of_day(day(2025, 12, 28)), monday - 1);
        assert_eq!(Unit::Week.label(monday), "2025-12-29");
        assert_eq!(Unit::Week.label(monday + 1), "2026-01-05");
    }

    #[test]
    fn months_and_days_name_their_periods() {
        let dec = Unit::Month.period_of_day(day(2025, 12, 31));
        assert_eq!(Unit::Month.period_of_day(day(2026, 1, 1)), dec + 1);
        assert_eq!(Unit::Month.label(dec), "2025-12");
        assert_eq!(Unit::Month.start_day(dec + 2), day(2026, 2, 1));
        assert_eq!(Unit::Day.label(day(2024, 2, 29)), "2024-02-29");
        assert_eq!(Unit::Month.period_of_day(day(1969, 12, 31)), 1969 * 12 + 11);
    }

    #[test]
    fn a_calendar_marks_the_period_holding_the_as_of_date_incomplete() {
        let first = midnight_micros(2026, 1, 15).unwrap() + 5;
        let as_of = midnight_micros(2026, 3, 10).unwrap();
        let cal = Calendar::new(Unit::Month, first, as_of);
        assert_eq!(cal.periods, 3);
        assert!(cal.complete(0) && cal.complete(1) && !cal.complete(2));
        assert_eq!(cal.label(2), "2026-03");
        assert_eq!(cal.day(as_of), None);
        assert_eq!(cal.day(as_of - 1).map(|d| cal.period(d)), Some(2));
        let exact = Calendar::new(Unit::Month, first, midnight_micros(2026, 4, 1).unwrap());
        assert!(exact.complete(2));
        assert_eq!(cal.earlier_periods, 0);
    }

    #[test]
    fn a_long_span_keeps_its_last_periods() {
        let as_of = midnight_micros(1975, 1, 1).unwrap();
        let long = Calendar::new(Unit::Day, 0, as_of);
        assert_eq!(long.periods, MAX_PERIODS);
        assert_eq!(long.earlier_periods, 1826 - MAX_PERIODS);
        assert_eq!(long.start(), as_of - MAX_PERIODS as i64 * DAY_MICROS);
        assert_eq!(long.day(long.start() - 1), None);
        assert_eq!(long.day(as_of - 1).map(|d| long.period(d)), Some(999));
        // Weeks: the first held starts on a Monday, the one before a week earlier.
        let monday = day(1975, 1, 1) - 2 - 7 * (MAX_PERIODS as i64 - 1);
        let weeks = Calendar::new(Unit::Week, -1000 * 7 * DAY_MICROS, as_of);
        assert_eq!(weeks.periods, MAX_PERIODS);
        assert_eq!(weeks.start(), monday * DAY_MICROS);
        assert_eq!(weeks.previous_start(), (monday - 7) * DAY_MICROS);
    }
}
