//! Satisfaction and loyalty: whether users stay and whether they are satisfied, in
//! the definitions product-analytics tools use.
//!
//! [`loyalty`] reads the canonical events (in parts of whole users sorted by user,
//! as ingest leaves them), optionally the personas, RFM segments, features and a
//! survey, and returns the tables of [`LoyaltyTables`]: cohort retention
//! (Amplitude's N-period and unbounded retention), the average retention curve,
//! PostHog's lifecycle and stickiness, repeat purchase, Kaplan-Meier time to churn,
//! NPS, mean ratings, and the key drivers of satisfaction and staying. Every table
//! is also cut by persona and by segment when those are given.
//!
//! ```
//! use polars::prelude::*;
//! use userlens_loyalty::{LoyaltyInput, LoyaltyParams, loyalty};
//!
//! let events = df!(
//!     "user_id" => ["a", "a", "b"],
//!     "event_time" => [0i64, 40 * 86_400_000_000, 86_400_000_000],
//!     "event_type" => ["view", "view", "view"],
//!     "category" => [None::<&str>, None, None],
//!     "amount" => [None::<f64>, None, None],
//!     "rating" => [None::<f64>, None, None],
//! ).unwrap();
//! let params = LoyaltyParams::default().check().unwrap();
//! let parts = [events.lazy()];
//! let input = LoyaltyInput::new(&parts);
//! let tables = loyalty(&input, &params).unwrap();
//! // January 1970: two users; one of them is back in February.
//! let retention = tables.retention.column("retention").unwrap().f64().unwrap();
//! assert_eq!(retention.get(1), Some(0.5));
//! ```

mod calendar;
mod cohorts;
pub mod drivers;
mod error;
pub mod groups;
pub mod nps;
mod params;
mod pass;
mod satisfaction;
pub mod survival;

use polars::prelude::*;
use userlens_model::columns;
use userlens_model::time::{DAY_MICROS, next_midnight};

pub use calendar::{Calendar, MAX_PERIODS, Unit};
pub use error::{Error, Result};
pub use params::{ANY_EVENT, CheckedLoyaltyParams, EventMatch, LoyaltyParams};
pub use pass::Matched;

use crate::error::polars_err;
use crate::groups::Directory;

/// The event columns [`loyalty`] reads.
pub const EVENT_COLUMNS: &[&str] = &[
    columns::USER_ID,
    columns::EVENT_TIME,
    columns::EVENT_TYPE,
    columns::AMOUNT,
    columns::CATEGORY,
    columns::RATING,
    // When the events have it: an order's lines are one purchase.
    columns::ORDER_ID,
];

/// The columns [`loyalty`] reads of a profile stage's `assignments`.
pub const ASSIGNMENT_COLUMNS: &[&str] = &[columns::USER_ID, columns::PERSONA_ID];

/// The columns [`loyalty`] reads of a predict stage's `segments`.
pub const SEGMENT_COLUMNS: &[&str] = &[columns::USER_ID, groups::SEGMENT];

/// What the loyalty stage reads.
#[derive(Clone, Copy)]
pub struct LoyaltyInput<'a> {
    /// Canonical events, each part holding whole users, each user's rows together
    /// (as the ingest leaves them; the pass sorts a part that is not, the ratings'
    /// tables count a user once per stretch of their rows).
    pub parts: &'a [LazyFrame],
    /// Only events before this time count (default: midnight after the last event).
    pub as_of: Option<i64>,
    /// `user_id, persona_id` (the profile stage's assignments).
    pub assignments: Option<&'a DataFrame>,
    /// `user_id, segment` (the predict stage's RFM segments).
    pub segments: Option<&'a DataFrame>,
    /// One row per user of numeric features, for the drivers.
    pub features: Option<&'a DataFrame>,
    /// The same features at the start of the last complete period
    /// ([`Unit::last_complete_start`]), for the drivers of `retained`: those at the
    /// as-of date hold the activity that defines it.
    pub features_at_period_start: Option<&'a DataFrame>,
    /// Survey answers: `user_id, answered_at` (microseconds), `score` (0-10).
    pub survey: Option<&'a DataFrame>,
}

impl<'a> LoyaltyInput<'a> {
    /// Events only.
    pub fn new(parts: &'a [LazyFrame]) -> LoyaltyInput<'a> {
        LoyaltyInput {
            parts,
            as_of: None,
            assignments: None,
            segments: None,
            features: None,
            features_at_period_start: None,
            survey: None,
        }
    }
}

/// The stage's tables; each is one output CSV (see the README for columns).
#[derive(Debug, Clone)]
pub struct LoyaltyTables {
    /// The as-of time the tables are computed at.
    pub as_of: i64,
    /// `retention.csv`: the cohort triangle of all users.
    pub retention: DataFrame,
    /// `retention_by_group.csv`: the triangle per persona and segment.
    pub retention_by_group: DataFrame,
    /// `retention_curve.csv`: weighted average retention per period and group.
    pub retention_curve: DataFrame,
    /// `lifecycle.csv`: new, returning, resurrecting and dormant users per period.
    pub lifecycle: DataFrame,
    /// `lifecycle_by_group.csv`.
    pub lifecycle_by_group: DataFrame,
    /// `stickiness.csv`: DAU, WAU, MAU per day.
    pub stickiness: DataFrame,
    /// `stickiness_by_group.csv`.
    pub stickiness_by_group: DataFrame,
    /// `active_days.csv`: users by number of active days, per month.
    pub active_days: DataFrame,
    /// `repeat_purchase.csv`: buyers and repeat buyers per first-purchase cohort.
    pub repeat_purchase: DataFrame,
    /// `repeat_purchase_by_group.csv`.
    pub repeat_purchase_by_group: DataFrame,
    /// `survival.csv`: Kaplan-Meier curves of "still active" per group.
    pub survival: DataFrame,
    /// `lifetime.csv`: median lifetime per group with its interval.
    pub lifetime: DataFrame,
    /// `satisfaction.csv`: mean rating per group and category.
    pub satisfaction: DataFrame,
    /// `nps.csv`, when a survey was given.
    pub nps: Option<DataFrame>,
    /// Survey answers counted in `nps.csv`'s `all` row only: their users are in no
    /// persona or segment (none when neither was given).
    pub nps_unplaced: u64,
    /// `drivers.csv`, when features were given.
    pub drivers: Option<DataFrame>,
    /// Events each event parameter matched.
    pub matched: Matched,
    /// Periods of events before the first the tables hold (at most [`MAX_PERIODS`]
    /// are held, the last before the as-of date), and the name of that first one.
    pub earlier: Option<(usize, String)>,
}

/// Computes every loyalty table.
pub fn loyalty(input: &LoyaltyInput<'_>, params: &CheckedLoyaltyParams) -> Result<LoyaltyTables> {
    let (first, last) = pass::time_span(input.parts, input.as_of)?.ok_or(Error::NoEvents)?;
    let as_of = input.as_of.unwrap_or_else(|| next_midnight(last));
    let cal = Calendar::new(params.unit, first, as_of);
    let dir = Directory::new(input.assignments, input.segments)?;
    let started = std::time::Instant::now();
    let pass = pass::run(input.parts, params, &cal, &dir)?;
    tracing::debug!(
        "loyalty: {} users summarised in {:.2} s",
        pass.users.len(),
        started.elapsed().as_secs_f64()
    );
    let groups = &dir.groups;
    let retention = cohorts::Retention::new(&pass.users, groups.len(), &cal);
    let (lifecycle, lifecycle_by_group) =
        split_all(cohorts::lifecycle(&pass.users, groups, &cal)?)?;
    let (repeat_purchase, repeat_purchase_by_group) = split_all(cohorts::repeat_purchase(
        &pass.users,
        groups,
        &cal,
        params.repeat_window_days,
    )?)?;
    let (stickiness, stickiness_by_group) =
        split_all(stickiness_table(&pass.stickiness, groups, &cal)?)?;
    let no_activity = pass::Stickiness::default();
    let all_users = pass.stickiness.first().unwrap_or(&no_activity);
    let (survival, lifetime) =
        survival::tables(&pass.users, groups, &cal, params.churn_after_days)?;
    let ratings = satisfaction::ratings(input.parts, as_of)?;
    let (satisfaction, mean_ratings) = satisfaction::tables(&ratings, &dir)?;
    let scores = input
        .survey
        .map(|survey| nps::latest_scores(survey, as_of))
        .transpose()?;
    let nps = scores
        .as_ref()
        .map(|s| nps::nps_table(s, &dir))
        .transpose()?;
    let nps_unplaced = scores.as_ref().map_or(Ok(0), |s| nps::unplaced(s, &dir))?;
    let retained = retained_table(&pass.retained)?;
    let drivers = match input.features {
        Some(features) => {
            let mut outcomes = Vec::new();
            if let Some(scores) = &scores {
                outcomes.push(drivers::Outcome {
                    target: "nps_score",
                    table: scores,
                    column: nps::SCORE,
                    exclude: &[],
                    features: None,
                });
            }
            outcomes.push(drivers::Outcome {
                target: "mean_rating",
                table: &mean_ratings,
                column: "mean_rating",
                exclude: &["mean_rating", "ratings"],
                features: None,
            });
            // Read from before the period that defines it when they were made; else
            // from the as-of date, without recency, which restates it.
            outcomes.push(drivers::Outcome {
                target: "retained",
                table: &retained,
                column: "retained",
                exclude: match input.features_at_period_start {
                    Some(_) => &[],
                    None => &["recency_days"],
                },
                features: input.features_at_period_start,
            });
            Some(drivers::drivers(features, &outcomes)?)
        }
        None => None,
    };
    Ok(LoyaltyTables {
        as_of,
        matched: pass.matched,
        earlier: (cal.earlier_periods > 0).then(|| (cal.earlier_periods, cal.label(0))),
        retention: retention.table(&cal)?,
        retention_by_group: retention.by_group(groups, &cal)?,
        retention_curve: retention.curve(groups, &cal)?,
        lifecycle,
        lifecycle_by_group,
        stickiness,
        stickiness_by_group,
        active_days: active_days_table(all_users, &cal)?,
        repeat_purchase,
        repeat_purchase_by_group,
        survival,
        lifetime,
        satisfaction,
        nps,
        nps_unplaced,
        drivers,
    })
}

/// The rows of the `all` group without the group columns, and the other rows.
fn split_all(df: DataFrame) -> Result<(DataFrame, DataFrame)> {
    let all = df
        .clone()
        .lazy()
        .filter(col("group").eq(lit(groups::ALL)))
        .drop(cols(["group", "value"]))
        .collect()
        .map_err(polars_err("split a table by group"))?;
    let rest = df
        .lazy()
        .filter(col("group").neq(lit(groups::ALL)))
        .collect()
        .map_err(polars_err("split a table by group"))?;
    Ok((all, rest))
}

fn retained_table(rows: &[(String, bool)]) -> Result<DataFrame> {
    let (ids, flags): (Vec<&str>, Vec<f64>) = rows
        .iter()
        .map(|(id, r)| (id.as_str(), f64::from(u8::from(*r))))
        .unzip();
    DataFrame::new_infer_height(vec![
        Column::new(userlens_model::columns::USER_ID.into(), ids),
        Column::new("retained".into(), flags),
    ])
    .map_err(polars_err("build the retained users"))
}

fn running(diff: &[i64]) -> impl Iterator<Item = u64> + '_ {
    diff.iter().scan(0i64, |acc, d| {
        *acc += d;
        Some((*acc).max(0) as u64)
    })
}

/// `group, value, date, dau, wau, mau, dau_mau, complete` of every group (`per_group`
/// indexed like `groups`): WAU and MAU over the trailing 7 and 30 days, `complete`
/// where those 30 days are all after the log's first (before, they undercount). A
/// group other than
/// the first (all users) has rows from its first day with a user active in the 30
/// days ending on it: after that, a day without one is a row of zeros, so that a
/// chart of it does not join across the gap.
fn stickiness_table(
    per_group: &[pass::Stickiness],
    groups: &[groups::Group],
    cal: &Calendar,
) -> Result<DataFrame> {
    let (mut kinds, mut values, mut dates): (Vec<&str>, Vec<String>, Vec<String>) =
        Default::default();
    let (mut dau, mut wau, mut mau, mut ratio): (Vec<u64>, Vec<u64>, Vec<u64>, Vec<Option<f64>>) =
        Default::default();
    let mut complete = Vec::new();
    for (g, (group, s)) in groups.iter().zip(per_group).enumerate() {
        let weekly = running(&s.wau);
        let monthly = running(&s.mau);
        let mut begun = g == 0;
        for (d, ((&active, w), m)) in s.dau.iter().zip(weekly).zip(monthly).enumerate() {
            begun |= m > 0;
            if !begun {
                continue;
            }
            kinds.push(group.kind);
            values.push(group.value.clone());
            dates.push(cal.date(d));
            dau.push(active);
            wau.push(w);
            mau.push(m);
            ratio.push((m > 0).then(|| active as f64 / m as f64));
            // Activity before a long log's calendar counts in its windows.
            let whole = d + 1 >= pass::MONTH_WINDOW_DAYS as usize || cal.earlier_periods > 0;
            complete.push(whole);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("group".into(), kinds),
        Column::new("value".into(), values),
        Column::new("date".into(), dates),
        Column::new("dau".into(), dau),
        Column::new("wau".into(), wau),
        Column::new("mau".into(), mau),
        Column::new("dau_mau".into(), ratio),
        Column::new("complete".into(), complete),
    ])
    .map_err(polars_err("build the stickiness table"))
}

/// `month, active_days, users, complete`: PostHog's stickiness, per calendar month;
/// a month not over at the as-of date is not complete, nor one begun before the
/// calendar's first day (the log's first, or the first of the periods a long log's
/// calendar holds): its users had fewer days to be active on.
fn active_days_table(s: &pass::Stickiness, cal: &Calendar) -> Result<DataFrame> {
    let first_month = Unit::Month.period_of_day(cal.first_day);
    let mut cols: (Vec<String>, Vec<u32>, Vec<u64>, Vec<bool>) = Default::default();
    for (m, hist) in s.active_days.iter().enumerate() {
        let month = first_month + m as i64;
        let whole = Unit::Month.start_day(month) >= cal.first_day;
        let complete = whole && Unit::Month.start_day(month + 1) * DAY_MICROS <= cal.as_of;
        for (days, &users) in hist.iter().enumerate().skip(1) {
            if users > 0 {
                cols.0.push(Unit::Month.label(month));
                cols.1.push(days as u32);
                cols.2.push(users);
                cols.3.push(complete);
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("month".into(), cols.0),
        Column::new("active_days".into(), cols.1),
        Column::new("users".into(), cols.2),
        Column::new("complete".into(), cols.3),
    ])
    .map_err(polars_err("build the active days table"))
}

#[cfg(test)]
mod tests;
