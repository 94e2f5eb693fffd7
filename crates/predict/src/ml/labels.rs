//! Targets from canonical events: polars group-bys, or one pass over events grouped
//! by user.

use polars::prelude::*;
use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE, USER_ID};
use userlens_model::event_types::PURCHASE;
use userlens_model::money;

use userlens_model::time::days;

use super::{Error, Result, polars_err};

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
    let time = crate::event_micros(dtype).ok_or_else(|| Error::NotATime {
        dtype: dtype.to_string(),
    })?;
    Ok(time.alias(T))
}

/// Whether any value of a boolean expression holds in the group.
fn any(e: Expr) -> Expr {
    e.cast(DataType::UInt32).sum().gt(lit(0))
}

/// Targets in the window `[from, to)` (UTC microseconds) for every user with an
/// event before `to`: `user_id`, `purchased` (any purchase but a refund), `revenue` (sum of
/// purchase amounts, refunds included, 0 without any) and `active` (any event),
/// sorted by `user_id`.
pub fn targets(events: &DataFrame, from: i64, to: i64) -> Result<DataFrame> {
    if from >= to {
        return Err(Error::Params(format!(
            "the target window [{from}, {to}) is empty: it must start before it ends"
        )));
    }
    require(events, &[USER_ID, EVENT_TYPE, AMOUNT])?;
    let t = micros(events)?;
    let inside = || col(T).gt_eq(lit(from));
    let purchase = || inside().and(col(EVENT_TYPE).eq(lit(PURCHASE)));
    // A refund (a purchase of a negative amount) counts in revenue, not as a purchase.
    let bought = || purchase().and(money::expr::is_refund(col(AMOUNT)).not());
    events
        .clone()
        .lazy()
        .select([col(USER_ID), col(EVENT_TYPE), col(AMOUNT), t])
        .filter(col(T).lt(lit(to)))
        .group_by([col(USER_ID)])
        .agg([
            any(bought()).alias(PURCHASED),
            // Whole cents sum exactly, in any order (see `stats::summary`).
            userlens_model::money::expr::from_cents(
                userlens_model::money::expr::cents(col(AMOUNT))
                    .filter(purchase())
                    .sum(),
            )
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
        return Err(Error::Params(
            "`churn_window_days` is 0, it must be at least 1".into(),
        ));
    }
    require(events, &[USER_ID])?;
    let window = days(window_days);
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

/// [`targets`] in `[from, to)` and [`churn_labels`] at `from`, in one pass over
/// events grouped by user in ascending `user_id` order (as ingest leaves them);
/// `None` when they are not, and the caller groups with [`targets`] and
/// [`churn_labels`]. A user's rows are the run of rows that share its id, so no
/// user id is hashed (docs/benchmarks.md).
pub fn targets_and_churn_sorted(
    events: &DataFrame,
    from: i64,
    to: i64,
    churn_window_days: u32,
) -> Result<Option<(DataFrame, DataFrame)>> {
    if from >= to || churn_window_days == 0 {
        // The group-bys say what is wrong with the window.
        return Ok(None);
    }
    require(events, &[USER_ID, EVENT_TYPE, AMOUNT])?;
    let action = "compute the targets";
    // Whether each event is a purchase: the types may be strings or dictionary codes.
    let (Ok(ids), Ok(purchases)) = (
        events.column(USER_ID).and_then(Column::str),
        events
            .column(EVENT_TYPE)
            .and_then(|c| c.as_materialized_series().equal(PURCHASE)),
    ) else {
        return Ok(None);
    };
    if ids.null_count() > 0 {
        return Ok(None);
    }
    let times = events
        .clone()
        .lazy()
        .select([micros(events)?])
        .collect()
        .map_err(polars_err(action))?;
    let times = times
        .column(T)
        .and_then(Column::i64)
        .map_err(polars_err(action))?;
    let amounts = events
        .column(AMOUNT)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(polars_err(action))?;
    let amounts = amounts.f64().map_err(polars_err(action))?;
    let window = days(churn_window_days);
    let windows = Windows {
        from,
        to,
        churn: (from.saturating_sub(window), from.saturating_add(window)),
    };
    // Two halves that split no user, read side by side: the pass is one thread's work.
    let n = ids.len();
    let mut mid = n / 2;
    let middle = ids.get(mid);
    while mid < n && ids.get(mid) == middle {
        mid += 1;
    }
    if mid < n && ids.get(mid) < ids.get(mid - 1) {
        return Ok(None);
    }
    let halves: Vec<Rows> = [(0, mid), (mid, n)]
        .into_iter()
        .map(|(start, end)| {
            let (offset, len) = (start as i64, end - start);
            Rows {
                ids: ids.slice(offset, len),
                times: times.slice(offset, len),
                purchases: purchases.slice(offset, len),
                amounts: amounts.slice(offset, len),
            }
        })
        .collect();
    let (first, second) = rayon::join(
        || labels_of(&halves[0], &windows),
        || labels_of(&halves[1], &windows),
    );
    let (Some(mut out), Some(second)) = (first, second) else {
        return Ok(None);
    };
    out.append(second);
    out.finish().map(Some)
}

/// The windows of [`targets_and_churn_sorted`] (UTC microseconds): the targets'
/// `[from, to)` and the churn window around `from`.
struct Windows {
    from: i64,
    to: i64,
    churn: (i64, i64),
}

/// The columns [`labels_of`] reads, for a run of rows.
struct Rows {
    ids: StringChunked,
    times: Int64Chunked,
    purchases: BooleanChunked,
    amounts: Float64Chunked,
}

/// The labels of the users of `rows`; `None` if the rows are not grouped by user in
/// ascending order.
fn labels_of<'a>(rows: &'a Rows, windows: &Windows) -> Option<Labels<'a>> {
    let Windows { from, to, churn } = *windows;
    let (start, end) = churn;
    let mut user = PerUser::default();
    let mut out = Labels::default();
    let mut previous: Option<&str> = None;
    let values = rows
        .ids
        .iter()
        .zip(rows.times.iter())
        .zip(rows.purchases.iter().zip(rows.amounts.iter()));
    for ((id, time), (purchase, amount)) in values {
        let id = id.unwrap_or_default();
        if previous != Some(id) {
            if previous.is_some_and(|p| id < p) {
                return None;
            }
            if let Some(p) = previous {
                out.push(p, &user);
            }
            user = PerUser::default();
            previous = Some(id);
        }
        let Some(t) = time else { continue };
        if t < to {
            user.seen = true;
            if t >= from {
                user.active = true;
                if purchase == Some(true) {
                    user.purchased |= !money::is_refund(amount);
                    // As `targets`: whole cents, rounded half to even.
                    if let Some(c) = amount.and_then(money::cents) {
                        user.cents = user.cents.wrapping_add(c);
                    }
                }
            }
        }
        if (start..end).contains(&t) {
            if t < from {
                user.before_cutoff = true;
            } else {
                user.after_cutoff = true;
            }
        }
    }
    if let Some(p) = previous {
        out.push(p, &user);
    }
    Some(out)
}

/// What [`targets_and_churn_sorted`] gathers about the user whose rows it is reading.
#[derive(Default)]
struct PerUser {
    /// An event before the window's end: the user is in the targets' population.
    seen: bool,
    purchased: bool,
    cents: i64,
    active: bool,
    /// Events in the churn window before and after the cutoff.
    before_cutoff: bool,
    after_cutoff: bool,
}

/// The columns of both tables of [`targets_and_churn_sorted`].
#[derive(Default)]
struct Labels<'a> {
    users: Vec<&'a str>,
    purchased: Vec<bool>,
    revenue: Vec<f64>,
    active: Vec<bool>,
    churn_users: Vec<&'a str>,
    churned: Vec<bool>,
}

impl<'a> Labels<'a> {
    fn push(&mut self, id: &'a str, user: &PerUser) {
        if user.seen {
            self.users.push(id);
            self.purchased.push(user.purchased);
            self.revenue.push(money::from_cents(user.cents));
            self.active.push(user.active);
        }
        if user.before_cutoff {
            self.churn_users.push(id);
            self.churned.push(!user.after_cutoff);
        }
    }

    /// The labels of users after this one's.
    fn append(&mut self, mut later: Labels<'a>) {
        self.users.append(&mut later.users);
        self.purchased.append(&mut later.purchased);
        self.revenue.append(&mut later.revenue);
        self.active.append(&mut later.active);
        self.churn_users.append(&mut later.churn_users);
        self.churned.append(&mut later.churned);
    }

    fn finish(self) -> Result<(DataFrame, DataFrame)> {
        let targets = df!(
            USER_ID => self.users,
            PURCHASED => self.purchased,
            REVENUE => self.revenue,
            ACTIVE => self.active,
        )
        .map_err(polars_err("compute the targets"))?;
        let churn = df!(USER_ID => self.churn_users, CHURNED => self.churned)
            .map_err(polars_err("compute the churn labels"))?;
        Ok((targets, churn))
    }
}
