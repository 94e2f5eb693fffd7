//! What the stage reads from the events: labels, purchase histories and the
//! horizon's purchase counts, in one pass over parts that each hold whole users.

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use crate::ml;
use crate::stats::{self, Summary, TimeUnit};

use super::{Result, polars_err};

/// What prediction reads from the events, gathered in one pass over the parts.
pub(super) struct FromEvents {
    /// Purchase targets of the horizon after the cutoff.
    pub(super) targets: DataFrame,
    /// Churn labels at the cutoff.
    pub(super) churn: DataFrame,
    /// The earliest event time.
    pub(super) first_event: Option<i64>,
    /// Purchase histories before the cutoff and before the as-of date.
    pub(super) summary_cutoff: stats::Result<Summary>,
    pub(super) summary_now: stats::Result<Summary>,
    /// Purchase days of each user in the horizon after the cutoff (absent: none).
    pub(super) horizon_purchases: foldhash::HashMap<String, f64>,
}

/// Stacks per-user tables of separate parts and sorts them by user.
fn stack_users(mut tables: Vec<DataFrame>, action: &'static str) -> Result<DataFrame> {
    if tables.len() <= 1 {
        return Ok(tables.pop().unwrap_or_default());
    }
    concat(
        tables.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(),
        UnionArgs::default(),
    )
    .and_then(|all| {
        all.sort([USER_ID], SortMultipleOptions::default())
            .collect()
    })
    .map_err(polars_err(action))
}

/// Reads the parts (each holding whole users) one at a time, only the columns the
/// labels and purchase summaries need.
pub(super) fn from_events(
    parts: &[LazyFrame],
    cutoff: i64,
    as_of: i64,
    unit: TimeUnit,
    churn_window_days: u32,
) -> Result<FromEvents> {
    use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE};
    let (mut targets, mut churn) = (Vec::new(), Vec::new());
    let (mut at_cutoff, mut now) = (Vec::new(), Vec::new());
    let mut first_event: Option<i64> = None;
    let mut horizon_purchases = foldhash::HashMap::default();
    for part in parts {
        let events = part
            .clone()
            .select([col(USER_ID), col(EVENT_TIME), col(EVENT_TYPE), col(AMOUNT)])
            .collect()
            .map_err(polars_err("read a part of the events"))?;
        // The labels' pass over the rows is one thread's work: the purchase
        // histories, polars' group-bys, run beside it.
        let (labels, summaries) = rayon::join(
            || -> Result<_> {
                let labels = match ml::targets_and_churn_sorted(
                    &events,
                    cutoff,
                    as_of,
                    churn_window_days,
                )? {
                    Some(labels) => labels,
                    None => (
                        ml::targets(&events, cutoff, as_of)?,
                        ml::churn_labels(&events, cutoff, churn_window_days)?,
                    ),
                };
                let first = events
                    .column(EVENT_TIME)
                    .and_then(|c| c.cast(&DataType::Int64))
                    .map_err(polars_err("read event times"))?
                    .i64()
                    .map_err(polars_err("read event times"))?
                    .min();
                Ok((labels, first))
            },
            || {
                (
                    stats::summary_frame(&events, cutoff, unit),
                    stats::summary_frame(&events, as_of, unit),
                    stats::holdout_transactions(&events, cutoff, as_of),
                )
            },
        );
        let ((part_targets, part_churn), first) = labels?;
        targets.push(part_targets);
        churn.push(part_churn);
        first_event = match (first_event, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        at_cutoff.push(summaries.0);
        now.push(summaries.1);
        // Without purchase columns the counts are missing like the summaries, and
        // the predictors that need them are skipped for the summaries' reason.
        if let Ok(counts) = summaries.2 {
            horizon_purchases.extend(counts);
        }
    }
    let summary = |frames: Vec<stats::Result<DataFrame>>| -> Result<stats::Result<Summary>> {
        Ok(
            match frames.into_iter().collect::<stats::Result<Vec<_>>>() {
                Ok(frames) => {
                    Summary::from_frame(&stack_users(frames, "combine purchase histories")?)
                }
                Err(e) => Err(e),
            },
        )
    };
    Ok(FromEvents {
        targets: stack_users(targets, "combine the targets")?,
        churn: stack_users(churn, "combine the churn labels")?,
        first_event,
        summary_cutoff: summary(at_cutoff)?,
        summary_now: summary(now)?,
        horizon_purchases,
    })
}
