//! Events -> per-customer frequency / recency / age / mean repeat value.

use polars::prelude::{
    DataFrame, DataType, Expr, IntoLazy, LazyFrame, PolarsError, RoundMode, SortMultipleOptions,
    TimeUnit as PlTimeUnit, col, len, lit, when,
};
use serde::{Deserialize, Serialize};
use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE, USER_ID};
use userlens_model::event_types::PURCHASE;
use userlens_model::time::DAY_MICROS;

use super::{Error, Result};

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
        ]
        .iter()
        .any(|&len| len != n)
        {
            return Err(Error::Invalid(format!(
                "summary columns differ in length: {} users, {} frequencies, {} recencies, {} ages, {} monetary values",
                n,
                self.frequency.len(),
                self.recency.len(),
                self.t.len(),
                self.monetary.len()
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

fn polars_err(action: &'static str) -> impl FnOnce(PolarsError) -> Error {
    move |source| Error::Polars { action, source }
}

/// `event_time` as UTC microseconds (Int64), whatever its temporal type.
fn time_micros(events: &DataFrame) -> Result<Expr> {
    let column = events.column(EVENT_TIME).map_err(|_| Error::Column {
        column: EVENT_TIME,
        problem: "is missing from the events".to_string(),
    })?;
    match column.dtype() {
        DataType::Datetime(_, tz) => Ok(col(EVENT_TIME)
            .cast(DataType::Datetime(PlTimeUnit::Microseconds, tz.clone()))
            .cast(DataType::Int64)),
        DataType::Date => Ok(col(EVENT_TIME)
            .cast(DataType::Datetime(PlTimeUnit::Microseconds, None))
            .cast(DataType::Int64)),
        DataType::Int64 => Ok(col(EVENT_TIME)),
        other => Err(Error::Column {
            column: EVENT_TIME,
            problem: format!("has type {other}, expected a datetime or Int64 microseconds"),
        }),
    }
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
    let amount = if events.column(AMOUNT).is_ok() {
        (col(AMOUNT).cast(DataType::Float64).fill_null(lit(0.0)) * lit(100.0))
            .round(0, RoundMode::HalfToEven)
            .cast(DataType::Int64)
    } else {
        lit(0i64)
    };
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
        ])
        .filter(in_window)
        .with_column(col("__t").floor_div(lit(DAY_MICROS)).alias("__day"))
        .group_by([col(USER_ID), col("__day")])
        .agg([
            col("__v").sum().alias("__v"),
            col("__v").gt_eq(lit(0i64)).any(true).alias("__bought"),
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
/// `monetary`, sorted by `user_id`. Per user, so events in parts of whole users can
/// be summarised part by part and the tables stacked.
pub fn summary_frame(
    events: &DataFrame,
    calibration_end: i64,
    unit: TimeUnit,
) -> Result<DataFrame> {
    let last_day = calibration_end.saturating_sub(1).div_euclid(DAY_MICROS);
    let days = purchase_days(events, None, calibration_end)?;
    let unit_days = lit(unit.days());
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
        ])
        .sort([USER_ID], SortMultipleOptions::default())
        .select([
            col(USER_ID),
            (n() - lit(1.0)).alias("frequency"),
            ((col("__last") - col("__first")).cast(DataType::Float64) / unit_days.clone())
                .alias("recency"),
            ((lit(last_day) - col("__first")).cast(DataType::Float64) / unit_days).alias("t"),
            when(n().gt(lit(1.0)))
                .then(col("__repeat_value").cast(DataType::Float64) / lit(100.0) / (n() - lit(1.0)))
                .otherwise(lit(0.0))
                .alias("monetary"),
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
