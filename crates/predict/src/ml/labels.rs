//! Targets from canonical events, computed with polars lazy expressions.

use polars::prelude::*;
use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE, USER_ID};
use userlens_model::event_types::PURCHASE;

use super::{DAY_MICROS, Error, Result, polars_err};

/// Target column: any purchase in the window.
pub const PURCHASED: &str = "purchased";
/// Target column: sum of purchase amounts in the window (refunds subtract).
pub const REVENUE: &str = "revenue";
/// Target column: any event in the window.
pub const ACTIVE: &str = "active";
/// Target column: active before the cutoff, inactive after it.
pub const CHURNED: &str = "churned";

const T: &str = "__t";

fn require(events: &DataFrame, columns: &[&str]) -> Result<()> {
    for &column in columns {
        if events.column(column).is_err() {
            return Err(Error::MissingColumn {
                table: "events",
                column: column.to_string(),
            });
        }
    }
    Ok(())
}

/// `event_time` as Int64 microseconds.
fn micros(events: &DataFrame) -> Result<Expr> {
    let dtype = events
        .column(EVENT_TIME)
        .map_err(|_| Error::MissingColumn {
            table: "events",
            column: EVENT_TIME.to_string(),
        })?
        .dtype();
    let time = col(EVENT_TIME);
    match dtype {
        DataType::Datetime(_, tz) => Ok(time
            .cast(DataType::Datetime(TimeUnit::Microseconds, tz.clone()))
            .cast(DataType::Int64)
            .alias(T)),
        d if d.is_integer() => Ok(time.cast(DataType::Int64).alias(T)),
        d => Err(Error::NotATime {
            dtype: d.to_string(),
        }),
    }
}

/// Whether any value of a boolean expression holds in the group.
fn any(e: Expr) -> Expr {
    e.cast(DataType::UInt32).sum().gt(lit(0))
}

/// Targets in the window `[from, to)` (UTC microseconds) for every user with an
/// event before `to`: `user_id`, `purchased` (any purchase event), `revenue` (sum of
/// purchase amounts, refunds included, 0 without any) and `active` (any event),
/// sorted by `user_id`.
pub fn targets(events: &DataFrame, from: i64, to: i64) -> Result<DataFrame> {
    if from >= to {
        return Err(Error::InvalidParams(format!(
            "the target window [{from}, {to}) is empty: it must start before it ends"
        )));
    }
    require(events, &[USER_ID, EVENT_TYPE, AMOUNT])?;
    let t = micros(events)?;
    let inside = || col(T).gt_eq(lit(from));
    let purchase = || inside().and(col(EVENT_TYPE).eq(lit(PURCHASE)));
    events
        .clone()
        .lazy()
        .select([col(USER_ID), col(EVENT_TYPE), col(AMOUNT), t])
        .filter(col(T).lt(lit(to)))
        .group_by([col(USER_ID)])
        .agg([
            any(purchase()).alias(PURCHASED),
            // Whole cents sum exactly, in any order (see `stats::summary`).
            ((col(AMOUNT).cast(DataType::Float64) * lit(100.0))
                .round(0, RoundMode::HalfToEven)
                .cast(DataType::Int64)
                .filter(purchase())
                .sum()
                .cast(DataType::Float64)
                / lit(100.0))
            .fill_null(lit(0.0))
            .alias(REVENUE),
            any(inside()).alias(ACTIVE),
        ])
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("compute the targets"))
}

/// The churn target with GA4's definition: among users with an event in the
/// `window_days` before `cutoff`, `churned` is true for those with no event in the
/// `window_days` from `cutoff` on. Returns `user_id`, `churned`, sorted by `user_id`.
pub fn churn_labels(events: &DataFrame, cutoff: i64, window_days: u32) -> Result<DataFrame> {
    if window_days == 0 {
        return Err(Error::InvalidParams(
            "`churn_window_days` is 0, it must be at least 1".into(),
        ));
    }
    require(events, &[USER_ID])?;
    let window = i64::from(window_days) * DAY_MICROS;
    let (start, end) = (cutoff.saturating_sub(window), cutoff.saturating_add(window));
    let t = micros(events)?;
    events
        .clone()
        .lazy()
        .select([col(USER_ID), t])
        .filter(col(T).gt_eq(lit(start)).and(col(T).lt(lit(end))))
        .group_by([col(USER_ID)])
        .agg([
            any(col(T).lt(lit(cutoff))).alias("__before"),
            any(col(T).gt_eq(lit(cutoff))).alias("__after"),
        ])
        .filter(col("__before"))
        .select([col(USER_ID), col("__after").not().alias(CHURNED)])
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("compute the churn labels"))
}
