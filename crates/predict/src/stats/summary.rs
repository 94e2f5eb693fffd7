//! Events -> per-customer frequency / recency / age / mean repeat value.

use polars::prelude::{
    ChunkCompareEq, ChunkFullNull, DataFrame, DataType, Expr, Float64Chunked, IntoLazy, LazyFrame,
    SortMultipleOptions, col, len, lit, when,
};
use serde::{Deserialize, Serialize};
use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE, USER_ID};
use userlens_model::event_types::PURCHASE;
use userlens_model::time::DAY_MICROS;

use super::{Error, Result};
use crate::error::polars_err;

/// Time unit of a [`Summary`] and of every model horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Calendar days.
    Days,
    /// Weeks of seven days.
    Weeks,
}

impl TimeUnit {
    /// Length of one unit in days.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }
}

/// Per-customer inputs of the customer-base models, sorted by `user_id`.
///
/// A transaction is a (customer, UTC calendar day) with at least one purchase; its
/// value is the sum of that day's amounts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Customer identifiers, ascending.
    pub user_ids: Vec<String>,
    /// Repeat transactions `x`: transactions minus one.
    pub frequency: Vec<f64>,
    /// Recency `t_x`: last transaction day minus first transaction day.
    pub recency: Vec<f64>,
    /// Age `T`: last calibration day minus first transaction day.
    pub t: Vec<f64>,
    /// Mean value of the repeat transactions (the first is left out), 0 if none.
    pub monetary: Vec<f64>,
    /// Value of the first transaction.
    pub first_value: Vec<f64>,
}

impl Summary {
    /// A checked summary from a [`summary_frame`] table.
    pub fn from_frame(per_user: &DataFrame) -> Result<Summary> {
        const ACTION: &str = "summarize purchases";
        let summary = Summary {
            user_ids: user_column(per_user, ACTION)?,
            frequency: f64_column(per_user, "frequency", ACTION)?,
            recency: f64_column(per_user, "recency", ACTION)?,
            t: f64_column(per_user, "t", ACTION)?,
            monetary: f64_column(per_user, "monetary", ACTION)?,
            first_value: f64_column(per_user, "first_value", ACTION)?,
        };
        summary.check()?;
        Ok(summary)
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.user_ids.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty()
    }

    /// `(x, t_x, T)` per customer, in order.
    pub fn customers(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.frequency
            .iter()
            .zip(&self.recency)
            .zip(&self.t)
            .map(|((&x, &t_x), &t)| (x, t_x, t))
    }

    /// Checks that the columns have one length and every history is in its domain.
    pub(crate) fn check(&self) -> Result<()> {
        let n = self.user_ids.len();
        if [
            self.frequency.len(),
            self.recency.len(),
            self.t.len(),
            self.monetary.len(),
            self.first_value.len(),
        ]
        .iter()
        .any(|&len| len != n)
        {
            return Err(Error::Invalid(format!(
                "summary columns differ in length: {} users, {} frequencies, {} recencies, {} ages, {} monetary values, {} first values",
                n,
                self.frequency.len(),
                self.recency.len(),
                self.t.len(),
                self.monetary.len(),
                self.first_value.len()
            )));
        }
        for (i, (x, t_x, big_t)) in self.customers().enumerate() {
            super::check_customer(x, t_x, big_t).map_err(|e| match e {
                Error::Invalid(msg) => {
                    Error::Invalid(format!("customer `{}`: {msg}", self.user_ids[i]))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

/// `event_time` as UTC microseconds (Int64), whatever its temporal type.
fn time_micros(events: &DataFrame) -> Result<Expr> {
    let column = events.column(EVENT_TIME).map_err(|_| Error::Column {
        column: EVENT_TIME,
        problem: "is missing from the events".to_string(),
    })?;
    crate::event_micros(column.dtype()).ok_or_else(|| Error::Column {
        column: EVENT_TIME,
        problem: format!(
            "has type {}, expected a datetime, a date or integer microseconds",
            column.dtype()
        ),
    })
}

fn require(events: &DataFrame, column: &'static str) -> Result<()> {
    if events.column(column).is_ok() {
        Ok(())
    } else {
        Err(Error::Column {
            column,
            problem: "is missing from the events".to_string(),
        })
    }
}

/// Purchase days in `[from, to)`: one row per (user, UTC day with a purchase that
/// is not a refund) with `__day` and the day's value `__v`.
fn purchase_days(events: &DataFrame, from: Option<i64>, to: i64) -> Result<LazyFrame> {
    require(events, USER_ID)?;
    require(events, EVENT_TYPE)?;
    let time = time_micros(events)?;
    // Amounts in whole cents: integer sums are exact in any order, so the fitted
    // models do not change with the order polars' parallel group-by adds them in.
    let raw = if events.column(AMOUNT).is_ok() {
        col(AMOUNT).cast(DataType::Float64).fill_null(lit(0.0))
    } else {
        lit(0.0)
    };
    let amount = userlens_model::money::expr::cents(raw.clone());
    let mut in_window = col("__t").lt(lit(to));
    if let Some(from) = from {
        in_window = in_window.and(col("__t").gt_eq(lit(from)));
    }
    Ok(events
        .clone()
        .lazy()
        .filter(
            col(EVENT_TYPE)
                .cast(DataType::String)
                .eq(lit(PURCHASE))
                .and(col(USER_ID).is_not_null()),
        )
        .select([
            col(USER_ID).cast(DataType::String).alias(USER_ID),
            time.alias("__t"),
            amount.alias("__v"),
            raw.alias("__a"),
        ])
        .filter(in_window)
        .with_column(col("__t").floor_div(lit(DAY_MICROS)).alias("__day"))
        .group_by([col(USER_ID), col("__day")])
        .agg([
            col("__v").sum().alias("__v"),
            // A refund by its own sign, not its cents' (-0.004 rounds to 0).
            (userlens_model::money::expr::is_refund(col("__a")).not())
                .and(col("__v").is_not_null())
                .any(true)
                .alias("__bought"),
        ])
        // A day of refunds alone is no transaction; a refund on a day with a
        // purchase lowers that day's value.
        .filter(col("__bought"))
        .select([col(USER_ID), col("__day"), col("__v")]))
}

fn f64_column(df: &DataFrame, name: &str, action: &'static str) -> Result<Vec<f64>> {
    let values = df
        .column(name)
        .and_then(|c| c.f64().cloned())
        .map_err(polars_err(action))?;
    if values.null_count() > 0 {
        return Err(Error::Numerical(format!(
            "failed to {action}: `{name}` has missing values"
        )));
    }
    Ok(values.iter().map(|v| v.unwrap_or(0.0)).collect())
}

fn user_column(df: &DataFrame, action: &'static str) -> Result<Vec<String>> {
    let users = df
        .column(USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(polars_err(action))?;
    Ok(users
        .iter()
        .map(|u| u.unwrap_or_default().to_string())
        .collect())
}

/// Summarises the purchases strictly before `calibration_end` (UTC microseconds)
/// per customer, in `unit`.
///
/// Time is counted in whole UTC days, as the lifetimes package and the published
/// CDNOW numbers do: the last calibration day is the day holding
/// `calibration_end - 1µs`, age `T` is that day minus the first transaction day, and
/// weeks are days / 7. So calibration through 1997-09-30 (`calibration_end` =
/// 1997-10-01T00:00Z) and a first purchase on 1997-01-01 give `T` = 272 / 7 = 38.86
/// weeks. Null amounts count as 0; a missing `amount` column makes every value 0.
pub fn summarize(events: &DataFrame, calibration_end: i64, unit: TimeUnit) -> Result<Summary> {
    Summary::from_frame(&summary_frame(events, calibration_end, unit)?)
}

/// The table behind [`summarize`]: `user_id`, `frequency`, `recency`, `t`,
/// `monetary`, `first_value`, sorted by `user_id`. Per user, so events in parts of whole users can
/// be summarised part by part and the tables stacked.
pub fn summary_frame(
    events: &DataFrame,
    calibration_end: i64,
    unit: TimeUnit,
) -> Result<DataFrame> {
    let last_day = calibration_end.saturating_sub(1).div_euclid(DAY_MICROS);
    let days = purchase_days(events, None, calibration_end)?;
    // Times the reciprocal, as polars divides many rows by a constant (a single row
    // exactly): the same bits however many users a part holds.
    let per_unit = lit(1.0 / unit.days());
    let n = || col("__n").cast(DataType::Float64);
    let first_day = || col("__day").min();
    days.group_by([col(USER_ID)])
        .agg([
            len().alias("__n"),
            first_day().alias("__first"),
            col("__day").max().alias("__last"),
            col("__v")
                .filter(col("__day").gt(first_day()))
                .sum()
                .alias("__repeat_value"),
            col("__v")
                .filter(col("__day").eq(first_day()))
                .sum()
                .alias("__first_value"),
        ])
        .sort([USER_ID], SortMultipleOptions::default())
        .select([
            col(USER_ID),
            (n() - lit(1.0)).alias("frequency"),
            ((col("__last") - col("__first")).cast(DataType::Float64) * per_unit.clone())
                .alias("recency"),
            ((lit(last_day) - col("__first")).cast(DataType::Float64) * per_unit).alias("t"),
            when(n().gt(lit(1.0)))
                .then(
                    userlens_model::money::expr::from_cents(col("__repeat_value"))
                        / (n() - lit(1.0)),
                )
                .otherwise(lit(0.0))
                .alias("monetary"),
            userlens_model::money::expr::from_cents(col("__first_value")).alias("first_value"),
        ])
        .collect()
        .map_err(polars_err("summarize purchases"))
}

/// Transactions per customer in `[from, to)` (UTC microseconds): the number of
/// distinct UTC days with a purchase, sorted by `user_id`; customers without a
/// purchase in the window are absent.
///
/// For a holdout that follows a calibration period every one of these is a repeat
/// transaction of a calibration customer; customers first seen in the window are
/// listed too, and the caller decides whether to score them.
pub fn holdout_transactions(events: &DataFrame, from: i64, to: i64) -> Result<Vec<(String, f64)>> {
    const ACTION: &str = "count holdout transactions";
    let counts = purchase_days(events, Some(from), to)?
        .group_by([col(USER_ID)])
        .agg([len().cast(DataType::Float64).alias("__count")])
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err(ACTION))?;
    let users = user_column(&counts, ACTION)?;
    let values = f64_column(&counts, "__count", ACTION)?;
    Ok(users.into_iter().zip(values).collect())
}

/// [`summary_frame`] at `cutoff` and at `as_of`, and [`holdout_transactions`] in
/// `[cutoff, as_of)`, from one pass over events sorted by user and time.
#[derive(Debug)]
pub struct Histories {
    /// The purchase histories before the cutoff.
    pub at_cutoff: DataFrame,
    /// The purchase histories before the as-of date.
    pub now: DataFrame,
    /// Purchase days per customer in the horizon, for those with any.
    pub horizon: Vec<(String, f64)>,
}

/// [`Histories`] in one pass over events grouped by user in ascending `user_id`
/// order and in time order within each user (as ingest leaves them), without the
/// group-bys' copies of the rows; `None` when they are not (or the columns are not
/// of the canonical types), and the caller uses the group-bys, which give the same
/// tables bit for bit.
pub fn histories_sorted(
    events: &DataFrame,
    cutoff: i64,
    as_of: i64,
    unit: TimeUnit,
) -> Option<Histories> {
    if cutoff > as_of {
        return None;
    }
    let ids = events.column(USER_ID).ok()?.str().ok()?;
    // Whether each event is a purchase: the types may be strings or dictionary codes.
    let column = events.column(EVENT_TYPE).ok()?;
    let purchases = column.as_materialized_series().equal(PURCHASE).ok()?;
    if ids.null_count() > 0 {
        return None;
    }
    let times = events
        .clone()
        .lazy()
        .select([time_micros(events).ok()?.alias(EVENT_TIME)])
        .collect()
        .ok()?;
    let times = times.column(EVENT_TIME).ok()?.i64().ok()?.clone();
    // Without an amount column every amount is missing: 0 cents, as in the group-bys.
    let amounts = match events.column(AMOUNT) {
        Ok(column) => column.cast(&DataType::Float64).ok()?.f64().ok()?.clone(),
        Err(_) => Float64Chunked::full_null(AMOUNT.into(), ids.len()),
    };
    let windows = [(i64::MIN, cutoff), (i64::MIN, as_of), (cutoff, as_of)];
    let mut out: [Days; 3] = Default::default();
    let mut user: [User; 3] = Default::default();
    let mut current: Option<&str> = None;
    let mut last_time = i64::MIN;
    let rows = ids
        .iter()
        .zip(purchases.iter())
        .zip(times.iter().zip(amounts.iter()));
    for ((id, purchase), (time, amount)) in rows {
        let id = id.unwrap_or_default();
        if current != Some(id) {
            if let Some(p) = current {
                if id < p {
                    return None;
                }
                for (w, u) in out.iter_mut().zip(&mut user) {
                    w.close(p, u);
                }
            }
            current = Some(id);
            last_time = i64::MIN;
        }
        // Events without a time are in no window, as in the group-bys.
        let Some(t) = time else { continue };
        if t < last_time {
            return None;
        }
        last_time = t;
        if purchase != Some(true) {
            continue;
        }
        // As `purchase_days`: a missing amount is 0 cents, one beyond i64 is no value.
        let cents = amount.map_or(Some(0), userlens_model::money::cents);
        let bought = cents.is_some() && !userlens_model::money::is_refund(amount);
        let day = t.div_euclid(DAY_MICROS);
        for (&(from, to), u) in windows.iter().zip(&mut user) {
            if (from..to).contains(&t) {
                u.add(day, cents, bought);
            }
        }
    }
    if let Some(p) = current {
        for (w, u) in out.iter_mut().zip(&mut user) {
            w.close(p, u);
        }
    }
    let [at_cutoff, now, horizon] = out;
    Some(Histories {
        at_cutoff: at_cutoff.summary(cutoff, unit)?,
        now: now.summary(as_of, unit)?,
        horizon: horizon
            .users
            .into_iter()
            .zip(horizon.n)
            .map(|(user, n)| (user.to_string(), f64::from(n)))
            .collect(),
    })
}

/// The purchase days of the user being read, in one window.
#[derive(Default)]
struct User {
    /// The day being summed: its number, value in cents, and whether it holds a
    /// purchase that is not a refund.
    day: Option<(i64, i64, bool)>,
    n: u32,
    first: i64,
    last: i64,
    /// Value of the first day.
    first_value: i64,
    /// Value of the days after the first.
    repeat: i64,
}

impl User {
    /// Adds a purchase line of `cents` on `day`; `bought` when it is no refund.
    fn add(&mut self, day: i64, cents: Option<i64>, bought: bool) {
        match &mut self.day {
            Some((d, value, was_bought)) if *d == day => {
                if let Some(c) = cents {
                    *value = value.wrapping_add(c);
                }
                *was_bought |= bought;
            }
            _ => {
                self.end_day();
                self.day = Some((day, cents.unwrap_or(0), bought));
            }
        }
    }

    /// Counts the day being summed if it was a purchase day.
    fn end_day(&mut self) {
        let Some((day, value, true)) = self.day.take() else {
            return;
        };
        if self.n == 0 {
            self.first = day;
            self.first_value = value;
        } else {
            self.repeat = self.repeat.wrapping_add(value);
        }
        self.last = day;
        self.n += 1;
    }
}

/// The customers of one window: their purchase days, first and last day and repeat
/// value, in user order.
#[derive(Default)]
struct Days<'a> {
    users: Vec<&'a str>,
    n: Vec<u32>,
    first: Vec<i64>,
    last: Vec<i64>,
    first_value: Vec<i64>,
    repeat: Vec<i64>,
}

impl<'a> Days<'a> {
    /// Ends the user `id`'s days and starts the next user's.
    fn close(&mut self, id: &'a str, user: &mut User) {
        user.end_day();
        if user.n > 0 {
            self.users.push(id);
            self.n.push(user.n);
            self.first.push(user.first);
            self.last.push(user.last);
            self.first_value.push(user.first_value);
            self.repeat.push(user.repeat);
        }
        *user = User::default();
    }

    /// As [`summary_frame`] computes them, operation for operation.
    fn summary(self, calibration_end: i64, unit: TimeUnit) -> Option<DataFrame> {
        let last_day = calibration_end.saturating_sub(1).div_euclid(DAY_MICROS);
        // Times the reciprocal, as `summary_frame` writes it for any number of rows.
        let divide = |x: f64, by: f64| x * (1.0 / by);
        let n: Vec<f64> = self.n.iter().map(|&n| f64::from(n)).collect();
        let frequency: Vec<f64> = n.iter().map(|n| n - 1.0).collect();
        let recency: Vec<f64> = self
            .last
            .iter()
            .zip(&self.first)
            .map(|(l, f)| divide((l - f) as f64, unit.days()))
            .collect();
        let t: Vec<f64> = self
            .first
            .iter()
            .map(|f| divide((last_day - f) as f64, unit.days()))
            .collect();
        let monetary: Vec<f64> = self
            .repeat
            .iter()
            .zip(&n)
            .map(|(&r, &n)| {
                if n > 1.0 {
                    divide(r as f64, 100.0) / (n - 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let first_value: Vec<f64> = self
            .first_value
            .iter()
            .map(|&v| userlens_model::money::from_cents(v))
            .collect();
        polars::df!(
            USER_ID => self.users,
            "frequency" => frequency,
            "recency" => recency,
            "t" => t,
            "monetary" => monetary,
            "first_value" => first_value,
        )
        .ok()
    }
}
