//! The group-by that makes the features at one time from events in any order, the
//! features it selects from the per-user aggregates (the group-by's or the one pass
//! over sorted events'), and the expressions they are built of.

use polars::prelude::*;
use userlens_model::columns::*;
use userlens_model::event_types;
use userlens_model::time::DAY_MICROS;
use userlens_model::{FeatureFamily, dayparts};

use crate::sorted::{self, Time};
use crate::{Order, Result, TEXT_FEATURES, days_between, polars_err, share_columns};

fn is_type(name: &str) -> Expr {
    col(EVENT_TYPE).eq(lit(name))
}

/// How many events of type `name` a user has, as a float column `alias`.
fn count_of_type(name: &str, alias: &str) -> Expr {
    is_type(name).sum().cast(DataType::Float64).alias(alias)
}

/// `numerator / denominator`, null when the denominator is zero.
fn ratio(numerator: Expr, denominator: Expr) -> Expr {
    when(denominator.clone().gt(lit(0)))
        .then(numerator.cast(DataType::Float64) / denominator.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// The most common non-null value of `column` per user (ties: the smallest value).
fn top_value(events: &LazyFrame, column: &str, alias: &str) -> LazyFrame {
    events
        .clone()
        .filter(col(column).is_not_null())
        .group_by([col(USER_ID), col(column)])
        .agg([len().alias("__n")])
        .sort(
            [USER_ID, "__n", column],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .group_by([col(USER_ID)])
        .agg([col(column).first().cast(DataType::String).alias(alias)])
}

/// The features of one part of the events (whole users) at each of `times`, without
/// the users table.
pub(crate) fn build_part(
    events: &DataFrame,
    times: &[Time],
    order: Order,
) -> Result<Vec<DataFrame>> {
    // Events sorted by user and time are summed in one pass over the rows; the
    // group-by is the general way, and the reference the pass is tested against.
    let summed = match order {
        Order::UserTime => sorted::aggregate(events, times)?,
        Order::Unsorted => None,
    };
    let queries = (times.iter())
        .map(|time| Query::new(events, time))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    match summed {
        Some(tables) => tables
            .into_iter()
            .zip(queries)
            .map(|(per_user, query)| query.finish(per_user.lazy()))
            .collect(),
        None => queries
            .map(|query| {
                let mut per_user = query.base.clone().group_by([col(USER_ID)]).agg(&query.aggs);
                for join in &query.joins {
                    per_user = per_user.left_join(join.clone(), col(USER_ID), col(USER_ID));
                }
                query.finish(per_user)
            })
            .collect(),
    }
}

/// The group-by that makes the features at one time, and the features it selects
/// from the aggregates (the group-by's or the one pass's).
pub(crate) struct Query {
    /// The events before the as-of time, with the columns the aggregations read.
    base: LazyFrame,
    aggs: Vec<Expr>,
    /// Per-user tables joined onto the aggregates.
    joins: Vec<LazyFrame>,
    /// The features, from the aggregates.
    out: Vec<Expr>,
    activity: bool,
}

impl Query {
    pub(crate) fn new(events: &DataFrame, time: &Time) -> Result<Query> {
        let (as_of, top, params) = (time.as_of, time.top, time.params);
        let t = || col("__t");
        let day = || t() / lit(DAY_MICROS);
        let refund = || userlens_model::money::expr::is_refund(col(AMOUNT));
        let mut base = events
            .clone()
            .lazy()
            .filter(col(EVENT_TIME).cast(DataType::Int64).lt(lit(as_of)))
            .with_columns([
                col(EVENT_TIME).cast(DataType::Int64).alias("__t"),
                // Read by several aggregations each: computed once per event here.
                is_type(event_types::PURCHASE).alias("__money"),
                is_type(event_types::PURCHASE)
                    .and(refund().not())
                    .alias("__purchase"),
            ]);
        let has_orders = events.column(ORDER_ID).is_ok();
        if has_orders && params.has(FeatureFamily::Interpurchase) {
            let bought_at = userlens_model::orders::bought_at(t(), col("__purchase"))
                .map_err(polars_err("find the orders' first purchase lines"))?;
            base = base.with_column(bought_at.alias("__bought_at"));
        }
        let as_of = || lit(as_of);
        let purchase = || col("__purchase");
        // Lines of one order are one purchase; a line without an order id is its own.
        let by_order = |line: Expr| match has_orders {
            true => {
                col(ORDER_ID).filter(line.clone()).drop_nulls().n_unique()
                    + line.and(col(ORDER_ID).is_null()).sum()
            }
            false => line.sum(),
        };
        let purchases = by_order(purchase());

        let mut aggs = vec![
            len().cast(DataType::Float64).alias("events"),
            t().min().alias("__first"),
            t().max().alias("__last"),
            purchases.cast(DataType::Float64).alias("__purchases"),
        ];
        let mut out = vec![col(USER_ID)];
        let mut joins: Vec<LazyFrame> = Vec::new();

        if params.has(FeatureFamily::Rfm) {
            // Refunds (purchases of a negative amount) reduce the money spent.
            aggs.extend([
                userlens_model::money::expr::sum(col(AMOUNT).filter(col("__money")))
                    .alias("__monetary"),
                by_order(col("__money").and(refund()))
                    .cast(DataType::Float64)
                    .alias("__refunds"),
            ]);
            out.extend([
                days_between(as_of(), col("__last")).alias("recency_days"),
                col("__purchases").alias("frequency"),
                col("__monetary").fill_null(lit(0.0)).alias("monetary"),
                ratio(col("__monetary"), col("__purchases"))
                    .fill_null(lit(0.0))
                    .alias("avg_order_value"),
                days_between(as_of(), col("__first")).alias("tenure_days"),
                col("__refunds").alias("refund_count"),
            ]);
        }
        if params.has(FeatureFamily::Activity) {
            aggs.extend([
                col(SESSION_ID)
                    .n_unique()
                    .cast(DataType::Float64)
                    .alias("__sessions"),
                day()
                    .n_unique()
                    .cast(DataType::Float64)
                    .alias("active_days"),
            ]);
            out.extend([
                col("events"),
                col("__sessions").alias("sessions"),
                col("active_days"),
                ratio(col("events"), col("__sessions")).alias("events_per_session"),
                col("session_minutes"),
            ]);
            joins.push(
                base.clone()
                    .group_by([col(USER_ID), col(SESSION_ID)])
                    .agg([(t().max() - t().min()).alias("__micros")])
                    .group_by([col(USER_ID)])
                    .agg([
                        col("__micros").sum().alias("__session_micros"),
                        col("__micros").count().alias("__runs"),
                    ]),
            );
        }
        if params.has(FeatureFamily::Funnel) {
            aggs.extend([
                count_of_type(event_types::VIEW, "views"),
                count_of_type(event_types::ADD_TO_CART, "carts"),
            ]);
            out.extend([
                col("views"),
                col("carts"),
                ratio(col("carts"), col("views")).alias("view_to_cart"),
                ratio(col("__purchases"), col("carts")).alias("cart_to_purchase"),
                ratio(col("__purchases"), col("views")).alias("view_to_purchase"),
            ]);
        }
        if params.has(FeatureFamily::Categories) {
            aggs.push(
                col(CATEGORY)
                    .drop_nulls()
                    .n_unique()
                    .cast(DataType::Float64)
                    .alias("category_count"),
            );
            aggs.push(col(CATEGORY).is_not_null().sum().alias("__categorised"));
            out.push(col("category_count"));
            for (category, name) in top.iter().zip(share_columns(top)) {
                aggs.push(col(CATEGORY).eq(lit(category.as_str())).sum().alias(&name));
                out.push(
                    ratio(col(&name), col("__categorised"))
                        .fill_null(lit(0.0))
                        .alias(&name),
                );
            }
            if params.text {
                out.push(col(TEXT_FEATURES[0]));
                joins.push(top_value(&base, CATEGORY, TEXT_FEATURES[0]));
            }
        }
        if params.has(FeatureFamily::TimeOfDay) {
            base = base.with_columns([
                col(EVENT_TIME).dt().hour().alias("__hour"),
                col(EVENT_TIME).dt().weekday().alias("__weekday"),
            ]);
            let hour = || col("__hour");
            let share = |e: Expr, name: &str| e.cast(DataType::Float64).mean().alias(name);
            let within = |hours: std::ops::Range<i64>| {
                hour()
                    .gt_eq(lit(hours.start))
                    .and(hour().lt(lit(hours.end)))
            };
            aggs.extend([
                share(within(dayparts::NOT_NIGHT).not(), "night_share"),
                share(within(dayparts::MORNING), "morning_share"),
                share(within(dayparts::EVENING), "evening_share"),
                share(col("__weekday").gt_eq(lit(6)), "weekend_share"),
            ]);
            out.extend(
                [
                    "night_share",
                    "morning_share",
                    "evening_share",
                    "weekend_share",
                ]
                .map(col),
            );
        }
        if params.has(FeatureFamily::Search) {
            aggs.extend([
                count_of_type(event_types::SEARCH, "searches"),
                col(QUERY)
                    .drop_nulls()
                    .n_unique()
                    .cast(DataType::Float64)
                    .alias("distinct_queries"),
            ]);
            out.extend([
                col("searches"),
                ratio(col("searches"), col("events")).alias("search_share"),
                col("distinct_queries"),
            ]);
            if params.text {
                out.push(col(TEXT_FEATURES[1]));
                joins.push(top_value(&base, QUERY, TEXT_FEATURES[1]));
            }
        }
        if params.has(FeatureFamily::Satisfaction) {
            aggs.extend([
                col(RATING)
                    .is_not_null()
                    .sum()
                    .cast(DataType::Float64)
                    .alias("ratings"),
                col(RATING).mean().alias("mean_rating"),
            ]);
            out.extend([col("ratings"), col("mean_rating")]);
        }
        if params.has(FeatureFamily::Interpurchase) {
            // The mean gap between consecutive purchases telescopes to
            // (last - first) / (n - 1), so no per-user sort is needed.
            let bought_at = match has_orders {
                true => col("__bought_at"),
                false => t(),
            };
            aggs.extend([
                t().filter(purchase()).min().alias("__first_buy"),
                bought_at.filter(purchase()).max().alias("__last_buy"),
            ]);
            out.push(
                ratio(
                    days_between(col("__last_buy"), col("__first_buy")),
                    col("__purchases") - lit(1.0),
                )
                .alias("mean_interpurchase_days"),
            );
        }

        Ok(Query {
            base,
            aggs,
            joins,
            out,
            activity: params.has(FeatureFamily::Activity),
        })
    }

    /// The features from `per_user`, the aggregates.
    pub(crate) fn finish(self, mut per_user: LazyFrame) -> Result<DataFrame> {
        if self.activity {
            // Whole microseconds sum exactly, so the mean does not depend on the order
            // polars adds them in; minutes times the reciprocal, as in `money::expr::sum`.
            per_user = per_user.with_column(
                (col("__session_micros").cast(DataType::Float64)
                    / col("__runs").cast(DataType::Float64)
                    * lit(1.0 / userlens_model::time::MINUTE_MICROS as f64))
                .alias("session_minutes"),
            );
        }
        per_user
            .select(self.out)
            .sort([USER_ID], SortMultipleOptions::default())
            .collect()
            .map_err(polars_err("compute per-user features"))
    }
}
